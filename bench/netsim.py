"""A realistic network on loopback, in userland: a TCP relay on 127.0.0.1 that delays
every byte by half a round trip each way, and holds the client's first bytes until one
round trip after the connection was opened (on a real network, connect() returns only
after the SYN and SYN-ACK have crossed it; here it returns at once, so the wait is put on
the first bytes, and work done between connect and the first send overlaps it, as it
would). No kernel features (netem, namespaces) are needed; standard library only.

Also the keep-alive reference client of the benchmark (``keepalive``): one
requests.Session per worker thread, iter_lines to the end of each stream.
"""

from __future__ import annotations

import heapq
import socket
import threading
import time


class DelayRelay:
    """127.0.0.1:port -> 127.0.0.1:upstream with ``rtt`` seconds of round trip."""

    def __init__(self, upstream: int, rtt: float) -> None:
        self.upstream = upstream
        self.half = rtt / 2
        self.rtt = rtt
        self.connections = 0
        self._stop = threading.Event()
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(128)
        self.port = self._sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._stop.set()
        self._sock.close()

    def __enter__(self) -> DelayRelay:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._sock.accept()
            except OSError:
                return
            self.connections += 1
            try:
                server = socket.create_connection(("127.0.0.1", self.upstream))
            except OSError:
                client.close()
                continue
            for sock in (client, server):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            # The client's first bytes wait for the handshake a real network would make first.
            opened = time.monotonic()
            _Pipe(client, server, self.half, not_before=opened + self.rtt)
            _Pipe(server, client, self.half, not_before=opened)


class _Pipe:
    """One direction: bytes are read at once and written ``delay`` later, in order."""

    def __init__(self, src: socket.socket, dst: socket.socket, delay: float, not_before: float) -> None:
        self.src, self.dst, self.delay, self.not_before = src, dst, delay, not_before
        self._queue: list[tuple[float, int, bytes]] = []
        self._ready = threading.Condition()
        self._count = 0
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._write, daemon=True).start()

    def _read(self) -> None:
        try:
            while True:
                data = self.src.recv(65536)
                due = max(time.monotonic(), self.not_before) + self.delay
                with self._ready:
                    heapq.heappush(self._queue, (due, self._count, data))
                    self._count += 1
                    self._ready.notify()
                if not data:
                    return
        except OSError:
            with self._ready:
                heapq.heappush(self._queue, (time.monotonic(), self._count, b""))
                self._ready.notify()

    def _write(self) -> None:
        try:
            while True:
                with self._ready:
                    while not self._queue:
                        self._ready.wait()
                    due, _, data = self._queue[0]
                    wait = due - time.monotonic()
                    if wait > 0:
                        self._ready.wait(wait)
                        continue
                    heapq.heappop(self._queue)
                if not data:
                    self.dst.shutdown(socket.SHUT_WR)
                    return
                self.dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (self.src, self.dst):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


KEEPALIVE_CLIENT = r'''
"""The keep-alive reference client: --batch's job in 30 lines of requests."""
import json, os, sys, threading
from concurrent.futures import ThreadPoolExecutor
import requests

url = os.environ["GREENPT_BASE_URL"] + "/chat/completions"
key = os.environ["GREENPT_API_KEY"]
local = threading.local()

def one(line):
    if not hasattr(local, "session"):
        local.session = requests.Session()
    body = {"model": "green-l", "stream": True, "messages": [{"role": "user", "content": json.loads(line)["prompt"]}]}
    text = []
    with local.session.post(url, json=body, headers={"Authorization": f"Bearer {key}"}, stream=True) as r:
        for raw in r.iter_lines():
            if raw.startswith(b"data: ") and raw[6:] != b"[DONE]":
                for choice in json.loads(raw[6:]).get("choices", []):
                    text.append(choice.get("delta", {}).get("content") or "")
    return json.dumps({"content": "".join(text)})

with open(sys.argv[1]) as f, ThreadPoolExecutor(int(sys.argv[2])) as pool:
    for result in pool.map(one, f):
        print(result, flush=True)
'''
