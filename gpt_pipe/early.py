"""The connection set up while gpt-pipe starts: for a single run, DNS, TCP and TLS to the
API host begin in a thread before click and requests are imported, and the request then
goes out on that connection (client.py hands it to urllib3).

Only the standard library, and nothing here prints: whenever a run might not send a
request (--help, --version, --dry-run, --replay, --batch, --list-models, anything the
command line would refuse, no prompt, no key, a proxy, a config file that could refuse
the run), or anything about the early connection fails, gpt-pipe takes the normal path.
Certificates are checked exactly as requests checks them (the same CA bundle rules,
hostname checked, TLS 1.2 at least).
"""

from __future__ import annotations

import _thread  # not threading: the connection must start before anything costly imports
import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_lock = _thread.allocate_lock()
_plan: dict[str, Any] | None = None  # scheme, host, port of the early connection
_running: Any = None  # a lock the connecting thread holds until it is done
_socket: Any = None
_stdin_head = b""
_used = False


def start(argv: list[str]) -> None:
    """Start connecting, in a thread, if this command line surely sends a chat request
    (GPT_PIPE_EARLY=0 turns it off)."""
    global _running, _plan
    if os.environ.get("GPT_PIPE_EARLY", "1") == "0":
        return
    try:
        plan = _scan(argv)
        if plan is None:
            return
        _plan = plan
        import socket  # noqa: F401  (here, not in the thread: there it would wait on the imports' locks)

        _running = _thread.allocate_lock()
        _running.acquire()
        # The thread wants the GIL back after each step of the handshake while the main
        # thread imports: a short switch interval lets it have it (process.start_streaming
        # restores the default).
        sys.setswitchinterval(0.0005)
        _thread.start_new_thread(_connect, (_plan, _running))
    except Exception:  # the normal path, silently
        _plan = _running = None


def _scan(argv: list[str]) -> dict[str, Any] | None:
    """Where the run will connect ({scheme, host, port, timeout, bundle}), or None when it
    might not send a chat request: the command line read by the option table's scanner,
    the config through the one config reader, the rules between options checked as cli
    checks them."""
    from gpt_pipe import config, options
    from gpt_pipe.argv import profile, scan
    from gpt_pipe.exitcodes import GptPipeError

    found = scan(argv)
    if not found.ok or any(not options.BY_DEST[dest].request for dest in found.given):
        return None
    values = options.defaults()
    try:
        layers = config.load(profile(argv))
        values.update(layers.default_map)
        for dest, given in found.given.items():
            values[dest] = tuple(given) if options.BY_DEST[dest].multiple else given[-1]
        options.check(values, set(found.given), found.words)
        from gpt_pipe.keys import key_source

        # GreenPT's endpoint without a key is refused (78); another server may need none.
        key_source(values, lambda dest: "line" if dest in found.given else layers.level.get(dest, "default"))
    except GptPipeError:
        return None  # the run is refused: the normal path says why
    if not any(word.strip() for word in found.words) and not _stdin_has_prompt(values):
        return None
    from gpt_pipe.urls import api_base, origin

    where = origin(api_base(values["base_url"]))
    if where is None or _proxied():
        return None
    scheme, host, port = where
    from gpt_pipe.paths import expand

    return {"scheme": scheme, "host": host, "port": port, "timeout": values["connect_timeout"],
            "ca_bundle": expand(values["ca_bundle"])}


def _stdin_has_prompt(values: dict[str, Any]) -> bool:
    """Whether stdin already holds text that is not blank, read without losing it: a pipe's
    waiting bytes are kept for messages.read_stdin, a file's are read in place."""
    global _stdin_head
    if values["no_stdin"] or values["messages"] == "-":
        return False
    import stat

    try:
        mode = os.fstat(0).st_mode
        if stat.S_ISREG(mode):
            return bool(os.pread(0, 4096, os.lseek(0, 0, os.SEEK_CUR)).strip())
        if not (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)):
            return False
        import fcntl
        import termios

        waiting = int.from_bytes(fcntl.ioctl(0, termios.FIONREAD, b"\0\0\0\0"), sys.byteorder)
        if waiting <= 0:
            return False
        _stdin_head = os.read(0, min(waiting, 65536))
        return bool(_stdin_head.strip())
    except (OSError, ValueError):
        return False


def stdin_head() -> bytes:
    """The bytes of stdin the pre-scan read (once): they come before the rest of stdin."""
    global _stdin_head
    head, _stdin_head = _stdin_head, b""
    return head


def _connect(plan: dict[str, Any], running: Any) -> None:
    global _socket
    try:
        import socket

        if plan["scheme"] == "https":  # a bundle the run would refuse: no connection at all
            from gpt_pipe.tls import ca_bundle, context

            tls = context(ca_bundle(plan["ca_bundle"])[0])
        sock = socket.create_connection((plan["host"], plan["port"]), timeout=plan["timeout"])
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if plan["scheme"] == "https":
                sock = tls.wrap_socket(sock, server_hostname=plan["host"].rstrip("."))
        except BaseException:
            sock.close()
            raise
        _socket = sock
    except Exception:
        pass  # DNS, refused, TLS refused: the normal path tries (and reports) again
    finally:
        running.release()


def _proxied() -> bool:
    """Whether any proxy variable (http_proxy, ALL_PROXY, Https_Proxy: any case) is set:
    then requests' own helpers decide where the request goes, and the early connection
    never second-guesses them (NO_PROXY alone sends nothing through a proxy)."""
    return any(name.lower().endswith("_proxy") and name.lower() != "no_proxy" and value.strip()
               for name, value in os.environ.items())


def take(scheme: str, host: str, port: int, wait: float) -> Any:
    """The early connection, if it was made to this origin and is still open; once."""
    global _socket, _plan, _used
    with _lock:
        plan, running = _plan, _running
        if plan is None or running is None:
            return None
        _plan = None
    if running.acquire(timeout=wait):
        running.release()
    sock, _socket = _socket, None
    if sock is None or (plan.get("scheme"), plan.get("host"), plan.get("port")) != (scheme, host, port):
        _close(sock)
        return None
    if not _still_open(sock):
        _close(sock)
        return None
    _used = True
    return sock


def _still_open(sock: Any) -> bool:
    """Whether the server kept the connection while gpt-pipe started (a TLS 1.3 server's
    session tickets are read and dropped on the way: they make the socket readable)."""
    import ssl

    try:
        sock.setblocking(False)
        try:
            sock.recv(1)
        finally:
            sock.setblocking(True)
    except (ssl.SSLWantReadError, BlockingIOError, InterruptedError):
        return True  # nothing to read: open, and quiet as it should be
    except (OSError, ValueError):
        return False
    return False  # b"": closed; anything else: talking out of turn


def used() -> bool:
    """Whether the last request went out on the early connection (asked once)."""
    global _used
    was, _used = _used, False
    return was


def pending() -> bool:
    return _plan is not None


def _close(sock: Any) -> None:
    if sock is not None:
        try:
            sock.close()
        except OSError:
            pass
