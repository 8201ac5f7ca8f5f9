"""The process around a run: signals as exceptions, dying of SIGPIPE like `cat`, the
cyclic GC switched back on after start-up, and the flush before a fast exit."""

from __future__ import annotations

import gc
import os
import signal
import sys
from typing import Any

from gpt_pipe.exitcodes import ExitCode


class Interrupted(BaseException):  # like KeyboardInterrupt: no library's "except Exception" eats it
    def __init__(self, code: int, what: str) -> None:
        super().__init__(what)
        self.code = code


def _on_signal(signum: int, frame: Any) -> None:
    if signum == signal.SIGTERM:
        raise Interrupted(ExitCode.SIGTERM, "terminated (SIGTERM)")
    raise Interrupted(ExitCode.SIGINT, "interrupted (SIGINT)")


def catch_signals() -> None:
    """SIGINT and SIGTERM become Interrupted wherever the run is."""
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)


def die_of_sigpipe() -> int:
    """The reader went away: die the way `cat` does, so the shell sees 141 and no
    "Exception ignored" noise comes from flushing a dead pipe at exit."""
    from gpt_pipe.output import silence_stdout

    silence_stdout()
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGPIPE)
    return ExitCode.SIGPIPE  # not reached unless SIGPIPE is blocked


def start_streaming() -> None:
    """Start-up is over: everything imported so far lives until exit, so the cyclic GC
    (off while importing, see __main__) is back on with those objects frozen out of its
    way, and a full collection can never pause the stream for milliseconds."""
    gc.freeze()
    gc.enable()
    sys.setswitchinterval(0.005)  # the default again (early.start shortened it)


def finish(code: int) -> int:
    """Flush stdout and stderr before a fast exit; the exit code to leave with.

    Finalising the modules that requests loads costs ~20 ms after the last byte; with the
    output flushed, nothing is left for it to do, so the console entry skips it.
    """
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        code = die_of_sigpipe()
    except (OSError, ValueError, AttributeError):
        pass
    try:
        sys.stderr.flush()
    except (OSError, ValueError, AttributeError):
        pass
    return code


def big_blocks_to_the_system() -> None:
    """Blocks of 1 MiB and more mmapped and given back when freed (glibc's mallopt). By
    default glibc raises that threshold to the largest block freed so far, so after a long
    line each worker thread's arena keeps its copies: 8 lines of 31 MiB at -P 4 peaked at
    280 MiB instead of 155. Elsewhere (musl, macOS) nothing changes."""
    try:
        import ctypes

        ctypes.CDLL(None).mallopt(-3, 1 << 20)  # M_MMAP_THRESHOLD; a fixed value also stops the raising
    except (OSError, AttributeError, TypeError):
        pass
