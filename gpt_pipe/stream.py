"""Chat-completion chunks from SSE events: deltas, finish reason, errors; pure (no I/O).

The decoder hands every chunk to a callback as ``(raw, text)``: ``raw`` is the JSON
object as one line of bytes (exactly as received when the server sent it on one line),
``text`` is the content delta of choice 0 ("" when the chunk has none).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from gpt_pipe.exitcodes import ExitCode, GptPipeError, for_finish_reason
from gpt_pipe.keys import excerpt
from gpt_pipe.options import format_size
from gpt_pipe.safejson import dumps_line
from gpt_pipe.safejson import loads as _loads
from gpt_pipe.sse import Event

# The default bound on what is kept of tool calls (as --max-answer's default), and what
# each call's slot counts toward it.
MAX_KEPT = 32 << 20
_SLOT_COST = 1024

OnChunk = Callable[[bytes, str], None]
OnReasoning = Callable[[str], None]

_DONE = b"[DONE]"


def describe_error(obj: Any) -> str:
    """The human message inside an error body or chunk, whichever shape the server chose.

    Understands ``{"error": {"message": ...}}``, ``{"error": "..."}``,
    ``{"object": "error", "message": ...}`` and FastAPI's ``{"detail": ...}``.
    """
    if isinstance(obj, str):
        return obj
    if not isinstance(obj, dict):
        return json.dumps(obj, ensure_ascii=False)
    err = obj.get("error")
    if isinstance(err, str) and err:
        return err
    if isinstance(err, dict):
        for key in ("message", "msg", "detail"):
            value = err.get(key)
            if isinstance(value, str) and value:
                return value
        return json.dumps(err, ensure_ascii=False)
    for key in ("message", "detail"):
        value = obj.get(key)
        if isinstance(value, str) and value:
            return value
        if value:
            return json.dumps(value, ensure_ascii=False)
    return json.dumps(obj, ensure_ascii=False)


# What an event means is decided by its data, as the openai SDKs decide it, never by its
# `event:` name: JSON data is a chunk whatever the name (`event: completion`, `thread.*`),
# [DONE] ends the stream, empty data is a keep-alive. Only `event: error` is named for
# what it is, and a named event whose data is not JSON (`event: ping` / `data: ping`) is a
# keep-alive; unnamed data that is not JSON stays a protocol error.


class StreamDecoder:
    """Turns the events of one response into chunks, and knows how the stream ended."""

    __slots__ = ("_args", "_calls", "_kept", "_limit", "_on_chunk", "_on_reasoning", "chunks", "done",
                 "finish_reason", "impact", "meta",
                 "progress", "texts", "usage")

    def __init__(self, on_chunk: OnChunk, on_reasoning: OnReasoning | None = None, limit: int = MAX_KEPT) -> None:
        self._on_chunk = on_chunk
        self._on_reasoning = on_reasoning  # reasoning deltas (never text): --show-reasoning, --json
        self.finish_reason: str | None = None  # of choice 0, once the server gave one
        self.done = False  # [DONE] seen: nothing after it is read
        self.chunks = 0
        self.texts = 0  # chunks that carried text for choice 0 (the first one times the first token)
        self.progress = 0  # chunks that carried any of the answer (text, reasoning, tool call, finish, usage)
        self.meta: dict[str, Any] = {}  # id, model, created of the answer, as the first chunk gave them
        self.usage: dict[str, Any] | None = None  # the last usage object seen
        self.impact: dict[str, Any] | None = None  # GreenPT's energy and emissions, when sent
        self._calls: dict[int, dict[str, Any]] = {}  # tool calls of choice 0, by index, as assembled
        self._args: dict[int, list[str]] = {}  # their arguments' pieces, joined once when asked for
        self._limit = limit  # the most characters of tool calls kept (--max-answer)
        self._kept = 0

    def feed(self, event: Event) -> None:
        """Handle one SSE event; raises GptPipeError for an error the server reported."""
        data = event.data
        if event.type == "error":
            raise GptPipeError(f"server error: {self._error_text(data)}", ExitCode.UNAVAILABLE)
        if not data.strip():
            return  # a keep-alive (`data:` with nothing)
        if data == _DONE:
            self.done = True
            return
        try:
            obj = _loads(data)
        except ValueError:
            if data.strip() == _DONE:
                self.done = True
                return
            if event.type != "message":
                return  # a named keep-alive: `event: ping` with `data: ping`
            if event.lines > 1:
                # Two chunks on consecutive `data:` lines with no blank line between
                # (seen from some proxies): each line is a chunk of its own.
                for line in data.split(b"\n"):
                    if line.strip():
                        self._line(line)
                        if self.done:
                            return
                return
            raise GptPipeError(
                f"protocol error: a chunk is not valid JSON: {_excerpt(data)}", ExitCode.PROTOCOL
            ) from None
        if obj.__class__ is not dict and event.type != "message":
            return  # `event: ping` with `data: 1`: a named keep-alive too
        if event.lines > 1:
            data = dumps_line(obj)
        self.chunk(data, obj)

    def _line(self, line: bytes) -> None:
        if line.strip() == _DONE:
            self.done = True
            return
        try:
            obj = _loads(line)
        except ValueError:
            raise GptPipeError(
                f"protocol error: a chunk is not valid JSON: {_excerpt(line)}", ExitCode.PROTOCOL
            ) from None
        self.chunk(line, obj)

    def feed_completion(self, body: bytes) -> None:
        """Handle a whole non-streamed JSON answer (a server that ignored ``stream: true``)."""
        try:
            obj = _loads(body)
        except ValueError:
            raise GptPipeError(
                f"protocol error: the response is not valid JSON: {_excerpt(body)}", ExitCode.PROTOCOL
            ) from None
        if obj.__class__ is dict and obj.get("error") is None and obj.get("object") != "error" \
                and obj.get("choices").__class__ is not list:
            raise GptPipeError(
                f"protocol error: the response is JSON but not a chat completion (no choices): {_excerpt(body)}",
                ExitCode.PROTOCOL,
            )
        self.chunk(dumps_line(obj), obj)
        self.done = True

    def chunk(self, raw: bytes, obj: Any) -> None:
        """Handle one parsed chunk whose one-line form is ``raw``."""
        if obj.__class__ is not dict:
            raise GptPipeError(
                f"protocol error: a chunk is not a JSON object: {_excerpt(raw)}", ExitCode.PROTOCOL
            )
        self.chunks += 1
        if obj.get("error") is not None or obj.get("object") == "error":
            self._on_chunk(raw, "")
            raise GptPipeError(f"server error: {describe_error(obj)}", ExitCode.UNAVAILABLE)
        if not self.meta:
            self.meta = {key: obj[key] for key in ("id", "model", "created") if key in obj}
        usage = obj.get("usage")
        progress = False
        if usage:
            self.usage = usage
            progress = True
            impact = obj.get("impact")
            if impact:
                self.impact = impact
        text = ""
        choices = obj.get("choices")
        if choices.__class__ is list:
            for position, choice in enumerate(choices):
                if choice.__class__ is not dict or choice.get("index", position) != 0:
                    continue
                delta = choice.get("delta")
                if delta is None:
                    delta = choice.get("message")  # a non-streamed answer's shape
                if delta.__class__ is dict:
                    content = delta.get("content")
                    if content.__class__ is str:
                        text += content
                    if len(delta) > 1 or content is None:  # more than a content delta: look further
                        thought = delta.get("reasoning_content") or delta.get("reasoning")
                        if thought and thought.__class__ is str:
                            progress = True
                            if self._on_reasoning is not None:
                                self._on_reasoning(thought)
                        calls = delta.get("tool_calls")
                        if calls.__class__ is list and calls:
                            progress = True
                            self._add_calls(calls)
                        elif delta.get("function_call").__class__ is dict:  # the older, single form
                            progress = True
                            self._add_calls([{"index": 0, "type": "function", "function": delta["function_call"]}])
                reason = choice.get("finish_reason")
                if reason and reason.__class__ is str:
                    self.finish_reason = reason
                    progress = True
        if text:
            self.texts += 1
            progress = True
        if progress:
            self.progress += 1
        self._on_chunk(raw, text)
        if self.finish_reason == "error":
            raise GptPipeError(
                f"server error: the answer finished with finish_reason \"error\"{self._choice_error(choices)}",
                ExitCode.UNAVAILABLE,
            )

    def _add_calls(self, calls: list[Any]) -> None:
        """Streamed tool calls come in pieces (id and name first, the arguments split over
        many deltas, several calls interleaved by index): put them back together."""
        for position, call in enumerate(calls):
            if call.__class__ is not dict:
                continue
            index = call.get("index", position)
            if index.__class__ is not int:
                continue
            slot = self._calls.get(index)
            if slot is None:
                self._keep(_SLOT_COST)  # a million indexes must not cost a million slots for free
                slot = self._calls[index] = {"id": None, "type": "function", "function": {"name": "", "arguments": ""}}
                self._args[index] = []
            if call.get("id").__class__ is str:
                self._keep(len(call["id"]))
                slot["id"] = call["id"]
            if call.get("type").__class__ is str:
                self._keep(len(call["type"]))
                slot["type"] = call["type"]
            function = call.get("function")
            if function.__class__ is dict:
                name, arguments = function.get("name"), function.get("arguments")
                if name.__class__ is str and name and not slot["function"]["name"]:
                    self._keep(len(name))
                    slot["function"]["name"] = name
                if arguments is not None and arguments.__class__ is not str:  # a non-streamed answer's object
                    arguments = json.dumps(arguments, ensure_ascii=False)
                if arguments:
                    self._keep(len(arguments))
                    self._args[index].append(arguments)  # joined once: += would be quadratic

    def _keep(self, size: int) -> None:
        self._kept += size
        if self._kept > self._limit:
            raise GptPipeError(
                f"protocol error: the tool calls are longer than {format_size(self._limit)} characters, more than "
                "is kept (--max-answer raises the cap)", ExitCode.PROTOCOL)

    @property
    def tool_calls(self) -> list[dict[str, Any]]:
        """The tool calls of choice 0, as a non-streamed chat.completion carries them."""
        calls = []
        for index in sorted(self._calls):
            slot = self._calls[index]
            pieces = self._args[index]
            if len(pieces) > 1:
                pieces[:] = ["".join(pieces)]
            slot["function"]["arguments"] = pieces[0] if pieces else ""
            calls.append(slot)
        return calls

    @staticmethod
    def _choice_error(choices: Any) -> str:
        for choice in choices if isinstance(choices, list) else ():
            if isinstance(choice, dict) and choice.get("error"):
                return f": {describe_error(choice)}"
        return ""

    @staticmethod
    def _error_text(data: bytes) -> str:
        try:
            return describe_error(_loads(data))
        except ValueError:
            return data.decode("utf-8", "replace") or "(no message)"

    def outcome(self) -> tuple[int, str | None]:
        """The exit code of a stream that has ended, and a warning to show, if any.

        Raises GptPipeError (INCOMPLETE) when the stream ended before any finish reason.
        """
        if self.finish_reason is not None:
            return for_finish_reason(self.finish_reason), None
        if self.done:
            return ExitCode.OK, "the stream ended with [DONE] but gave no finish_reason"
        raise GptPipeError(
            "the stream ended before the answer finished (connection closed)",
            ExitCode.INCOMPLETE,
            retryable=True,
        )


def _excerpt(data: bytes, limit: int = 60) -> str:
    return repr(excerpt(data[:4096].decode("utf-8", "replace").strip(), limit))


def _short(name: str) -> str:
    return excerpt(name, 40)


def finish_note(decoder: StreamDecoder) -> str | None:
    """One line for an answer that finished other than with "stop" (None for stop)."""
    reason = decoder.finish_reason
    if reason in (None, "stop"):
        return None
    if reason == "length":
        return "the answer was cut at the token limit (finish_reason: length)"
    if reason == "content_filter":
        return "the answer was stopped by the content filter (finish_reason: content_filter)"
    if reason in ("tool_calls", "function_call"):
        calls = decoder.tool_calls
        names = ", ".join(_short(call["function"]["name"] or "?") for call in calls[:5])
        if len(calls) > 5:
            names += f" and {len(calls) - 5} more"
        count = f"{len(calls)} tool call{'s' if len(calls) != 1 else ''}"
        return f"the model asked for {count}{': ' + names if names else ''} (finish_reason: {reason})"
    return f"the answer ended with finish_reason: {reason}"
