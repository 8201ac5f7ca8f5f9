"""The HTTP exchange, through requests: request, status, body reads, and their failures.

Every requests/urllib3 failure leaves this module as a GptPipeError with its exit code.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import requests
import urllib3.exceptions

from gpt_pipe import __version__
from gpt_pipe.exitcodes import RETRY_STATUSES, ExitCode, GptPipeError, for_http_status
from gpt_pipe.keys import redact, redact_url
from gpt_pipe.log import Log
from gpt_pipe.safejson import loads
from gpt_pipe.sse import MAX_EVENT, too_large
from gpt_pipe.stream import describe_error

# How much one read may return. The read returns whatever has arrived (read1), so this
# only caps a burst; it never makes a delta wait. (urllib3 >= 2.6 also caps what one
# read of a gzip body decodes to at this size: no decompression bomb in one read.)
READ_SIZE = 32768
ERROR_BODY_LIMIT = 65536
ERROR_BODY_SECONDS = 10.0  # an error body comes at once; one dripped byte by byte is cut short

# The default bound on the time without any of the answer (keep-alive comments, empty
# events, a status line or trailers dripped byte by byte do not count).
PROGRESS_TIMEOUT = 300.0


class Stalled(GptPipeError):
    """The server went silent for longer than the idle timeout (``silent``), or sent
    nothing of the answer for longer than the progress timeout."""

    silent = True


class Progress:
    """The time bound on a response that keeps sending bytes but none of the answer."""

    __slots__ = ("seconds", "until")

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.until = time.monotonic() + seconds

    def mark(self) -> None:
        """Some of the answer arrived: the bound starts again."""
        self.until = time.monotonic() + self.seconds

    def check(self) -> None:
        if time.monotonic() > self.until:
            error = Stalled(
                f"the server sent nothing of the answer for {self.seconds:g} s, only keep-alives "
                "(--progress-timeout)",
                ExitCode.INCOMPLETE,
            )
            error.silent = False
            raise error


class BearerAuth(requests.auth.AuthBase):
    """The API key as the request's one credential. Set as the session's auth, it also keeps
    requests from sending the base URL's user:password as Basic auth instead."""

    def __init__(self, key: str) -> None:
        self._key = key

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._key}"
        return request


def _early_pools() -> dict[str, Any]:
    """urllib3 pool classes whose connections take the start-up's connection (early.take)
    when it goes to their origin, and connect as usual otherwise. Only public urllib3
    names: ConnectionCls, connect(), sock, is_verified."""
    import urllib3.connection
    import urllib3.connectionpool

    from gpt_pipe import early

    def wait(timeout: Any) -> float:
        return float(timeout) if isinstance(timeout, (int, float)) else 10.0

    class EarlyHTTPConnection(urllib3.connection.HTTPConnection):
        def connect(self) -> None:
            sock = None if self.proxy else early.take("http", self.host, self.port, wait(self.timeout))
            if sock is None:
                super().connect()
            else:
                self.sock = sock

    class EarlyHTTPSConnection(urllib3.connection.HTTPSConnection):
        def connect(self) -> None:
            sock = None if self.proxy else early.take("https", self.host, self.port, wait(self.timeout))
            if sock is None:
                super().connect()
            else:
                self.sock = sock
                self.is_verified = True  # early._tls checked the chain and the hostname

    class EarlyHTTPConnectionPool(urllib3.connectionpool.HTTPConnectionPool):
        ConnectionCls = EarlyHTTPConnection

    class EarlyHTTPSConnectionPool(urllib3.connectionpool.HTTPSConnectionPool):
        ConnectionCls = EarlyHTTPSConnection

    return {"http": EarlyHTTPConnectionPool, "https": EarlyHTTPSConnectionPool}


