"""--batch: many requests from a JSON Lines file, in parallel, resumable.

Input is read lazily and at most ``window`` lines are in flight or waiting to be written,
so memory does not grow with the input. Each result is one JSON line, written whole with
one write() on an O_APPEND file, so a batch killed at any moment (SIGKILL included) leaves
no torn line and ``--resume`` skips exactly the ids already done.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any, BinaryIO

from gpt_pipe.exitcodes import ExitCode, GptPipeError
from gpt_pipe.log import Log

# The exit code of a batch: 0 when every line finished with "stop"; otherwise the first of
# these that some line had: what breaks every request first, what breaks one line last.
SEVERITY = (ExitCode.SOFTWARE, ExitCode.CONFIG, ExitCode.NOPERM, ExitCode.IOERR, ExitCode.UNAVAILABLE,
            ExitCode.PROTOCOL, ExitCode.TEMPFAIL, ExitCode.DATAERR, ExitCode.INCOMPLETE, ExitCode.CONTENT_FILTER,
            ExitCode.LENGTH, ExitCode.TOOL_CALLS, ExitCode.OTHER_FINISH)

# Results with these codes are not final: --resume sends their lines again.
RETRY_ON_RESUME = frozenset({ExitCode.TEMPFAIL, ExitCode.SIGINT, ExitCode.SIGTERM})

OVERRIDES = ("model", "temperature", "max_tokens")


def result_id(line: dict[str, Any] | None, number: int) -> Any:
    return line["id"] if isinstance(line, dict) and line.get("id") is not None else number


def id_key(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def request_for(line: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    """The request body for one input line, on top of the command line's ``base`` body."""
    from gpt_pipe.messages import _checked

    body = dict(base)
    messages: list[dict[str, Any]] = []
    system = line.get("system", base.get("_system"))
    if system is not None:
        if not isinstance(system, str):
            raise GptPipeError('"system" must be a string', ExitCode.DATAERR)
        messages.append({"role": "system", "content": system})
    if "messages" in line:
        if not isinstance(line["messages"], list):
            raise GptPipeError('"messages" must be an array of messages', ExitCode.DATAERR)
        messages.extend(_checked(line["messages"], "the line"))
    prompt = line.get("prompt")
    if prompt is not None:
        if not isinstance(prompt, str):
            raise GptPipeError('"prompt" must be a string', ExitCode.DATAERR)
        if prompt.strip():
            messages.append({"role": "user", "content": prompt})
    if not any(m.get("role") != "system" for m in messages):
        raise GptPipeError('the line has no "prompt" and no "messages"', ExitCode.DATAERR)
    body.pop("_system", None)
    body["messages"] = messages
    for key in OVERRIDES:
        if key in line:
            body[key] = line[key]
    return body


def done_ids(path: str) -> set[str]:
    """Ids with a final result in an earlier run's output (a torn or bad line counts as none)."""
    done: set[str] = set()
    try:
        with open(path, "rb") as f:
            for raw in f:
                try:
                    result = json.loads(raw)
                except ValueError:
                    continue
                if isinstance(result, dict) and "id" in result and result.get("exit") not in RETRY_ON_RESUME:
                    done.add(id_key(result["id"]))
    except FileNotFoundError:
        pass
    return done


