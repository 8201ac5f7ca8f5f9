"""Where each setting comes from: the config file, the environment and a chosen profile,
merged into click's ``default_map`` (the command line beats them all).

Precedence, lowest first: defaults, the config file's top level, the environment
(GREENPT_MODEL, GREENPT_BASE_URL, GPT_PIPE_RETRIES), the chosen profile
(``[profile.NAME]``, by --profile or GPT_PIPE_PROFILE), the command line. A layer that
sets one option of an exclusive group (the output modes, the key sources) replaces the
whole group of the layers below it. Every value is checked where it comes from: a bad
one is exit 78 naming the file (or variable) and the key.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

from gpt_pipe.exitcodes import ExitCode, GptPipeError

ENVIRONMENT = {"model": "GREENPT_MODEL", "base_url": "GREENPT_BASE_URL", "retries": "GPT_PIPE_RETRIES"}
PROFILE_VARIABLE = "GPT_PIPE_PROFILE"

# Options of which one at a time applies: a layer that sets one replaces the others below it.
EXCLUSIVE = (("text", "full", "jsonl", "json_"), ("api_key_file", "api_key_cmd"))

# Never from a file: what one invocation does, not how gpt-pipe is set up.
NOT_IN_CONFIG = frozenset({"prompt", "list_models", "version", "help", "replay", "dry_run", "batch", "resume",
                           "profile", "new", "continue_"})


def config_path() -> str:
    base = os.environ.get("XDG_CONFIG_HOME", "")
    if not base or not os.path.isabs(base):
        base = os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(base, "gpt-pipe", "config.toml")


class Layers:
    """The merged defaults, and what the chosen profile set (its key source beats
    GREENPT_API_KEY, as one named on the command line does)."""

    def __init__(self) -> None:
        self.default_map: dict[str, Any] = {}
        self.from_profile: set[str] = set()
        self.profile: str | None = None


def load(params: dict[str, Any], profile: str | None, warn: Callable[[str], None]) -> Layers:
    """Read the config file and the environment into a ``default_map`` for ``params``
    (click parameter name -> click.Parameter). Exit 78 for anything invalid."""
    layers = Layers()
    path = config_path()
    table = _read(path)
    profiles = table.pop("profile", {}) if isinstance(table.get("profile"), dict) else {}
    name = os.path.basename(path)
    merged: dict[str, Any] = {}
    _merge(merged, _checked(table, params, name, warn))
    environment = {}
    for key, variable in ENVIRONMENT.items():
        value = os.environ.get(variable)
        if value is not None and value.strip():
            environment[key] = _convert(params[key], value.strip(), variable, key, from_text=True)
    _merge(merged, environment)
    if profile:
        chosen = profiles.get(profile)
        if not isinstance(chosen, dict):
            known = ", ".join(sorted(profiles)) or "none"
            raise GptPipeError(f"{name}: no profile {profile!r} (profiles: {known})", ExitCode.CONFIG)
        settings = _checked(chosen, params, f"{name} [profile.{profile}]", warn)
        _merge(merged, settings)
        layers.from_profile = set(settings)
        layers.profile = profile
    layers.default_map = merged
    return layers


def _read(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            data = f.read(1 << 20)
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise GptPipeError(f"cannot read config file {path}: {exc.strerror}", ExitCode.CONFIG) from None
    try:
        import tomllib  # type: ignore[import-not-found]
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    try:
        return tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError) as exc:
        raise GptPipeError(f"config file {path} is not valid TOML: {exc}", ExitCode.CONFIG) from None


def _merge(merged: dict[str, Any], layer: dict[str, Any]) -> None:
    for group in EXCLUSIVE:
        if any(layer.get(key) for key in group):
            for key in group:
                merged.pop(key, None)
    merged.update(layer)


def _checked(table: dict[str, Any], params: dict[str, Any], where: str, warn: Callable[[str], None]) -> dict:
    settings: dict[str, Any] = {}
    for key, value in table.items():
        name = key.replace("-", "_")
        name = name + "_" if name in ("json", "continue") else name
        param = params.get(name)
        if param is None or name in NOT_IN_CONFIG:
            warn(f"{where}: unknown setting {key!r} ignored")
            continue
        if name == "option" and isinstance(value, dict):
            value = [f"{k}={json.dumps(v)}" for k, v in value.items()]
        elif name in ("option", "stop") and isinstance(value, str):
            value = [value]
        settings[name] = _convert(param, value, where, key)
        if name in ("api_key_file", "messages", "conversation", "tee", "ca_bundle") and settings[name]:
            settings[name] = os.path.expanduser(settings[name])
    return settings


def _convert(param: Any, value: Any, where: str, key: str, from_text: bool = False) -> Any:
    """``value`` as ``param`` takes it, or exit 78: ``config.toml: temperature: not a number: 'hot'``."""
    import click

    if param.multiple:
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise GptPipeError(f"{where}: {key}: not a list of strings: {value!r}", ExitCode.CONFIG)
        return [_convert_one(param, item, where, key, click, True) for item in value]
    return _convert_one(param, value, where, key, click, from_text)


def _convert_one(param: Any, value: Any, where: str, key: str, click: Any, from_text: bool) -> Any:
    if param.is_flag:
        if not isinstance(value, bool):
            raise GptPipeError(f"{where}: {key}: not true or false: {value!r}", ExitCode.CONFIG)
        return value
    kind = param.type.name
    wanted = ("a number" if "float" in kind else "a whole number" if "integer" in kind
              else "a size (like 4M or 512K)" if kind == "size" else "a string")
    if isinstance(value, bool) or (wanted == "a string" and not isinstance(value, str)) \
            or (wanted == "a whole number" and isinstance(value, float)) \
            or (not from_text and wanted != "a string" and not isinstance(value, (int, float))
                and not (kind == "size" and isinstance(value, str))):
        raise GptPipeError(f"{where}: {key}: not {wanted}: {value!r}", ExitCode.CONFIG)
    if from_text and wanted in ("a number", "a whole number"):
        try:
            float(value) if wanted == "a number" else int(value)
        except ValueError:
            raise GptPipeError(f"{where}: {key}: not {wanted}: {value!r}", ExitCode.CONFIG) from None
    try:
        return param.type.convert(value, param, None)
    except click.BadParameter as exc:
        if wanted in ("a number", "a whole number"):  # a number, but not one this option takes
            raise GptPipeError(f"{where}: {key}: out of range: {value!r} ({exc.message})", ExitCode.CONFIG) from None
        raise GptPipeError(f"{where}: {key}: not {wanted}: {value!r}", ExitCode.CONFIG) from None