class _Sender:
    """A thread that sends one request at a time for a client and hands back the response
    or the exception; the caller waits a bounded time (``run``)."""

    def __init__(self) -> None:
        import queue

        self._jobs: Any = queue.SimpleQueue()
        threading.Thread(target=self._loop, daemon=True, name="gpt-pipe-send").start()

    def _loop(self) -> None:
        while True:
            job, box, done = self._jobs.get()
            try:
                box.append((True, job()))
            except BaseException as exc:  # handed to the caller's thread as it is
                box.append((False, exc))
            done.release()

    def run(self, job: Any, timeout: float) -> tuple[bool, Any] | None:
        """(True, result) or (False, exception); None when ``timeout`` passed first."""
        done = threading.Lock()
        done.acquire()
        box: list[tuple[bool, Any]] = []
        self._jobs.put((job, box, done))
        if not done.acquire(timeout=timeout):
            return None
        return box[0]


class Client:
    """One API endpoint with one key; ``post_chat`` and ``list_models`` talk to it."""

    def __init__(self, base_url: str, api_key: str, connect_timeout: float, idle_timeout: float, log: Log,
                 ca_bundle: str | None = None, progress_timeout: float = PROGRESS_TIMEOUT,
                 max_event: int = MAX_EVENT, keep_alive: bool = False) -> None:
        self.base_url = base_url.rstrip("/")
        self.shown_url = redact_url(self.base_url)
        if ca_bundle:
            path = os.path.expanduser(ca_bundle)
            if not os.path.isfile(path):
                raise GptPipeError(f"--ca-bundle {ca_bundle}: no such file", ExitCode.CONFIG)
            ca_bundle = path
        # Certificates are always checked: --ca-bundle, else the variables requests honours,
        # else certifi's bundle (requests' own default).
        self._verify: bool | str = (ca_bundle or os.environ.get("REQUESTS_CA_BUNDLE")
                                    or os.environ.get("CURL_CA_BUNDLE") or True)
        if base_url.lower().startswith("http://") and not _is_loopback(_hostname(base_url)):
            log.warn(f"sending the API key over plain http:// to {_host(base_url)}; anyone on the way can read it")
        self.idle_timeout = idle_timeout
        self.progress_timeout = progress_timeout
        self.max_event = max_event
        # --batch: each body is read to its end, so its connection goes back to the pool and
        # carries the next request; ``kept`` says the last one did.
        self.keep_alive = keep_alive
        self.kept = False
        self._sender: _Sender | None = None
        self._proxies: dict[str, dict[str, str]] = {}  # by origin: the environment does not change
        self._timeout = (connect_timeout, idle_timeout)
        self._key = api_key
        self._log = log
        session = self._session = requests.Session()
        # No environment trust: requests would then send ~/.netrc credentials in place of the
        # key (on redirects too). Proxies and CA bundles from the environment are applied by
        # _send through requests' public helpers instead.
        session.trust_env = False
        session.auth = BearerAuth(api_key)
        session.hooks["response"].append(self._check_redirect)
        from gpt_pipe import early

        if early.pending() and not keep_alive:
            # A single run whose connection was set up during start-up: the pools of this
            # session take it (connect() below) instead of opening one.
            session.get_adapter(self.base_url).poolmanager.pool_classes_by_scheme = _early_pools()
        session.headers.update(
            {
                "User-Agent": f"gpt-pipe/{__version__}",
                # A compressed stream would only add work; the body is read as it arrives.
                "Accept-Encoding": "identity",
            }
        )

    def post_chat(self, body: dict[str, Any], limit: float | None = None) -> requests.Response:
        """POST the request; returns the streaming response once its status is a success.
        ``limit``: seconds left to the caller's deadline (a --batch --max-time)."""
        try:
            data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise GptPipeError(
                "the request holds a lone surrogate (a \\ud800-style escape) that UTF-8 cannot carry; "
                "nothing was sent", ExitCode.DATAERR) from None
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
        return self._send("POST", "/chat/completions", data, headers, limit)

    def list_models(self) -> list[str]:
        response = self._send("GET", "/models", None, {"Accept": "application/json"})
        try:
            body = read_capped(response, self.idle_timeout, Progress(self.progress_timeout), self.max_event,
                               "the model list")
        finally:
            response.close()
        try:
            models = loads(body)["data"]
            return [str(model["id"]) for model in models]
        except (ValueError, KeyError, TypeError) as exc:
            raise GptPipeError(
                f"protocol error: {self.shown_url}/models did not answer with a model list "
                f"({exc.__class__.__name__})",
                ExitCode.PROTOCOL,
            ) from None

    def _proxies_for(self, url: str) -> dict[str, str]:
        """The proxies requests would take from the environment for ``url`` (NO_PROXY
        applied), worked out once per origin: it reads every environment variable."""
        origin = url.split("/", 3)[:3]
        key = "/".join(origin)
        proxies = self._proxies.get(key)
        if proxies is None:
            try:
                proxies = requests.utils.get_environ_proxies(url)
            except ValueError:
                proxies = {}
            self._proxies[key] = proxies
        return proxies

    def finished(self, response: requests.Response) -> None:
        """Before ``response`` is closed: whether its connection went back to the pool
        (read to its end, and not closed by the server)."""
        self.kept = (self.keep_alive and response.raw.closed
                     and "close" not in response.headers.get("Connection", "").lower())

    def _check_redirect(self, response: requests.Response, *args: Any, **kwargs: Any) -> requests.Response:
        """A response hook: a redirect is followed only to an http(s) URL that parses."""
        if not response.is_redirect:
            return response
        location = response.headers.get("Location", "")
        from urllib.parse import urljoin, urlsplit

        try:
            target = urljoin(response.url, location)
            parts = urlsplit(target)
            ok = parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
        except ValueError:
            target, ok = location, False
        if not ok:
            shown = redact_url(target)
            shown = shown if len(shown) <= 200 else shown[:200] + "…"
            response.close()
            raise GptPipeError(
                f"protocol error: {_host(response.url)} redirected to {shown!r}, which is not an http(s) URL",
                ExitCode.PROTOCOL,
            )
        return response

    def _send(self, method: str, path: str, data: bytes | None, headers: dict[str, str],
              limit: float | None = None) -> requests.Response:
        url = self.base_url + path
        session = self._session
        try:
            prepared = session.prepare_request(requests.Request(method, url, data=data, headers=headers))
        except (requests.RequestException, ValueError):
            raise GptPipeError(f"invalid base URL {self.shown_url!r}", ExitCode.CONFIG) from None
        if self._log.debugging:
            self._debug_request(prepared)
        proxies = self._proxies_for(prepared.url or url)

        def send() -> requests.Response:
            return session.send(prepared, timeout=self._timeout, allow_redirects=True, stream=True, proxies=proxies,
                                verify=self._verify)

        from gpt_pipe import early

        reused, self.kept = self.kept, False
        try:
            try:
                response = self._send_bounded(send, limit)
                if early.used() and self._log.debugging:
                    self._log.debug("the request went out on the connection set up during start-up")
            except (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError, OSError) as exc:
                early.used()  # a fresh connection, checked open when taken: no second chance
                if not reused or _before_sending(exc) or isinstance(exc, requests.exceptions.ConnectTimeout):
                    raise
                # A kept-alive connection the server had closed while it sat in the pool:
                # the request never reached it. Once more, on a new connection.
                if self._log.debugging:
                    self._log.debug(f"the kept-alive connection was stale ({_reason(exc)}); sending on a new one")
                response = self._send_bounded(send, limit)
        except requests.exceptions.ConnectTimeout:
            raise GptPipeError(f"timed out connecting to {_host(url)}", ExitCode.TEMPFAIL, retryable=True) from None
        except requests.exceptions.ReadTimeout:
            raise GptPipeError(
                f"{_host(url)} sent no response within {self.idle_timeout:g} s", ExitCode.TEMPFAIL
            ) from None
        except requests.exceptions.SSLError as exc:
            raise GptPipeError(f"TLS failure with {_host(url)}: {_reason(exc)}", ExitCode.UNAVAILABLE) from None
        except requests.exceptions.ProxyError as exc:
            raise GptPipeError(
                f"proxy failure for {_host(url)}: {_reason(exc)}", ExitCode.UNAVAILABLE, retryable=True
            ) from None
        except requests.exceptions.TooManyRedirects:
            raise GptPipeError(f"too many redirects from {self.shown_url}{path}", ExitCode.PROTOCOL) from None
        except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema, requests.exceptions.InvalidSchema):
            raise GptPipeError(f"invalid base URL {self.shown_url!r}", ExitCode.CONFIG) from None
        except (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError, OSError) as exc:
            if _before_sending(exc):
                # Refused, DNS, no route: the request never left, so sending it again is safe;
                # but a loopback address that refuses has no server listening: no use waiting.
                absent = _is_loopback(_hostname(url)) and any(isinstance(e, ConnectionRefusedError)
                                                             for e in _causes(exc))
                raise GptPipeError(
                    f"cannot connect to {_host(url)}: {_reason(exc)}" + (" (nothing listens there)" if absent else ""),
                    ExitCode.UNAVAILABLE, retryable=not absent,
                ) from None
            # The request went out on a fresh connection and the server hung up: it may have
            # reached the model, so it is not sent again blindly.
            raise GptPipeError(
                f"{_host(url)} closed the connection without answering ({_reason(exc)}); "
                "the request may have reached the model, so it was not sent again",
                ExitCode.UNAVAILABLE,
            ) from None
        except requests.RequestException as exc:
            raise GptPipeError(f"request to {_host(url)} failed: {_reason(exc)}", ExitCode.UNAVAILABLE) from None
        if self._log.debugging:
            self._log.debug(f"< HTTP {response.status_code} {response.reason}")
            for name, value in response.headers.items():
                self._log.debug(f"< {name}: {value}")
        if 200 <= response.status_code < 300:
            return response
        try:
            raise self._status_error(response)
        finally:
            response.close()

    def _send_bounded(self, send: Any, limit: float | None) -> requests.Response:
        """``send()`` until the response head has arrived, for at most the progress timeout.

        A read timeout bounds each silence, not a status line dripped a byte at a time; the
        send runs in a thread of its own (one per client, kept for its next request) so
        that this wait has an end. A thread left behind holds only its socket.
        """
        bound = self.progress_timeout if limit is None else min(self.progress_timeout, max(0.0, limit))
        if self._sender is None:
            self._sender = _Sender()
        outcome = self._sender.run(send, bound)
        if outcome is None:
            self._sender = None  # stuck on that server: the next request gets a sender of its own
            if bound < self.progress_timeout:  # the caller's deadline, not the server's silence
                raise GptPipeError(f"no response from {_host(self.base_url)} within --max-time", ExitCode.TEMPFAIL)
            raise GptPipeError(
                f"{_host(self.base_url)} sent no complete response head within {self.progress_timeout:g} s "
                "(--progress-timeout)",
                ExitCode.TEMPFAIL,
            )
        ok, value = outcome
        if not ok:
            raise value
        return value

    def _status_error(self, response: requests.Response) -> GptPipeError:
        status = response.status_code
        line = f"HTTP {status}" + (f" {response.reason}" if response.reason else "")
        try:
            body = read_capped(response, self.idle_timeout, Progress(ERROR_BODY_SECONDS), ERROR_BODY_LIMIT, None)
        except GptPipeError:
            body = b""
        detail = _error_detail(body, response.headers.get("Content-Type", ""))
        message = f"{line}: {detail}" if detail else line
        if status == 400 and "response_format" in body.decode("utf-8", "replace").lower():
            message += " (this server may not take response_format: try --schema-mode prompt)"
        if status == 404 and response.request.method == "POST" and \
                (not detail or ("not found" in detail.lower() and "model" not in detail.lower())):
            # No API error in the body (an API's own 404 names the model): the path is wrong.
            message += f" ({self._not_found_hint()})"
        return GptPipeError(
            message,
            for_http_status(status),
            retryable=status in RETRY_STATUSES,
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
            brief=line.removeprefix("HTTP "),
        )

    def _not_found_hint(self) -> str:
        """Why /chat/completions may not be there: the usual mistake in --base-url."""
        path = self.base_url.split("://", 1)[-1].partition("/")[2].rstrip("/")
        if not path.endswith("v1") and "/v1/" not in f"/{path}/":
            return f"is /v1 missing from --base-url? it is {self.shown_url}"
        return f"check --base-url: {self.shown_url}/chat/completions was not found"

    def _debug_request(self, prepared: requests.PreparedRequest) -> None:
        log = self._log
        log.debug(f"> {prepared.method} {redact_url(prepared.url or '')}")
        for name, value in prepared.headers.items():
            if name.lower() == "authorization":
                value = f"Bearer {redact(self._key)}"
            log.debug(f"> {name}: {value}")
        body = prepared.body
        if body:
            text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
            log.debug("> " + (text if len(text) <= 4000 else text[:4000] + f"… ({len(text)} characters)"))


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
        raise GptPipeError(
            "the connection was closed before the answer finished", ExitCode.INCOMPLETE, retryable=True
        ) from None


