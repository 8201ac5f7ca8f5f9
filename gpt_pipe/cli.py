"""The command line: options to settings, input to messages, outcome to exit code.

This is the one place that catches GptPipeError, prints its one line and exits.
"""

from __future__ import annotations

import gc
import json
import os
import signal
import sys
from typing import Any, BinaryIO

import click

from gpt_pipe import __version__
from gpt_pipe.exitcodes import ExitCode, GptPipeError
from gpt_pipe.log import Log

DEFAULT_BASE_URL = "https://api.greenpt.ai/v1"
DEFAULT_MODEL = "green-l"
KEY_VARIABLE = "GREENPT_API_KEY"

EXAMPLES = """\b
Examples:
  echo "Hello" | gpt-pipe
  git diff | gpt-pipe -s "Write a commit message for this diff"
  gpt-pipe "Summarise this log" < /var/log/syslog
  gpt-pipe --jsonl "Tell me a joke" > chunks.jsonl
  answer=$(gpt-pipe --full "One word for happy") || echo "failed: $?"
  while read -r q; do gpt-pipe --no-stdin "$q"; done < questions.txt
  gpt-pipe --json "Hi" | jq -r .choices[0].message.content
  gpt-pipe -c chat.jsonl "And in French?"
  gpt-pipe --batch tickets.jsonl -P 16 --output labels.jsonl --resume
  gpt-pipe --replay chunks.jsonl --usage

\b
Exit status: 0 answer complete, 2 usage, 3 truncated (length), 4 content filter,
5 tool calls, 6 other finish reason, 7 stream cut off, 65 bad input or request,
69 service unavailable, 70 internal error, 74 cannot write stdout, 75 try again
later, 76 protocol error, 77 not authorised, 78 configuration error, 130/143
interrupted, 141 reader closed stdout. See gpt-pipe(1)."""


SECONDS = click.FloatRange(min=0, min_open=True)


class Interrupted(BaseException):  # like KeyboardInterrupt: no library's "except Exception" eats it
    def __init__(self, code: ExitCode, what: str) -> None:
        super().__init__(what)
        self.code = code


class Settings:
    """What the command line, environment and config file asked for: every option under
    its parameter name, and what is derived from them (a plain class: dataclasses imports
    inspect, a cost paid on every start-up)."""

    prompt: tuple[str, ...]
    model: str
    base_url: str
    api_key_file: str | None
    api_key_cmd: str | None
    system: str | None
    messages: str | None
    conversation: str | None
    no_stdin: bool
    list_models: bool
    connect_timeout: float
    idle_timeout: float
    max_time: float | None
    retries: int
    max_retry_wait: float
    ca_bundle: str | None
    quiet: bool
    usage: bool
    tee: str | None
    replay: str | None
    dry_run: bool
    batch: str | None
    parallel: int
    keep_order: bool
    output: str | None
    resume: bool
    show_reasoning: bool
    debug: bool

    def __init__(self, opts: dict[str, Any], key_from_flag: bool) -> None:
        self.__dict__.update(opts)
        self.key_from_flag = key_from_flag
        self.mode = "full" if opts["full"] else "jsonl" if opts["jsonl"] else "json" if opts["json_"] else "text"
        self.newline: bool = not opts["no_newline"]
        self.user_message: dict[str, Any] | None = None  # the new prompt, for --conversation
        self.body: dict[str, Any] = {}


def _check_batch(ctx: click.Context, opts: dict[str, Any]) -> None:
    alone = [f"--{name.rstrip('_').replace('_', '-')}" for name in
             ("full", "jsonl", "json_", "tee", "replay", "conversation", "dry_run", "messages", "list_models")
             if opts[name] and ctx.get_parameter_source(name) is click.core.ParameterSource.COMMANDLINE]
    if opts["prompt"]:
        alone.append("PROMPT")
    if alone:
        raise click.UsageError(f"--batch takes its prompts from its input, not with {', '.join(alone)}")
    if opts["resume"] and not opts["output"]:
        raise click.UsageError("--resume needs --output FILE (the results it resumes)")
    if opts["max_time"] is not None:
        # One SIGALRM bounds one run; a batch's requests are bounded by --idle-timeout.
        raise click.UsageError("--max-time bounds a single run, not --batch (use --idle-timeout)")


