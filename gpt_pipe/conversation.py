"""--conversation FILE: JSON Lines of messages, read whole and appended to atomically.

Two cron jobs may share a conversation: the append is one write() on an O_APPEND file
under an exclusive flock, so their lines never interleave, and a reader takes a shared
lock so it never sees half an append.
"""

from __future__ import annotations

import fcntl
import json
import os
from typing import Any

from gpt_pipe.exitcodes import ExitCode, GptPipeError
from gpt_pipe.messages import load_conversation


def read_conversation(path: str) -> list[dict[str, Any]]:
    """The messages so far; none when the file does not exist yet."""
    try:
        with open(path, "rb") as f:
            fcntl.flock(f.fileno(), fcntl.LOCK_SH)
            data = f.read()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise GptPipeError(f"cannot read conversation file {path}: {exc.strerror}", ExitCode.DATAERR) from None
    return load_conversation(data, path)


def append_conversation(path: str, messages: list[dict[str, Any]]) -> None:
    """Append ``messages`` as JSON Lines, all in one locked write."""
    data = "".join(json.dumps(m, ensure_ascii=False) + "\n" for m in messages).encode("utf-8", "replace")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            view = memoryview(data)
            while view:  # one write() in practice; the loop only guards against a short one
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)  # closing releases the lock
    except OSError as exc:
        raise GptPipeError(f"cannot append to conversation file {path}: {exc.strerror}", ExitCode.IOERR) from None
