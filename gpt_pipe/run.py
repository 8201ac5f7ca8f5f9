"""One kind of run, wired from Settings: a single chat run, a replay, a dry run or the
model list (--batch is wired in batch.py); each returns the exit code of its outcome."""

from __future__ import annotations

import json
import os
import sys
from typing import Any, BinaryIO

from gpt_pipe import __version__
from gpt_pipe.exitcodes import ExitCode, GptPipeError
from gpt_pipe.keys import api_key, redact_url, settings_key_source, url_password
from gpt_pipe.log import Log
from gpt_pipe.options import KEY_VARIABLE
from gpt_pipe.process import Interrupted, start_streaming
from gpt_pipe.settings import Settings
from gpt_pipe.terminal import is_terminal

TYPE_CHECKING = False
if TYPE_CHECKING:
    from gpt_pipe.client import Client
    from gpt_pipe.output import KeepText, Sink
    from gpt_pipe.pipeline import RunInfo


def run(settings: Settings, log: Log) -> int:
    """The run that ``settings`` asks for; returns its exit code, raises GptPipeError."""
    log.secrets.hide(url_password(settings.base_url))
    if settings.debug:
        _debug_sources(settings, log)
    if settings.replay is not None:
        return replay_log(settings, log)
    if settings.batch is not None:
        from gpt_pipe.batch import run_batch
        from gpt_pipe.request import RequestPlan

        plan = RequestPlan(settings, batch=True)
        key = api_key(settings, log.warn)
        log.set_secret(key)
        return run_batch(settings, plan, key, log)
    body = None if settings.list_models else build_request(settings, log)
    if settings.dry_run:
        return dry_run(settings, body, log)
    key = api_key(settings, log.warn)
    log.set_secret(key)
    from gpt_pipe.client import Client

    client = Client.for_settings(settings, key, log)
    out = stdout()
    if settings.list_models:
        return list_models(client, out, settings, log)
    assert body is not None
    return single_run(settings, client, body, out, log)


def _debug_sources(settings: Settings, log: Log) -> None:
    """--debug: where the config came from, and where the model, base URL and key did."""
    from gpt_pipe.options import BY_DEST
    from gpt_pipe.paths import config_path

    path = config_path()
    log.debug(f"config file: {path}" + ("" if os.path.exists(path) else " (none)")
              + (f", profile {settings.profile}" if settings.profile else ""))

    def where(dest: str) -> str:
        level = settings.levels.get(dest, "default")
        return {"line": "the command line", "profile": f"profile {settings.profile}", "file": "the config file",
                "env": f"env {BY_DEST[dest].env}", "default": "the default"}[level]

    log.debug(f"model: {settings.model} (from {where('model')})")
    log.debug(f"base URL: {redact_url(settings.base_url)} (from {where('base_url')})")
    try:
        source = settings_key_source(settings)
    except GptPipeError:
        source = None
    if source is None:
        log.debug("key: none (a server other than GreenPT's, given no key source)")
    else:
        kind, name = source
        dest = {"env": "api_key_env", "file": "api_key_file", "cmd": "api_key_cmd"}[kind]
        shown = {"env": f"env {name}", "file": f"file {name}", "cmd": f"command {name!r}"}[kind]
        log.debug(f"key: from {shown}" + ("" if name == KEY_VARIABLE else f" (set by {where(dest)})"))


def stdout() -> BinaryIO:
    if sys.stdout is None:  # started with stdout closed (>&-)
        raise GptPipeError("cannot write to stdout: it is closed", ExitCode.IOERR)
    return sys.stdout.buffer


def list_models(client: Client, out: BinaryIO, settings: Settings, log: Log) -> int:
    from gpt_pipe.completion import cache_models
    from gpt_pipe.output import write_lines

    models = [log.scrub(model) for model in client.list_models()]  # a server may echo the key as an ID
    write_lines(out, models, safe=is_terminal(1) and not settings.raw_control)
    cache_models(models)
    return ExitCode.OK