def _parse_options(values: tuple[str, ...]) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise click.UsageError(f"-o/--option takes KEY=VALUE, not {item!r}")
        if key in ("messages", "stream"):
            raise click.UsageError(f"-o/--option cannot set {key!r}: gpt-pipe builds it")
        try:
            body[key] = json.loads(raw)
        except ValueError:
            body[key] = raw
    return body


@click.command(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=EXAMPLES,
)
@click.argument("prompt", nargs=-1)
@click.option("-s", "--system", metavar="TEXT", help="Add a system message first.")
@click.option("--messages", metavar="FILE",
              help="JSON array of {role, content} messages to send before the prompt ('-' for stdin).")
@click.option("-c", "--conversation", metavar="FILE",
              help="JSON Lines of messages sent before the prompt; the exchange is appended when it completes.")
@click.option("--no-stdin", is_flag=True, help="Never read stdin (for 'while read' loops).")
@click.option("-m", "--model", envvar="GREENPT_MODEL", default=DEFAULT_MODEL, show_default=True,
              shell_complete=lambda ctx, param, incomplete: _cached_models(incomplete),
              help="Model ID [env GREENPT_MODEL]; completes from the list --list-models saw last.")
@click.option("--base-url", envvar="GREENPT_BASE_URL", default=DEFAULT_BASE_URL, show_default=True, metavar="URL",
              help="API base URL [env GREENPT_BASE_URL].")
@click.option("--api-key-file", metavar="FILE", help=f"Read the API key from FILE (else env {KEY_VARIABLE}).")
@click.option("--api-key-cmd", metavar="CMD", help="Run CMD (a shell command) and use its output as the API key.")
@click.option("--temperature", type=float, help="Sampling temperature.")
@click.option("--max-tokens", type=click.IntRange(min=1), help="Most tokens to generate.")
@click.option("--top-p", type=float, help="Nucleus sampling probability mass.")
@click.option("--stop", multiple=True, metavar="TEXT", help="Stop sequence (repeatable).")
@click.option("--seed", type=int, help="Seed for deterministic sampling.")
@click.option("-o", "--option", multiple=True, metavar="KEY=VALUE",
              help="Any other request field; VALUE is JSON if it parses, else a string (repeatable).")
@click.option("--full", is_flag=True, help="Write nothing until the answer is complete, then all of it.")
@click.option("--jsonl", is_flag=True, help="Write each chunk as one line of JSON.")
@click.option("--json", "json_", is_flag=True,
              help="Write one chat.completion JSON object at the end (content, finish_reason, usage, impact).")
@click.option("--usage", is_flag=True,
              help="After the answer, one stderr line: tokens, timings, energy, emissions, credits.")
@click.option("--show-reasoning", is_flag=True, help="Write a reasoning model's reasoning to stderr as it arrives.")
@click.option("--reasoning-effort", metavar="VALUE", help="Send reasoning_effort (e.g. low, medium, high).")
@click.option("--tee", metavar="FILE", help="Also append every chunk to FILE as JSON Lines (an audit log).")
@click.option("--replay", metavar="FILE",
              help="Render a JSON Lines chunk log (from --jsonl or --tee; '-' for stdin) instead of asking the API.")
@click.option("--dry-run", is_flag=True, help="Print the request as a curl command line instead of sending it.")
@click.option("-n", "--no-newline", is_flag=True, help="Do not add a final newline.")
@click.option("--list-models", is_flag=True, help="List the model IDs the API offers, one per line.")
@click.option("--batch", is_flag=False, flag_value="-", metavar="[FILE]",
              help="Run one request per JSON line of FILE (stdin without FILE); results as JSON Lines.")
@click.option("-P", "--parallel", type=click.IntRange(1, 256), default=4, show_default=True, metavar="N",
              help="With --batch: requests at once.")
@click.option("--keep-order", is_flag=True, help="With --batch: write results in input order.")
@click.option("--output", metavar="FILE", help="With --batch: append results to FILE instead of stdout.")
@click.option("--resume", is_flag=True, help="With --batch --output: skip ids that already have a result.")
@click.option("--connect-timeout", type=SECONDS, default=10.0, show_default=True, metavar="SECONDS",
              help="Longest wait to connect.")
