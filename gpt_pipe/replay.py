"""--replay: a chunk log (from --tee or --jsonl) split into runs and attempts, each run
rendered as it was live, through the same output modes, with no network and no key.

A --tee log marks where each run and each attempt begins and how a run ended (lines
holding a "gpt_pipe" object); a --jsonl log appended to by many runs is split where the
chunks' own id changes, and after each error line. An attempt given up for a retry
contributes nothing. The exit code is the last run's.
"""

from __future__ import annotations

import array
from collections.abc import Callable, Iterable
from typing import Any

from gpt_pipe.exitcodes import ExitCode, GptPipeError, known
from gpt_pipe.safejson import dumps_line, loads
from gpt_pipe.stream import MAX_KEPT, StreamDecoder

TYPE_CHECKING = False
if TYPE_CHECKING:
    from gpt_pipe.output import Sink


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
