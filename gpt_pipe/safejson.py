"""JSON from outside (a server, a log, a user's file), parsed so that hostile input is
bad data and never a crash: nesting too deep, integers too long for int(), floods of
tiny containers. Pure."""

from __future__ import annotations

import json
from typing import Any

# Python refuses int() of more than 4300 digits (a CPU guard); such a number is kept as
# its digits (a string) instead of failing the whole document.
_INT_DIGITS = 4300

# A 4 MiB document of "[]," would become 1.4 million list objects (80 MB): a document
# above this size with more containers than one per 16 bytes is refused unparsed.
_DENSE_CHECK = 262144


def _int_or_digits(text: str) -> Any:
    return int(text) if len(text) <= _INT_DIGITS else text


_decoder = json.JSONDecoder()
_decode = _decoder.decode  # json.loads without its per-call argument checks
_scan = _decoder.scan_once  # the C scanner itself: a chunk is one object, no whitespace around it
_decode_long_ints = json.JSONDecoder(parse_int=_int_or_digits).decode


def loads(data: bytes | str) -> Any:
    """Parse JSON; every way it can fail is a ValueError (invalid UTF-8 becomes U+FFFD)."""
    # Decoded by us, not by json.loads(bytes): an invalid byte must become U+FFFD, and
    # json's encoding detection would read a stray NUL as UTF-16.
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    if len(text) > _DENSE_CHECK and text.count("[") + text.count("{") > len(text) >> 4:
        raise ValueError("too many nested objects and arrays for its size")
    try:
        if text[:1] == "{" and text[-1:] == "}":
            try:
                obj, end = _scan(text, 0)
                if end == len(text):
                    return obj
            except StopIteration:
                pass
        return _decode(text)
    except RecursionError:
        raise ValueError("nested too deeply") from None
    except json.JSONDecodeError:
        raise
    except ValueError:  # an integer longer than int() takes
        try:
            return _decode_long_ints(text)
        except RecursionError:
            raise ValueError("nested too deeply") from None


def dumps_line(obj: Any) -> bytes:
    """One compact line of UTF-8 JSON (a lone surrogate from a \\ud800 escape kept as such)."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass")