@click.option("--idle-timeout", type=SECONDS, default=120.0, show_default=True, metavar="SECONDS",
              help="Longest silence from the server.")
@click.option("--max-time", type=SECONDS, metavar="SECONDS", help="Longest time for the whole run, retries included.")
@click.option("--retries", type=click.IntRange(min=0), default=3, show_default=True, envvar="GPT_PIPE_RETRIES",
              metavar="N", help="Retries of a failure that is safe to retry [env GPT_PIPE_RETRIES].")
@click.option("--max-retry-wait", type=click.FloatRange(min=0), default=60.0, show_default=True, metavar="SECONDS",
              help="Longest wait before a retry; a longer Retry-After ends the run (75).")
@click.option("--ca-bundle", metavar="FILE", help="Trust the CA certificates in FILE (PEM) for TLS.")
@click.option("-q", "--quiet", is_flag=True, help="No retry notes and no warnings on stderr (errors still show).")
@click.option("--debug", is_flag=True, help="Diagnostics on stderr (the key redacted).")
@click.version_option(__version__, "-V", "--version", prog_name="gpt-pipe", message="%(prog)s %(version)s")
@click.pass_context
def command(ctx: click.Context, **opts: Any) -> Settings:
    """Send PROMPT (and stdin, if it is not a terminal) to an OpenAI-compatible chat API
    and stream the answer to stdout.

    PROMPT words are joined with spaces; stdin's text follows after a blank line.
    """
    if opts["full"] + opts["jsonl"] + opts["json_"] > 1:
        raise click.UsageError("choose one of --full, --jsonl and --json")
    from_flag = {name for name in ("api_key_file", "api_key_cmd")
                 if ctx.get_parameter_source(name) is click.core.ParameterSource.COMMANDLINE}
    if len(from_flag) == 2 or (opts["api_key_file"] and opts["api_key_cmd"] and not from_flag):
        raise click.UsageError("choose one of --api-key-file and --api-key-cmd")
    if from_flag:  # a key source named on the command line beats one from the config file
        opts["api_key_cmd" if "api_key_file" in from_flag else "api_key_file"] = None
    settings = Settings(opts, key_from_flag=bool(from_flag))
    if opts["batch"] is not None:
        _check_batch(ctx, opts)
    elif opts["keep_order"] or opts["output"] or opts["resume"]:
        raise click.UsageError("--keep-order, --output and --resume go with --batch")
    for name in ("temperature", "max_tokens", "top_p", "seed", "reasoning_effort"):
        if opts[name] is not None:
            settings.body[name] = opts[name]
    if opts["stop"]:
        settings.body["stop"] = list(opts["stop"])
    settings.body.update(_parse_options(opts["option"]))
    return settings


# Config file keys (long option names with underscores) -> click's parameter names.
CONFIG_KEYS = {p.name.rstrip("_"): p.name for p in command.params
               if p.name and p.name not in ("prompt", "list_models", "version", "help", "replay", "dry_run", "batch",
                                            "resume")}


def _read_stdin() -> bytes | None:
    """stdin's bytes, or None when there is no stdin to read (a terminal, closed)."""
    stdin = sys.stdin
    if stdin is None:
        return None
    try:
        if stdin.isatty():
            return None
        return stdin.buffer.read()
    except (OSError, ValueError):
        return None  # fd 0 closed or unusable: the same as no stdin


def _api_key(settings: Settings, log: Log) -> str:
    """The key: a source named by flag, else GREENPT_API_KEY, else one from the config file."""
    env_key = os.environ.get(KEY_VARIABLE, "").strip()
    if env_key and not settings.key_from_flag:
        key = env_key
    elif settings.api_key_cmd:
        key = _key_from_command(settings.api_key_cmd)
    elif settings.api_key_file:
        key = _key_from_file(os.path.expanduser(settings.api_key_file), log)
    else:
        raise GptPipeError(
            f"no API key: set {KEY_VARIABLE} (or use --api-key-file FILE or --api-key-cmd CMD)", ExitCode.CONFIG
        )
    if any(ch.isspace() or not ch.isprintable() or ord(ch) > 126 for ch in key):
        # requests would reject it with the key itself in the message.
        raise GptPipeError("the API key holds spaces or characters a header cannot carry", ExitCode.CONFIG)
    return key


