"""The command line as click reads it: the command built from the option table, --help,
--version, shell completion and usage errors. launch.py calls ``parse`` for every command
line its own reading (the table's tokeniser, which agrees with click) leaves to click.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from gpt_pipe import __version__
from gpt_pipe.exitcodes import ExitCode, GptPipeError
from gpt_pipe.options import BY_DEST, OPTIONS, Option
from gpt_pipe.settings import Settings


class GroupedCommand(click.Command):
    """A click command whose --help lists its options under the table's headings and ends
    with examples, exit codes and the config file's location (helptext.py, imported only
    when help is shown)."""

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        from gpt_pipe.helptext import format_options

        format_options(self, ctx, formatter)

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        from gpt_pipe.helptext import format_epilog

        format_epilog(formatter)


class Kind(click.ParamType):
    """An option's values as the option table converts them (options.Option.convert)."""

    def __init__(self, option: Option) -> None:
        self.option = option
        self.name = {"number": "float", "seconds": "float"}.get(option.kind, option.kind)

    def shell_complete(self, ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
        """File names for the options that take one (-a, -f, --tee...), as click.Path does."""
        if self.option.kind == "path":
            from click.shell_completion import CompletionItem

            return [CompletionItem(incomplete, type="file")]
        return []

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str | None:
        return f"[{'|'.join(self.option.choices)}]" if self.option.choices else None

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            return self.option.convert(value)
        except ValueError as exc:
            what, why = (exc.args + ("",))[:2]
            self.fail(f"{what}: {value!r}" + (f" ({why})" if why else ""), param, ctx)


class TableOption(click.Option):
    """A click option of the table: its help ends with the values it takes ([x>=1])."""

    def __init__(self, *args: Any, entry: Option, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.entry = entry

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        record = super().get_help_record(ctx)
        bounds = self.entry.bounds()
        if record is None or not bounds:
            return record
        text = record[1]
        if text.endswith("]") and "  [default: " in text:
            return record[0], f"{text[:-1]}; {bounds}]"
        return record[0], f"{text}  [{bounds}]"


def _complete_model(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
    from gpt_pipe.completion import cached_models  # only while completing

    return cached_models(incomplete)


_COMPLETE = {"model": _complete_model}


def _click_option(option: Option) -> Callable[[Any], Any]:
    """The click declaration of one option of the table."""
    if option.dest == "version":
        return click.version_option(__version__, *option.decls, prog_name="gpt-pipe", message="%(prog)s %(version)s",
                                    help=option.help)
    kwargs: dict[str, Any] = {"help": option.help, "metavar": option.metavar, "show_default": option.show_default}
    if option.flag:
        kwargs["is_flag"] = True
    else:
        kwargs["type"] = Kind(option)
        kwargs["default"] = option.default
        kwargs["multiple"] = option.multiple
        if option.kind == "optional":
            kwargs.update(is_flag=False, flag_value="-")
        if option.dest in _COMPLETE:
            kwargs["shell_complete"] = _COMPLETE[option.dest]
    return click.option(*option.decls, option.dest, cls=TableOption, entry=option, **kwargs)


def _from_command_line(ctx: click.Context, name: str) -> bool:
    return ctx.get_parameter_source(name) is click.core.ParameterSource.COMMANDLINE


def _with_options(function: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(OPTIONS):
        if option.dest != "help":  # click's own, named in context_settings
            function = _click_option(option)(function)
    return function


@click.command(
    cls=GroupedCommand,
    context_settings={"help_option_names": list(BY_DEST["help"].decls), "max_content_width": 80,
                      "terminal_width": 80},
)
@click.argument("prompt", nargs=-1)
@_with_options
@click.pass_context
def command(ctx: click.Context, **opts: Any) -> Settings:
    """Send PROMPT (and stdin, if it is not a terminal) to an OpenAI-compatible chat API
    and stream the answer to stdout.

    PROMPT words are joined with spaces; stdin's text follows after a blank line.
    """
    from gpt_pipe.settings import settings_from

    named = {name for name in opts if _from_command_line(ctx, name)}
    return settings_from(opts, named, ctx.obj)


# Options of other tools that users type here, and what gpt-pipe calls them.
_MEANT = {
    "--no-stream": "gpt-pipe streams by default; for the whole answer at once, use --full",
    "--stream": "gpt-pipe streams by default (--text)",
    "--api-key": "give the key by GREENPT_API_KEY, --api-key-file FILE or --api-key-cmd CMD (never on the "
                 "command line, where other users can see it)",
    "--key": "give the key by GREENPT_API_KEY, --api-key-file FILE or --api-key-cmd CMD",
    "--temp": "did you mean --temperature?",
    "--max-tokens-to-sample": "did you mean --max-tokens?",
}


def parse(args: list[str], layers: Any) -> Settings | int:
    """``args`` parsed by click: Settings, or the exit code of --help, --version or
    completion. A usage error is raised as a GptPipeError (launch.main shows it)."""
    try:
        result = command.main(args, prog_name="gpt-pipe", standalone_mode=False, default_map=layers.default_map,
                              obj=layers)
    except click.NoSuchOption as exc:
        name = exc.option_name or ""
        hint = (f"; a prompt that starts with '-' goes after '--': gpt-pipe -- '{name} ...'"
                if name and not name.startswith("--") else "")
        if name.split("=", 1)[0] in _MEANT:
            hint = f"; {_MEANT[name.split('=', 1)[0]]}"
        raise GptPipeError(f"{exc.format_message()}{hint}", ExitCode.USAGE) from None
    except click.UsageError as exc:
        raise GptPipeError(exc.format_message(), ExitCode.USAGE) from None
    except click.ClickException as exc:
        raise GptPipeError(exc.format_message(), exc.exit_code) from None
    except click.Abort:
        raise KeyboardInterrupt from None
    return result if isinstance(result, Settings) else int(result or 0)
