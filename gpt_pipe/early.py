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

from gpt_pipe.settings import DEFAULT_BASE_URL

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# The command's options as the pre-scan needs them (tests/test_early.py checks this table
# against cli.py's click options): a flag, or the check its value must pass.
FLAGS = frozenset({
    "--full", "--jsonl", "--json", "--usage", "--show-reasoning", "--dry-run", "-n", "--no-newline",
    "--list-models", "--keep-order", "--resume", "-q", "--quiet", "--debug", "--no-stdin", "--raw-control",
    "-h", "--help", "-V", "--version", "--text", "--continue", "--new", "--batch-text",
})
_NO_REQUEST = frozenset({"-h", "--help", "-V", "--version", "--dry-run", "--list-models", "--batch", "--replay",
                         "--keep-order", "--resume", "--output", "-P", "--parallel", "--batch-text"})


def _text(value: str) -> bool:
    return True


def _number(low: float | None = None, low_open: bool = False):  # type: ignore[no-untyped-def]
    def check(value: str) -> bool:
        try:
            number = float(value)
        except ValueError:
            return False
        return number == number and (low is None or number > low or (number == low and not low_open))
    return check


def _integer(low: int | None = None, high: int | None = None):  # type: ignore[no-untyped-def]
    def check(value: str) -> bool:
        try:
            number = int(value.strip())
        except ValueError:
            return False
        return (low is None or number >= low) and (high is None or number <= high)
    return check


def _size(value: str) -> bool:
    text = value.strip().lower().removesuffix("ib").removesuffix("b")
    unit = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}.get(text[-1:], 1)
    try:
        return float(text[:-1] if unit != 1 else text) * unit >= 1024
    except ValueError:
        return False


def _key_value(value: str) -> bool:
    key, sep, _ = value.partition("=")
    return bool(sep and key.strip()) and key.strip() not in ("messages", "stream")


_SECONDS = _number(0, low_open=True)
VALUES: dict[str, Any] = {
    "-s": _text, "--system": _text, "--messages": _text, "-c": _text, "--conversation": _text,
    "-m": _text, "--model": _text, "--base-url": _text, "--api-key-file": _text, "--api-key-cmd": _text,
    "--temperature": _number(), "--max-tokens": _integer(1), "--top-p": _number(), "--stop": _text,
    "--seed": _integer(), "-o": _key_value, "--option": _key_value, "--reasoning-effort": _text, "--tee": _text,
    "--replay": _text, "-P": _integer(1, 256), "--parallel": _integer(1, 256), "--output": _text,
    "--connect-timeout": _SECONDS, "--idle-timeout": _SECONDS, "--progress-timeout": _SECONDS,
    "--max-time": _SECONDS, "--retries": _integer(0), "--max-retry-wait": _number(0), "--ca-bundle": _text,
    "--max-event": _size, "--max-answer": _size, "--file-wait": _SECONDS, "--profile": _text,
    "--schema": _text, "--schema-mode": lambda value: value in ("response_format", "prompt"),
    "--retries-invalid": _integer(0),
}
OPTIONAL_VALUE = frozenset({"--batch"})  # a flag, or a value when one follows

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
        options = _scan(argv)
        if options is None:
            return
        _plan = {"options": options}
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


def _scan(argv: list[str]) -> dict[str, str] | None:
    """The last value of each option, or None when the run might not send a chat request."""
    options: dict[str, str] = {}
    words: list[str] = []
    args = iter(argv)
    for arg in args:
        if arg == "--":
            words.extend(args)
            break
        if not arg.startswith("-") or arg == "-":
            words.append(arg)
            continue
        name, eq, value = arg.partition("=") if arg.startswith("--") else (arg[:2], "", arg[2:])
        if name in FLAGS or name in OPTIONAL_VALUE:
            if eq or not all(f"-{ch}" in FLAGS for ch in value):  # -qn: short flags bundled
                return None
            options[name] = ""
            options.update((f"-{ch}", "") for ch in value)
            continue
        check = VALUES.get(name)
        if check is None:
            return None
        if not eq and not value:
            value = next(args, None)  # type: ignore[assignment]
            if value is None:
                return None
        if not check(value):
            return None
        options[name] = value
    if _NO_REQUEST & options.keys():
        return None
    if sum(mode in options for mode in ("--text", "--full", "--jsonl", "--json")) > 1:
        return None
    conversation = ("-c" in options) + ("--conversation" in options) + ("--continue" in options)
    if conversation > 1 or ("--new" in options and not conversation):
        return None
    if "--api-key-file" in options and "--api-key-cmd" in options:
        return None
    retries = os.environ.get("GPT_PIPE_RETRIES")
    if retries is not None and not _integer(0)(retries):
        return None
    if not any(word.strip() for word in words) and not _stdin_has_prompt(options):
        return None
    if not (os.environ.get("GREENPT_API_KEY", "").strip() or "--api-key-file" in options
            or "--api-key-cmd" in options or os.path.exists(_config_path())):
        return None
    return options


def _stdin_has_prompt(options: dict[str, str]) -> bool:
    """Whether stdin already holds text that is not blank, read without losing it: a pipe's
    waiting bytes are kept for messages.read_stdin, a file's are read in place."""
    global _stdin_head
    if "--no-stdin" in options or options.get("--messages") == "-":
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