def _key_from_file(path: str, log: Log) -> str:
    try:
        with open(path, "rb") as f:
            mode = os.fstat(f.fileno()).st_mode
            key = f.read().decode("utf-8", "replace").strip()
    except OSError as exc:
        raise GptPipeError(f"cannot read API key file {path}: {exc.strerror}", ExitCode.CONFIG) from None
    if mode & 0o044:
        log.warn(f"API key file {path} is readable by other users; fix with: chmod 600 {path}")
    if not key:
        raise GptPipeError(f"API key file {path} is empty", ExitCode.CONFIG)
    return key


def _key_from_command(command: str) -> str:
    import subprocess

    try:
        done = subprocess.run(command, shell=True, stdin=subprocess.DEVNULL, capture_output=True, timeout=120)
    except (OSError, subprocess.SubprocessError) as exc:
        raise GptPipeError(f"--api-key-cmd could not run: {exc}", ExitCode.CONFIG) from None
    if done.returncode != 0:
        lines = done.stderr.decode("utf-8", "replace").strip().splitlines()
        why = lines[0] if lines else f"exit status {done.returncode}"
        raise GptPipeError(f"--api-key-cmd failed: {why}", ExitCode.CONFIG)
    # Password managers print the secret on the first line (pass show puts notes after it).
    lines = done.stdout.decode("utf-8", "replace").strip().splitlines()
    if not lines or not lines[0].strip():
        raise GptPipeError("--api-key-cmd printed no key", ExitCode.CONFIG)
    return lines[0].strip()


def _build_request(settings: Settings) -> dict[str, Any]:
    from gpt_pipe.messages import build_messages, decode_input, load_messages, user_prompt

    history: list[dict[str, Any]] = []
    stdin_used = settings.no_stdin
    if settings.messages is not None:
        if settings.messages == "-":
            data = _read_stdin() or b""
            stdin_used = True
        else:
            path = os.path.expanduser(settings.messages)
            try:
                with open(path, "rb") as f:
                    data = f.read()
            except OSError as exc:
                raise GptPipeError(f"cannot read messages file {path}: {exc.strerror}", ExitCode.DATAERR) from None
        history = load_messages(data, settings.messages)
    if settings.conversation is not None:
        from gpt_pipe.conversation import read_conversation

        history = read_conversation(os.path.expanduser(settings.conversation)) + history
    stdin_bytes = None if stdin_used else _read_stdin()
    if stdin_bytes is None and not settings.prompt and settings.messages is None and not stdin_used:
        raise click.UsageError("no prompt: give PROMPT words or pipe text into stdin")
    stdin_text = decode_input(stdin_bytes, "stdin") if stdin_bytes else None
    prompt = user_prompt(settings.prompt, stdin_text)
    if not prompt.strip() and settings.messages is None:
        raise click.UsageError("the prompt is empty; nothing was sent")
    messages = build_messages(settings.system, history, prompt)
    if prompt.strip():
        settings.user_message = messages[-1]
    if not messages:
        raise click.UsageError("nothing to send: the messages file is empty and there is no prompt")
    body: dict[str, Any] = {"model": settings.model, "messages": messages, "stream": True}
    if (settings.usage or settings.mode == "json") and not _is_greenpt(settings.base_url):
        # GreenPT always ends the stream with usage (and impact); OpenAI-compatible servers
        # send usage only when asked, so it is asked for only when it will be shown.
        body["stream_options"] = {"include_usage": True}
    body.update(settings.body)
    return body


def _is_greenpt(base_url: str) -> bool:
    host = base_url.split("://", 1)[-1].split("/", 1)[0].rsplit("@", 1)[-1].split(":", 1)[0].lower()
    return host == "greenpt.ai" or host.endswith(".greenpt.ai")


def _make_sink(settings: Settings, out: BinaryIO, secret: str, info: Any) -> Any:
    from gpt_pipe.output import FullSink, JsonlSink, JsonSink, TextSink

    if settings.mode == "json":
        return JsonSink(out, info)
    if settings.mode == "full":
        return FullSink(out, settings.newline)
    if settings.mode == "jsonl":
        return JsonlSink(out, secret)
    return TextSink(out, settings.newline)


