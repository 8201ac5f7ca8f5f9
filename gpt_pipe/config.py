"""The one config reader: the config file, the environment and a chosen profile, checked
by the option table and merged into click's ``default_map`` (the command line beats them
all). early.py reads the config through here too, so a config this refuses opens no
connection.

Precedence, lowest first: defaults, the config file's top level, the environment
(GREENPT_MODEL, GREENPT_BASE_URL, GPT_PIPE_RETRIES), the chosen profile
(``[profile.NAME]``, by --profile or GPT_PIPE_PROFILE), the command line. A layer that
sets one option of an exclusive group (the output modes, the key sources) replaces the
whole group of the layers below it. Every value is checked where it comes from: a bad
one is exit 78 naming the file (or variable) and the key.

Standard library only: no click here.
"""

from __future__ import annotations

import os

from gpt_pipe.exitcodes import ExitCode, GptPipeError
from gpt_pipe.options import OPTIONS, Option, exclusive
from gpt_pipe.paths import config_path

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

MAX_CONFIG = 1 << 20
MAX_KEY_PARTS = 32  # [profile.NAME] needs two
# Config keys: each option's key (json, not json_), also written with dashes.
_KEYS = {option.key: option for option in OPTIONS if option.config}


class Layers:
    """The merged values (dest -> value, converted), which of them the chosen profile
    set (its key source beats GREENPT_API_KEY, as one named on the command line does),
    and the warnings to show (unknown keys)."""

    def __init__(self) -> None:
        self.default_map: dict[str, Any] = {}
        self.from_profile: set[str] = set()
        self.level: dict[str, str] = {}  # dest -> "file", "env" or "profile": the layer that set it
        self.profile: str | None = None
        self.warnings: list[str] = []


_loaded: dict[str | None, Layers | GptPipeError] = {}


def load(profile: str | None) -> Layers:
    """Read the config file and the environment (once per process for each profile: the
    early connection's reading serves the run). Exit 78 for anything invalid."""
    cached = _loaded.get(profile)
    if cached is None:
        try:
            cached = _load(profile)
        except GptPipeError as exc:
            cached = exc
        _loaded[profile] = cached
    if isinstance(cached, GptPipeError):
        raise cached
    return cached


def _load(profile: str | None) -> Layers:
    layers = Layers()
    path = config_path()
    table = _read(path)
    profiles = table.pop("profile", {}) if isinstance(table.get("profile"), dict) else {}
    name = os.path.basename(path)
    merged: dict[str, Any] = {}
    top = _checked(table, name, layers.warnings)
    _merge(merged, top)
    layers.level.update(dict.fromkeys(top, "file"))
    environment = {}
    for option in OPTIONS:
        value = os.environ.get(option.env) if option.env else None
        if value is not None and value.strip():
            environment[option.dest] = convert(option, value.strip(), option.env or "", True)
    _merge(merged, environment)
    layers.level.update(dict.fromkeys(environment, "env"))
    if profile:
        chosen = profiles.get(profile)
        if not isinstance(chosen, dict):
            known = sorted(profiles)
            shown = ", ".join(known[:20]) + (f" and {len(known) - 20} more" if len(known) > 20 else "")
            if not os.path.exists(path):
                raise GptPipeError(f"no profile {profile[:100]!r}: there is no config file {path} (a profile is a "
                                   "[profile.NAME] table there)", ExitCode.CONFIG)
            misnamed = next((key for key, value in table.items() if isinstance(value, dict) and profile in value), None)
            hint = ""
            if misnamed:
                from gpt_pipe.keys import excerpt

                hint = f"; [{excerpt(misnamed, 60)}.{profile[:100]}] is not read: a profile is a [profile.NAME] table"
            raise GptPipeError(f"{name}: no profile {profile[:100]!r} (profiles: {shown or 'none'}){hint}",
                               ExitCode.CONFIG)
        settings = _checked(chosen, f"{name} [profile.{profile}]", layers.warnings)
        _merge(merged, settings)
        layers.level.update(dict.fromkeys(settings, "profile"))
        layers.from_profile = set(settings)
        layers.profile = profile
    layers.default_map = merged
    return layers


