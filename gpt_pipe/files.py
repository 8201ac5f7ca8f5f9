"""Files the user names, opened and read within bounds: no open waits forever (a FIFO with
no other end), no read grows without limit (/dev/zero), files gpt-pipe creates are
private (0600), and a lock held by another process is waited for a bounded time."""

from __future__ import annotations

import os
import select
import stat
import time
from typing import BinaryIO

from gpt_pipe.clock import Deadline
from gpt_pipe.exitcodes import ExitCode, GptPipeError

# Inputs the user gives: a prompt on stdin, a messages or conversation file, a batch or
# replay line. The API takes far less; this only stops /dev/zero from filling the memory.
MAX_INPUT = 32 * 1024 * 1024
MAX_KEY_FILE = 65536


def too_large_input(what: str, cap: int, code: int) -> GptPipeError:
    from gpt_pipe.options import format_size

    return GptPipeError(f"{what} is larger than {format_size(cap)}; nothing was sent", code)


def open_read(path: str, what: str, code: int, wait: float) -> BinaryIO:
    """``path`` opened for reading once it has something to read (or its end): a FIFO
    whose writer never comes fails after ``wait`` seconds instead of blocking for ever."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise GptPipeError(f"cannot read {what}: {exc.strerror}", code) from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            _wait_readable(fd, what, code, wait)
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "rb")


def _wait_readable(fd: int, what: str, code: int, wait: float) -> None:
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLHUP)
    if not poller.poll(max(0, int(wait * 1000))):
        raise GptPipeError(f"cannot read {what}: nothing to read after {wait:g} s (a FIFO nobody writes?)", code)


def read_capped(path: str, what: str, cap: int, code: int, wait: float) -> bytes:
    """The whole file, at most ``cap`` bytes; a pipe or FIFO must end within ``wait`` s."""
    with open_read(path, what, code, wait) as f:
        fd = f.fileno()
        info = os.fstat(fd)
        if stat.S_ISREG(info.st_mode):
            if info.st_size > cap:
                raise too_large_input(what, cap, code)
            data = f.read(cap + 1)
        else:
            data = _read_pipe(fd, what, cap, code, wait)
    if len(data) > cap:
        raise too_large_input(what, cap, code)
    return data


def _read_pipe(fd: int, what: str, cap: int, code: int, wait: float) -> bytes:
    deadline = Deadline(wait)
    pieces: list[bytes] = []
    size = 0
    os.set_blocking(fd, False)
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLHUP)
    while size <= cap:
        left = deadline.left() or 0
        if left <= 0 or not poller.poll(max(1, int(left * 1000))):
            raise GptPipeError(f"cannot read {what}: it did not end within {wait:g} s", code)
        try:
            data = os.read(fd, min(65536, cap + 1 - size))
        except BlockingIOError:
            continue
        except OSError as exc:
            raise GptPipeError(f"cannot read {what}: {exc.strerror}", code) from None
        if not data:
            break
        pieces.append(data)
        size += len(data)
    return b"".join(pieces)


def read_stream(stream: BinaryIO, what: str, cap: int, code: int) -> bytes:
    """An already open stream (stdin) to its end, at most ``cap`` bytes."""
    data = stream.read(cap + 1)
    if len(data) > cap:
        raise too_large_input(what, cap, code)
    return data


def open_append(path: str, what: str, wait: float) -> int:
    """A descriptor appending to ``path``, created 0600 (logs of prompts and answers are
    private). A FIFO with no reader is tried again until ``wait`` s have passed."""
    deadline = Deadline(wait)
    pause = 0.01
    while True:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK | os.O_CLOEXEC, 0o600)
            break
        except OSError as exc:
            import errno

            if exc.errno != errno.ENXIO or deadline.passed():
                why = "no process reads that FIFO" if exc.errno == errno.ENXIO else exc.strerror
                raise GptPipeError(f"cannot open {what}: {why}", ExitCode.IOERR) from None
        time.sleep(pause)
        pause = min(pause * 2, 0.2)
    os.set_blocking(fd, True)
    return fd


def lock(fd: int, exclusive: bool, what: str, wait: float) -> None:
    """flock ``fd``, waiting at most ``wait`` s for another process to let go."""
    import fcntl  # here: a plain run locks nothing, and start-up does not pay for it

    mode = (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB
    deadline = Deadline(wait)
    pause = 0.01
    while True:
        try:
            fcntl.flock(fd, mode)
            return
        except BlockingIOError:
            if deadline.passed():
                raise GptPipeError(
                    f"{what} is locked by another process; gave up after {wait:g} s (--file-wait)",
                    ExitCode.TEMPFAIL,
                ) from None
        time.sleep(pause)
        pause = min(pause * 2, 0.2)


def check_writable(path: str, what: str) -> None:
    """Before anything is sent: ``path`` can be written (exit 74 if not, nothing paid for)."""
    why = None
    if os.path.isdir(path):
        why = "it is a directory"
    elif os.path.exists(path):
        if not os.access(path, os.W_OK):
            why = "permission denied"
    else:
        parent = os.path.dirname(path) or "."
        if not os.path.isdir(parent):
            why = f"no directory {parent}"
        elif not os.access(parent, os.W_OK | os.X_OK):
            why = f"cannot create files in {parent}"
    if why:
        raise GptPipeError(f"cannot write {what}: {why}; nothing was sent", ExitCode.IOERR)


def is_regular(path: str) -> bool:
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:  # one write() in practice; the loop only guards against a short one
        view = view[os.write(fd, view):]


def read_lines(stream: BinaryIO, cap: int = MAX_INPUT):  # type: ignore[no-untyped-def]
    """(number, line) for every non-blank line of ``stream``; a line longer than ``cap``
    comes as (number, None), its bytes skipped without being kept."""
    number = 0
    while True:
        raw = stream.readline(cap + 1)
        if not raw:
            return
        number += 1
        if len(raw) > cap and not raw.endswith(b"\n"):
            while True:
                more = stream.readline(cap + 1)
                if not more or more.endswith(b"\n"):
                    break
            yield number, None
        elif raw.strip():
            yield number, raw


def read_value_file(path: str, wait: float) -> str:
    """A file named by @FILE (-o KEY=@FILE, --schema @FILE), read with the input cap."""
    from gpt_pipe.paths import expand

    path = expand(path) or path
    data = read_capped(path, f"file {path} (a value that starts with '@' is written '@@')", MAX_INPUT,
                       ExitCode.DATAERR, wait)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise GptPipeError(f"file {path} is not UTF-8 text", ExitCode.DATAERR) from None


def write_replace(path: str, data: bytes) -> None:
    """``path`` replaced by ``data`` whole, or left as it was: written under a random name
    beside it (mkstemp: O_EXCL|O_NOFOLLOW, mode 0600, so a planted symlink is never
    followed), synced, then renamed over ``path`` (a rename replaces a symlink, never
    writes through it)."""
    import tempfile

    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path) or ".", prefix=f".{os.path.basename(path)}.",
                               suffix=".tmp")
    try:
        try:
            write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def private_dir(path: str, what: str) -> None:
    """Make ``path`` (0700) when it is missing, and refuse one that others could use against
    the user: a symlink, not a directory, owned by someone else, or writable by others (a
    shared XDG_STATE_HOME or XDG_CACHE_HOME). Exit 78 naming it."""
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        info = os.lstat(path)
    except OSError as exc:
        raise GptPipeError(f"cannot make {what} {path}: {exc.strerror}", ExitCode.CONFIG) from None
    why = _unsafe(info, path, directory=True)
    if why:
        raise GptPipeError(f"refusing {what} {path}: {why}", ExitCode.CONFIG)


def private_file(path: str, what: str) -> None:
    """Refuse a file in a private directory that is a symlink, owned by someone else or
    writable by others (planted there to be read as history, or to receive the exchange)."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise GptPipeError(f"cannot read {what} {path}: {exc.strerror}", ExitCode.CONFIG) from None
    why = _unsafe(info, path, directory=False)
    if why:
        raise GptPipeError(f"refusing {what} {path}: {why}", ExitCode.CONFIG)


def _unsafe(info: os.stat_result, path: str, directory: bool) -> str | None:
    if stat.S_ISLNK(info.st_mode):
        return "it is a symbolic link"
    if directory and not stat.S_ISDIR(info.st_mode):
        return "it is not a directory"
    if not directory and not stat.S_ISREG(info.st_mode):
        return "it is not a regular file"
    if info.st_uid != os.getuid():
        return "it belongs to another user"
    if info.st_mode & 0o022:
        import shlex

        # Mended only after a look: what others could write may have been written.
        return f"others can write it; if it is yours, check it, then: chmod go-w {shlex.quote(path)}"
    return None