def _run(settings: Settings, log: Log) -> int:
    if settings.replay is not None:
        return _replay(settings, log)
    body = None if settings.list_models or settings.batch is not None else _build_request(settings)
    if settings.dry_run:
        return _dry_run(settings, body)
    key = _api_key(settings, log)
    log.set_secret(key)
    if settings.batch is not None:
        return _batch(settings, key, log)
    ca_bundle = os.path.expanduser(settings.ca_bundle) if settings.ca_bundle else None
    if ca_bundle and not os.path.isfile(ca_bundle):
        raise GptPipeError(f"--ca-bundle {settings.ca_bundle}: no such file", ExitCode.CONFIG)

    from gpt_pipe.client import Client

    client = Client(settings.base_url, key, settings.connect_timeout, settings.idle_timeout, log, ca_bundle)
    if sys.stdout is None:  # started with stdout closed (>&-)
        raise GptPipeError("cannot write to stdout: it is closed", ExitCode.IOERR)
    out = sys.stdout.buffer
    if settings.list_models:
        from gpt_pipe.output import write_lines

        models = client.list_models()
        write_lines(out, models)
        _cache_models(models)
        return ExitCode.OK
    from gpt_pipe.pipeline import MaxTime, RetryPolicy, RunInfo, run_with_retries

    info = RunInfo(settings.model)
    sink = _sinks(settings, out, key, info, log)
    kept = None
    if settings.conversation is not None:
        from gpt_pipe.output import KeepText

        sink = kept = KeepText(sink)
    start_streaming()
    try:
        code = run_with_retries(client, body, sink, log, RetryPolicy(settings.retries, settings.max_retry_wait),
                                MaxTime(settings.max_time), info)
    except (GptPipeError, Interrupted) as exc:
        message = exc.message if isinstance(exc, GptPipeError) else str(exc)
        sink.fail(log.scrub(message), exc.code)
        raise
    finally:
        log.end_stream()
    if kept is not None and settings.conversation:
        from gpt_pipe.conversation import append_conversation

        exchange = [settings.user_message] if settings.user_message else []
        append_conversation(os.path.expanduser(settings.conversation),
                            [*exchange, {"role": "assistant", "content": kept.text.text()}])
    if settings.usage and info.decoder is not None:
        from gpt_pipe.usage import usage_line

        first = info.first_token - info.started if info.first_token is not None else None
        log.error(usage_line(info.decoder.usage, info.decoder.impact, first, (info.ended or 0) - info.started,
                             info.credits))
    return code


def _batch(settings: Settings, key: str, log: Log) -> int:
    import threading

    from gpt_pipe.batch import Batch, Output, done_ids, read_lines
    from gpt_pipe.client import Client
    from gpt_pipe.output import KeepText, Sink
    from gpt_pipe.pipeline import MaxTime, RetryPolicy, RunInfo, SharedGate, run_with_retries

    ca_bundle = os.path.expanduser(settings.ca_bundle) if settings.ca_bundle else None
    base: dict[str, Any] = {"model": settings.model, "stream": True}
    if not _is_greenpt(settings.base_url):
        base["stream_options"] = {"include_usage": True}  # results carry usage: ask for it
    base.update(settings.body)
    if settings.system is not None:
        base["_system"] = settings.system
    policy = RetryPolicy(settings.retries, settings.max_retry_wait, gate=SharedGate())
    local = threading.local()  # a requests Session is not for sharing between threads

    def run_one(body: dict[str, Any]) -> dict[str, Any]:
        if not hasattr(local, "client"):
            local.client = Client(settings.base_url, key, settings.connect_timeout, settings.idle_timeout, log,
                                  ca_bundle)
        sink, info = KeepText(Sink(None)), RunInfo(body["model"])  # the text is kept, nothing written
        code = run_with_retries(local.client, body, sink, log, policy, MaxTime(None), info)
        decoder = info.decoder
        return {"content": sink.text.text(), "finish_reason": decoder.finish_reason if decoder else None,
                "exit": int(code), "usage": decoder.usage if decoder else None,
                "impact": decoder.impact if decoder else None, "error": None}

    source = settings.batch
    if source == "-":
        if sys.stdin is None or sys.stdin.isatty():
            raise click.UsageError("--batch without FILE reads its lines from stdin, which is a terminal")
        stream: Any = sys.stdin.buffer
    else:
        try:
            stream = open(os.path.expanduser(source or ""), "rb")  # read lazily: closed at exit
        except OSError as exc:
            raise GptPipeError(f"cannot read --batch file {source}: {exc.strerror}", ExitCode.DATAERR) from None
    progress = bool(sys.stderr and sys.stderr.isatty())
    total = _count_lines(source) if progress and source != "-" else None
    output = Output(os.path.expanduser(settings.output) if settings.output else None)
    skip = done_ids(output.path) if settings.resume and output.path else set()
    batch = Batch(run_one, base, settings.parallel, settings.keep_order, output, log, skip, progress, total)
    start_streaming()
    code = batch.run(read_lines(stream))
    log.error(batch.summary())
    return code


