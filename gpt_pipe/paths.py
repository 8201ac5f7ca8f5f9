"""Where gpt-pipe keeps its files (XDG base directories) and how a path a user gave is
read (``~`` expanded), in one place. Standard library only."""

from __future__ import annotations

import os


def _base(variable: str, *fallback: str) -> str:
    """$VARIABLE when it is an absolute path (the XDG rule), else ~/<fallback>."""
    base = os.environ.get(variable, "")
    if not base or not os.path.isabs(base):
        base = os.path.join(os.path.expanduser("~"), *fallback)
    return os.path.join(base, "gpt-pipe")


def config_path() -> str:
    """$XDG_CONFIG_HOME/gpt-pipe/config.toml, else ~/.config/gpt-pipe/config.toml."""
    return os.path.join(_base("XDG_CONFIG_HOME", ".config"), "config.toml")


def state_dir() -> str:
    """$XDG_STATE_HOME/gpt-pipe, else ~/.local/state/gpt-pipe."""
    return _base("XDG_STATE_HOME", ".local", "state")


def cache_dir() -> str:
    """$XDG_CACHE_HOME/gpt-pipe, else ~/.cache/gpt-pipe."""
    return _base("XDG_CACHE_HOME", ".cache")


def expand(path: str | None) -> str | None:
    """A file name as the user meant it: ``~`` and ``~user`` expanded ('-' stays stdin)."""
    return os.path.expanduser(path) if path else path


def names_a_conversation(word: str) -> bool:
    """Whether a PROMPT word after -c is an old-style ``-c FILE``: a .jsonl or .json name,
    or a file whose first line is a message."""
    if word.endswith((".jsonl", ".json")):
        return True
    try:
        if not os.path.isfile(word):
            return False
        with open(word, "rb") as f:
            head = f.readline(4096).strip()
    except OSError:
        return False
    return head.startswith(b"{") and b'"role"' in head


def check_conversation_name(path: str) -> None:
    """--conversation takes a file name: a value with spaces that names no file is a prompt
    given to the wrong option (the old -c FILE)."""
    if any(ch.isspace() for ch in path) and not os.path.exists(path):
        from gpt_pipe.exitcodes import ExitCode, GptPipeError

        raise GptPipeError(f"--conversation takes a file name, and {path[:60]!r} looks like a prompt; for the "
                           "default conversation write -c (--continue) before the prompt", ExitCode.USAGE)
