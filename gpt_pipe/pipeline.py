"""One chat run: request, body, events, chunks, sink; returns the exit code.

Failures are raised as GptPipeError after the sink has shown everything received before
them; the caller tells the sink how the run failed.
"""

from __future__ import annotations

import random
import select
import signal
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from gpt_pipe.body import EndReads, Progress, Stalled, iter_body
from gpt_pipe.clock import Deadline
from gpt_pipe.exitcodes import ExitCode, GptPipeError
from gpt_pipe.log import Log
from gpt_pipe.output import Sink
from gpt_pipe.sse import SSEParser, too_large
from gpt_pipe.stream import MAX_KEPT, StreamDecoder

if TYPE_CHECKING:
    import requests

    from gpt_pipe.client import Client

# Once choice 0 has its finish reason, only the usage chunk and [DONE] can follow, and
# they follow at once: a server that stalls after the answer must not hold the pipeline.
AFTER_FINISH_TIMEOUT = 2.0

# An answer cut after it began (nothing shown yet: --full, --json, --batch) is asked for
# again this many times at most: the server answered, so each attempt is paid for.
MAX_CUT_RETRIES = 1

# At most this much input's output is held back while more input is waiting: the
# write per burst is what saves time; holding more only costs memory.
HOLD_BYTES = 65536

_SSE_STARTS = (b"data:", b"event:", b"id:", b"retry:", b":", b"error:")
_BOM = b"\xef\xbb\xbf"
_BLANK = b" \t\r\n"


def sniff(head: bytes, content_type: str, eof: bool) -> str | None:
    """What the body is, from its first bytes: "sse", "json", "other", or None (read more).

    The Content-Type is a hint only: servers send event streams as text/plain or
    application/json, and non-streamed JSON answers as text/event-stream.
    """
    if head.startswith(b"\xef\xbb\xbf"):
        head = head[3:]
    elif b"\xef\xbb\xbf".startswith(head) and not eof:
        return None
    stripped = head.lstrip(b" \t\r\n")
    if not stripped:
        if eof:
            return "sse" if "event-stream" in content_type else "other"
        return None
    if stripped[:1] in (b"{", b"["):
        return "json"
    if "event-stream" in content_type:
        return "sse"
    line = head.lstrip(b"\r\n")
    if line.startswith(_SSE_STARTS):
        return "sse"
    if not eof and any(start.startswith(line) for start in _SSE_STARTS):
        return None
    return "other"


class RunInfo:
    """What a run learnt besides its text: for --usage, --json and --conversation."""

    def __init__(self, model: str, on_reasoning: Any = None, label: str = "", limit: int = MAX_KEPT) -> None:
        self.model = model  # the model asked for (the answer may name another)
        self.limit = limit  # --max-answer: the most kept of tool calls
        self.label = label  # what retry notes name (--batch: "line 17: ")
        self.on_reasoning = on_reasoning  # called with each reasoning delta, or None
        self.decoder: StreamDecoder | None = None  # the last attempt's
        self.started = 0.0  # time.monotonic() when the last attempt was sent
        self.first_token: float | None = None
        self.ended: float | None = None
        self.credits: str | None = None  # x-credits-remaining (documented as x-credit-balance)
        self.parsed: Any = None  # --schema: the answer's value, once checked
        self.max_time: MaxTime | None = None  # the run's, for checks made after the answer


class MaxTimeReached(BaseException):
    """Raised by SIGALRM wherever the run is; a BaseException so no library swallows it."""


