"""argv read as click reads it, before click is imported: the one tokeniser, for the
early connection's pre-scan and for choosing the profile (which the config must know
before click parses anything). It works from the option table alone."""

from __future__ import annotations

from gpt_pipe import options

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class Scan:
    """argv read as click reads it: each option's values in order (``given``: dest ->
    list of converted values) and the PROMPT words. ``ok`` is False when click would
    refuse the command line (the scan stops there)."""

    __slots__ = ("given", "ok", "words")

    def __init__(self) -> None:
        self.given: dict[str, list[Any]] = {}
        self.words: list[str] = []
        self.ok = True

    def last(self, dest: str, default: Any = None) -> Any:
        values = self.given.get(dest)
        return values[-1] if values else default

    def _add(self, option: options.Option, value: Any) -> bool:
        if option.kind == "optional" and value is None:
            value = "-"
        elif option.flag:
            value = True
        else:
            try:
                value = option.convert(value)
            except ValueError:
                self.ok = False
                return False
        self.given.setdefault(option.dest, []).append(value)
        return True


def scan(argv: list[str]) -> Scan:
    """Tokenise argv exactly as click's parser does for this command: long options with
    ``=`` or the next word as value, bundled short options (``-qn``, ``-P4``, ``-qs TEXT``),
    ``--`` ending the options, and every other word (``-`` included) a PROMPT word."""
    result = Scan()
    words = result.words
    i, n = 0, len(argv)
    while i < n:
        arg = argv[i]
        i += 1
        if arg == "--":
            words.extend(argv[i:])
            break
        if arg[:1] != "-" or arg == "-":
            words.append(arg)
            continue
        if arg.startswith("--"):
            name, eq, value = arg.partition("=")
            option = options.BY_DECL.get(name)
            if option is None:
                result.ok = False
                return result
            if option.flag:
                if eq:
                    result.ok = False  # click: "option does not take a value"
                    return result
                result._add(option, None)
                continue
            if not eq:
                if option.kind == "optional":
                    follows = i < n and not (argv[i][:1] == "-" and len(argv[i]) > 1)  # "-" is a value
                    value = argv[i] if follows else None  # type: ignore[assignment]
                    i += value is not None
                elif i < n:
                    value, i = argv[i], i + 1
                else:
                    result.ok = False
                    return result
            if not result._add(option, value):
                return result
            continue
        for at in range(1, len(arg)):  # -qn, -P4, -qsTEXT, -qs TEXT
            option = options.BY_DECL.get(f"-{arg[at]}")
            if option is None:
                result.ok = False
                return result
            if option.flag:
                result._add(option, None)
                continue
            value = arg[at + 1:]
            if not value:
                if i >= n:
                    result.ok = False
                    return result
                value, i = argv[i], i + 1
            if not result._add(option, value):
                return result
            break
    return result


def profile(argv: list[str]) -> str | None:
    """The profile this command line chooses, as click will read it (the last --profile;
    an empty one chooses none), else GPT_PIPE_PROFILE."""
    given = scan(argv).last("profile")
    if given is None:
        import os

        given = os.environ.get(options.PROFILE_VARIABLE)
    return given or None
