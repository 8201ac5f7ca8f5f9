"""A local HTTP server for gpt-pipe's tests and demo, on 127.0.0.1 only.

It writes exactly the bytes a test asks for, with the framing it asks for (chunked,
close-delimited or Content-Length, gzip or not), and can wait at a ``Gate`` until the test
says go: that is how tests prove real-time delivery without a clock. Standard library only.

    python tests/server.py --demo --run 'echo "Hello" | gpt-pipe'

starts the demo server, runs the command with GREENPT_BASE_URL/GREENPT_API_KEY pointing
at it, and exits with the command's status.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

GATE_TIMEOUT = 20.0  # a gate nobody opens is a failed test, not a hung suite


class Gate:
    """The server stops at a gate until the test opens it."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def open(self) -> None:
        self._event.set()

    def wait(self, timeout: float = GATE_TIMEOUT) -> bool:
        return self._event.wait(timeout)


@dataclass
class Pause:
    """Sleep (demo only: tests use gates)."""

    seconds: float


class Cut:
    """Close the connection at once, mid-body."""


class Hang:
    """Send nothing more until the server stops (a stalled stream)."""


class UntilGone:
    """Keep sending SSE comments (bounded) until the client has gone; then set ``client_gone``."""


@dataclass
class Raw:
    """Bytes written to the socket as they are, outside any framing."""

    data: bytes


Step = bytes | Gate | Pause | Cut | Hang | Raw | UntilGone


@dataclass
class Reply:
    steps: Iterable[Step] = field(default_factory=list)  # may be a generator: sent as produced
    status: int = 200
    reason: str = ""
    content_type: str | None = "text/event-stream"
    framing: str = "chunked"  # "chunked", "close" or "length"
    gzip: bool = False
    headers: dict[str, str] = field(default_factory=dict)
    length: int | None = None  # Content-Length to announce for lazily produced steps
    on_sent: Callable[[], None] | None = None  # called once the whole reply has been written
    head: bool = True  # False: no status line or headers; the steps write them (Raw)


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 402: "Payment Required", 403: "Forbidden",
           404: "Not Found", 422: "Unprocessable Entity", 429: "Too Many Requests", 500: "Internal Server Error",
           502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}


class Server:
    """Answers every request with ``reply`` (a Reply, or a function of the Request).

    ``tls=(certfile, keyfile)`` serves HTTPS. ``tunnel_to=port`` makes it a proxy that
    answers CONNECT by piping the connection to 127.0.0.1:port, whatever host was asked
    for (so no name is ever looked up).
    """

    def __init__(self, reply: Reply | Callable[[Request], Reply] | None = None,
                 tls: tuple[str, str] | None = None, tunnel_to: int | None = None, keep_alive: bool = False,
                 port: int = 0) -> None:
        self.reply = reply or Reply(sse_chunks(["Hello"], finish="stop"))
        self.requests: list[Request] = []
        self.connections = 0  # TCP connections accepted (with tls: before the handshake)
        self.handshakes = 0  # TLS handshakes completed
        self.keep_alive = keep_alive  # serve further requests on a connection after a framed reply
        self.client_gone = threading.Event()
        self._tunnel_to = tunnel_to
        self._tls = None
        if tls:
            import ssl

            self._tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self._tls.load_cert_chain(*tls)
        self._stop = threading.Event()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", port))
        self._sock.listen(16)
        self.port = self._sock.getsockname()[1]
        self._threads: list[threading.Thread] = []
        self._accepter = threading.Thread(target=self._accept, daemon=True)
        self._accepter.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def close(self) -> None:
        self._stop.set()
        try:
            self._sock.close()
        except OSError:
            pass
        for thread in self._threads:
            thread.join(5)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            self.connections += 1
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            if self._tls:
                conn.settimeout(30)
                conn = self._tls.wrap_socket(conn, server_side=True)
                self.handshakes += 1
            while not self._stop.is_set():
                request = _read_request(conn)
                if request is None:
                    return
                self.requests.append(request)
                if request.method == "CONNECT" and self._tunnel_to:
                    self._tunnel(conn)
                    return
                reply = self.reply(request) if callable(self.reply) else self.reply
                if not self._write(conn, reply):
                    return
        except OSError:
            pass
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def _tunnel(self, conn: socket.socket) -> None:
        upstream = socket.create_connection(("127.0.0.1", self._tunnel_to), timeout=30)
        conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")

        def pipe(src: socket.socket, dst: socket.socket) -> None:
            try:
                while data := src.recv(65536):
                    dst.sendall(data)
            except OSError:
                pass
            finally:
                for sock in (src, dst):
                    try:
                        sock.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass

        other = threading.Thread(target=pipe, args=(upstream, conn), daemon=True)
        other.start()
        pipe(conn, upstream)
        other.join(30)
        upstream.close()

    def _write(self, conn: socket.socket, reply: Reply) -> bool:
        """Write one reply; whether the connection may carry another request."""
        keep = self.keep_alive and reply.framing in ("chunked", "length") and reply.head
        pieces: Iterable[Step] = reply.steps
        if reply.gzip:
            pieces = _gzipped(pieces)
        if reply.framing == "length" and reply.length is None:
            pieces = list(pieces)
        head = [f"HTTP/1.1 {reply.status} {reply.reason or REASONS.get(reply.status, 'Status')}"]
        if reply.content_type:
            head.append(f"Content-Type: {reply.content_type}")
        if reply.gzip:
            head.append("Content-Encoding: gzip")
        if reply.framing == "chunked":
            head.append("Transfer-Encoding: chunked")
        elif reply.framing == "length":
            length = reply.length
            if length is None:
                length = sum(len(p) for p in pieces if isinstance(p, bytes))  # type: ignore[union-attr]
            head.append(f"Content-Length: {length}")
        if not keep:
            head.append("Connection: close")
        head.extend(f"{k}: {v}" for k, v in reply.headers.items())
        if reply.head:
            conn.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
        for piece in pieces:
            if isinstance(piece, bytes):
                if not piece:
                    continue
                if reply.framing == "chunked":
                    piece = b"%x\r\n%s\r\n" % (len(piece), piece)
                conn.sendall(piece)
            elif isinstance(piece, Raw):
                conn.sendall(piece.data)
            elif isinstance(piece, Gate):
                if not piece.wait():
                    return False
            elif isinstance(piece, Pause):
                time.sleep(piece.seconds)
            elif isinstance(piece, Cut):
                conn.shutdown(socket.SHUT_RDWR)
                return False
            elif isinstance(piece, Hang):
                self._stop.wait()
                return False
            elif isinstance(piece, UntilGone):
                ping = b"7\r\n: ping\n\r\n" if reply.framing == "chunked" else b": ping\n"
                try:
                    for _ in range(2000):  # at most 20 s
                        conn.sendall(ping)
                        if self._stop.wait(0.01):
                            return
                except OSError:
                    self.client_gone.set()
                return False
        if reply.framing == "chunked":
            conn.sendall(b"0\r\n\r\n")
        if reply.on_sent is not None:
            reply.on_sent()
        return keep


