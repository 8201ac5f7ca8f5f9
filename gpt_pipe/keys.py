"""The API key: where it comes from (environment, file, command), the checks it must pass
before it goes into a header, and how it is shown where it must be shown (redacted)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from gpt_pipe.exitcodes import ExitCode, GptPipeError

KEY_VARIABLE = "GREENPT_API_KEY"

# A "key" this short is a placeholder for a local server (sk-x, dummy): scrubbing it
# would mangle ordinary words, and it guards nothing.
MIN_SECRET = 8


def redact(key: str) -> str:
    """How a key is shown where a request must be shown: ``sk-…last4``."""
    prefix = "sk-" if key.startswith("sk-") else ""
    return f"{prefix}…{key[-4:]}" if len(key) >= 12 else f"{prefix}…"


def api_key(settings: Any, warn: Callable[[str], None]) -> str:
    """The key: a source named by flag, else GREENPT_API_KEY, else one from the config file.

    ``settings`` gives ``api_key_file``, ``api_key_cmd`` and ``key_from_flag``.
    """
    env_key = os.environ.get(KEY_VARIABLE, "").strip()
    if env_key and not settings.key_from_flag:
        key = env_key
    elif settings.api_key_cmd:
        key = key_from_command(settings.api_key_cmd)
    elif settings.api_key_file:
        key = key_from_file(os.path.expanduser(settings.api_key_file), warn)
    else:
        raise GptPipeError(
            f"no API key: set {KEY_VARIABLE} (or use --api-key-file FILE or --api-key-cmd CMD)", ExitCode.CONFIG
        )
    if any(ch.isspace() or not ch.isprintable() or ord(ch) > 126 for ch in key):
        # requests would reject it with the key itself in the message.
        raise GptPipeError("the API key holds spaces or characters a header cannot carry", ExitCode.CONFIG)
    return key


def key_from_file(path: str, warn: Callable[[str], None]) -> str:
    try:
        with open(path, "rb") as f:
            mode = os.fstat(f.fileno()).st_mode
            key = f.read().decode("utf-8", "replace").strip()
    except OSError as exc:
        raise GptPipeError(f"cannot read API key file {path}: {exc.strerror}", ExitCode.CONFIG) from None
    if mode & 0o044:
        warn(f"API key file {path} is readable by other users; fix with: chmod 600 {path}")
    if not key:
        raise GptPipeError(f"API key file {path} is empty", ExitCode.CONFIG)
    return key


def key_from_command(command: str) -> str:
    import subprocess

    try:
        done = subprocess.run(command, shell=True, stdin=subprocess.DEVNULL, capture_output=True, timeout=120)
    except (OSError, subprocess.SubprocessError) as exc:
        raise GptPipeError(f"--api-key-cmd could not run: {exc}", ExitCode.CONFIG) from None
    if done.returncode != 0:
        lines = done.stderr.decode("utf-8", "replace").strip().splitlines()
        why = lines[0] if lines else f"exit status {done.returncode}"
        raise GptPipeError(f"--api-key-cmd failed: {why}", ExitCode.CONFIG)
    # Password managers print the secret on the first line (pass show puts notes after it).
    lines = done.stdout.decode("utf-8", "replace").strip().splitlines()
    if not lines or not lines[0].strip():
        raise GptPipeError("--api-key-cmd printed no key", ExitCode.CONFIG)
    return lines[0].strip()