def single_run(settings: Settings, client: Client, body: dict[str, Any], out: BinaryIO, log: Log) -> int:
    from gpt_pipe.pipeline import MaxTime, RetryPolicy, RunInfo, run_with_retries

    if settings.conversation:  # nothing is paid for that cannot be kept
        from gpt_pipe.files import check_writable, private_dir, private_file

        path = settings.conversation
        if _private(settings):
            private_dir(os.path.dirname(path), "state directory")
            private_file(path, "conversation file")
        check_writable(path, f"conversation file {path}")
        if settings.new:  # what the file held goes to FILE.prev, made beside it
            check_writable(path + ".prev", f"conversation file {path}.prev")
    info = RunInfo(settings.model, limit=settings.max_answer)
    sink, kept = make_sink(settings, out, info, log, body)
    start_streaming()
    log.start_waiting()
    try:
        policy = RetryPolicy(settings.retries, settings.max_retry_wait, retries_invalid=settings.retries_invalid)
        code = run_with_retries(client, body, sink, log, policy, MaxTime(settings.max_time), info)
    except (GptPipeError, Interrupted) as exc:
        if isinstance(exc, GptPipeError) and settings.conversation and exc.code == ExitCode.DATAERR:
            _too_long_hint(exc, settings, body)
        message = exc.message if isinstance(exc, GptPipeError) else str(exc)
        sink.fail(log.scrub(message), exc.code)
        raise
    finally:
        log.stop_waiting()
        log.end_stream()
    sink.end(code)
    finished(settings, info, log)
    if kept is not None and settings.conversation:
        from gpt_pipe.conversation import append_conversation

        exchange = [settings.user_message] if settings.user_message else []
        if settings.saved_system is not None:
            exchange.insert(0, settings.saved_system)
        append_conversation(settings.conversation,
                            [*exchange, {"role": "assistant", "content": kept.text.text()}], log.warn,
                            settings.file_wait, fresh=settings.new, private=_private(settings))
    if settings.usage and info.decoder is not None:
        from gpt_pipe.usage import usage_line

        first = info.first_token - info.started if info.first_token is not None else None
        log.error(usage_line(info.decoder.usage, info.decoder.impact, first, (info.ended or 0) - info.started,
                             info.credits))
    return code


def _too_long_hint(error: GptPipeError, settings: Settings, body: dict[str, Any]) -> None:
    """A 400 about the context's length, in a conversation: how long it has grown, and the way out."""
    lowered = error.message.lower()
    if not any(word in lowered for word in ("context", "token", "too long", "maximum", "length")):
        return
    try:
        size = f", {os.path.getsize(settings.conversation or '') / 1024:.0f} KiB"
    except OSError:
        size = ""
    again = "-c --new" if _private(settings) else f"--conversation {settings.conversation} --new"
    error.message += (f" (the conversation holds {len(body.get('messages', [])) - 1} messages{size}: "
                      f"{again} starts it afresh, the old one kept)")


def _keep_system(settings: Settings, conversation: list[dict[str, Any]], log: Log) -> list[dict[str, Any]]:
    """The conversation's messages without its system message, which goes first in the
    request as -s does: -s is kept in the conversation (saved with the exchange), so a later
    turn without -s still has it, and a new -s replaces it (with a note)."""
    systems = [m for m in conversation if m.get("role") == "system"]
    stored = systems[-1].get("content") if systems else None
    if settings.system is None:
        settings.system = stored if isinstance(stored, str) else None
    elif settings.system != stored:
        settings.saved_system = {"role": "system", "content": settings.system}
        if stored is not None:
            log.note("-s replaces the conversation's system message (from now on)")
    return [m for m in conversation if m.get("role") != "system"]


def _private(settings: Settings) -> bool:
    """Whether the conversation is the default one, in the state directory (--continue)."""
    from gpt_pipe.conversation import default_conversation

    return settings.conversation == default_conversation()


def finished(settings: Settings, info: RunInfo, log: Log) -> None:
    """An answer that finished other than with stop says so in one line (unless -q)."""
    from gpt_pipe.stream import finish_note

    note = finish_note(info.decoder) if info.decoder is not None else None
    if note:
        log.note(note)