class MaxTime:
    """--max-time: the whole run, retries and waits included. A single run has one SIGALRM
    (it cuts even a blocked write); a batch line (``alarm`` False, any thread) is bounded by
    its deadline: the wait for the response head, a timer that ends the body's reads, and
    no retry wait beyond it."""

    def __init__(self, seconds: float | None, alarm: bool = True) -> None:
        self.seconds = seconds
        self.alarm = alarm
        self.deadline = Deadline(None)  # set while armed
        self.spare: float | None = None  # seconds that were left when it was disarmed

    def arm(self) -> None:
        if self.seconds:
            self.deadline = Deadline(self.seconds)
            if self.alarm:
                signal.signal(signal.SIGALRM, self._fire)
                signal.setitimer(signal.ITIMER_REAL, self.seconds)

    def disarm(self) -> None:
        if self.seconds:
            left = self.deadline.left()
            if left is not None:
                self.spare = left
            self.deadline.clear()
            if self.alarm:
                signal.setitimer(signal.ITIMER_REAL, 0)

    def left(self) -> float | None:
        """Seconds left, or None without a limit."""
        return self.deadline.left()

    def expired(self) -> bool:
        return self.deadline.passed()

    @staticmethod
    def _fire(signum: int, frame: Any) -> None:
        raise MaxTimeReached


class RetryPolicy:
    """How failures are retried. ``shared``: --batch, whose workers share the client's Pace:
    a 429 is waited out at the server's pace without using up --retries, and a retry's wait
    holds back every worker."""

    def __init__(self, retries: int, max_wait: float, base: float = 1.0, shared: bool = False,
                 retries_invalid: int = 0) -> None:
        self.retries = retries
        self.retries_invalid = retries_invalid  # --retries-invalid: answers that do not match --schema
        self.max_wait = max_wait
        self.base = base
        self.shared = shared

    def backoff(self, attempt: int) -> float:
        """Exponential backoff with "equal jitter": half fixed, half random."""
        delay = min(self.max_wait, self.base * 2**attempt)
        return delay / 2 + random.uniform(0, delay / 2)


def run_with_retries(
    client: Client, body: dict[str, Any], sink: Sink, log: Log, policy: RetryPolicy, max_time: MaxTime,
    info: RunInfo | None = None,
) -> int:
    """``run_chat``, sent again after a failure that is safe to retry while nothing is written."""
    max_time.arm()
    try:
        return _attempts(client, body, sink, log, policy, max_time, info or RunInfo(body.get("model", "")))
    except MaxTimeReached:
        sink.flush()  # text already received is kept, like any other failure
        if sink.written:
            raise GptPipeError(
                f"stopped by --max-time ({max_time.seconds:g} s) before the answer finished; partial text kept",
                ExitCode.INCOMPLETE,
            ) from None
        raise GptPipeError(f"no answer within --max-time ({max_time.seconds:g} s)", ExitCode.TEMPFAIL) from None
    finally:
        max_time.disarm()


def _attempts(
    client: Client, body: dict[str, Any], sink: Sink, log: Log, policy: RetryPolicy, max_time: MaxTime,
    info: RunInfo,
) -> int:
    attempt = 0
    invalid = 0
    refused = 0
    cut = 0  # answers cut after they began: each was paid for, so one is sent again at most
    after = ""
    pace = client.pace
    while True:
        if not pace.wait(max_time.left(), on_wait=log.rate_wait):  # the server's pace, and --rate
            raise MaxTimeReached
        sink.attempt(attempt + invalid + refused + 1, after)  # --tee marks where each attempt begins
        try:
            return run_chat(client, body, sink, log, max_time, info)
        except GptPipeError as error:
            sink.flush()  # text received but held back is written first: it decides what follows
            if getattr(error, "invalid", False):  # an answer that does not match --schema
                if sink.written or invalid >= policy.retries_invalid:
                    raise
                invalid += 1
                log.note(f"{info.label}{error.message}; asking again ({invalid}/{policy.retries_invalid})")
                after = "the answer did not match --schema"
                sink.reset()
                continue
            if error.rate_limited and policy.shared and not sink.written and not pace.starved():
                # The server's pace, not this line's failure: waited out (Pace.wait above)
                # without using up --retries; --max-time and STARVED_SECONDS still end it.
                refused += 1
                after = error.brief
                sink.reset()
                continue
            paid = error.code == ExitCode.INCOMPLETE  # the server answered: that request is paid for
            if not error.retryable or sink.written or attempt >= policy.retries or (paid and cut >= MAX_CUT_RETRIES):
                if attempt:
                    error.message += f" (after {attempt} {'retry' if attempt == 1 else 'retries'})"
                raise
            if error.retry_after is not None and error.retry_after > policy.max_wait:
                raise GptPipeError(
                    f"{error.message}; the server asks to retry after {error.retry_after:g} s, "
                    f"longer than --max-retry-wait ({policy.max_wait:g} s)",
                    ExitCode.TEMPFAIL,
                ) from None
            delay = error.retry_after if error.retry_after is not None else policy.backoff(attempt)
            left = max_time.left()
            if left is not None and delay >= left:
                raise MaxTimeReached from None  # the wait alone would pass --max-time
            attempt += 1
            cut += paid
            again = "; asking again is a new paid request" if paid else ""
            log.note(f"{info.label}{error.brief}, retrying in {delay:.1f} s ({attempt}/{policy.retries}){again}")
            after = error.brief
            sink.reset()
            if policy.shared:
                pace.hold(delay)  # every worker waits: a throttled server is not hammered
            else:
                time.sleep(delay)


