"""What a failure means for the user: requests' and urllib3's exceptions, error bodies and
Retry-After headers turned into a message, an exit code and whether a retry is safe.
Pure functions (tests feed them exceptions and bytes, no sockets)."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from typing import Any

import requests
import urllib3.exceptions

from gpt_pipe.exitcodes import ExitCode, GptPipeError
from gpt_pipe.keys import excerpt, redact_url
from gpt_pipe.safejson import loads
from gpt_pipe.stream import describe_error
from gpt_pipe.urls import host, hostname, is_loopback


def failure(exc: BaseException, base_url: str, path: str, idle_timeout: float) -> GptPipeError:
    """What a failure of sending a request to ``base_url + path`` means for the user: its message,
    exit code and whether a retry is safe. A pure function of the exception (tests feed
    it exceptions without sockets)."""
    url = base_url + path
    where = host(url)
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return GptPipeError(f"timed out connecting to {where}", ExitCode.TEMPFAIL, retryable=True)
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return GptPipeError(f"{where} sent no response within {idle_timeout:g} s", ExitCode.TEMPFAIL)
    if isinstance(exc, requests.exceptions.SSLError):
        return GptPipeError(f"TLS failure with {where}: {reason(exc)}", ExitCode.UNAVAILABLE)
    if isinstance(exc, requests.exceptions.ProxyError):
        return GptPipeError(f"proxy failure for {where}: {reason(exc)}", ExitCode.UNAVAILABLE, retryable=True)
    if isinstance(exc, requests.exceptions.TooManyRedirects):
        return GptPipeError(f"too many redirects from {redact_url(base_url)}{path}", ExitCode.PROTOCOL)
    if isinstance(exc, (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
                        requests.exceptions.InvalidSchema)):
        return bad_base_url(base_url)
    if isinstance(exc, (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError, OSError)):
        if before_sending(exc):
            # Refused, DNS, no route: the request never left, so sending it again is safe;
            # but a loopback address that refuses has no server listening: no use waiting.
            absent = is_loopback(hostname(url)) and any(isinstance(e, ConnectionRefusedError) for e in _causes(exc))
            return GptPipeError(
                f"cannot connect to {where}: {reason(exc)}" + (" (nothing listens there)" if absent else ""),
                ExitCode.UNAVAILABLE, retryable=not absent,
            )
        unreadable = _unreadable_head(exc)
        if unreadable:
            return GptPipeError(f"{where} answered with something that is not an HTTP response ({unreadable}); "
                                "the request may have reached the model, so it was not sent again",
                                ExitCode.PROTOCOL)
        # The request went out on a fresh connection and the server hung up: it may have
        # reached the model, so it is not sent again blindly.
        return GptPipeError(
            f"{where} closed the connection without answering ({reason(exc)}); "
            "the request may have reached the model, so it was not sent again",
            ExitCode.UNAVAILABLE,
        )
    return GptPipeError(f"request to {where} failed: {reason(exc)}", ExitCode.UNAVAILABLE)


def bad_base_url(base_url: str) -> GptPipeError:
    """A base URL requests cannot send to: a configuration error (78) with a guess."""
    shown = redact_url(base_url)
    _, sep, rest = shown.partition("://")
    if not shown.strip():
        hint = "it is empty"
    elif shown.lower().startswith(("http://", "https://")):
        hint = "it does not parse as a URL"
    else:
        hint = f"it needs http:// or https:// (did you mean http://{rest if sep else shown}?)"
    return GptPipeError(f"invalid base URL {shown!r}: {hint}", ExitCode.CONFIG)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header: a number of seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()[:64]
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:  # 1e300 or Infinity: longer than any --max-retry-wait, so the run ends (75); NaN: none
        return None if seconds != seconds else min(1e9, max(0.0, seconds))
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    import datetime

    return min(1e9, max(0.0, (when - datetime.datetime.now(datetime.timezone.utc)).total_seconds()))


def error_detail(body: bytes, content_type: str) -> str:
    text = body.decode("utf-8", "replace").strip()
    if not text:
        return ""
    if text.startswith("data:"):  # an error sent as an event stream
        text = text[5:].strip().split("\n", 1)[0]
    if text[:1] in "{[":
        try:
            return describe_error(loads(text))
        except ValueError:
            pass
    if "html" in content_type.lower() or text[:1] == "<":
        return ""  # a proxy's error page: the status line says it all
    return excerpt(text.splitlines()[0], 200)


def _unreadable_head(exc: BaseException) -> str:
    """What http.client could not read in a response head (a status line that is not HTTP,
    a header line over 64 KiB, more than 100 headers), or "" when the server only hung up."""
    import http.client

    for error in _causes(exc):
        if isinstance(error, (http.client.RemoteDisconnected, http.client.IncompleteRead)):
            return ""
        if isinstance(error, http.client.BadStatusLine):
            line = str(error.args[0]) if error.args else ""
            return f"status line {excerpt(redact_url(line.strip()), 60)!r}" if line.strip() else ""
        if isinstance(error, http.client.UnknownProtocol):
            return f"protocol {excerpt(str(error.args[0] if error.args else ''), 60)!r}"
        if isinstance(error, http.client.HTTPException):
            return excerpt(str(error), 100)
    return ""


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and everything behind it: causes, contexts, reasons and arguments."""
    seen: set[int] = set()
    stack: list[Any] = [exc]
    while stack:
        error = stack.pop()
        if not isinstance(error, BaseException) or id(error) in seen:
            continue
        seen.add(id(error))
        yield error
        stack.extend([error.__cause__, error.__context__, getattr(error, "reason", None), *error.args])


def before_sending(exc: BaseException) -> bool:
    """Whether a failure happened before the request could have been sent (while resolving
    or connecting): only then is a retry sure not to send the same request twice."""
    return any(isinstance(error, (urllib3.exceptions.NewConnectionError, urllib3.exceptions.ConnectTimeoutError,
                                  urllib3.exceptions.ProxyError, socket.gaierror, ConnectionRefusedError))
               for error in _causes(exc))


def reason(exc: BaseException) -> str:
    """The root cause of a requests failure, in a few words."""
    for error in _causes(exc):
        if isinstance(error, OSError) and error.strerror:
            return error.strerror
    text = str(exc)
    match = re.search(r"\[Errno -?\d+\] ([^'\")]+)", text)
    if match:
        return match.group(1).strip()
    return excerpt(redact_url(re.sub(r"<[^>]*>", "", text)), 200)
