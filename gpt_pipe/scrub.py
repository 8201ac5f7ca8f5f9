"""The Scrub sink: in front of all the others, so that the API key reaches no output,
log or file, split between deltas or lines included."""

from __future__ import annotations

from typing import Any

from gpt_pipe.keys import Secrets, StreamScrubber
from gpt_pipe.output import Forward, Sink


class Scrub(Forward):
    """In front of every other sink: the API key out of the text (even split between two
    deltas), the reasoning and the JSON lines, however the server escaped it.

    Text is never held back unless its tail matches more of the key than the redaction
    shows (keys.StreamScrubber). A JSON line whose text was held back in part waits for
    the next one, and each line whose shown text differs from what it carried (a key
    replaced, held text moved on) is written with the text that was shown: ``jq -rj`` over
    the lines gives exactly the scrubbed text, never the key in two halves.
    """

    def __init__(self, main: Sink, secrets: Secrets, show_reasoning: Any = None, on_answer: Any = None) -> None:
        super().__init__(main)
        self._secrets = secrets
        self._text = StreamScrubber(secrets.key)
        self._thought = StreamScrubber(secrets.key)
        self._show = show_reasoning  # with --show-reasoning: where reasoning is shown as it arrives
        self._on_answer = on_answer  # called at the answer's first text (Log.answer_started)
        self._thoughts = ("", "")  # this chunk's reasoning: as it came, as it was shown
        self._line: list[Any] | None = None  # a line waiting for its text: [raw, text, reasoning, calls] shown
        self._args: dict[Any, StreamScrubber] = {}  # tool calls' arguments, by call index

    def chunk(self, raw: bytes, text: str) -> None:
        shown = ""
        if text:
            if self._on_answer is not None:
                self._on_answer()
                self._on_answer = None
            shown = self._text.feed(text)
        thought, thought_shown = self._thoughts
        self._thoughts = ("", "")
        if self._line is not None:
            self._write_line()
        if not raw:
            self._main.chunk(raw, shown)
            return
        raw = self._secrets.scrub_json_line(raw)
        calls = self._scrub_arguments(raw) if b'"arguments"' in raw else None
        if self._text.pending or self._thought.pending or any(s.pending for s in self._args.values()):
            self._main.chunk(b"", shown)  # the text goes out at once; its line waits
            self._line = [raw, shown, thought_shown if thought else None, calls or {}]
            return
        if shown != text or thought_shown != thought or calls:
            raw = _with_text(raw, shown, thought_shown if thought else None, calls)
        self._main.chunk(raw, shown)

    def _scrub_arguments(self, raw: bytes) -> dict[Any, str] | None:
        """The shown arguments of each tool call in the line whose arguments changed or
        left a tail held back (None when none did): a key split across argument pieces is
        scrubbed like one split across text deltas."""
        changed: dict[Any, str] = {}
        for index, arguments in _arguments(raw):
            scrubber = self._args.get(index)
            if scrubber is None:
                scrubber = self._args[index] = StreamScrubber(self._secrets.key)
            shown = scrubber.feed(arguments)
            if shown != arguments or scrubber.pending:
                changed[index] = shown
        return changed or None

    def reasoning(self, text: str) -> None:
        shown = self._thought.feed(text)
        self._thoughts = (self._thoughts[0] + text, self._thoughts[1] + shown)
        if shown:
            self._main.reasoning(shown)
            if self._show is not None:
                self._show(shown)

    def _write_line(self) -> None:
        raw, text, thought, calls = self._line or (b"", "", None, {})
        self._line = None
        self._main.chunk(_with_text(raw, text, thought, calls), "")

    def _release(self) -> None:
        held = self._text.release()
        if held:
            self._main.chunk(b"", held)
        thought = self._thought.release()
        if thought:
            self._main.reasoning(thought)
            if self._show is not None:
                self._show(thought)
        if self._line is not None:
            self._line[1] += held
            if self._line[2] is not None:
                self._line[2] += thought
            for index, scrubber in self._args.items():
                rest = scrubber.release()
                if rest:
                    self._line[3][index] = self._line[3].get(index, "") + rest
            self._write_line()
        for scrubber in self._args.values():
            scrubber.clear()

    def reset(self) -> None:
        self._release()
        self._text.clear()
        self._thought.clear()
        self._main.reset()

    def complete(self) -> None:
        self._release()
        self._main.complete()

    def fail(self, message: str, code: int) -> None:
        self._release()
        self._main.fail(message, code)


def _arguments(raw: bytes) -> list[tuple[Any, str]]:
    """(call index, arguments piece) of each tool call of choice 0 in a chunk line."""
    from gpt_pipe.safejson import loads

    try:
        obj = loads(raw)
    except ValueError:
        return []
    found = []
    for position, choice in enumerate(obj.get("choices") or () if isinstance(obj, dict) else ()):
        delta = choice.get("delta") if isinstance(choice, dict) else None
        if not isinstance(delta, dict) or choice.get("index", position) != 0:
            continue
        for number, call in enumerate(delta.get("tool_calls") or () if isinstance(delta.get("tool_calls"), list)
                                      else ()):
            function = call.get("function") if isinstance(call, dict) else None
            if isinstance(function, dict) and isinstance(function.get("arguments"), str):
                found.append((call.get("index", number), function["arguments"]))
    return found


def _with_text(raw: bytes, text: str, reasoning: str | None, calls: dict[Any, str] | None = None) -> bytes:
    """The chunk line ``raw`` with choice 0's text (and reasoning, unless None) replaced, and
    the arguments of the tool calls in ``calls`` (by index; one missing from the line is added)."""
    from gpt_pipe.safejson import dumps_line, loads

    try:
        obj = loads(raw)
    except ValueError:
        return raw
    first = True
    for position, choice in enumerate(obj.get("choices") or () if isinstance(obj, dict) else ()):
        if not isinstance(choice, dict) or choice.get("index", position) != 0:
            continue
        delta = choice.get("delta") if isinstance(choice.get("delta"), dict) else choice.get("message")
        if not isinstance(delta, dict):
            continue
        if isinstance(delta.get("content"), str) or (first and text):
            delta["content"] = text if first else ""
        if reasoning is not None:
            field = "reasoning_content" if "reasoning_content" in delta else "reasoning"
            delta[field] = reasoning if first else ""
        if first and calls:
            listed = delta.get("tool_calls") if isinstance(delta.get("tool_calls"), list) else []
            left = dict(calls)
            for number, call in enumerate(listed):
                index = call.get("index", number) if isinstance(call, dict) else None
                if index in left and isinstance(call.get("function"), dict):
                    call["function"]["arguments"] = left.pop(index)
            listed.extend({"index": index, "function": {"arguments": rest}} for index, rest in left.items())
            if listed:
                delta["tool_calls"] = listed
        first = False
    return dumps_line(obj)
