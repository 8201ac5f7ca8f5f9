"""Reading a response body within its bounds: each piece as soon as it has arrived, a
size cap on what is kept, the idle and progress timeouts, and a timer that ends reads
from another thread (--max-time in --batch). pipeline.py and client.py read through here.
"""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Iterator
from typing import Any

import requests
import urllib3.exceptions

from gpt_pipe.clock import Deadline
from gpt_pipe.exitcodes import ExitCode, GptPipeError
from gpt_pipe.sse import too_large

# How much one read may return. The read returns whatever has arrived (read1), so this
# only caps a burst; it never makes a delta wait. (urllib3 >= 2.6 also caps what one
# read of a gzip body decodes to at this size: no decompression bomb in one read.)
READ_SIZE = 32768

# The default bound on the time without any of the answer (keep-alive comments, empty
# events, a status line or trailers dripped byte by byte do not count).
PROGRESS_TIMEOUT = 300.0


class Stalled(GptPipeError):
    """The server went silent for longer than the idle timeout (``silent``), or sent
    nothing of the answer for longer than the progress timeout."""

    silent = True


class Progress(Deadline):
    """The time bound on a response that keeps sending bytes but none of the answer."""

    __slots__ = ()

    def mark(self) -> None:
        """Some of the answer arrived: the bound starts again."""
        self.restart()

    def check(self) -> None:
        # Called for every read of the body: one comparison, no call chain.
        until = self.until
        if until is not None and time.monotonic() > until:
            error = Stalled(
                f"the server sent nothing of the answer for {self.seconds:g} s, only keep-alives "
                "(--progress-timeout)",
                ExitCode.INCOMPLETE,
            )
            error.silent = False
            raise error


def read_capped(response: requests.Response, idle_timeout: float, progress: Progress, cap: int,
                what: str | None) -> bytes:
    """The whole body, up to ``cap`` bytes: more is a protocol error naming ``what``, or,
    with ``what`` None, cut off at ``cap`` (an error body: its start says it all)."""
    pieces: list[bytes] = []
    size = 0
    try:
        for data in iter_body(response, idle_timeout, progress):
            size += len(data)
            if size > cap:
                if what is not None:
                    raise too_large(what, cap)
                pieces.append(data[: len(data) - (size - cap)])
                break
            pieces.append(data)
    except Stalled:
        if what is not None:
            raise
    return b"".join(pieces)


def iter_body(response: requests.Response, idle_timeout: float, progress: Progress | None = None) -> Iterator[bytes]:
    """The response body, each piece as soon as it has arrived.

    Why not ``iter_lines``/``iter_content``: they read with ``read(n)``, which waits for n
    bytes on a close-delimited or Content-Length body (a delta held back until 512 bytes
    pile up), and iter_lines splits a CRLF that straddles two reads into two line endings
    (requests issue #3980). ``read1`` returns whatever one receive brought, for every
    framing, and our SSE parser does the line splitting.
    """
    raw = response.raw
    encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
    # Through urllib3's public API, so that urllib3 sees the body end and puts the
    # connection back in the pool (kept alive for --batch), and caps what one read of a
    # gzip body decodes to. A chunked body is read a chunk at a time (read_chunked: one
    # event per chunk, as servers send them, at the cost of one call per event); other
    # bodies with read1, which returns whatever has arrived.
    check = progress.check if progress is not None else None
    # Inside read_chunked, urllib3 reads chunk-size lines and trailers on its own: a server
    # that drips them forever is stopped by the progress deadline from the timer thread.
    watch = EndReads(response, deadline=progress) if progress is not None and raw.chunked else None
    try:
        if raw.chunked:
            for data in raw.read_chunked(READ_SIZE, decode_content=True):
                if check is not None:
                    check()
                if data:
                    yield data
            if check is not None:
                check()
            return
        while True:
            if check is not None:
                check()
            data = raw.read1(READ_SIZE, decode_content=True)
            if not data:
                return
            yield data
    except (urllib3.exceptions.ReadTimeoutError, TimeoutError):
        raise Stalled(f"the stream stalled: no data for {idle_timeout:g} s", ExitCode.INCOMPLETE) from None
    except urllib3.exceptions.DecodeError:
        raise GptPipeError(
            f"protocol error: the body could not be decoded (Content-Encoding: {encoding})", ExitCode.PROTOCOL
        ) from None
    except (urllib3.exceptions.HTTPError, http.client.HTTPException, OSError, ValueError):
        if check is not None:
            check()  # ended by the progress deadline: say so
        raise GptPipeError(
            "the connection was closed before the answer finished", ExitCode.INCOMPLETE, retryable=True
        ) from None
    finally:
        if watch is not None:
            watch.cancel()


