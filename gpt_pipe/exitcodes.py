"""The exit-code contract: one table of names, and the one exception type that carries a code.

Everything else in the package refers to these names, never to numbers.
"""

from __future__ import annotations


class ExitCode:
    """The codes as plain ints: an IntEnum would cost the enum module (2 ms, before the
    early connection can start) and its class machinery on every start-up."""

    OK = 0  # finish_reason "stop"
    USAGE = 2  # bad command line (click's own convention)
    LENGTH = 3  # finish_reason "length": the answer was truncated
    CONTENT_FILTER = 4  # finish_reason "content_filter"
    TOOL_CALLS = 5  # finish_reason "tool_calls" or "function_call"
    OTHER_FINISH = 6  # any other finish_reason
    INCOMPLETE = 7  # stream ended before any finish_reason; partial text kept
    SCHEMA = 8  # the answer does not match --schema (not JSON, or not valid against it)
    DATAERR = 65  # bad input, or the API rejected the request (4xx)
    UNAVAILABLE = 69  # cannot connect, TLS/DNS failure, HTTP 5xx, error in the stream
    SOFTWARE = 70  # a bug in gpt-pipe
    IOERR = 74  # stdout cannot be written (closed, disk full)
    TEMPFAIL = 75  # HTTP 429, timeout before the response started
    PROTOCOL = 76  # not an event stream, a chunk that is not JSON, unexpected status
    NOPERM = 77  # HTTP 401/402/403
    CONFIG = 78  # no API key, unreadable config
    SIGINT = 130
    SIGPIPE = 141  # what the shell reports for a process killed by SIGPIPE
    SIGTERM = 143


KNOWN = frozenset(value for name, value in vars(ExitCode).items() if name.isupper())


def known(code: object, default: int) -> int:
    """``code`` if it is one of the codes above, else ``default`` (a code read from a log)."""
    return code if type(code) is int and code in KNOWN else default


_FINISH_CODES = {
    "stop": ExitCode.OK,
    "length": ExitCode.LENGTH,
    "content_filter": ExitCode.CONTENT_FILTER,
    "tool_calls": ExitCode.TOOL_CALLS,
    "function_call": ExitCode.TOOL_CALLS,
    "error": ExitCode.UNAVAILABLE,
}


def for_finish_reason(reason: str | None) -> int:
    """The exit code for a stream that completed with ``reason`` (None: [DONE] without one)."""
    if reason is None:
        return ExitCode.OK
    return _FINISH_CODES.get(reason, ExitCode.OTHER_FINISH)


def for_http_status(status: int) -> int:
    """The exit code for a response whose status says the request failed."""
    if status in (401, 402, 403):
        return ExitCode.NOPERM
    if status == 429:
        return ExitCode.TEMPFAIL
    if 400 <= status < 500:
        return ExitCode.DATAERR
    if status >= 500:
        return ExitCode.UNAVAILABLE
    return ExitCode.PROTOCOL  # 1xx, or a 3xx that requests did not follow


class GptPipeError(Exception):
    """A failure with a one-line message and the exit code it maps to.

    Raised anywhere; shown only by ``launch.main``, which prints ``gpt-pipe: MESSAGE`` and
    returns the code (retries and batch lines catch it to decide, never to print).
    """

    def __init__(
        self,
        message: str,
        code: int,
        *,
        retryable: bool = False,
        retry_after: float | None = None,
        brief: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.retryable = retryable  # safe to send again, if nothing has been written yet
        self.retry_after = retry_after  # seconds the server asked us to wait (Retry-After)
        self.brief = brief or message  # the cause in a few words, for the retry line
        self.rate_limited = False  # an HTTP 429: the server's pace, not the line's failure


# The HTTP statuses worth another try: the server said "not now", not "no".
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
