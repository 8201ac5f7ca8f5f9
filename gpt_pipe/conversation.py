"""--conversation FILE: JSON Lines of messages, read under a shared lock and appended to
all or nothing.

Two cron jobs may share a conversation: the append is one write() on an O_APPEND file
under an exclusive flock, so their lines never interleave, and a reader takes a shared
lock so it never sees half an append. A write that fails half way (disk full, file size
limit) is cut back off, so the file is whole or untouched; a torn tail that a killed
process left behind is skipped with a warning when read, and cut off by the next append.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from typing import Any

from gpt_pipe.exitcodes import ExitCode, GptPipeError
from gpt_pipe.files import MAX_INPUT, lock, open_read, write_all
from gpt_pipe.messages import load_conversation
from gpt_pipe.safejson import loads


def default_conversation() -> str:
    """--continue's file: $XDG_STATE_HOME/gpt-pipe/conversation.jsonl, else under
    ~/.local/state (the directory is made, 0700, before the first run writes it)."""
    from gpt_pipe.paths import state_dir

    return os.path.join(state_dir(), "conversation.jsonl")


def read_conversation(path: str, warn: Callable[[str], None], wait: float,
                      private: bool = False) -> list[dict[str, Any]]:
    """The messages so far; none when the file does not exist yet. ``private``: the
    default conversation, in the state directory, which must be the user's alone."""
    what = f"conversation file {path}"
    if private:
        from gpt_pipe.files import private_dir, private_file

        private_dir(os.path.dirname(path), "state directory")
        private_file(path, "conversation file")
    if not os.path.exists(path):
        return []
    with open_read(path, what, ExitCode.DATAERR, wait) as f:
        lock(f.fileno(), False, what, wait)
        try:
            data = f.read(MAX_INPUT + 1)
        except OSError as exc:
            raise GptPipeError(f"cannot read {what}: {exc.strerror}", ExitCode.DATAERR) from None
    if len(data) > MAX_INPUT:
        from gpt_pipe.files import too_large_input

        error = too_large_input(what, MAX_INPUT, ExitCode.DATAERR)
        error.message += " (it keeps every message whole, images too: --new starts it afresh)"
        raise error
    return load_conversation(data, path, warn)


def append_conversation(path: str, messages: list[dict[str, Any]], warn: Callable[[str], None],
                        wait: float, fresh: bool = False, private: bool = False) -> None:
    """Append ``messages`` as JSON Lines, all in one locked write, or not at all. ``fresh``
    (--new): they replace what the file held, which is kept as FILE.prev."""
    data = "".join(json.dumps(m, ensure_ascii=False) + "\n" for m in messages).encode("utf-8", "replace")
    what = f"conversation file {path}"
    # The default conversation lives in a shared kind of place: a symlink planted there is
    # never followed (O_NOFOLLOW).
    flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK | os.O_CLOEXEC | (os.O_NOFOLLOW if private else 0)
    try:
        fd = os.open(path, flags, 0o600)
    except OSError as exc:
        raise GptPipeError(f"cannot append to {what}: {exc.strerror}; {_save_elsewhere(path, data)}",
                           ExitCode.IOERR) from None
    try:
        try:
            lock(fd, True, what, wait)
        except GptPipeError as error:
            raise GptPipeError(f"{error.message}; {_save_elsewhere(path, data)}", error.code) from None
        info = os.fstat(fd)
        size = info.st_size if stat.S_ISREG(info.st_mode) else 0  # /dev/null: nothing to keep or cut
        try:
            if fresh and size:
                _keep_previous(fd, size, path)
                size = 0
            keep = _whole_lines(fd, size, warn, what)
            if keep != size:
                os.ftruncate(fd, keep)
        except OSError as exc:
            raise GptPipeError(f"cannot start {what} afresh: {exc.strerror}; {_save_elsewhere(path, data)}",
                               ExitCode.IOERR) from None
        try:
            write_all(fd, data)
            if stat.S_ISREG(info.st_mode):
                os.fsync(fd)  # /dev/null and FIFOs have nothing to sync (EINVAL)
        except OSError as exc:
            try:
                os.ftruncate(fd, keep)  # all or nothing: the half-written exchange goes
            except OSError:
                pass
            raise GptPipeError(
                f"cannot append to {what}: {exc.strerror}; it is unchanged and the answer was not added",
                ExitCode.IOERR,
            ) from None
    finally:
        os.close(fd)  # closing releases the lock


def _keep_previous(fd: int, size: int, path: str) -> None:
    """--new: the conversation so far goes to FILE.prev (whole, or not at all), then FILE
    empties. An older FILE.prev is kept as FILE.prev.N (the first N free): a second --new
    loses nothing."""
    from gpt_pipe.files import write_replace

    previous = path + ".prev"
    for number in range(1, 10000):
        try:
            os.link(previous, f"{previous}.{number}", follow_symlinks=False)  # never replaces a file
            break
        except FileExistsError:
            continue
        except OSError:
            break  # none yet, or no hard links here: FILE.prev is replaced as before
    write_replace(previous, os.pread(fd, min(size, MAX_INPUT), 0))
    os.ftruncate(fd, 0)


def _whole_lines(fd: int, size: int, warn: Callable[[str], None], what: str) -> int:
    """Where the file's whole lines end: a last line with no newline that is not JSON was
    torn by an interrupted write, and is cut off; one that is JSON gets its newline."""
    if not size or os.pread(fd, 1, size - 1) == b"\n":
        return size
    start = size
    while start > 0:  # back to the newline before the last line
        step = min(65536, start)
        block = os.pread(fd, step, start - step)
        newline = block.rfind(b"\n")
        if newline >= 0:
            start = start - step + newline + 1
            break
        start -= step
    tail = os.pread(fd, size - start, start) if size - start <= MAX_INPUT else b""
    try:
        loads(tail)
    except ValueError:
        warn(f"{what}: cut off a torn last line ({size - start} bytes) left by an interrupted write")
        return start
    write_all(fd, b"\n")
    return size + 1


def _save_elsewhere(path: str, data: bytes) -> str:
    """Never lose a paid-for answer silently: the exchange goes to a file of its own."""
    import time

    spare = f"{path}.unsaved-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    try:
        fd = os.open(spare, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            write_all(fd, data)
        finally:
            os.close(fd)
    except OSError:
        return "the answer was not added (and could not be saved elsewhere)"
    return f"the exchange was saved to {spare} (add it with: cat {spare} >> {path})"