# Interim responses skipped before the final one; a server that sends more is answering nothing.
MAX_INTERIM = 32


def final_response() -> type:
    import http.client

    class FinalResponse(http.client.HTTPResponse):
        """The final response, after any interim ones (103 Early Hints, 102 Processing),
        which curl and browsers skip too: http.client skips only 100 Continue. Public names
        only: ``response_class`` is http.client's documented hook, ``begin`` reads the next
        status line and headers once ``headers`` is None again."""

        def begin(self) -> None:
            super().begin()
            for _ in range(MAX_INTERIM):
                if not (102 <= self.status < 200):  # 101 would switch protocols: never asked for
                    return
                self.headers = None  # type: ignore[assignment]
                super().begin()

    return FinalResponse


class EndReads:
    """Makes the reads of a response end as at EOF when ``deadline`` passes, even mid-read
    and inside urllib3 (the trailer lines of a chunked body): a deadline that has moved on
    meanwhile (Progress.mark) is waited for again. ``seconds``: a fixed deadline.

    urllib3's ``shutdown`` (SHUT_RD) wakes a read blocked in another thread; a socket
    timeout cannot be changed here, since the connection has let go of its socket. Once
    cancelled, or once the body has ended (its connection may be back in the pool, about
    to carry another request), it does nothing. One timer thread serves them all.
    """

    def __init__(self, response: requests.Response, seconds: float | None = None,
                 deadline: Deadline | None = None) -> None:
        self._response: requests.Response | None = response
        self._deadline = deadline if deadline is not None else Deadline(seconds or 0.0)
        self._lock = threading.Lock()
        self.fired = False
        self._entry = _TIMERS.add(self._deadline.until or time.monotonic(), self._fire)

    def _fire(self) -> None:
        with self._lock:
            response = self._response
            if response is None or response.raw.closed:
                return
            until = self._deadline.until
            if until is not None and until > time.monotonic():
                self._entry = _TIMERS.add(until, self._fire)  # moved on while this waited: wait again
                return
            self.fired = True
            try:
                response.raw.shutdown()
            except (ValueError, RuntimeError, OSError):
                pass  # already closed: nothing left to stop

    def cancel(self) -> None:
        with self._lock:
            # The timer thread may hold its entry until the time comes (300 s for the
            # progress bound): it must not keep the response, and its request body, alive.
            self._response = None
            _TIMERS.cancel(self._entry)


class _Timers:
    """One daemon thread that calls each function at its time (a thread per timer cost a
    thread start per request of a batch). A cancelled entry is dropped from the heap once
    they are half of it, so a long batch does not pile them up."""

    def __init__(self) -> None:
        self._due: list[list[Any]] = []  # [when, order, function or None once cancelled]
        self._count = 0
        self._cancelled = 0
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def add(self, when: float, function: Any) -> list[Any]:
        import heapq

        with self._wake:
            entry = [when, self._count, function]
            heapq.heappush(self._due, entry)
            self._count += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, daemon=True, name="gpt-pipe-timers")
                self._thread.start()
            self._wake.notify()
        return entry

    def cancel(self, entry: list[Any]) -> None:
        import heapq

        with self._wake:
            if entry[2] is None:
                return
            entry[2] = None
            self._cancelled += 1
            if self._cancelled > 64 and self._cancelled * 2 > len(self._due):
                self._due = [kept for kept in self._due if kept[2] is not None]
                heapq.heapify(self._due)
                self._cancelled = 0

    def _loop(self) -> None:
        import heapq

        while True:
            with self._wake:
                while not self._due or self._due[0][0] > time.monotonic():
                    self._wake.wait(self._due[0][0] - time.monotonic() if self._due else None)
                entry = heapq.heappop(self._due)
                function, entry[2] = entry[2], None  # a cancel() from now on has nothing to drop
                if function is None:
                    self._cancelled -= 1
                    continue
            function()


_TIMERS = _Timers()
