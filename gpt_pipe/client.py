"""The HTTP exchange, through requests: request, status, body reads, and their failures.

Every requests/urllib3 failure leaves this module as a GptPipeError with its exit code.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from typing import Any

import requests

from gpt_pipe import __version__
from gpt_pipe.body import PROGRESS_TIMEOUT, Progress, final_response, read_capped
from gpt_pipe.exitcodes import RETRY_STATUSES, ExitCode, GptPipeError, for_http_status
from gpt_pipe.keys import excerpt, redact, redact_url
from gpt_pipe.log import Log
from gpt_pipe.options import KEY_VARIABLE
from gpt_pipe.safejson import loads
from gpt_pipe.sse import MAX_EVENT
from gpt_pipe.urls import host, hostname, is_loopback

TYPE_CHECKING = False
if TYPE_CHECKING:
    from gpt_pipe.ratelimit import Pace
    from gpt_pipe.settings import Settings

ERROR_BODY_LIMIT = 65536
ERROR_BODY_SECONDS = 10.0  # an error body comes at once; one dripped byte by byte is cut short


class BearerAuth(requests.auth.AuthBase):
    """The API key as the request's one credential. Set as the session's auth, it also keeps
    requests from sending the base URL's user:password as Basic auth instead."""

    def __init__(self, key: str) -> None:
        self._key = key

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        if self._key:  # "": a server that was given no key (keys.key_source) gets none
            request.headers["Authorization"] = f"Bearer {self._key}"
        return request


def _pools(use_early: bool, sockets: list[Any]) -> dict[str, Any]:
    """urllib3 pool classes whose connections note their socket in ``sockets`` (so that a
    response head that never ends can be cut from another thread, see _send_bounded) and,
    with ``use_early``, take the start-up's connection (early.take) when it goes to their
    origin. Only public urllib3 names: ConnectionCls, connect(), sock, is_verified."""
    import urllib3.connection
    import urllib3.connectionpool

    from gpt_pipe import early

    FinalResponse = final_response()

    def wait(timeout: Any) -> float:
        return float(timeout) if isinstance(timeout, (int, float)) else 10.0

    def taken(connection: Any, scheme: str) -> bool:
        sock = None if connection.proxy or not use_early else \
            early.take(scheme, connection.host, connection.port, wait(connection.timeout))
        if sock is not None:
            connection.sock = sock
        return sock is not None

    def noted(connection: Any) -> None:
        sockets[:] = [sock for sock in sockets if sock.fileno() >= 0]
        if connection.sock is not None:
            sockets.append(connection.sock)

    class NotedHTTPConnection(urllib3.connection.HTTPConnection):
        response_class = FinalResponse

        def connect(self) -> None:
            if not taken(self, "http"):
                super().connect()
            noted(self)

    class NotedHTTPSConnection(urllib3.connection.HTTPSConnection):
        response_class = FinalResponse

        def connect(self) -> None:
            if taken(self, "https"):
                self.is_verified = True  # the early connection checked the chain and the hostname
            else:
                super().connect()
            noted(self)

    class NotedHTTPConnectionPool(urllib3.connectionpool.HTTPConnectionPool):
        ConnectionCls = NotedHTTPConnection

    class NotedHTTPSConnectionPool(urllib3.connectionpool.HTTPSConnectionPool):
        ConnectionCls = NotedHTTPSConnection

    return {"http": NotedHTTPConnectionPool, "https": NotedHTTPSConnectionPool}


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
            # Not kept while this thread waits for the next job: the response and its request
            # body (a batch line may be 32 MiB) are the caller's to free.
            job = box = done = None

    def run(self, job: Any, timeout: float) -> tuple[bool, Any] | None:
        """(True, result) or (False, exception); None when ``timeout`` passed first."""
        done = threading.Lock()
        done.acquire()
        box: list[tuple[bool, Any]] = []
        self._jobs.put((job, box, done))
        self.pending = done  # the last job's: released when it ends, however late
        if not done.acquire(timeout=timeout):
            return None
        return box[0]