def build_request(settings: Settings, log: Log) -> dict[str, Any]:
    """The request body: the messages from every input, the model and the other fields."""
    from gpt_pipe.files import MAX_INPUT, read_capped
    from gpt_pipe.messages import decode_input, load_messages, read_stdin, user_prompt

    history: list[dict[str, Any]] = []
    stdin_used = settings.no_stdin
    if settings.messages is not None:
        if settings.messages == "-":
            if is_terminal(0):
                raise GptPipeError("--messages - reads a JSON array of messages from stdin, which is a terminal",
                                   ExitCode.USAGE)
            data = read_stdin() or b""
            stdin_used = True
        else:
            path = settings.messages
            data = read_capped(path, f"messages file {path}", MAX_INPUT, ExitCode.DATAERR, settings.file_wait)
        history = load_messages(data, settings.messages)
    if settings.conversation is not None:
        conversation: list[dict[str, Any]] = []
        if not settings.new:
            from gpt_pipe.conversation import read_conversation

            conversation = read_conversation(settings.conversation, log.warn, settings.file_wait,
                                             private=_private(settings))
        history = _keep_system(settings, conversation, log) + history
    image_stdin = None
    if "-" in settings.attach:  # the image is stdin: the prompt is the PROMPT words
        if stdin_used or is_terminal(0):
            raise GptPipeError("-a - reads an image from stdin, which is " + (
                "a terminal" if not stdin_used else "taken by --messages - or --no-stdin"), ExitCode.USAGE)
        image_stdin, stdin_used = read_stdin() or b"", True
    stdin_bytes = None if stdin_used else read_stdin()
    extras = bool(settings.attach or settings.file)
    if stdin_bytes is None and not settings.prompt and settings.messages is None and not stdin_used and not extras:
        raise GptPipeError("no prompt: give PROMPT words or pipe text into stdin", ExitCode.USAGE)
    stdin_text = decode_input(stdin_bytes, "stdin") if stdin_bytes else None
    images: list[dict[str, Any]] = []
    if extras:  # read and checked before anything is sent: one bad file and nothing goes
        from gpt_pipe.attach import file_block, image_part

        blocks = [file_block(path, settings.file_wait) for path in settings.file]
        head = user_prompt(settings.prompt, None)
        prompt = "\n\n".join(part for part in (head, *blocks, stdin_text or "") if part) if blocks else \
            user_prompt(settings.prompt, stdin_text)
        images = [image_part(source, settings.max_image, settings.file_wait, image_stdin) for source in settings.attach]
    else:
        prompt = user_prompt(settings.prompt, stdin_text)
    if (not prompt or prompt.isspace()) and settings.messages is None and not images:
        raise GptPipeError("the prompt is empty; nothing was sent", ExitCode.USAGE)
    from gpt_pipe.request import RequestPlan

    plan = RequestPlan(settings)
    settings.schema_value = plan.schema
    body = plan.single(history, prompt, images)
    if (prompt and not prompt.isspace()) or images:
        settings.user_message = body["messages"][-1]
    return body


def make_sink(settings: Settings, out: BinaryIO, info: RunInfo, log: Log,
              request: dict[str, Any] | None = None) -> tuple[Sink, KeepText | None]:
    """The output mode's sink, teed to the --tee file, keeping the text for -c, with the key
    scrubbed in front of it all; and the KeepText (or None) that holds the text for -c."""
    from gpt_pipe.output import FullSink, JsonlSink, JsonSink, KeepText, TextSink
    from gpt_pipe.scrub import Scrub

    safe = is_terminal(1) and not settings.raw_control
    sink: Sink
    if settings.mode == "json":
        sink = JsonSink(out, info, log.scrub, safe, settings.max_answer)
    elif settings.mode == "full":
        sink = FullSink(out, settings.newline, safe, settings.max_answer, settings.extract)
    elif settings.mode == "jsonl":
        sink = JsonlSink(out, safe=safe)
    else:
        sink = TextSink(out, settings.newline, safe)
    shown = sink  # the output mode's own sink
    if is_terminal(1) and is_terminal(2):
        sink.line_watch = log.watch_stdout  # a stderr line never starts after partial text on the screen
    if settings.tee:
        from gpt_pipe.files import open_append
        from gpt_pipe.replay import TeeSink

        path = settings.tee
        fd = open_append(path, f"--tee file {path}", settings.file_wait)
        fd = _one_offset_with_stdout(fd)
        sink = TeeSink(sink, JsonlSink(os.fdopen(fd, "wb"), name=path), settings.model, request,  # open for the run
                       log.secrets)
    kept = None
    if settings.conversation is not None:
        sink = kept = KeepText(sink, settings.max_answer)
    if settings.schema_value is not None:
        from gpt_pipe.schema import Checker, SchemaCheck

        sink = SchemaCheck(sink, Checker(settings.schema_value), info, settings.max_answer)
    # --full, -x and --json show nothing until the end: the indicator stays, counting the answer.
    on_answer = log.answer_arriving(shown.received) if isinstance(shown, (FullSink, JsonSink)) else \
        log.answer_started
    shown.before_write = log.stop_waiting
    sink = Scrub(sink, log.secrets, log.stream if settings.show_reasoning else None, on_answer)
    if settings.show_reasoning or settings.mode == "json":
        info.on_reasoning = sink.reasoning
    return sink, kept