def _gzipped(pieces: Iterable[Step]) -> Iterable[Step]:
    # A sync flush after every piece: each delta can be decoded as soon as it arrives.
    compressor = zlib.compressobj(wbits=31)
    for piece in pieces:
        yield compressor.compress(piece) + compressor.flush(zlib.Z_SYNC_FLUSH) if isinstance(piece, bytes) else piece
    yield compressor.flush()


def _read_request(conn: socket.socket) -> Request | None:
    conn.settimeout(30)
    data = b""
    while b"\r\n\r\n" not in data:
        more = conn.recv(65536)
        if not more:
            return None
        data += more
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    received = bytearray(body)  # += on bytes would copy a big body once per read
    while len(received) < length:
        more = conn.recv(1 << 20)
        if not more:
            break
        received += more
    return Request(method, path, headers, bytes(received))


# Building blocks for replies ------------------------------------------------------------

class RateWindow:
    """A server's rate limit, as a reply function: a fixed window of ``limit`` requests per
    ``seconds``, told in one header style (openai, ietf, structured, tokens, retry-after, or none);
    a request beyond it gets a 429."""

    def __init__(self, limit: int, seconds: float, style: str) -> None:
        self.limit, self.seconds, self.style = limit, seconds, style
        self.start = time.monotonic()
        self.used = 0
        self.refused = 0
        self.served = 0
        self.lock = threading.Lock()

    def __call__(self, request) -> Reply:
        with self.lock:
            now = time.monotonic()
            if now - self.start >= self.seconds:
                self.start += (now - self.start) // self.seconds * self.seconds
                self.used = 0
            reset = self.start + self.seconds - now
            allowed = self.used < self.limit
            if allowed:
                self.used += 1
                self.served += 1
            else:
                self.refused += 1
            headers = self.headers(max(0, self.limit - self.used), reset, allowed)
        if allowed:
            return Reply(sse_chunks([request.json["messages"][-1]["content"]]), headers=headers)
        return Reply([b'{"error": {"message": "rate limited"}}'], status=429, content_type="application/json",
                     framing="length", headers=headers)

    def headers(self, remaining: int, reset: float, allowed: bool) -> dict[str, str]:
        if self.style == "openai":
            return {"x-ratelimit-limit-requests": str(self.limit), "x-ratelimit-remaining-requests": str(remaining),
                    "x-ratelimit-reset-requests": f"{int(reset * 1000)}ms"}
        if self.style == "ietf":
            return {"RateLimit-Limit": str(self.limit), "RateLimit-Remaining": str(remaining),
                    "RateLimit-Reset": f"{reset:.2f}", "RateLimit-Policy": f"{self.limit};w={self.seconds:g}"}
        if self.style == "structured":
            return {"RateLimit": f'"default";r={remaining};t={reset:.2f}',
                    "RateLimit-Policy": f'"default";q={self.limit};w={self.seconds:g}'}
        if self.style == "tokens":  # a token limit only: each request costs 100 tokens
            return {"x-ratelimit-limit-tokens": str(self.limit * 100),
                    "x-ratelimit-remaining-tokens": str(remaining * 100),
                    "x-ratelimit-reset-tokens": f"{reset:.3f}s"}
        if self.style == "retry-after" and not allowed:
            return {"Retry-After": str(max(1, round(reset + 0.5)))}
        return {}


