"""Sinks: the only code that writes to stdout.

Each sink gets every chunk (``chunk``), is told when a read from the network has been
handled (``flush``: whatever that read completed must now be visible downstream), and
then either ``complete`` (the answer finished) or ``fail`` (the run failed).
"""

from __future__ import annotations

import itertools
import json
import os
import re
from collections.abc import Iterable
from typing import Any, BinaryIO

from gpt_pipe.exitcodes import ExitCode, GptPipeError
from gpt_pipe.terminal import neutralize, neutralize_json

# The default cap on the answer kept for the end of a run (--full, --json, -c, --batch):
# a server that ignores --max-tokens must not fill the memory.
MAX_ANSWER = 32 * 1024 * 1024


def encode_text(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        # A JSON "\ud800" escape decodes to a lone surrogate, which UTF-8 cannot carry.
        return "".join("\ufffd" if "\ud800" <= ch <= "\udfff" else ch for ch in text).encode("utf-8")


def silence_stdout() -> None:
    """Point fd 1 at /dev/null, so that the exit-time flush of a dead stdout is quiet."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.close(devnull)
    except OSError:
        pass


def write_lines(out: BinaryIO, lines: list[str], safe: bool = False) -> None:
    """Lines to stdout; ``safe``: with control characters escaped (a terminal)."""
    text = "".join(f"{line}\n" for line in lines)
    Sink(out)._write(encode_text(neutralize(text) if safe else text))


class Sink:
    """The base sink writes nothing (``Sink(None)`` swallows a run's output)."""

    # Called after each write to a terminal with whether it ended a line (Log: a stderr line
    # must not start right after partial text on the same screen).
    line_watch: Any = None
    # Called before each write (Log.stop_waiting: the indicator is erased before the answer shows).
    before_write: Any = None

    def __init__(self, out: BinaryIO | None, name: str = "stdout") -> None:
        self._out = out
        self._name = name  # for the error message when a write fails
        self.written = False  # once true, sending the request again would repeat text

    def reset(self) -> None:
        """Forget what a failed attempt collected but never wrote, before a retry."""

    def reasoning(self, text: str) -> None:
        """A reasoning delta: never part of the answer's text."""

    def attempt(self, number: int, after: str) -> None:
        """Attempt ``number`` of the run begins (``after``: why the one before it was given up)."""

    def end(self, code: int) -> None:
        """The run finished (an answer came) with exit code ``code``; ``fail`` says otherwise."""

    def chunk(self, raw: bytes, text: str) -> None:
        pass

    def flush(self) -> None:
        pass

    def complete(self) -> None:
        self.flush()

    def fail(self, message: str, code: int) -> None:
        self.flush()

    def _write(self, data: bytes) -> None:
        self._write_all((data,))

    def _write_all(self, pieces: Iterable[bytes]) -> None:
        """Write and flush; the one way out to stdout, and the one place its errors map."""
        if self.before_write is not None:
            self.before_write()
        self.written = True
        data = b""
        try:
            for data in pieces:
                self._out.write(data)
            self._out.flush()
            if self.line_watch is not None and data:
                self.line_watch(data.endswith(b"\n"))
        except BrokenPipeError:
            raise  # the reader left: not an error; launch.main dies of SIGPIPE (process)
        except (OSError, ValueError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            if self._name == "stdout":
                silence_stdout()
            raise GptPipeError(f"cannot write to {self._name}: {reason}", ExitCode.IOERR) from None


class TextSink(Sink):
    """Default mode: each delta's text as soon as it arrives (``safe``: a terminal's
    control characters shown escaped)."""

    def __init__(self, out: BinaryIO, newline: bool = True, safe: bool = False) -> None:
        super().__init__(out)
        self._newline = newline
        self._safe = safe
        self._parts: list[str] = []
        self._last = ""  # the last character written, for the final-newline rule

    def chunk(self, raw: bytes, text: str) -> None:
        if text:
            self._parts.append(text)

    def reset(self) -> None:
        self._parts.clear()

    def flush(self) -> None:
        if self._parts:
            text = "".join(self._parts)
            self._parts.clear()
            self._last = text[-1]
            self._write(encode_text(neutralize(text) if self._safe else text))

    def complete(self) -> None:
        self.flush()
        if self._newline and self._last and self._last != "\n":
            self._write(b"\n")


class TextBuffer:
    """Text kept for the end of the run, in blocks: a million tiny str objects would cost
    25 times the text, while joining each block once keeps the copying linear. More than
    ``limit`` characters is a protocol error: the server sent more than will be kept."""

    BLOCK = 4096

    def __init__(self, limit: int = MAX_ANSWER) -> None:
        self._blocks: list[str] = []
        self._parts: list[str] = []
        self._size = 0
        self._limit = limit

    def add(self, text: str) -> None:
        self._size += len(text)
        if self._size > self._limit:
            from gpt_pipe.options import format_size

            self.clear()
            raise GptPipeError(
                f"protocol error: the answer is longer than {format_size(self._limit)} of text, more than is kept "
                "(--max-answer raises the cap)",
                ExitCode.PROTOCOL,
            )
        self._parts.append(text)
        if len(self._parts) >= self.BLOCK:
            self._blocks.append("".join(self._parts))
            self._parts.clear()

    def clear(self) -> None:
        self._blocks.clear()
        self._parts.clear()
        self._size = 0

    @property
    def size(self) -> int:
        """Characters kept so far."""
        return self._size

    def blocks(self) -> list[str]:
        return [block for block in (*self._blocks, "".join(self._parts)) if block]

    def text(self) -> str:
        return "".join(self.blocks())


class FullSink(Sink):
    """--full: nothing until the answer has completed, then all of it; nothing on failure."""

    def __init__(self, out: BinaryIO, newline: bool = True, safe: bool = False, limit: int = MAX_ANSWER,
                 extract: bool = False) -> None:
        super().__init__(out)
        self._newline = newline
        self._safe = safe
        self._text = TextBuffer(limit)
        self._extract = extract  # -x: the first fenced code block only

    def chunk(self, raw: bytes, text: str) -> None:
        if text:
            self._text.add(text)

    def received(self) -> int:
        """Characters of the answer so far (the waiting indicator counts them)."""
        return self._text.size

    def reset(self) -> None:
        self._text.clear()

    def complete(self) -> None:
        # Still all or nothing: the writes start only now that the answer is complete.
        # Block by block, so the text is never copied whole (joined, then encoded).
        blocks = self._text.blocks()
        self.reset()
        if self._extract:
            from gpt_pipe.extract import first_code_block

            blocks = [first_code_block("".join(blocks))]
        if not blocks or not blocks[-1]:
            return
        ending = (b"\n",) if self._newline and not blocks[-1].endswith("\n") else ()
        if self._safe:
            blocks = [neutralize(block) for block in blocks]
        self._write_all(itertools.chain(map(encode_text, blocks), ending))

    def fail(self, message: str, code: int) -> None:
        self.reset()


class JsonSink(Sink):
    """--json: at the end, one object shaped like a non-streamed chat.completion."""

    def __init__(self, out: BinaryIO, answer: Any, scrub: Any = None, safe: bool = False,
                 limit: int = MAX_ANSWER) -> None:
        super().__init__(out)
        self._answer = answer  # what the stream said: meta, finish_reason, usage, impact
        self._scrub = scrub  # the key out of the fields the text does not carry (id, model...)
        self._safe = safe
        self._text = TextBuffer(limit)
        self._reasoning = TextBuffer(limit)

    def received(self) -> int:
        """Characters of the answer so far (the waiting indicator counts them)."""
        return self._text.size

    def chunk(self, raw: bytes, text: str) -> None:
        if text:
            self._text.add(text)

    def reasoning(self, text: str) -> None:
        self._reasoning.add(text)

    def reset(self) -> None:
        self._text.clear()
        self._reasoning.clear()

    def complete(self) -> None:
        decoder = self._answer.decoder
        text = self._text.text()
        calls = decoder.tool_calls
        # As a non-streamed chat.completion has it: no text beside tool calls is null.
        message: dict[str, Any] = {"role": "assistant", "content": text if text or not calls else None}
        reasoning = self._reasoning.text()
        if reasoning:
            message["reasoning_content"] = reasoning
        if calls:
            message["tool_calls"] = calls
        if getattr(self._answer, "parsed", None) is not None:
            message["parsed"] = self._answer.parsed  # --schema: the value the text holds
        meta = decoder.meta
        answer: dict[str, Any] = {
            "id": meta.get("id"),
            "object": "chat.completion",
            "created": meta.get("created"),
            "model": meta.get("model", self._answer.model),
            "choices": [{"index": 0, "message": message, "finish_reason": decoder.finish_reason}],
            "usage": decoder.usage,
        }
        if decoder.impact is not None:
            answer["impact"] = decoder.impact
        self.reset()
        text = json.dumps(answer, ensure_ascii=False)
        if self._scrub is not None:
            text = self._scrub(text)
        data = encode_text(text)
        self._write((neutralize_json(data) if self._safe else data) + b"\n")

    def fail(self, message: str, code: int) -> None:
        self.reset()


class JsonlSink(Sink):
    """--jsonl: every chunk as one line of JSON, then an error line if the run failed."""

    def __init__(self, out: BinaryIO, name: str = "stdout", safe: bool = False) -> None:
        super().__init__(out, name)
        self._lines: list[bytes] = []
        self._safe = safe

    def chunk(self, raw: bytes, text: str) -> None:
        if raw:  # b"": text released by Scrub, which belongs to a line already written
            if b"gpt_pipe" in raw or (b"\\u00" in raw and re.search(_ESCAPED_KEY, raw)):
                raw = unforgeable(raw)  # it could pass for one of gpt-pipe's own lines
            self._lines.append(neutralize_json(raw) if self._safe else raw)

    def own(self, line: bytes) -> None:
        """One of gpt-pipe's own lines (a --tee marker), written as it is."""
        self._lines.append(neutralize_json(line) if self._safe else line)

    def reset(self) -> None:
        self._lines.clear()

    def flush(self) -> None:
        if self._lines:
            self._lines.append(b"")
            data = b"\n".join(self._lines)
            self._lines.clear()
            self._write(data)

    def fail(self, message: str, code: int) -> None:
        self.flush()
        line = {"error": {"message": message, "type": "gpt_pipe", "exit": int(code)}}
        data = json.dumps(line, ensure_ascii=False).encode("utf-8", "replace")
        self._write((neutralize_json(data) if self._safe else data) + b"\n")


# "gpt_pipe" can only be spelt with escapes of its own letters (g, p, t, _, i, e): a line
# with none of these (text escaped as \u4e2d, say) is not parsed to be checked.
# (compiled on first use, by re's cache)
_ESCAPED_KEY = rb"\\u00(?:6[579]|7[04]|5[fF])"


def unforgeable(raw: bytes) -> bytes:
    """A server's chunk line as written to a log: one shaped like gpt-pipe's own markers
    (a top-level "gpt_pipe" object, an error of type "gpt_pipe") is wrapped as a "chunk"
    marker, so that a server cannot write run, attempt, end or error lines into an audit
    log; --replay unwraps it."""
    from gpt_pipe.safejson import dumps_line, loads

    try:
        obj = loads(raw)
    except ValueError:
        return raw
    error = obj.get("error") if isinstance(obj, dict) else None
    if isinstance(obj, dict) and ("gpt_pipe" in obj or (isinstance(error, dict) and error.get("type") == "gpt_pipe")):
        return dumps_line({"gpt_pipe": {"event": "chunk", "chunk": obj}})
    return raw


class Forward(Sink):
    """A sink in front of another: passes everything on; subclasses add to what they need."""

    def __init__(self, main: Sink) -> None:  # no Sink.__init__: `written` is main's
        self._main = main

    @property
    def written(self) -> bool:  # type: ignore[override]
        return self._main.written

    def chunk(self, raw: bytes, text: str) -> None:
        self._main.chunk(raw, text)

    def reasoning(self, text: str) -> None:
        self._main.reasoning(text)

    def attempt(self, number: int, after: str) -> None:
        self._main.attempt(number, after)

    def end(self, code: int) -> None:
        self._main.end(code)

    def reset(self) -> None:
        self._main.reset()

    def flush(self) -> None:
        self._main.flush()

    def complete(self) -> None:
        self._main.complete()

    def fail(self, message: str, code: int) -> None:
        self._main.fail(message, code)


class KeepText(Forward):
    """Keeps the answer's text while passing everything on (--conversation, --batch)."""

    def __init__(self, main: Sink, limit: int = MAX_ANSWER) -> None:
        super().__init__(main)
        self.text = TextBuffer(limit)

    def chunk(self, raw: bytes, text: str) -> None:
        if text:
            self.text.add(text)
        self._main.chunk(raw, text)

    def reset(self) -> None:
        self.text.clear()
        self._main.reset()

    def fail(self, message: str, code: int) -> None:
        self.text.clear()
        self._main.fail(message, code)