def pace_for(settings: Settings) -> Pace:
    """The pace of a run's requests: --rate, and what other runs recorded of this origin
    (waited for at most --max-retry-wait)."""
    from gpt_pipe.ratelimit import Pace

    return Pace(settings.rate, origin=host(settings.base_url).lower(), most=settings.max_retry_wait)


class Client:
    """One API endpoint with one key; ``post_chat`` and ``list_models`` talk to it."""

    @classmethod
    def for_settings(cls, settings: Settings, key: str, log: Log, keep_alive: bool = False,
                     pace: Pace | None = None) -> Client:
        """The client a run's settings ask for (--batch: ``keep_alive``, one per worker, and
        the ``pace`` they share)."""
        client = cls(settings.base_url, key, settings.connect_timeout, settings.idle_timeout, log,
                     settings.ca_bundle, settings.progress_timeout, settings.max_event, keep_alive)
        client.pace = pace if pace is not None else pace_for(settings)
        return client

    def __init__(self, base_url: str, api_key: str, connect_timeout: float, idle_timeout: float, log: Log,
                 ca_bundle: str | None = None, progress_timeout: float = PROGRESS_TIMEOUT,
                 max_event: int = MAX_EVENT, keep_alive: bool = False) -> None:
        self.base_url = base_url.rstrip("/")
        self.shown_url = redact_url(self.base_url)
        from gpt_pipe.ratelimit import Pace

        self.pace = Pace()  # what the server says of its rate limit (a batch's workers share one)
        # Certificates are always checked: --ca-bundle, else the variables requests honours,
        # else certifi's bundle (requests' own default); tls.py holds the rule. Over http://
        # only a redirect to https:// would use them: requests checks them then.
        self._verify: str | bool = True
        if ca_bundle or self.base_url.lower().startswith("https:"):
            from gpt_pipe.tls import ca_bundle as bundle

            self._verify = bundle(ca_bundle)[0]
        else:
            self._verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        if base_url.lower().startswith("http://") and not is_loopback(hostname(base_url)):
            log.warn(f"sending the API key over plain http:// to {host(base_url)}; anyone on the way can read it")
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

        # A single run whose connection was set up during start-up: the pools of this session
        # take it instead of opening one. Every connection's socket is noted (self._sockets).
        self._sockets: list[Any] = []
        pools = _pools(early.pending() and not keep_alive, self._sockets)
        for prefix in ("http://", "https://"):
            session.get_adapter(prefix).poolmanager.pool_classes_by_scheme = pools
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
        """A response hook: a redirect is followed only to an http(s) URL that parses, and
        its body is never read (requests would read it whole, gzip decoded, before following:
        a bomb behind a 302). Closing the body first leaves requests nothing to read; the
        connection is not reused."""
        if not response.is_redirect:
            return response
        try:
            response.raw.close()
        except (OSError, ValueError, AttributeError):
            pass
        location = response.headers.get("Location", "")
        from urllib.parse import urljoin, urlsplit

        try:
            target = urljoin(response.url, location)
            parts = urlsplit(target)
            ok = parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
        except ValueError:
            target, ok = location, False
        if not ok:
            shown = excerpt(redact_url(target), 200)
            response.close()
            raise GptPipeError(
                f"protocol error: {host(response.url)} redirected to {shown!r}, which is not an http(s) URL",
                ExitCode.PROTOCOL,
            )
        if response.url.lower().startswith("https:") and parts.scheme.lower() == "http":
            shown = excerpt(redact_url(target), 200)
            self._log.warn(f"{host(response.url)} redirected from https:// to plain http:// ({shown}); "
                           "the key is not sent there")
        return response

    def _send(self, method: str, path: str, data: bytes | None, headers: dict[str, str],
              limit: float | None = None) -> requests.Response:
        url = self.base_url + path
        session = self._session
        try:
            prepared = session.prepare_request(requests.Request(method, url, data=data, headers=headers))
        except (requests.RequestException, ValueError):
            from gpt_pipe.failures import bad_base_url

            raise bad_base_url(self.base_url) from None
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
                from gpt_pipe.failures import before_sending, reason

                if not reused or before_sending(exc) or isinstance(exc, requests.exceptions.ConnectTimeout):
                    raise
                # A kept-alive connection the server had closed while it sat in the pool:
                # the request never reached it. Once more, on a new connection.
                if self._log.debugging:
                    self._log.debug(f"the kept-alive connection was stale ({reason(exc)}); sending on a new one")
                response = self._send_bounded(send, limit)
        except (requests.RequestException, OSError) as exc:
            from gpt_pipe.failures import failure

            raise failure(exc, self.base_url, path, self.idle_timeout) from None
        if self._log.debugging:
            self._log.debug(f"< HTTP {response.status_code} {response.reason}")
            for name, value in response.headers.items():
                self._log.debug(f"< {name}: {value}")
        from gpt_pipe.ratelimit import read

        reading = read(response.headers)
        if reading and self._log.debugging:
            self._log.debug(f"rate limit read: {reading.describe()}")
        hinted = self.pace.learn(reading, response.status_code)
        if 200 <= response.status_code < 300:
            return response
        if response.status_code == 429:
            try:
                error = self._status_error(response)
            finally:
                response.close()
            # A 429 that names no Retry-After but a reset is waited for until that reset.
            error.retry_after = hinted
            error.rate_limited = True
            raise error
        try:
            raise self._status_error(response)
        finally:
            response.close()

    def _send_bounded(self, send: Any, limit: float | None) -> requests.Response:
        """``send()`` until the response head has arrived, for at most the progress timeout.

        A read timeout bounds each silence, not a status line dripped a byte at a time; the
        send runs in a thread of its own (one per client, kept for its next request) so
        that this wait has an end. When it ends, the connection's socket is shut down, which
        ends the stuck read: the thread is free again, not left behind (a batch of such lines
        would otherwise run out of threads).
        """
        bound = self.progress_timeout if limit is None else min(self.progress_timeout, max(0.0, limit))
        if self._sender is None:
            self._sender = _Sender()
        outcome = self._sender.run(send, bound)
        if outcome is None:
            for sock in self._sockets:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass  # closed meanwhile
            if not self._sender.pending.acquire(timeout=1.0):
                self._sender = None  # stuck elsewhere (a name lookup): the next request gets its own
            if bound < self.progress_timeout:  # the caller's deadline, not the server's silence
                raise GptPipeError(f"no response from {host(self.base_url)} within --max-time", ExitCode.TEMPFAIL)
            raise GptPipeError(
                f"{host(self.base_url)} sent no complete response head within {self.progress_timeout:g} s "
                "(--progress-timeout)",
                ExitCode.TEMPFAIL,
            )
        ok, value = outcome
        if not ok:
            raise value
        return value

    def _status_error(self, response: requests.Response) -> GptPipeError:
        from gpt_pipe.failures import error_detail, parse_retry_after

        status = response.status_code
        line = f"HTTP {status}" + (f" {response.reason}" if response.reason else "")
        try:
            body = read_capped(response, self.idle_timeout, Progress(ERROR_BODY_SECONDS), ERROR_BODY_LIMIT, None)
        except GptPipeError:
            body = b""
        detail = error_detail(body, response.headers.get("Content-Type", ""))
        message = f"{line}: {detail}" if detail else line
        if status == 400 and "response_format" in body.decode("utf-8", "replace").lower():
            message += " (this server may not take response_format: try --schema-mode prompt)"
        if status == 401 and not self._key:
            message += (f"; no key was sent to {host(self.base_url)} ({KEY_VARIABLE} goes only to GreenPT's "
                        "endpoint): give it one with --api-key-file, --api-key-cmd or --api-key-env VAR")
        lowered = detail.lower()
        if status == 404 and response.request.method == "POST" and (
                not detail or "invalid url" in lowered or ("not found" in lowered and "model" not in lowered)):
            # No API error in the body (an API's own 404 names the model), or OpenAI's own
            # "Invalid URL (POST /chat/completions)": the path is wrong.
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
            if "data:image/" in text:  # an image is shown by its type and size, never whole
                from gpt_pipe.attach import shorten_data_urls

                text = shorten_data_urls(text)
            log.debug("> " + (text if len(text) <= 4000 else text[:4000] + f"… ({len(text)} characters)"))