def run_chat(client: Client, body: dict[str, Any], sink: Sink, log: Log, max_time: MaxTime | None = None,
             info: RunInfo | None = None) -> int:
    info = info or RunInfo(body.get("model", ""))
    info.max_time = max_time
    decoder = info.decoder = StreamDecoder(sink.chunk, info.on_reasoning, info.limit)
    info.started, info.first_token, info.ended = time.monotonic(), None, None
    left = max_time.left() if max_time is not None and not max_time.alarm else None
    try:
        response = client.post_chat(body, left)
    except GptPipeError:
        if max_time is not None and max_time.expired():
            raise MaxTimeReached from None
        raise
    cut = EndReads(response, max(0.0, max_time.left() or 0.0)) if left is not None and max_time else None
    headers = response.headers
    info.credits = headers.get("x-credits-remaining", headers.get("x-credit-balance"))
    progress = Progress(client.progress_timeout)
    try:
        content_type = response.headers.get("Content-Type", "")
        reads = iter_body(response, client.idle_timeout, progress)
        head, kind = _sniff_body(reads, content_type, client.max_event)
        if kind == "json":
            decoder.feed_completion(_rest_of_body(head, reads, client.max_event))
        elif kind == "sse":
            _read_events(head, reads, decoder, sink, response, log, max_time, info, progress, client.max_event,
                         client.keep_alive)
        else:
            raise GptPipeError(_not_a_stream(head, content_type), ExitCode.PROTOCOL)
    except Stalled as error:
        if max_time is not None and max_time.expired():
            raise MaxTimeReached from None
        if decoder.progress:
            raise
        # Nothing of the answer came: "try again later", like a timeout before the headers.
        message = f"no answer from the server within {client.idle_timeout:g} s" if error.silent else error.message
        raise GptPipeError(message, ExitCode.TEMPFAIL) from None
    except GptPipeError:
        if max_time is not None and max_time.expired():  # the reads were ended by --max-time
            raise MaxTimeReached from None
        raise
    finally:
        if cut is not None:
            cut.cancel()
        client.finished(response)
        response.close()
    code, warning = decoder.outcome()
    info.ended = time.monotonic()
    if info.first_token is None and decoder.texts:
        info.first_token = info.ended
    if max_time is not None:
        max_time.disarm()  # --full writes all its text now: the alarm must not cut it
    if warning:
        log.warn(warning)
    sink.complete()
    return code


def _sniff_body(reads: Iterator[bytes], content_type: str, cap: int) -> tuple[bytes, str]:
    """The body's first bytes and what they are. One BOM at the very start (WHATWG: only
    one; a second is part of the first line) and blank lines before anything are dropped
    as they come, so a body of nothing but newlines costs linear time and keeps nothing;
    what is kept while undecided is a few bytes."""
    head = b""
    bom = True  # the start is still to be checked for a BOM (it may come split)
    for data in reads:
        head = head + data if head else data
        if bom:
            if len(head) < len(_BOM) and _BOM.startswith(head):
                continue
            bom = False
            if head.startswith(_BOM):
                head = head[3:]
        head = head.lstrip(_BLANK)
        if len(head) > cap:
            raise too_large("the start of the response", cap)
        kind = sniff(head, content_type, eof=False)
        if kind is not None:
            return head, kind
    return head, sniff(head, content_type, eof=True) or "other"