def _config_path() -> str:
    base = os.environ.get("XDG_CONFIG_HOME", "")
    if not base or not os.path.isabs(base):
        base = os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(base, "gpt-pipe", "config.toml")


def _connect(plan: dict[str, Any], running: Any) -> None:
    global _socket
    try:
        options = plan["options"]
        profile = options.get("--profile") or os.environ.get("GPT_PIPE_PROFILE")
        config = _config(options, profile) if os.path.exists(_config_path()) or profile else {}
        if config is None:
            return
        # Flags beat the chosen profile, which beats GREENPT_BASE_URL, which beats the file.
        url = options.get("--base-url") or config.get("profile_base_url") or os.environ.get("GREENPT_BASE_URL") \
            or config.get("base_url") or DEFAULT_BASE_URL
        if url.rstrip("/").endswith("/chat/completions"):
            url = url.rstrip("/")[: -len("/chat/completions")]
        origin = _origin(url)
        if origin is None or _proxied(origin[0]):
            return
        scheme, host, port = origin
        timeout = float(options.get("--connect-timeout") or config.get("connect_timeout") or 10.0)
        ca_bundle = options.get("--ca-bundle") or config.get("ca_bundle")
        plan.update(scheme=scheme, host=host, port=port)
        import socket

        sock = socket.create_connection((host, port), timeout=timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if scheme == "https":
                sock = _tls(sock, host, ca_bundle)
        except BaseException:
            sock.close()
            raise
        _socket = sock
    except Exception:
        pass  # DNS, refused, TLS refused: the normal path tries (and reports) again
    finally:
        running.release()


def _origin(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an http(s) URL, parsed by hand (urllib.parse costs an import
    here); None for anything unusual, which the normal path then handles."""
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in ("http", "https"):
        return None
    netloc = rest.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    if "@" in netloc or not netloc:
        return None  # credentials in the URL: left to requests
    port = 443 if scheme == "https" else 80
    if netloc.startswith("["):
        host, _, tail = netloc[1:].partition("]")
        if tail.startswith(":"):
            if not tail[1:].isdigit():
                return None
            port = int(tail[1:])
        elif tail:
            return None
    else:
        host, colon, number = netloc.partition(":")
        if colon:
            if not number.isdigit():
                return None
            port = int(number)
    if not host or not 0 < port < 65536:
        return None
    return scheme, host.lower(), port


def _config(options: dict[str, str], profile: str | None) -> dict[str, Any] | None:
    """The config file's settings that matter here (a chosen profile's base URL as
    ``profile_base_url``); None when the file could refuse the run."""
    path = _config_path()
    try:
        with open(path, "rb") as f:
            data = f.read(1 << 20)
    except OSError:
        return None  # unreadable, or a profile named with no file: the normal path says so
    try:
        import tomllib  # type: ignore[import-not-found]
    except ModuleNotFoundError:
        return None
    try:
        table = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    profiles = table.pop("profile", {})
    layers = [table]
    if profile:
        if not isinstance(profiles, dict) or not isinstance(profiles.get(profile), dict):
            return None
        layers.append(profiles[profile])
    config: dict[str, Any] = {}
    for layer in layers:
        layer = {key.replace("-", "_"): value for key, value in layer.items()}
        modes = [mode for mode in ("text", "full", "jsonl", "json") if layer.get(mode) is True]
        if len(modes) > 1 or ("api_key_file" in layer and "api_key_cmd" in layer):
            return None
        for key, value in layer.items():
            check = VALUES.get(f"--{key.replace('_', '-')}")
            if check is not None and not isinstance(value, (list, dict)) and not check(str(value)):
                return None
            if key in ("base_url", "ca_bundle") and not isinstance(value, str):
                return None
        if layer is not layers[0] and "base_url" in layer:
            config["profile_base_url"] = layer.pop("base_url")
        config.update(layer)
    return config


def _proxied(scheme: str) -> bool:
    """Whether requests could send this through a proxy (any proxy variable, unless
    NO_PROXY is '*'): then the normal path, which applies the rules exactly."""
    names = [f"{scheme}_proxy", "all_proxy"]
    if any(os.environ.get(name) or os.environ.get(name.upper()) for name in names):
        return (os.environ.get("no_proxy") or os.environ.get("NO_PROXY") or "").strip() != "*"
    return False


def _tls(sock: Any, host: str, ca_bundle: str | None) -> Any:
    """TLS as urllib3 sets it up for requests: the CA bundle from --ca-bundle, else
    REQUESTS_CA_BUNDLE, else CURL_CA_BUNDLE, else certifi's; the hostname checked;
    TLS 1.2 at least."""
    import ssl

    bundle = (os.path.expanduser(ca_bundle) if ca_bundle else None) or os.environ.get("REQUESTS_CA_BUNDLE") \
        or os.environ.get("CURL_CA_BUNDLE")
    if not bundle:
        import certifi

        bundle = certifi.where()
    context = ssl.create_default_context(cafile=None if os.path.isdir(bundle) else bundle,
                                         capath=bundle if os.path.isdir(bundle) else None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["http/1.1"])
    return context.wrap_socket(sock, server_hostname=host.rstrip("."))


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