class EndReads:
    """Makes the reads of a response end as at EOF ``seconds`` from now, even mid-read.

    urllib3's ``shutdown`` (SHUT_RD) wakes a read blocked in another thread; a socket
    timeout cannot be changed here, since the connection has let go of its socket. Once
    cancelled, or once the body has ended (its connection may be back in the pool, about
    to carry another request), it does nothing. One timer thread serves them all.
    """

    def __init__(self, response: requests.Response, seconds: float) -> None:
        self._response = response
        self._lock = threading.Lock()
        self._cancelled = False
        _TIMERS.add(time.monotonic() + seconds, self._fire)

    def _fire(self) -> None:
        with self._lock:
            if self._cancelled or self._response.raw.closed:
                return
            try:
                self._response.raw.shutdown()
            except (ValueError, RuntimeError, OSError):
                pass  # already closed: nothing left to stop

    def cancel(self) -> None:
        with self._lock:
            self._cancelled = True


class _Timers:
    """One daemon thread that calls each function at its time (a thread per timer cost a
    thread start per request of a batch)."""

    def __init__(self) -> None:
        self._due: list[tuple[float, int, Any]] = []
        self._count = 0
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def add(self, when: float, function: Any) -> None:
        import heapq

        with self._wake:
            heapq.heappush(self._due, (when, self._count, function))
            self._count += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, daemon=True, name="gpt-pipe-timers")
                self._thread.start()
            self._wake.notify()

    def _loop(self) -> None:
        import heapq

        while True:
            with self._wake:
                while not self._due or self._due[0][0] > time.monotonic():
                    self._wake.wait(self._due[0][0] - time.monotonic() if self._due else None)
                _, _, function = heapq.heappop(self._due)
            function()