def _count_lines(path: str | None) -> int | None:
    try:
        with open(os.path.expanduser(path or ""), "rb") as f:
            return sum(1 for line in f if line.strip())
    except OSError:
        return None


def _cache_models(models: list[str]) -> None:
    """Keep the list for completing --model; a cache that cannot be written is no error."""
    from gpt_pipe.config import models_cache_path

    path = models_cache_path()
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            f.write("".join(f"{model}\n" for model in models))
        os.replace(path + ".tmp", path)  # never a half-written list for a completion to read
    except OSError:
        pass


def _cached_models(incomplete: str) -> list[Any]:
    from click.shell_completion import CompletionItem  # only when completing: 3 ms to import

    from gpt_pipe.config import models_cache_path

    try:
        with open(models_cache_path(), encoding="utf-8") as f:
            models = f.read().split()
    except OSError:
        return []
    return [CompletionItem(m) for m in models if m.startswith(incomplete)]


def _sinks(settings: Settings, out: BinaryIO, key: str, info: Any, log: Log) -> Any:
    """The output mode's sink, teed to the --tee file, and the reasoning hook it needs."""
    sink = _make_sink(settings, out, key, info)
    if settings.tee:
        from gpt_pipe.output import JsonlSink, TeeSink

        path = os.path.expanduser(settings.tee)
        try:
            log_file = open(path, "ab")  # open for the whole run: closed at exit
        except OSError as exc:
            raise GptPipeError(f"cannot open --tee file {path}: {exc.strerror}", ExitCode.IOERR) from None
        sink = TeeSink(sink, JsonlSink(log_file, key, name=path))
    if settings.show_reasoning or settings.mode == "json":
        info.on_reasoning = _reasoning_hook(sink, log if settings.show_reasoning else None)
    return sink


def _replay(settings: Settings, log: Log) -> int:
    from gpt_pipe.pipeline import RunInfo, replay

    if settings.replay == "-":
        stdin = sys.stdin
        if stdin is None or stdin.isatty():
            raise click.UsageError("--replay - needs a chunk log on stdin")
        lines: Any = stdin.buffer
    else:
        path = os.path.expanduser(settings.replay or "")
        try:
            lines = open(path, "rb")  # read to the end: closed at exit
        except OSError as exc:
            raise GptPipeError(f"cannot read --replay file {path}: {exc.strerror}", ExitCode.DATAERR) from None
    if sys.stdout is None:
        raise GptPipeError("cannot write to stdout: it is closed", ExitCode.IOERR)
    info = RunInfo(settings.model)
    sink = _sinks(settings, sys.stdout.buffer, "", info, log)
    try:
        code = replay(lines, sink, log, f"--replay {settings.replay}", info)
    except GptPipeError as exc:
        sink.fail(exc.message, exc.code)
        raise
    finally:
        log.end_stream()
    if settings.usage and info.decoder is not None:
        from gpt_pipe.usage import usage_line

        log.error(usage_line(info.decoder.usage, info.decoder.impact, None, None, None))  # a log keeps no times
    return code