def _one_offset_with_stdout(fd: int) -> int:
    """``fd``, or stdout's own file description when both name the same file (--tee
    /dev/stdout > FILE): two descriptions keep two offsets, and the answer would overwrite
    the log's first lines."""
    try:
        mine, out = os.fstat(fd), os.fstat(1)
    except OSError:
        return fd
    if (mine.st_dev, mine.st_ino) != (out.st_dev, out.st_ino):
        return fd
    os.close(fd)
    return os.dup(1)


def replay_log(settings: Settings, log: Log) -> int:
    """--replay: each run of a chunk log rendered as it was live, with no network; the
    exit code is the last run's."""
    start_streaming()  # the cyclic GC back on: a long log must not grow memory run after run
    from gpt_pipe.files import open_read, read_lines
    from gpt_pipe.pipeline import RunInfo
    from gpt_pipe.replay import render, runs

    if settings.replay == "-":
        stdin = sys.stdin
        if stdin is None or is_terminal(0):
            raise GptPipeError("--replay - needs a chunk log on stdin", ExitCode.USAGE)
        stream: Any = stdin.buffer
    else:
        path = settings.replay or ""
        stream = open_read(path, f"--replay file {path}", ExitCode.DATAERR, settings.file_wait)  # closed at exit
    name = f"--replay {settings.replay}"
    code: int | None = None
    for each in runs(read_lines(stream, settings.max_event), name, settings.max_answer):
        info = RunInfo(settings.model, limit=settings.max_answer)
        sink, _ = make_sink(settings, stdout(), info, log)
        try:
            code, info.decoder, warning = render(each, sink, info.on_reasoning, settings.max_answer)
            if warning:
                log.warn(warning)
            sink.complete()
        except GptPipeError as exc:
            sink.fail(exc.message, exc.code)
            log.end_stream()
            log.error(exc.message)  # as the live run said it, and on to the next run
            code = exc.code
            continue
        finally:
            log.end_stream()
        finished(settings, info, log)
        if settings.usage and info.decoder is not None:
            from gpt_pipe.usage import usage_line

            log.error(usage_line(info.decoder.usage, info.decoder.impact, None, None, None))  # a log keeps no times
    if code is None:
        raise GptPipeError(f"{name}: the log holds no answer", ExitCode.INCOMPLETE)
    return code


def dry_run(settings: Settings, body: dict[str, Any] | None, log: Log) -> int:
    """The request as a curl command line; the key only as its source ($GREENPT_API_KEY,
    $(cat FILE), $(CMD)), a base URL's password as ***.

    ``body`` None: the GET of --list-models.
    """
    import shlex

    from gpt_pipe.output import write_lines

    base = redact_url(settings.base_url.rstrip("/"))
    if body is None:
        url, headers = base + "/models", ["Accept: application/json"]
    else:
        url, headers = base + "/chat/completions", ["Content-Type: application/json", "Accept: text/event-stream"]
    headers += ["Accept-Encoding: identity", f"User-Agent: gpt-pipe/{__version__}"]
    words = ["curl", "-sN", shlex.quote(url)]
    try:
        source = settings_key_source(settings)
    except GptPipeError:
        source = ("env", KEY_VARIABLE)  # the run itself would stop here (no key): shown as it would be
    if source is not None:  # the key's source, never the key
        kind, where = source
        shown = {"env": f"${where}", "file": f"$(cat {shlex.quote(where)})", "cmd": f"$({where})"}[kind]
        words += ["-H", f'"Authorization: Bearer {shown}"']
    for header in headers:
        words += ["-H", shlex.quote(header)]
    if body is not None:
        data = json.dumps(body, ensure_ascii=False)
        try:
            data.encode("utf-8")
        except UnicodeEncodeError:
            raise GptPipeError("the request holds a lone surrogate (a \\ud800-style escape) that UTF-8 cannot "
                               "carry", ExitCode.DATAERR) from None
        if "data:image/" in data:
            from gpt_pipe.attach import shorten_data_urls

            data = shorten_data_urls(data)
            log.note("--dry-run: each image's data is shortened to its type and size; the run sends it whole")
        words += ["-d", shlex.quote(data)]
    out = stdout()
    write_lines(out, [" ".join(words)], safe=is_terminal(1) and not settings.raw_control)
    return ExitCode.OK
