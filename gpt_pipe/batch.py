"""--batch: many requests from a JSON Lines file, in parallel, resumable; its wiring
from Settings (run_batch) and its engine (Batch).

Input is read lazily and at most ``window`` lines are in flight or waiting to be written,
so memory does not grow with the input. Each result is one JSON line, written whole with
one write() on an O_APPEND file, so a batch killed at any moment (SIGKILL included) leaves
no torn line and ``--resume`` skips exactly the ids already done.
"""

from __future__ import annotations

import queue
import shlex
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from gpt_pipe.exitcodes import ExitCode, GptPipeError
from gpt_pipe.log import Log
from gpt_pipe.process import Interrupted
from gpt_pipe.results import Output, done_ids, id_key, result_id
from gpt_pipe.settings import Settings
from gpt_pipe.terminal import is_terminal

TYPE_CHECKING = False
if TYPE_CHECKING:
    from gpt_pipe.ratelimit import Pace
    from gpt_pipe.request import RequestPlan

# The exit code of a batch: 0 when every line finished with "stop"; otherwise the first of
# these that some line had: what breaks every request first, what breaks one line last.
SEVERITY = (ExitCode.SOFTWARE, ExitCode.CONFIG, ExitCode.NOPERM, ExitCode.IOERR, ExitCode.UNAVAILABLE,
            ExitCode.PROTOCOL, ExitCode.TEMPFAIL, ExitCode.DATAERR, ExitCode.SCHEMA, ExitCode.INCOMPLETE,
            ExitCode.CONTENT_FILTER,
            ExitCode.LENGTH, ExitCode.TOOL_CALLS, ExitCode.OTHER_FINISH)

# The input lines in flight hold at most this many bytes together (a longer line runs
# alone): a line costs a few times its size while it is parsed, encoded and sent.
IN_FLIGHT_BYTES = 16 * 1024 * 1024


