"""Server-Sent Events parsing by the WHATWG rules; pure (no I/O).

Bytes go in exactly as they came off the wire, in reads of any size; events come out as
soon as the blank line that ends them has arrived. Lines end at LF, CRLF or a lone CR,
and only at those bytes: the stream is never decoded before it is split, so U+2028,
U+0085 and friends inside a JSON string stay data.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import NamedTuple

_BOM = b"\xef\xbb\xbf"


class Event(NamedTuple):
    type: str  # the `event:` field, "message" when absent; "error" for an `error:` field
    data: bytes  # the `data:` lines joined with b"\n", as received (not decoded)
    lines: int  # how many `data:` lines made it; 1 means `data` is one received line


# Event(...) runs a Python-level __new__; the parser makes one per event, so it builds
# the tuple directly (the same object, at a third of the cost).
_new = tuple.__new__


class SSEParser:
    """Incremental parser: ``feed`` each read, get back the events it completed.

    An event that never gets its closing blank line is never returned (WHATWG: an
    unterminated last event is discarded).
    """

    __slots__ = ("_data", "_first_line", "_pending", "_skip_lf", "_type")

    def __init__(self) -> None:
        self._pending: list[bytes] = []  # pieces of a line whose end has not arrived
        self._skip_lf = False  # the last read ended in CR: an LF opening the next is its pair
        self._first_line = True
        self._data: list[bytes] = []
        self._type = ""

    def feed(self, chunk: bytes) -> list[Event]:
        if self._skip_lf and chunk:
            self._skip_lf = False
            if chunk[0] == 10:
                chunk = chunk[1:]
        if not chunk:
            return []
        if b"\r" in chunk:
            # A CR ends its line at once, even when its LF is still on the wire; the LF,
            # if it comes in the next read, is swallowed by _skip_lf above.
            self._skip_lf = chunk[-1] == 13
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        if b"\n" not in chunk:
            self._pending.append(chunk)
            return []
        if not (self._pending or self._data or self._type or self._first_line):
            cut = chunk.rfind(b"\n\n") + 2
            if cut == len(chunk):
                return self._blocks(chunk)
            if cut > 1:  # whole events, then the start of the next one
                events = self._blocks(chunk[:cut])
                events.extend(self._split(chunk[cut:]))
                return events
        return self._split(chunk)

    def _split(self, chunk: bytes) -> list[Event]:
        if b"\n" not in chunk:
            self._pending.append(chunk)
            return []
        lines = chunk.split(b"\n")
        if self._pending:
            self._pending.append(lines[0])
            lines[0] = b"".join(self._pending)
            self._pending = []
        tail = lines.pop()
        if tail:
            self._pending.append(tail)
        if self._first_line:
            self._first_line = False
            if lines[0].startswith(_BOM):
                lines[0] = lines[0][3:]
        return self._lines(lines)

    def _blocks(self, chunk: bytes) -> list[Event]:
        """The hot path: a read of whole events, the parser holding nothing from before.

        One `data:` line per event is by far the commonest shape; it costs one split per
        event instead of one per line. Anything else goes through ``_lines``.
        """
        events: list[Event] = []
        for block in chunk[:-2].split(b"\n\n"):
            if block[:6] == b"data: " and b"\n" not in block:
                events.append(_new(Event, ("message", block[6:], 1)))
            else:
                lines = block.split(b"\n")
                lines.append(b"")
                events.extend(self._lines(lines))
        return events

    def _lines(self, lines: list[bytes]) -> list[Event]:
        events: list[Event] = []
        data = self._data
        for line in lines:
            if line[:6] == b"data: ":
                data.append(line[6:])
                continue
            if not line:
                if data:
                    joined = data[0] if len(data) == 1 else b"\n".join(data)
                    events.append(_new(Event, (self._type or "message", joined, len(data))))
                    data = self._data = []
                self._type = ""
                continue
            if line[0] == 58:  # ":" starts a comment
                continue
            field, _, value = line.partition(b":")
            if value[:1] == b" ":
                value = value[1:]
            if field == b"data":
                data.append(value)
            elif field == b"event":
                self._type = value.decode("utf-8", "replace")
            elif field == b"error":
                # Older llama.cpp servers report failures as an `error:` field.
                self._type = "error"
                data.append(value)
            # id, retry and unknown fields: nothing for a client that never reconnects.
        return events


def iter_events(reads: Iterable[bytes]) -> Iterator[Event]:
    """Every event in a stream given as an iterable of reads."""
    parser = SSEParser()
    for chunk in reads:
        yield from parser.feed(chunk)
