"""HTTP/1.1 chunked transfer coding, decoded incrementally; pure (no I/O).

Raw bytes go in exactly as read from the socket, in pieces of any size; the body bytes
they complete come out at once, including the start of a chunk whose end is still on
the wire. One read can so carry many chunks (a burst of events) in one call.
"""

from __future__ import annotations

from gpt_pipe.exitcodes import ExitCode, GptPipeError

_SIZE, _DATA, _DATA_END, _TRAILER, _DONE = range(5)
_HEX = b"0123456789abcdefABCDEF"
MAX_LINE = 4096  # a chunk-size or trailer line longer than this is not HTTP


class ChunkedDecoder:
    __slots__ = ("_broken", "_left", "_rest", "_state")

    def __init__(self) -> None:
        self._state = _SIZE
        self._left = 0  # bytes of chunk data still to come
        self._rest = b""  # an incomplete size line, CRLF or trailer line
        self._broken: GptPipeError | None = None  # raised once the good bytes are out

    @property
    def done(self) -> bool:
        """The last chunk and the trailers have been read: the body is complete."""
        return self._state == _DONE

    def feed(self, data: bytes) -> bytes:
        """The body bytes that ``data`` completes; raises GptPipeError for broken framing.

        Body bytes before the break are returned first; the error comes with the next call.
        """
        if self._broken is not None:
            raise self._broken
        out: list[bytes] = []
        try:
            self._feed(data, out)
        except GptPipeError as error:
            if not out:
                raise
            self._broken = error
        return b"".join(out) if len(out) != 1 else out[0]

    def _feed(self, data: bytes, out: list[bytes]) -> None:
        if self._rest:
            data = self._rest + data
            self._rest = b""
        pos, end = 0, len(data)
        state = self._state
        while pos < end and state != _DONE:
            if state == _DATA:
                take = min(self._left, end - pos)
                out.append(data[pos : pos + take])
                pos += take
                self._left -= take
                if not self._left:
                    state = _DATA_END
                continue
            eol = data.find(b"\n", pos)
            if eol < 0:
                if end - pos > MAX_LINE:
                    raise _broken("a line longer than the limit")
                break  # the rest of the line is still on the wire
            line = data[pos:eol]
            pos = eol + 1
            if state == _DATA_END:
                if line not in (b"\r", b""):
                    raise _broken("chunk data longer than its size")
                state = _SIZE
            elif state == _SIZE:
                size_text = line.split(b";", 1)[0].strip()
                if not size_text or size_text.strip(_HEX):  # int() would also take "+", "_"
                    raise _broken(f"a bad chunk size {size_text[:20]!r}")
                size = int(size_text, 16)
                if size and data[pos + size : pos + size + 2] == b"\r\n":
                    out.append(data[pos : pos + size])  # the whole chunk is here: one step
                    pos += size + 2
                elif size:
                    self._left = size
                    state = _DATA
                else:
                    state = _TRAILER
            elif not line.strip():  # _TRAILER: a blank line ends the message
                state = _DONE
        self._state = state
        if pos < end and state != _DONE:
            self._rest = data[pos:]


def _broken(what: str) -> GptPipeError:
    return GptPipeError(
        f"the connection was closed before the answer finished (broken chunked framing: {what})",
        ExitCode.INCOMPLETE,
        retryable=True,
    )