class Batch:
    """Runs the lines of a batch on ``parallel`` threads; ``run_one(body)`` does one request."""

    def __init__(self, run_one: Callable[[dict[str, Any], str], dict[str, Any]], plan: RequestPlan,
                 parallel: int, keep_order: bool, output: Output, log: Log, skip: set[str], progress: bool,
                 total: int | None, text_lines: bool = False) -> None:
        self.run_one = run_one
        self.plan = plan
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
        self.text_lines = text_lines  # --batch-text: a line is a prompt, not JSON
        self.pace: Pace | None = None  # the workers' shared pace, for the summary
        self.refused = False  # the server refused the key: no new line was taken after that
        self.tokens = 0
        self.token_reports = 0  # results whose usage gave a token count
        self.joules = 0.0
        self.started = time.monotonic()
        self._lock = threading.Lock()
        self._events: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._started: dict[int, Any] = {}  # line number -> id, once its request is on its way

    def one(self, number: int, held: list[bytes | None]) -> dict[str, Any]:
        """The result for one input line (``held``: the line, taken out so that its bytes are
        freed once parsed); never raises for a line's own failure."""
        from gpt_pipe.safejson import loads

        line: Any = None
        raw = held.pop()
        try:
            if raw is None:
                raise GptPipeError("the line is longer than gpt-pipe reads", ExitCode.DATAERR)
            if self.text_lines:
                from gpt_pipe.messages import decode_input

                line, raw = {"prompt": decode_input(raw.rstrip(b"\r\n"), "the line")}, None
            else:
                # Decoded here (as loads would) so that the bytes are freed before the parse
                # makes a third copy of a long line.
                text, raw = raw.decode("utf-8", "replace"), None
                try:
                    line = loads(text)
                    del text
                except ValueError:
                    raise GptPipeError("the line is not valid JSON (for plain text lines: --batch-text)",
                                       ExitCode.DATAERR) from None
            if not isinstance(line, dict):
                raise GptPipeError("the line is not a JSON object", ExitCode.DATAERR)
            self._started[number] = result_id(line, number)  # sent: an interruption gives it a result
            result = self.run_one(self.plan.for_line(line), f"line {number}: ")
        except GptPipeError as error:
            result = {"content": None, "finish_reason": None, "exit": int(error.code), "usage": None,
                      "impact": None, "error": self.log.scrub(error.message)}
        except Exception as error:  # a bug: that line's result says so, the batch goes on
            result = {"content": None, "finish_reason": None, "exit": int(ExitCode.SOFTWARE), "usage": None,
                      "impact": None, "error": f"internal error: {error.__class__.__name__}: {error}"}
        return {"id": result_id(line, number), **result}

    def run(self, lines: Iterable[tuple[int, bytes | None]]) -> int:
        pending: dict[int, dict[str, Any]] = {}  # --keep-order: finished, waiting for earlier lines
        order: deque[int] = deque()  # --keep-order: submitted line numbers not yet written, oldest first
        running: dict[Future, int] = {}
        pool = ThreadPoolExecutor(max_workers=self.parallel, thread_name_prefix="gpt-pipe")
        events = self._events  # finished lines (their futures) and jobs for the main thread
        try:
            source = iter(lines)
            exhausted = False
            held: tuple[int, bytes | None] | None = None  # read, waiting for the lines in flight to shrink
            sizes: dict[Future, int] = {}
            while True:
                while not exhausted and len(running) + len(pending) < self.window:
                    if held is None and running and sum(sizes.values()) >= IN_FLIGHT_BYTES:
                        break  # full: no line is read ahead to wait beside them
                    item, held = held or next(source, None), None
                    if item is None:
                        exhausted = True
                        break
                    number, raw = item
                    if self.skip and self._already_done(raw, number):
                        continue
                    size = len(raw) if raw is not None else 0
                    if running and sum(sizes.values()) + size > IN_FLIGHT_BYTES:
                        held = item  # big lines go one at a time: each costs a few times its size
                        break
                    future = pool.submit(self.one, number, [raw])
                    future.add_done_callback(events.put)
                    running[future], sizes[future] = number, size
                    del item, raw
                    if self.keep_order:
                        order.append(number)
                if not running:
                    break
                for future in self._next_finished(events):
                    number = running.pop(future)
                    sizes.pop(future, None)
                    self._started.pop(number, None)
                    result = future.result()
                    if result["exit"] == ExitCode.NOPERM and not exhausted:
                        # The key is refused (401/402/403): every other line would be too.
                        exhausted = self.refused = True
                    if self.keep_order:
                        pending[number] = result
                    else:
                        self._emit(result)
                while order and order[0] in pending:
                    self._emit(pending.pop(order.popleft()))
                self._show_progress()
        except Interrupted as stop:
            self._interrupted(stop, pending, running)
            raise
        finally:
            # Interrupted or failed: what was written stays, what is in flight is dropped
            # (--resume sends it again); nothing waits for a request to finish.
            pool.shutdown(wait=False, cancel_futures=True)
        if self.progress:
            self.log.status("")
        return self._exit_code()

    def _interrupted(self, stop: Interrupted, pending: dict[int, dict[str, Any]], running: dict[Future, int]) -> None:
        """Ctrl-C or SIGTERM: the finished results still waiting for their turn are written,
        and each line whose request was on its way gets a result saying it was interrupted
        (--resume sends it again); all in input order, as --keep-order has them."""
        if self.progress:
            self.log.status("")
        unwritten = dict(pending)
        for future, number in running.items():
            if future.done() and not future.cancelled():
                unwritten[number] = future.result()  # finished, not yet seen by the loop
            elif number in self._started:
                unwritten[number] = {"id": self._started[number], "content": None, "finish_reason": None,
                                     "exit": int(stop.code), "usage": None, "impact": None,
                                     "error": f"{stop}: the line was sent, its answer not received"}
        for number in sorted(unwritten):
            self._emit(unwritten[number])

    def _next_finished(self, events: queue.SimpleQueue[Any]) -> list[Future]:
        """The lines finished by now (none after the progress line's half second); a job a
        worker sent meanwhile (in_main_thread) is run on the way."""
        try:
            item = events.get(timeout=0.5 if self.progress else None)
        except queue.Empty:
            return []
        finished = []
        while True:
            if isinstance(item, Future):
                finished.append(item)
            else:
                item()
            try:
                item = events.get_nowait()
            except queue.Empty:
                return finished

    def in_main_thread(self, job: Callable[[], Any], most: float) -> Any:
        """``job()`` run by the main thread, for a worker: a timer signal can end only what
        runs there (a --schema pattern that backtracks holds the GIL, and no other thread
        gets it back until the signal stops it). Waits at most ``most`` s per worker."""
        done = threading.Event()
        box: list[tuple[bool, Any]] = []

        def run() -> None:
            try:
                box.append((True, job()))
            except BaseException as exc:  # handed to the worker as it is
                box.append((False, exc))
            done.set()

        self._events.put(run)
        if not done.wait(most * (self.parallel + 1)):  # the others' checks go first
            raise TimeoutError
        ok, value = box[0]
        if not ok:
            raise value
        return value

    def _already_done(self, raw: bytes | None, number: int) -> bool:
        from gpt_pipe.safejson import loads

        try:
            line = loads(raw) if raw is not None and not self.text_lines else None
        except ValueError:
            line = None
        if id_key(result_id(line, number)) in self.skip:
            self.skipped += 1
            return True
        return False

    def _emit(self, result: dict[str, Any]) -> None:
        if self.progress:
            self.log.status("")  # the result must not land on the progress line (stdout a terminal too)
        self.output.write(result)
        code = result["exit"]
        self.counts[code] = self.counts.get(code, 0) + 1
        from gpt_pipe.usage import count, energy_joules

        usage = result.get("usage")
        tokens = count(usage.get("total_tokens")) if isinstance(usage, dict) else None
        if tokens is not None:
            self.tokens += tokens
            self.token_reports += 1

        joules = energy_joules(result.get("impact"))
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
        parts.append(f"{self.tokens} tokens" if self.token_reports else "tokens n/a")
        if self.joules:
            parts.append(f"{self.joules / 3600:.3g} Wh")
        if self.log.rate_until > time.monotonic():
            parts.append("waiting for the rate limit")
        self.log.status("batch: " + ", ".join(parts))

    def summary(self) -> str:
        done = self.done()
        parts = [f"{done} line{'' if done == 1 else 's'}"]
        names = {0: "ok", 3: "length", 4: "content_filter", 5: "tool_calls", 6: "other finish"}
        for code in sorted(self.counts):
            parts.append(f"{self.counts[code]} {names.get(code, f'exit {code}')}")
        if self.skipped:
            parts.append(f"{self.skipped} skipped (done before)")
        parts.append(f"in {time.monotonic() - self.started:.1f} s")
        pace = self.pace
        if pace is not None and (pace.refusals or pace.waited >= 0.05):
            parts.append(f"{pace.waited:.1f} s of it waiting for the rate limit, {pace.refusals} "
                         f"{'response' if pace.refusals == 1 else 'responses'} 429")
        return "batch: " + ", ".join(parts)

    def _exit_code(self) -> int:
        for code in SEVERITY:
            if self.counts.get(int(code)):
                return int(code)
        return 0


