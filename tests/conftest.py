"""Fixtures: a local server per test, and the real gpt-pipe command run against it."""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from server import Server

KEY = "sk-test-0123456789abcdefWXYZ"
PROCESS_TIMEOUT = 60  # a hang is a failure, never a stuck suite


def gpt_pipe_command() -> list[str]:
    """The installed console script next to this interpreter, as a user would run it."""
    script = Path(sys.executable).with_name("gpt-pipe")
    if script.exists():
        return [str(script)]
    found = shutil.which("gpt-pipe")
    return [found] if found else [sys.executable, "-m", "gpt_pipe"]


GPT_PIPE = gpt_pipe_command()


def read_terminal(master: int, on_data=None) -> bytes:
    """All that a program writes to a pseudo-terminal until it closes it (``on_data(seen)``
    is called before each read); closes ``master``."""
    seen = b""
    while True:
        if on_data is not None:
            on_data(seen)
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the program has closed its side
            break
        if not data:
            break
        seen += data
    os.close(master)
    return seen


@dataclass
class Result:
    code: int
    out: bytes
    err: str
    seconds: float = 0.0  # wall time, to catch hangs (never a speed target)

    def __repr__(self) -> str:  # what a failing assertion shows
        return f"Result(code={self.code}, out={self.out[:300]!r}, err={self.err[:600]!r})"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    h = tmp_path / "home"
    h.mkdir()
    return h


@pytest.fixture
def server():
    with Server() as s:
        yield s


@pytest.fixture
def env(server: Server, home: Path) -> dict[str, str]:
    """A clean environment: no user config, no proxies, the test key, the local server."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "LANG": "C.UTF-8",
        "GREENPT_API_KEY": KEY,
        "GREENPT_BASE_URL": server.url,
        "NO_PROXY": "*",
        # One attempt unless a test asks for retries: the retry tests set --retries themselves.
        "GPT_PIPE_RETRIES": "0",
    }


@pytest.fixture
def run(env: dict[str, str]):
    """run(*args, stdin=b"...", env={...}) -> Result; stdin None means a closed-off /dev/null."""

    def _run(*args: str, stdin: bytes | None = b"", extra_env: dict[str, str] | None = None,
             drop_env: tuple[str, ...] = ()) -> Result:
        e = dict(env, **(extra_env or {}))
        for name in drop_env:
            e.pop(name, None)
        began = time.monotonic()
        proc = subprocess.run(GPT_PIPE + list(args), input=stdin,
                              stdin=None if stdin is not None else subprocess.DEVNULL,
                              capture_output=True, env=e, timeout=PROCESS_TIMEOUT)
        result = Result(proc.returncode, proc.stdout, proc.stderr.decode("utf-8", "replace"),
                        time.monotonic() - began)
        # Checked on every run: the key never shows, and no traceback without --debug.
        assert KEY not in result.err and KEY.encode() not in result.out, result
        assert "--debug" in args or "Traceback" not in result.err, result
        return result

    return _run


class Reader:
    """Reads a running process's stdout pipe as bytes arrive, with a generous deadline."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc = proc
        self.data = b""

    def until(self, expected: bytes, timeout: float = 20.0) -> bytes:
        """Read until stdout holds ``expected``; fail if it does not come in time."""
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while expected not in self.data:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"stdout never showed {expected!r}; it holds {self.data!r}")
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                more = os.read(fd, 65536)
                if not more:
                    raise AssertionError(f"stdout closed before {expected!r}; it holds {self.data!r}")
                self.data += more
        return self.data

    def finish(self) -> Result:
        out, err = self.proc.communicate(timeout=PROCESS_TIMEOUT)
        return Result(self.proc.returncode, self.data + out, err.decode("utf-8", "replace"))


@pytest.fixture
def start(env: dict[str, str]):
    """start(*args) -> Reader over a running gpt-pipe whose stdout is a pipe."""
    procs: list[subprocess.Popen] = []

    def _start(*args: str, stdin: bytes = b"") -> Reader:
        proc = subprocess.Popen(GPT_PIPE + list(args), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=env)
        procs.append(proc)
        proc.stdin.write(stdin)
        proc.stdin.close()
        proc.stdin = None  # so that communicate() does not flush it
        return Reader(proc)

    yield _start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
