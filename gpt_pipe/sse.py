"""Server-Sent Events parsing by the WHATWG rules; pure (no I/O).

Bytes go in exactly as they came off the wire, in reads of any size; events come out as
soon as the blank line that ends them has arrived. Lines end at LF, CRLF or a lone CR,
and only at those bytes: the stream is never decoded before it is split, so U+2028,
U+0085 and friends inside a JSON string stay data.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from operator import itemgetter

from gpt_pipe.exitcodes import ExitCode, GptPipeError
from gpt_pipe.options import format_size

_BOM = b"\xef\xbb\xbf"

# The default cap on one line and on one event's data: a chunk is a few hundred bytes, a
# whole non-streamed answer rarely a megabyte; a server that never ends a line must not
# grow memory without limit.
MAX_EVENT = 4 * 1024 * 1024


class Event(tuple):
    """One event: ``type``, the `event:` field ("message" when absent; "error" for an
    `error:` field); ``data``, the `data:` lines joined with b"\n" as received (not
    decoded); ``lines``, how many `data:` lines made it (1: ``data`` is one received line).

    A tuple with C-level getters, as a NamedTuple is, without the class it generates at
    import (a cost on every start-up).
    """

    __slots__ = ()

    def __new__(cls, type: str, data: bytes, lines: int) -> Event:
        return tuple.__new__(cls, (type, data, lines))

    type = property(itemgetter(0))
    data = property(itemgetter(1))
    lines = property(itemgetter(2))


# Event(...) runs a Python-level __new__; the parser makes one per event, so it builds
# the tuple directly (the same object, at a third of the cost).
_new = tuple.__new__


class SSEParser:
    """Incremental parser: ``feed`` each read, get back the events it completed.

    An event that never gets its closing blank line is never returned (WHATWG: an
    unterminated last event is discarded). A line or an event's data longer than
    ``max_size`` bytes raises GptPipeError (protocol error) instead of growing memory.
    """

    __slots__ = ("_data", "_data_size", "_first_line", "_max", "_pending", "_pending_size", "_skip_lf", "_type")

    def __init__(self, max_size: int = MAX_EVENT, bom: bool = True) -> None:
        self._max = max_size
        self._pending: list[bytes] = []  # pieces of a line whose end has not arrived
        self._pending_size = 0
        self._skip_lf = False  # the last read ended in CR: an LF opening the next is its pair
        self._first_line = bom  # a BOM may open the first line (``bom`` False: it was taken before)
        self._data: list[bytes] = []
        self._data_size = 0
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
            self._hold(chunk)
            return []
        if not (self._pending or self._data or self._type or self._first_line):
            if chunk[0] == 10:
                # Blank lines between events mean nothing: skipped at C speed, so a body
                # of nothing but newlines costs no Python step per line.
                chunk = chunk.lstrip(b"\n")
                if not chunk:
                    return []
                if b"\n" not in chunk:
                    self._hold(chunk)
                    return []
            cut = chunk.rfind(b"\n\n") + 2
            if cut == len(chunk):
                return self._blocks(chunk)
            if cut > 1:  # whole events, then the start of the next one
                events = self._blocks(chunk[:cut])
                events.extend(self._split(chunk[cut:]))
                return events
        return self._split(chunk)

    def _hold(self, piece: bytes) -> None:
        """Keep the start of a line whose end has not arrived, up to the cap."""
        self._pending_size += len(piece)
        if self._pending_size > self._max:
            raise too_large("a line of the response", self._max)
        self._pending.append(piece)

    def _split(self, chunk: bytes) -> list[Event]:
        if b"\n" not in chunk:
            self._hold(chunk)
            return []
        lines = chunk.split(b"\n")
        if self._pending:
            self._pending.append(lines[0])
            lines[0] = b"".join(self._pending)
            self._pending = []
            self._pending_size = 0
            if len(lines[0]) > self._max:
                raise too_large("a line of the response", self._max)
        tail = lines.pop()
        if tail:
            self._hold(tail)
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
                self._count(len(line))
                continue
            if not line:
                if data:
                    joined = data[0] if len(data) == 1 else b"\n".join(data)
                    events.append(_new(Event, (self._type or "message", joined, len(data))))
                    data = self._data = []
                    self._data_size = 0
                self._type = ""
                continue
            if line[0] == 58:  # ":" starts a comment
                continue
            field, _, value = line.partition(b":")
            if value[:1] == b" ":
                value = value[1:]
            if field == b"data":
                data.append(value)
                self._count(len(line))
            elif field == b"event":
                self._type = value.decode("utf-8", "replace")
            elif field == b"error":
                # Older llama.cpp servers report failures as an `error:` field.
                self._type = "error"
                data.append(value)
                self._count(len(line))
            # id, retry and unknown fields: nothing for a client that never reconnects.
        return events

    def _count(self, size: int) -> None:
        """An event's data grows by one line: many short lines must not pass the cap either."""
        self._data_size += size + 1
        if self._data_size > self._max:
            raise too_large("an event of the response", self._max)


def too_large(what: str, cap: int) -> GptPipeError:
    return GptPipeError(
        f"protocol error: {what} is larger than {format_size(cap)} (--max-event raises the cap)",
        ExitCode.PROTOCOL,
    )


def iter_events(reads: Iterable[bytes]) -> Iterator[Event]:
    """Every event in a stream given as an iterable of reads."""
    parser = SSEParser()
    for chunk in reads:
        yield from parser.feed(chunk)