def run_batch(settings: Settings, plan: RequestPlan, key: str, log: Log) -> int:
    """--batch as the settings ask: one request per input line, each built by ``plan``;
    the batch's exit code."""
    from gpt_pipe.client import Client, pace_for
    from gpt_pipe.files import open_read, read_lines
    from gpt_pipe.output import KeepText, Sink
    from gpt_pipe.pipeline import MaxTime, RetryPolicy, RunInfo, run_with_retries
    from gpt_pipe.process import big_blocks_to_the_system, start_streaming
    from gpt_pipe.scrub import Scrub

    big_blocks_to_the_system()
    checker = plan.checker()
    policy = RetryPolicy(settings.retries, settings.max_retry_wait, shared=True,
                         retries_invalid=settings.retries_invalid)
    pace = pace_for(settings)  # one for all workers: the server's limit is the batch's
    log.rate_notes = False
    local = threading.local()  # a requests Session is not for sharing between threads

    def run_one(body: dict[str, Any], label: str) -> dict[str, Any]:
        if not hasattr(local, "client"):
            local.client = Client.for_settings(settings, key, log, keep_alive=True,  # one connection per worker
                                               pace=pace)
        info = RunInfo(body["model"], label=label, limit=settings.max_answer)
        kept: KeepText  # keeps the text, writes nothing; with --schema, checks it too
        if checker is None:
            kept = KeepText(Sink(None), settings.max_answer)
        else:
            from gpt_pipe.schema import SchemaCheck

            kept = SchemaCheck(Sink(None), checker, info, settings.max_answer)
        sink = Scrub(kept, log.secrets)
        code = run_with_retries(local.client, body, sink, log, policy, MaxTime(settings.max_time, alarm=False), info)
        decoder = info.decoder
        text = kept.text.text()
        calls = decoder is not None and bool(decoder.tool_calls)
        # As --json has it: an answer of tool calls only has no content (null, not "").
        result = {"content": None if calls and not text else text,
                  "finish_reason": decoder.finish_reason if decoder else None,
                  "exit": int(code), "usage": decoder.usage if decoder else None,
                  "impact": decoder.impact if decoder else None, "error": None}
        if decoder is not None and decoder.tool_calls:
            result["tool_calls"] = decoder.tool_calls
        if checker is not None:
            result["json"] = info.parsed
        return result

    source = settings.batch
    if source == "-":
        if sys.stdin is None or is_terminal(0):
            raise GptPipeError("--batch without FILE reads its lines from stdin, which is a terminal", ExitCode.USAGE)
        stream: Any = sys.stdin.buffer
    else:
        path = source or ""
        stream = open_read(path, f"--batch file {source}", ExitCode.DATAERR, settings.file_wait)  # closed at exit
    from gpt_pipe.terminal import can_redraw

    progress = sys.stderr is not None and can_redraw(2)
    total = _count_lines(source) if progress and source != "-" else None
    output = Output(settings.output, settings.file_wait, log.secrets)
    skip = done_ids(output.path) if settings.resume and output.path else set()
    batch = Batch(run_one, plan, settings.parallel, settings.keep_order, output, log, skip, progress, total,
                  settings.batch_text)
    batch.pace = pace
    if checker is not None:
        checker.in_main_thread = batch.in_main_thread
    start_streaming()
    try:
        code = batch.run(read_lines(stream))
    except Interrupted:
        log.error(batch.summary())
        log.error("interrupted: " + _resume_hint(settings, "once you want the rest"))
        raise
    log.error(batch.summary())
    if batch.refused:
        log.error("the server refused the key, so no further line was sent; " + _resume_hint(settings,
                                                                                              "once the key is right"))
    return code


def _resume_hint(settings: Settings, when: str) -> str:
    """How to send the lines that have no final result yet."""
    if not settings.output:
        return f"{when}, run the batch again with --output FILE --resume to send only what is left"
    again = "gpt-pipe " + " ".join(shlex.quote(arg) for arg in sys.argv[1:])
    if not settings.resume:
        again += " --resume"
    return f"{when}, send the rest with: {again}"


def _count_lines(path: str | None) -> int | None:
    """The number of lines to do, for the progress line's total and ETA (a regular file's)."""
    from gpt_pipe.files import is_regular, read_lines

    path = path or ""
    if not is_regular(path):
        return None
    try:
        with open(path, "rb") as f:
            return sum(1 for _ in read_lines(f))
    except OSError:
        return None