def _read(path: str) -> dict[str, Any]:
    """The file's table; {} when there is none. Only a regular file is read (a FIFO would
    hang every run), at most MAX_CONFIG bytes."""
    import stat

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise GptPipeError(f"cannot read config file {path}: {exc.strerror}", ExitCode.CONFIG) from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise GptPipeError(f"config file {path} is not a regular file", ExitCode.CONFIG)
        data = os.read(fd, MAX_CONFIG + 1)
    except OSError as exc:
        raise GptPipeError(f"cannot read config file {path}: {exc.strerror}", ExitCode.CONFIG) from None
    finally:
        os.close(fd)
    if len(data) > MAX_CONFIG:
        raise GptPipeError(f"config file {path} is larger than {MAX_CONFIG >> 20} MiB", ExitCode.CONFIG)
    text = data.decode("utf-8", "replace")
    if _too_deep(text):
        raise GptPipeError(f"config file {path} has a key of more than {MAX_KEY_PARTS} dotted parts", ExitCode.CONFIG)
    try:
        import tomllib  # type: ignore[import-not-found]
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    try:
        return tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError) as exc:
        raise GptPipeError(f"config file {path} is not valid TOML: {exc}", ExitCode.CONFIG) from None


def _too_deep(text: str) -> bool:
    """Whether a key or table name has more than MAX_KEY_PARTS dotted parts: tomllib's cost
    grows with the square of a key's depth (60 KB of one dotted key: 2 GiB)."""
    for line in text.splitlines():
        line = line.lstrip()
        key = line[1:].split("]", 1)[0] if line.startswith("[") else line.split("=", 1)[0] if "=" in line else ""
        if key.count(".") >= MAX_KEY_PARTS:
            return True
    return False


def _merge(merged: dict[str, Any], layer: dict[str, Any]) -> None:
    for group in exclusive().values():
        if any(layer.get(dest) for dest in group):
            for dest in group:
                merged.pop(dest, None)
    merged.update(layer)


def _checked(table: dict[str, Any], where: str, warnings: list[str]) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    for key, value in table.items():
        option = _KEYS.get(key.replace("-", "_"))
        if option is None:
            from gpt_pipe.keys import excerpt

            shown = excerpt(key, 60)
            if key.replace("-", "_").lower() in ("api_key", "key", "openai_api_key", "greenpt_api_key", "token"):
                warnings.append(f"{where}: {shown!r} is not read (a key kept in the config file is readable by any "
                                'program that reads it): use api_key_file = "~/.config/gpt-pipe/key" (chmod 600) '
                                'or api_key_cmd = "pass show greenpt"')
            else:
                warnings.append(f"{where}: unknown setting {shown!r} ignored{_did_you_mean(key)}")
            continue
        if option.dest == "option" and isinstance(value, dict):
            import json

            try:
                value = [f"{k}={json.dumps(v)}" for k, v in value.items()]
            except (ValueError, RecursionError):
                raise GptPipeError(f"{where}: {key}: a value JSON cannot carry", ExitCode.CONFIG) from None
        elif option.multiple and isinstance(value, str):
            value = [value]
        settings[option.dest] = convert(option, value, where, False, key)
    return settings


def _did_you_mean(key: str) -> str:
    """A known setting close to a mistyped one (difflib, as click suggests options)."""
    from difflib import get_close_matches

    close = get_close_matches(key.replace("-", "_").lower()[:100], [*_KEYS, "profile"], n=1, cutoff=0.75)
    if not close:
        return ""
    return " (did you mean [profile.NAME] tables?)" if close[0] == "profile" else f" (did you mean {close[0]!r}?)"


def convert(option: Option, value: Any, where: str, from_text: bool, key: str | None = None) -> Any:
    """``value`` as ``option`` takes it, or exit 78: ``config.toml: temperature: not a number: 'hot'``."""
    key = key or option.key
    if option.multiple and not from_text:
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise GptPipeError(f"{where}: {key}: not a list of strings: {_shown(value)}", ExitCode.CONFIG)
        return [convert_one(option, item, where, key, True) for item in value]
    return convert_one(option, value, where, key, from_text)


def convert_one(option: Option, value: Any, where: str, key: str, from_text: bool) -> Any:
    try:
        return option.convert(value, from_text)
    except ValueError as exc:
        what, why = (exc.args + ("",))[:2]
        raise GptPipeError(f"{where}: {key}: {what}: {_shown(value)}" + (f" ({why})" if why else ""),
                           ExitCode.CONFIG) from None


def _shown(value: Any) -> str:
    from gpt_pipe.keys import excerpt

    return excerpt(repr(value), 100)
