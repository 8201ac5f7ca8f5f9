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