_TIMERS = _Timers()


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header: a number of seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    import datetime

    return max(0.0, (when - datetime.datetime.now(datetime.timezone.utc)).total_seconds())


def _error_detail(body: bytes, content_type: str) -> str:
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
    first = text.splitlines()[0]
    return first if len(first) <= 200 else first[:200] + "…"


def _host(url: str) -> str:
    match = re.match(r"[a-zA-Z][a-zA-Z0-9+.-]*://([^/?#]*)", url)
    host = match.group(1) if match else url
    return host.rsplit("@", 1)[-1]  # never show credentials embedded in a URL


def _hostname(url: str) -> str:
    host = _host(url)
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost.") or host.lower().endswith(".localhost"):
        return True
    import ipaddress

    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


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


def _before_sending(exc: BaseException) -> bool:
    """Whether a failure happened before the request could have been sent (while resolving
    or connecting): only then is a retry sure not to send the same request twice."""
    return any(isinstance(error, (urllib3.exceptions.NewConnectionError, urllib3.exceptions.ConnectTimeoutError,
                                  urllib3.exceptions.ProxyError, socket.gaierror, ConnectionRefusedError))
               for error in _causes(exc))


def _reason(exc: BaseException) -> str:
    """The root cause of a requests failure, in a few words."""
    for error in _causes(exc):
        if isinstance(error, OSError) and error.strerror:
            return error.strerror
    text = str(exc)
    match = re.search(r"\[Errno -?\d+\] ([^'\")]+)", text)
    if match:
        return match.group(1).strip()
    text = redact_url(re.sub(r"<[^>]*>", "", text))
    return text if len(text) <= 200 else text[:200] + "…"