def _dry_run(settings: Settings, body: dict[str, Any] | None) -> int:
    """The request as a curl command line; the key only as $GREENPT_API_KEY.

    ``body`` None: the GET of --list-models.
    """
    import shlex

    base = settings.base_url.rstrip("/")
    if body is None:
        url, headers = base + "/models", ["Accept: application/json"]
    else:
        url, headers = base + "/chat/completions", ["Content-Type: application/json", "Accept: text/event-stream"]
    headers += ["Accept-Encoding: identity", f"User-Agent: gpt-pipe/{__version__}"]
    words = ["curl", "-sN", shlex.quote(url), "-H", f'"Authorization: Bearer ${KEY_VARIABLE}"']
    for header in headers:
        words += ["-H", shlex.quote(header)]
    if body is not None:
        words += ["-d", shlex.quote(json.dumps(body, ensure_ascii=False))]
    from gpt_pipe.output import write_lines

    if sys.stdout is None:
        raise GptPipeError("cannot write to stdout: it is closed", ExitCode.IOERR)
    write_lines(sys.stdout.buffer, [" ".join(words)])
    return ExitCode.OK


def _reasoning_hook(sink: Any, log: Log | None) -> Any:
    """Each reasoning delta goes to the sink (for --json) and, with --show-reasoning, to stderr."""
    keep = sink.reasoning
    if log is None:
        return keep

    def hook(text: str) -> None:
        keep(text)
        log.stream(text)

    return hook


def _on_signal(signum: int, frame: Any) -> None:
    if signum == signal.SIGTERM:
        raise Interrupted(ExitCode.SIGTERM, "terminated (SIGTERM)")
    raise Interrupted(ExitCode.SIGINT, "interrupted (SIGINT)")


def _die_of_sigpipe() -> int:
    # The reader went away. Die the way `cat` does, so the shell sees 141 and no
    # "Exception ignored" noise comes from flushing a dead pipe at exit.
    from gpt_pipe.output import silence_stdout

    silence_stdout()
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGPIPE)
    return ExitCode.SIGPIPE  # not reached unless SIGPIPE is blocked


def finish(code: int) -> int:
    """Flush stdout and stderr before a fast exit; the exit code to leave with.

    Finalising the modules that requests loads costs ~20 ms after the last byte; with the
    output flushed, nothing is left for it to do, so the console entry skips it.
    """
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        code = _die_of_sigpipe()
    except (OSError, ValueError, AttributeError):
        pass
    try:
        sys.stderr.flush()
    except (OSError, ValueError, AttributeError):
        pass
    return code


def start_streaming() -> None:
    """Start-up is over: everything imported so far lives until exit, so the cyclic GC
    (off while importing, see __main__) is back on with those objects frozen out of its
    way, and a full collection can never pause the stream for milliseconds."""
    gc.freeze()
    gc.enable()


def main(argv: list[str] | None = None) -> int:
    """Run gpt-pipe; returns the exit code (see exitcodes.ExitCode)."""
    log = Log(debug=False)
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    try:
        from gpt_pipe.config import load_config

        config = load_config(CONFIG_KEYS, log.warn)
        result = command.main(argv, prog_name="gpt-pipe", standalone_mode=False, default_map=config)
        if not isinstance(result, Settings):
            return int(result or 0)  # --help, --version
        log.debugging = result.debug
        log.quiet = result.quiet
        return int(_run(result, log))
    except click.UsageError as exc:
        log.error(f"{exc.format_message()} (see 'gpt-pipe --help')")
        return ExitCode.USAGE
    except click.ClickException as exc:
        log.error(exc.format_message())
        return exc.exit_code
    except GptPipeError as exc:
        log.error(exc.message)
        return exc.code
    except Interrupted as exc:
        log.error(str(exc))
        return exc.code
    except (KeyboardInterrupt, click.Abort):
        log.error("interrupted (SIGINT)")
        return ExitCode.SIGINT
    except BrokenPipeError:
        return _die_of_sigpipe()
    except Exception as exc:  # a bug: still one line, unless --debug asks for the traceback
        if log.debugging:
            import traceback

            log.traceback(traceback.format_exc())
        log.error(f"internal error: {exc.__class__.__name__}: {exc} (run with --debug for the traceback)")
        return ExitCode.SOFTWARE