def refused_once(headers: dict[str, str]) -> tuple[Callable[[Request], Reply], list[float]]:
    """A reply function that answers the first request with a 429 carrying ``headers`` and
    the others with "ok"; and the list of the requests' arrival times."""
    arrivals: list[float] = []

    def answer(request: Request) -> Reply:
        arrivals.append(time.monotonic())
        if len(arrivals) == 1:
            return Reply([b'{"error": {"message": "slow down"}}'], status=429, content_type="application/json",
                         framing="length", headers=headers)
        return Reply(sse_chunks(["ok"]))

    return answer, arrivals


def replies(*answers: Reply) -> Callable[[Request], Reply]:
    """Answer the n-th request with the n-th reply (the last one repeats)."""
    served = []

    def answer(request: Request) -> Reply:
        served.append(request)
        return answers[min(len(served), len(answers)) - 1]

    return answer


def chunk(content: str | None = None, finish: str | None = None, role: str | None = None, index: int = 0,
          **extra: Any) -> dict[str, Any]:
    """One chat.completion.chunk as GreenPT sends it."""
    delta: dict[str, Any] = {}
    if role is not None:
        delta["role"] = role
    if content is not None:
        delta["content"] = content
    obj = {"id": "cmpl-12345", "object": "chat.completion.chunk", "created": 1699044968, "model": "green-l",
           "choices": [{"index": index, "delta": delta, "finish_reason": finish}]}
    obj.update(extra)
    return obj


def event(obj: Any, sep: bytes = b"\n") -> bytes:
    data = obj if isinstance(obj, bytes) else json.dumps(obj, ensure_ascii=False).encode()
    return b"data: " + data + sep + sep


def sse_chunks(texts: Iterable[str], finish: str | None = "stop", done: bool = True) -> list[bytes]:
    """The GreenPT example's shape: a role+content chunk, content chunks, a finish chunk, [DONE]."""
    out = []
    for i, text in enumerate(texts):
        out.append(event(chunk(text, role="assistant" if i == 0 else None)))
    if finish is not None:
        out.append(event(chunk(finish=finish)))
    if done:
        out.append(b"data: [DONE]\n\n")
    return out


# The demo -------------------------------------------------------------------------------

def demo_reply(request: Request) -> Reply:
    if request.path.endswith("/models"):
        body = json.dumps({"object": "list", "data": [{"id": "green-l"}, {"id": "green-r"}]}).encode()
        return Reply([body], content_type="application/json", framing="length")
    try:
        content = request.json["messages"][-1]["content"]
        images = 0
        if isinstance(content, list):  # content parts (-a): the text, and how many images
            images = sum(part.get("type") == "image_url" for part in content)
            content = " ".join(part.get("text", "") for part in content if part.get("type") == "text")
        prompt = content.strip()
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        prompt, images = "", 0
    seen = f" and sent {images} image{'' if images == 1 else 's'}" if images else ""
    words = (f"Hello! You said {prompt!r}{seen}. This answer comes from gpt-pipe's local test server, "
             "streamed word by word as Server-Sent Events.").split(" ")
    steps: list[Step] = []
    for i, piece in enumerate(sse_chunks([w if i == 0 else " " + w for i, w in enumerate(words)])):
        steps += [piece, Pause(0.05)] if i < len(words) else [piece]
    return Reply(steps)


def main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--demo", action="store_true", help="serve the demo answer")
    parser.add_argument("--run", metavar="CMD", help="run CMD against the server, then stop")
    parser.add_argument("--port", type=int, default=0, help="listen on this port of 127.0.0.1 (default: any free one)")
    args = parser.parse_args(argv)
    with Server(demo_reply, port=args.port) as server:
        if not args.run:
            print(f"serving on {server.url} (Ctrl-C stops); try: gpt-pipe --base-url {server.url} \"Hello\"",
                  flush=True)
            try:
                threading.Event().wait()
            except KeyboardInterrupt:
                return 0
        env = dict(os.environ, GREENPT_BASE_URL=server.url, GREENPT_API_KEY="sk-demo-key-not-secret",
                   NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")
        bindir = os.path.dirname(os.path.abspath(sys.executable))
        env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
        print(f"$ {args.run}", file=sys.stderr, flush=True)
        return subprocess.run(args.run, shell=True, env=env).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
