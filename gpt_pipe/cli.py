"""The command line: the click command and its help, options to Settings, usage errors.

``main`` is the one place that catches GptPipeError, prints its one line and returns
the exit code; the run itself is wired in ``run`` (and ``batch`` for --batch).
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

import click

from gpt_pipe import __version__
from gpt_pipe.exitcodes import ExitCode, GptPipeError
from gpt_pipe.helptext import EXAMPLES, GroupedCommand
from gpt_pipe.keys import KEY_VARIABLE
from gpt_pipe.log import Log
from gpt_pipe.process import Interrupted, catch_signals, die_of_sigpipe
from gpt_pipe.settings import DEFAULT_BASE_URL, DEFAULT_MODEL, FILE_WAIT, Settings

SECONDS = click.FloatRange(min=0, min_open=True)


class Size(click.ParamType):
    """A size in bytes: 4194304, 512K, 4M, 1G (binary units)."""

    name = "size"
    _UNITS: ClassVar[dict[str, int]] = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}

    def convert(self, value: Any, param: Any, ctx: Any) -> int:
        if isinstance(value, int):
            return value
        text = str(value).strip().lower().removesuffix("ib").removesuffix("b")
        unit = text[-1:] if text[-1:] in self._UNITS else ""
        try:
            size = int(float(text[: len(text) - len(unit)]) * self._UNITS[unit])
        except ValueError:
            self.fail(f"{value!r} is not a size (for example 4M, 512K, 1G)", param, ctx)
        if size < 1024:
            self.fail(f"{value!r} is less than 1K", param, ctx)
        return size


def _complete_model(incomplete: str) -> list[Any]:
    from gpt_pipe.completion import cached_models  # only while completing

    return cached_models(incomplete)


# What to use instead, when an option does not go with --batch.
_INSTEAD = {"full": "results are JSON Lines already", "jsonl": "results are JSON Lines already",
            "json_": "results are JSON Lines already; pick fields with jq", "text": "results are JSON Lines",
            "tee": "use --output FILE", "conversation": "give each line its \"messages\"",
            "continue_": "give each line its \"messages\"", "messages": "give each line its \"messages\"",
            "replay": "", "dry_run": "", "list_models": ""}


def _check_batch(ctx: click.Context, opts: dict[str, Any]) -> None:
    for name, instead in _INSTEAD.items():
        if opts[name] and _from_command_line(ctx, name):
            flag = f"--{name.rstrip('_').replace('_', '-')}"
            raise click.UsageError(f"--batch does not go with {flag}" + (f" ({instead})" if instead else ""))
    if opts["prompt"]:
        raise click.UsageError("--batch takes its prompts from its input, not as PROMPT words "
                               "(one prompt per line: --batch-text)")
    if opts["resume"] and not opts["output"]:
        raise click.UsageError("--resume needs --output FILE (the results it resumes)")


def _from_command_line(ctx: click.Context, name: str) -> bool:
    return ctx.get_parameter_source(name) is click.core.ParameterSource.COMMANDLINE


def _one_of(ctx: click.Context, opts: dict[str, Any], group: tuple[str, ...]) -> set[str]:
    """At most one of ``group``: one named on the command line replaces one from the config
    file; two named on the command line are a usage error. Returns those named there."""
    given = [name for name in group if opts[name]]
    named = {name for name in given if _from_command_line(ctx, name)}
    flags = " and ".join(f"--{name.rstrip('_').replace('_', '-')}" for name in group)
    if len(named) > 1:
        raise click.UsageError(f"choose one of {flags}")
    if named:
        for name in set(given) - named:
            opts[name] = False if isinstance(opts[name], bool) else None
    elif len(given) > 1:
        raise GptPipeError(f"config file: choose one of {flags}", ExitCode.CONFIG)
    return named


def _check_list_models(ctx: click.Context, opts: dict[str, Any]) -> None:
    ignored = [f"--{name.rstrip('_').replace('_', '-')}" for name in
               ("text", "full", "jsonl", "json_", "tee", "replay", "conversation", "continue_", "messages", "system",
                "batch", "usage") if opts[name] and _from_command_line(ctx, name)]
    if opts["prompt"]:
        ignored.insert(0, "PROMPT")
    if ignored:
        raise click.UsageError(f"--list-models prints the model IDs only; it takes no {', '.join(ignored)}")


def _parse_options(values: tuple[str, ...], read_file: Any) -> dict[str, Any]:
    """-o KEY=VALUE: VALUE as JSON when it parses, else as text; @FILE for a file's content
    (JSON when it parses, else text), @@ for a value that starts with '@'."""
    body: dict[str, Any] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise click.UsageError(f"-o/--option takes KEY=VALUE, not {item!r}")
        if key in ("messages", "stream"):
            raise click.UsageError(f"-o/--option cannot set {key!r}: gpt-pipe builds it")
        if raw.startswith("@@"):
            raw = raw[1:]
        elif raw.startswith("@"):
            raw = read_file(raw[1:])
        try:
            body[key] = json.loads(raw)
        except ValueError:
            body[key] = raw
    return body


@click.command(
    cls=GroupedCommand,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 80, "terminal_width": 80},
    epilog=EXAMPLES,
)
@click.argument("prompt", nargs=-1)
@click.option("-s", "--system", metavar="TEXT", help="Add a system message first.")
@click.option("--messages", metavar="FILE",
              help="JSON array of {role, content} messages to send before the prompt ('-' for stdin).")
@click.option("-c", "--conversation", metavar="FILE",
              help="JSON Lines of messages sent first; the exchange is appended when it completes.")
@click.option("--continue", "continue_", is_flag=True,
              help="Continue the default conversation ($XDG_STATE_HOME/gpt-pipe/conversation.jsonl).")
@click.option("--new", is_flag=True, help="With -c or --continue: start that conversation afresh.")
@click.option("--no-stdin", is_flag=True, help="Never read stdin (for 'while read' loops).")
@click.option("-m", "--model", default=DEFAULT_MODEL, show_default=True,
              shell_complete=lambda ctx, param, incomplete: _complete_model(incomplete),
              help="Model ID [env GREENPT_MODEL].")
@click.option("--base-url", default=DEFAULT_BASE_URL, show_default=True, metavar="URL",
              help="API base URL [env GREENPT_BASE_URL].")
@click.option("--api-key-file", metavar="FILE", help=f"Read the API key from FILE (else env {KEY_VARIABLE}).")
@click.option("--api-key-cmd", metavar="CMD", help="Run CMD (a shell command) and use its output as the API key.")
@click.option("--temperature", type=float, help="Sampling temperature.")
@click.option("--max-tokens", type=click.IntRange(min=1), help="Most tokens to generate.")
@click.option("--top-p", type=float, help="Nucleus sampling probability mass.")
@click.option("--stop", multiple=True, metavar="TEXT", help="Stop sequence (repeatable).")
@click.option("--seed", type=int, help="Seed for deterministic sampling.")
@click.option("-o", "--option", multiple=True, metavar="KEY=VALUE",
              help="Any other request field; VALUE is JSON if it parses, else a string; @FILE: a file's "
                   "content (repeatable).")
@click.option("--schema", metavar="SCHEMA",
              help="Ask for JSON and check it: a JSON Schema, @FILE, or fields like 'name, total number, "
                   "paid bool, tags array' (a closed object, every field required; types: string, number, "
                   "integer, bool, array of strings, object). Exit 8 if the answer does not match.")
@click.option("--schema-mode", type=click.Choice(["response_format", "prompt"]), default="response_format",
              show_default=True, help="How the schema is asked for: response_format, or in the system message.")
@click.option("--text", is_flag=True, help="Write each delta's text as it arrives (the default).")
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
              help="One request per JSON line of FILE (stdin without FILE); results as JSON Lines.")
@click.option("--batch-text", is_flag=True, help="With --batch: each line is a prompt as plain text.")
@click.option("-P", "--parallel", type=click.IntRange(1, 256), default=4, show_default=True, metavar="N",
              help="With --batch: requests at once.")
@click.option("--keep-order", is_flag=True, help="With --batch: write results in input order.")
@click.option("--output", metavar="FILE", help="With --batch: append results to FILE instead of stdout.")
@click.option("--resume", is_flag=True, help="With --batch --output: skip ids that already have a result.")
@click.option("--connect-timeout", type=SECONDS, default=10.0, show_default=True, metavar="SECONDS",
              help="Longest wait to connect.")
@click.option("--idle-timeout", type=SECONDS, default=120.0, show_default=True, metavar="SECONDS",
              help="Longest silence from the server.")
@click.option("--progress-timeout", type=SECONDS, default=300.0, show_default=True, metavar="SECONDS",
              help="Longest time with none of the answer: keep-alives and dripped bytes do not count.")
@click.option("--max-time", type=SECONDS, metavar="SECONDS",
              help="Longest time for the whole run, retries included (with --batch: for each line).")
@click.option("--retries", type=click.IntRange(min=0), default=3, show_default=True,
              metavar="N", help="Retries of a failure that is safe to retry [env GPT_PIPE_RETRIES].")
@click.option("--retries-invalid", type=click.IntRange(min=0), default=0, show_default=True, metavar="N",
              help="Ask again when the answer does not match --schema (--full, --json, --batch).")
@click.option("--max-retry-wait", type=click.FloatRange(min=0), default=60.0, show_default=True, metavar="SECONDS",
              help="Longest wait before a retry; a longer Retry-After ends the run (75).")
@click.option("--ca-bundle", metavar="FILE", help="Trust the CA certificates in FILE (PEM) for TLS.")
@click.option("--max-event", type=Size(), default="4M", show_default=True, metavar="SIZE",
              help="Largest line, event or chunk, and largest non-streamed answer, the server may send.")
@click.option("--max-answer", type=Size(), default="32M", show_default=True, metavar="SIZE",
              help="Largest answer kept for the end (--full, --json, -c, --batch), in characters.")
@click.option("--file-wait", type=SECONDS, default=FILE_WAIT, show_default=True, metavar="SECONDS",
              help="Longest wait for a file: a FIFO's other end, a lock on the conversation file.")
@click.option("--raw-control", is_flag=True,
              help="On a terminal, write the answer's control characters as they are (default: escaped).")
@click.option("--profile", metavar="NAME", help="Use [profile.NAME] of the config file [env GPT_PIPE_PROFILE].")
@click.option("-q", "--quiet", is_flag=True, help="No retry notes and no warnings on stderr (errors still show).")
@click.option("--debug", is_flag=True, help="Diagnostics on stderr (the key redacted).")
@click.version_option(__version__, "-V", "--version", prog_name="gpt-pipe", message="%(prog)s %(version)s")
@click.pass_context
def command(ctx: click.Context, **opts: Any) -> Settings:
    """Send PROMPT (and stdin, if it is not a terminal) to an OpenAI-compatible chat API
    and stream the answer to stdout.

    PROMPT words are joined with spaces; stdin's text follows after a blank line.
    """
    _one_of(ctx, opts, ("text", "full", "jsonl", "json_"))
    named = _one_of(ctx, opts, ("api_key_file", "api_key_cmd"))
    layers = ctx.obj
    from_profile = layers.from_profile if layers is not None else set()
    # A key source named on the command line or in the chosen profile beats GREENPT_API_KEY.
    key_from_flag = bool(named) or any(opts[name] and name in from_profile for name in ("api_key_file", "api_key_cmd"))
    base_url = opts["base_url"].rstrip("/")
    if base_url.endswith("/chat/completions"):  # the endpoint's URL given as the base: accepted
        opts["base_url"] = base_url[: -len("/chat/completions")]
    if opts["continue_"]:
        if opts["conversation"] and _from_command_line(ctx, "conversation"):
            raise click.UsageError("choose one of -c FILE and --continue")
        from gpt_pipe.conversation import default_conversation

        opts["conversation"] = default_conversation()
    if opts["new"] and not opts["conversation"]:
        raise click.UsageError("--new starts a conversation afresh: give -c FILE or --continue")
    if opts["list_models"]:
        _check_list_models(ctx, opts)
    settings = Settings(opts, key_from_flag=key_from_flag)
    if opts["batch"] is not None:
        _check_batch(ctx, opts)
    elif opts["keep_order"] or opts["output"] or opts["resume"] or opts["batch_text"]:
        raise click.UsageError("--keep-order, --output, --resume and --batch-text go with --batch")
    for name in ("temperature", "max_tokens", "top_p", "seed", "reasoning_effort"):
        if opts[name] is not None:
            settings.body[name] = opts[name]
    if opts["stop"]:
        settings.body["stop"] = list(opts["stop"])
    from gpt_pipe.run import read_value_file

    settings.body.update(_parse_options(opts["option"], lambda path: read_value_file(path, settings)))
    return settings


PARAMS = {param.name: param for param in command.params if param.name}


def _profile(argv: list[str]) -> str | None:
    """--profile NAME from the command line (needed before click parses it), else
    GPT_PIPE_PROFILE."""
    import os

    from gpt_pipe.config import PROFILE_VARIABLE

    for i, arg in enumerate(argv):
        if arg == "--":
            break
        if arg == "--profile" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--profile="):
            return arg.partition("=")[2]
    return os.environ.get(PROFILE_VARIABLE) or None


def main(argv: list[str] | None = None) -> int:
    """Run gpt-pipe; returns the exit code (see exitcodes.ExitCode)."""
    log = Log(debug=False)
    catch_signals()
    try:
        import sys

        from gpt_pipe import config

        args = sys.argv[1:] if argv is None else argv
        layers = config.load(PARAMS, _profile(args), log.warn)
        result = command.main(args, prog_name="gpt-pipe", standalone_mode=False, default_map=layers.default_map,
                              obj=layers)
        if not isinstance(result, Settings):
            return int(result or 0)  # --help, --version
        log.debugging = result.debug
        log.quiet = result.quiet
        from gpt_pipe.run import run

        return int(run(result, log))
    except click.NoSuchOption as exc:
        hint = (f"; a prompt that starts with '-' goes after '--': gpt-pipe -- '{exc.option_name} ...'"
                if exc.option_name and not exc.option_name.startswith("--") else "")
        log.error(f"{exc.format_message()}{hint} (see 'gpt-pipe --help')")
        return ExitCode.USAGE
    except click.UsageError as exc:
        log.error(f"{exc.format_message()} (see 'gpt-pipe --help')")
        return ExitCode.USAGE
    except click.ClickException as exc:
        log.error(exc.format_message())
        return exc.exit_code
    except GptPipeError as exc:
        log.error(f"{exc.message} (see 'gpt-pipe --help')" if exc.code is ExitCode.USAGE else exc.message)
        return exc.code
    except Interrupted as exc:
        log.error(str(exc))
        return exc.code
    except (KeyboardInterrupt, click.Abort):
        log.error("interrupted (SIGINT)")
        return ExitCode.SIGINT
    except BrokenPipeError:
        return die_of_sigpipe()
    except Exception as exc:  # a bug: still one line, unless --debug asks for the traceback
        if log.debugging:
            import traceback

            log.traceback(traceback.format_exc())
        log.error(f"internal error: {exc.__class__.__name__}: {exc} (run with --debug for the traceback)")
        return ExitCode.SOFTWARE