def _rest_of_body(head: bytes, reads: Iterator[bytes], cap: int) -> bytes:
    """A whole non-streamed answer, at most ``cap`` bytes."""
    pieces = [head]
    size = len(head)
    for data in reads:
        size += len(data)
        if size > cap:
            raise too_large("the JSON answer", cap)
        pieces.append(data)
    return b"".join(pieces)


def _read_events(head: bytes, reads: Iterator[bytes], decoder: StreamDecoder, sink: Sink, response: requests.Response,
                 log: Log, max_time: MaxTime | None, info: RunInfo, progress: Progress, cap: int,
                 drain: bool = False) -> None:
    """Events until [DONE] or the body's end. With ``drain`` (kept connections), what
    follows [DONE] is read to the body's end, bounded in size and time, so that the
    connection can carry the next request."""
    parser = SSEParser(cap, bom=False)  # _sniff_body took the one BOM there may be
    feed = decoder.feed
    more_waiting = _more_waiting(response)
    held = 0
    timer = None
    data = head
    seen = 0
    try:
        while True:
            for event in parser.feed(data):
                feed(event)
                if decoder.done:
                    break
            if decoder.progress != seen:
                seen = decoder.progress
                progress.mark()
            # Every delta leaves before a read that could block: while more bytes are
            # already waiting, the next read returns at once, so the write can wait for
            # it and one write carries a whole burst (bounded by HOLD_BYTES of input).
            held += len(data)
            if held >= HOLD_BYTES or decoder.done or not more_waiting():
                sink.flush()
                held = 0
            if info.first_token is None and decoder.texts:
                info.first_token = time.monotonic()
            if decoder.done:
                if drain:
                    if timer is None:
                        timer = EndReads(response, AFTER_FINISH_TIMEOUT)
                    _drain(reads)
                return
            if timer is None and decoder.finish_reason is not None:
                # The answer is complete: only the short tail is left, bounded by its own timer.
                if max_time is not None:
                    max_time.disarm()
                timer = EndReads(response, AFTER_FINISH_TIMEOUT)
            data = next(reads, b"")
            if not data:
                return
    except GptPipeError as error:
        if decoder.finish_reason is None or error.code == ExitCode.IOERR:
            raise
        # The answer is complete; a tail that breaks off or misbehaves does not undo it.
        if error.code != ExitCode.INCOMPLETE:
            log.warn(f"after the answer finished: {error.message}")
    finally:
        if timer is not None:
            timer.cancel()


def _drain(reads: Iterator[bytes], limit: int = HOLD_BYTES) -> None:
    """Read what is left of a body (the end of the chunked coding, usually) and drop it."""
    size = 0
    for data in reads:
        size += len(data)
        if size > limit:
            return


def _more_waiting(response: requests.Response) -> Any:
    """A function that says, without blocking, whether the socket has unread bytes."""
    try:
        poller = select.poll()
        poller.register(response.raw.fileno(), select.POLLIN)
    except (OSError, ValueError, AttributeError):
        return lambda: False  # cannot tell: then always write before reading again
    return lambda: bool(poller.poll(0))


def _not_a_stream(head: bytes, content_type: str) -> str:
    shown = content_type or "no Content-Type"
    text = head.decode("utf-8", "replace").strip()
    if not text:
        return f"protocol error: the response is empty ({shown}), not an event stream"
    if "html" in content_type.lower() or text[:1] == "<":
        return f"protocol error: the response is an HTML page ({shown}), not an event stream"
    from gpt_pipe.keys import excerpt

    return f"protocol error: the response is not an event stream ({shown}): {excerpt(text.splitlines()[0], 60)!r}"
