"""The run from argv to exit code, and the one place that turns a GptPipeError into its one
line and its code. A command line that surely parses (the option table's tokeniser, which
agrees with click) becomes Settings here, without importing click or building its options;
anything else (--help, --version, shell completion, a usage error) goes to click (cli.py).
"""

from __future__ import annotations

import os

from gpt_pipe.exitcodes import ExitCode, GptPipeError
from gpt_pipe.log import Log
from gpt_pipe.process import Interrupted, catch_signals, die_of_sigpipe

TYPE_CHECKING = False
if TYPE_CHECKING:
    from gpt_pipe.config import Layers
    from gpt_pipe.settings import Settings


def main(argv: list[str] | None = None) -> int:
    """Run gpt-pipe; returns the exit code (see exitcodes.ExitCode)."""
    log = Log(debug=False)
    catch_signals()
    try:
        import sys

        from gpt_pipe import config
        from gpt_pipe.argv import profile

        args = sys.argv[1:] if argv is None else argv
        layers = config.load(profile(args))
        for warning in layers.warnings:
            log.warn(warning)
        settings = quick_settings(args, layers)
        if settings is None:
            from gpt_pipe.cli import parse

            parsed = parse(args, layers)
            if isinstance(parsed, int):
                return parsed  # --help, --version, shell completion
            settings = parsed
        log.debugging = settings.debug
        log.quiet = settings.quiet
        from gpt_pipe.run import run

        return int(run(settings, log))
    except GptPipeError as exc:
        log.error(f"{exc.message} (see 'gpt-pipe --help')" if exc.code == ExitCode.USAGE else exc.message)
        return exc.code
    except Interrupted as exc:
        log.error(str(exc))
        return exc.code
    except KeyboardInterrupt:
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


def quick_settings(args: list[str], layers: Layers) -> Settings | None:
    """The Settings click would make of ``args``, or None to let click parse them: when the
    tokeniser finds something click would refuse, --help or --version, or a shell asks for
    completions. Values are converted by the option table, as click's options convert them."""
    from gpt_pipe import options
    from gpt_pipe.argv import scan

    found = scan(args)
    if not found.ok or "_GPT_PIPE_COMPLETE" in os.environ or any(dest in options.EAGER for dest in found.given):
        return None
    values = options.defaults()
    for dest, value in layers.default_map.items():
        values[dest] = tuple(value) if options.BY_DEST[dest].multiple else value
    for dest, given in found.given.items():
        values[dest] = tuple(given) if options.BY_DEST[dest].multiple else given[-1]
    values["prompt"] = tuple(found.words)
    from gpt_pipe.settings import settings_from

    return settings_from(values, set(found.given) | ({"prompt"} if found.words else set()), layers)