class Output:
    """Result lines to stdout or an O_APPEND file, each in one write()."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        if path is None:
            self._fd = sys.stdout.fileno()
        else:
            try:
                self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                if os.fstat(self._fd).st_size and not _ends_with_newline(path):
                    os.write(self._fd, b"\n")  # a line torn by a crash stays alone on its line
            except OSError as exc:
                raise GptPipeError(f"cannot open --output file {path}: {exc.strerror}", ExitCode.IOERR) from None

    def write(self, result: dict[str, Any]) -> None:
        data = json.dumps(result, ensure_ascii=False).encode("utf-8", "replace") + b"\n"
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._fd, view):]
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise GptPipeError(f"cannot write to {self.path or 'stdout'}: {exc.strerror}", ExitCode.IOERR) from None


def _ends_with_newline(path: str) -> bool:
    with open(path, "rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1) == b"\n"


def read_lines(stream: BinaryIO) -> Iterator[tuple[int, bytes]]:
    for number, raw in enumerate(stream, 1):
        if raw.strip():
            yield number, raw


class Batch:
    """Runs the lines of a batch on ``parallel`` threads; ``run_one(body)`` does one request."""

    def __init__(self, run_one: Callable[[dict[str, Any]], dict[str, Any]], base: dict[str, Any], parallel: int,
                 keep_order: bool, output: Output, log: Log, skip: set[str], progress: bool,
                 total: int | None) -> None:
        self.run_one = run_one
        self.base = base
        self.parallel = parallel
        self.window = 2 * parallel  # lines in flight or waiting to be written, at most
        self.keep_order = keep_order
        self.output = output
        self.log = log
        self.skip = skip
        self.progress = progress
        self.total = total
        self.counts: dict[int, int] = {}
        self.skipped = 0
        self.tokens = 0
        self.joules = 0.0
        self.started = time.monotonic()
        self._lock = threading.Lock()

    def one(self, number: int, raw: bytes) -> dict[str, Any]:
        """The result for one input line; never raises for a line's own failure."""
        line: Any = None
        try:
            try:
                line = json.loads(raw)
            except ValueError:
                raise GptPipeError("the line is not valid JSON", ExitCode.DATAERR) from None
            if not isinstance(line, dict):
                raise GptPipeError("the line is not a JSON object", ExitCode.DATAERR)
            result = self.run_one(request_for(line, self.base))
        except GptPipeError as error:
            result = {"content": None, "finish_reason": None, "exit": int(error.code), "usage": None,
                      "impact": None, "error": self.log.scrub(error.message)}
        except Exception as error:  # a bug: that line's result says so, the batch goes on
            result = {"content": None, "finish_reason": None, "exit": int(ExitCode.SOFTWARE), "usage": None,
                      "impact": None, "error": f"internal error: {error.__class__.__name__}: {error}"}
        return {"id": result_id(line, number), **result}

    def run(self, lines: Iterable[tuple[int, bytes]]) -> int:
        pending: dict[int, dict[str, Any]] = {}  # --keep-order: finished, waiting for earlier lines
        order: deque[int] = deque()  # --keep-order: submitted line numbers not yet written, oldest first
        running: dict[Future, int] = {}
        pool = ThreadPoolExecutor(max_workers=self.parallel, thread_name_prefix="gpt-pipe")
        try:
            source = iter(lines)
            exhausted = False
            while True:
                while not exhausted and len(running) + len(pending) < self.window:
                    item = next(source, None)
                    if item is None:
                        exhausted = True
                        break
                    number, raw = item
                    if self.skip and self._already_done(raw, number):
                        continue
                    running[pool.submit(self.one, number, raw)] = number
                    if self.keep_order:
                        order.append(number)
                if not running:
                    break
                finished, _ = wait(running, timeout=0.5 if self.progress else None, return_when=FIRST_COMPLETED)
                for future in finished:
                    number = running.pop(future)
                    if self.keep_order:
                        pending[number] = future.result()
                    else:
                        self._emit(future.result())
                while order and order[0] in pending:
                    self._emit(pending.pop(order.popleft()))
                self._show_progress()
        finally:
            # Interrupted or failed: what was written stays, what is in flight is dropped
            # (--resume sends it again); nothing waits for a request to finish.
            pool.shutdown(wait=False, cancel_futures=True)
        if self.progress:
            sys.stderr.write("\r\033[K")
        return self._exit_code()

    def _already_done(self, raw: bytes, number: int) -> bool:
        try:
            line = json.loads(raw)
        except ValueError:
            line = None
        if id_key(result_id(line, number)) in self.skip:
            self.skipped += 1
            return True
        return False

    def _emit(self, result: dict[str, Any]) -> None:
        self.output.write(result)
        code = result["exit"]
        self.counts[code] = self.counts.get(code, 0) + 1
        usage = result.get("usage")
        if isinstance(usage, dict) and isinstance(usage.get("total_tokens"), int):
            self.tokens += usage["total_tokens"]
        from gpt_pipe.usage import _JOULES, _amount

        impact = result.get("impact")
        joules = _amount(impact.get("energy"), _JOULES) if isinstance(impact, dict) else None
        if joules:
            self.joules += joules

    def done(self) -> int:
        return sum(self.counts.values())

    def _show_progress(self) -> None:
        if not self.progress:
            return
        done = self.done()
        elapsed = time.monotonic() - self.started
        rate = done / elapsed if elapsed > 0 else 0.0
        parts = [f"{done}/{self.total}" if self.total is not None else f"{done} done", f"{rate:.1f}/s"]
        if self.total is not None and rate > 0:
            parts.append(f"ETA {max(0.0, (self.total - self.skipped - done) / rate):.0f} s")
        parts.append(f"{self.tokens} tokens")
        if self.joules:
            parts.append(f"{self.joules / 3600:.3g} Wh")
        sys.stderr.write("\r\033[Kgpt-pipe: batch: " + ", ".join(parts))
        sys.stderr.flush()

    def summary(self) -> str:
        parts = [f"{self.done()} lines"]
        names = {0: "ok", 3: "length", 4: "content_filter", 5: "tool_calls", 6: "other finish"}
        for code in sorted(self.counts):
            parts.append(f"{self.counts[code]} {names.get(code, f'exit {code}')}")
        if self.skipped:
            parts.append(f"{self.skipped} skipped (done before)")
        parts.append(f"in {time.monotonic() - self.started:.1f} s")
        return "batch: " + ", ".join(parts)

    def _exit_code(self) -> int:
        for code in SEVERITY:
            if self.counts.get(int(code)):
                return int(code)
        return 0
