"""Settings from the config file; click applies the rest of the precedence.

Flags beat environment variables beat the config file beat defaults: the config file
becomes click's ``default_map``, which click consults after the command line and the
``envvar`` of each option.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

from gpt_pipe.exitcodes import ExitCode, GptPipeError


def config_path() -> str:
    base = os.environ.get("XDG_CONFIG_HOME", "")
    if not base or not os.path.isabs(base):
        base = os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(base, "gpt-pipe", "config.toml")


def load_config(allowed: dict[str, str], warn: Callable[[str], None]) -> dict[str, Any]:
    """The config file as a ``default_map``; {} when there is none. Exit 78 if unreadable."""
    path = config_path()
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise GptPipeError(f"cannot read config file {path}: {exc.strerror}", ExitCode.CONFIG) from None
    try:
        import tomllib  # type: ignore[import-not-found]
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    try:
        table = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise GptPipeError(f"config file {path} is not valid TOML: {exc}", ExitCode.CONFIG) from None
    settings: dict[str, Any] = {}
    for key, value in table.items():
        name = allowed.get(key.replace("-", "_"))
        if name is None:
            warn(f"config file {path}: unknown setting {key!r} ignored")
            continue
        if name == "option" and isinstance(value, dict):
            value = [f"{k}={json.dumps(v)}" for k, v in value.items()]
        elif name in ("option", "stop") and isinstance(value, str):
            value = [value]
        elif name in ("api_key_file", "messages") and isinstance(value, str):
            value = os.path.expanduser(value)
        settings[name] = value
    return settings
