"""The --tee log: its marker lines written (TeeSink), and --replay: a chunk log (from --tee
or --jsonl) split into runs and attempts, each run rendered as it was live, through the
same output modes, with no network and no key.

A --tee log marks where each run and each attempt begins and how a run ended (lines
holding a "gpt_pipe" object); a --jsonl log appended to by many runs is split where the
chunks' own id changes, and after each error line. An attempt given up for a retry
contributes nothing. The exit code is the last run's.
"""

from __future__ import annotations

import array
import json
import os
from collections.abc import Callable, Iterable
from typing import Any

from gpt_pipe.exitcodes import ExitCode, GptPipeError, known
from gpt_pipe.output import Forward, JsonlSink, Sink
from gpt_pipe.safejson import dumps_line, loads
from gpt_pipe.stream import MAX_KEPT, StreamDecoder


class Run:
    """One run of the log: its chunks (of the attempt that counts) and how it ended."""

    def __init__(self) -> None:
        # The chunk lines, back to back, parsed again when rendered: parsed objects (or one
        # bytes object a line) kept for a whole run would cost many times the bytes.
        self._data = bytearray()
        self._ends = array.array("Q")
        self.size = 0
        self.chunk_id: Any = None
        self.marked = False  # begun by a "run" marker: split by markers, not by ids
        self.exit: int | None = None  # from an "end" marker
        self.error: tuple[str, int] | None = None  # from an error line

    def has_chunks(self) -> bool:
        """Whether the run holds any chunk."""
        return bool(self._ends)

    def clear(self) -> None:
        self._data = bytearray()
        self._ends = array.array("Q")

    def lines(self) -> Iterable[bytes]:
        start = 0
        for end in self._ends:
            yield bytes(self._data[start:end])
            start = end

    def add(self, raw: bytes, obj: dict[str, Any], cap: int, name: str) -> None:
        self.size += len(raw)
        if self.size > cap:
            raise GptPipeError(f"{name}: a run of the log is longer than gpt-pipe replays", ExitCode.DATAERR)
        self._data += raw
        self._ends.append(len(self._data))
        if self.chunk_id is None:
            self.chunk_id = obj.get("id")


def runs(lines: Iterable[tuple[int, bytes | None]], name: str, cap: int) -> Iterable[Run]:
    """The runs of a log, each as soon as it has ended."""
    run = Run()
    for number, line in lines:
        if line is None:
            raise GptPipeError(f"{name} line {number} is longer than a chunk can be", ExitCode.DATAERR)
        line = line.rstrip(b"\r\n")
        if not line.strip():
            continue
        try:
            obj = loads(line)
        except ValueError:
            raise GptPipeError(f"{name} line {number} is not valid JSON", ExitCode.DATAERR) from None
        if not isinstance(obj, dict):
            raise GptPipeError(f"{name} line {number} is not a JSON object", ExitCode.DATAERR)
        marker = obj.get("gpt_pipe")
        error = obj.get("error")
        if isinstance(marker, dict):
            event = marker.get("event")
            if event == "chunk" and isinstance(marker.get("chunk"), dict):  # a server's line, kept apart
                obj = marker["chunk"]
                run.add(dumps_line(obj), obj, cap, name)
            elif event == "run":
                if run.has_chunks() or run.marked:
                    yield run
                run = Run()
                run.marked = True
            elif event == "attempt":  # the attempt before was given up: it showed nothing
                run.clear()
                run.size = 0
                run.chunk_id = None
            elif event == "end":
                run.exit = marker.get("exit") if isinstance(marker.get("exit"), int) else None
                yield run
                run = Run()
            continue
        if isinstance(error, dict) and error.get("type") == "gpt_pipe" and isinstance(error.get("exit"), int):
            code = known(error["exit"], ExitCode.SOFTWARE)
            run.error = (str(error.get("message", "")), code)
            yield run
            run = Run()
            continue
        if not run.marked and run.has_chunks() and obj.get("id") is not None and obj.get("id") != run.chunk_id:
            yield run  # a --jsonl log appended to by another run: a new answer's id
            run = Run()
        run.add(line, obj, cap, name)
    if run.has_chunks() or run.marked:
        yield run


def render(run: Run, sink: Sink, on_reasoning: Callable[[str], None] | None,
           limit: int = MAX_KEPT) -> tuple[int, StreamDecoder, str | None]:
    """Feed ``run`` to ``sink`` as the live run fed it; (exit code, decoder, warning).
    Raises GptPipeError for a run that ended in failure (after the sink has its text)."""
    decoder = StreamDecoder(sink.chunk, on_reasoning, limit)
    for raw in run.lines():
        decoder.chunk(raw, loads(raw))
    sink.flush()
    if run.error is not None:
        raise GptPipeError(*run.error)
    code, warning = decoder.outcome()  # raises for a stream cut short
    if run.exit is not None:
        code = known(run.exit, code)  # what the live run exited with (a [DONE] the log does not keep)
        warning = None
    return code, decoder, warning


class TeeSink(Forward):
    """--tee FILE: every chunk appended to FILE as JSON Lines, a line at a time, while
    stdout gets the chosen mode; a failure ends FILE with the --jsonl error line. Marker
    lines say where a run and each attempt begin and how the run ended, so that a log
    appended to by many runs (cron) splits into them again (--replay; jq: .gpt_pipe)."""

    def __init__(self, main: Sink, log: JsonlSink, model: str = "", request: dict[str, Any] | None = None,
                 secrets: Any = None) -> None:
        super().__init__(main)
        self._log = log
        self._run = os.urandom(4).hex()
        self._model = model
        self._request = request  # what was asked, in the run marker: a log says what its answer answers
        self._secrets = secrets  # keys.Secrets: a key the user put in the request is scrubbed too

    def _mark(self, event: str, **fields: Any) -> None:
        import time

        line = {"gpt_pipe": {"event": event, "run": self._run, **fields}}
        if event == "run":
            line["gpt_pipe"]["time"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            if self._request is not None:
                line["gpt_pipe"]["request"] = self._request
        text = json.dumps(line, ensure_ascii=False)
        if self._secrets is not None:
            data = self._secrets.scrub_json_line(self._secrets.scrub(text).encode("utf-8", "replace"))
        else:
            data = text.encode("utf-8", "replace")
        self._log.own(data)
        self._log.flush()

    def attempt(self, number: int, after: str) -> None:
        if number == 1:
            self._mark("run", model=self._model)
        else:
            self._mark("attempt", attempt=number, after=after)
        self._main.attempt(number, after)

    def end(self, code: int) -> None:
        self._mark("end", exit=int(code))
        self._main.end(code)

    def chunk(self, raw: bytes, text: str) -> None:
        self._main.chunk(raw, text)
        if raw:
            self._log.chunk(raw, text)
            self._log.flush()

    def fail(self, message: str, code: int) -> None:
        try:
            self._main.fail(message, code)
        finally:
            self._log.fail(message, code)
