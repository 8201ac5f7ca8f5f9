"""JSON from outside (a server, a log, a user's file), parsed so that hostile input is
bad data and never a crash: nesting too deep, integers too long for int(), more values
than the memory should hold. Pure."""

from __future__ import annotations

import json
import re
from typing import Any

# Python refuses int() of more than 4300 digits (a CPU guard); such a number is kept as
# its digits (a string) instead of failing the whole document.
_INT_DIGITS = 4300

# What a parse may build: each value (object, array, key, string, number) costs 30 to 200
# bytes once parsed, so a 32 MiB file of small values would become 500 MiB and more. A
# value is counted by the character that comes before it (, : [ {), outside strings.
MAX_VALUES = 500_000
_STRUCTURE: re.Pattern[str] | None = None  # compiled when first needed: never at start-up


def check_values(text: str) -> None:
    """ValueError if ``text`` holds more than MAX_VALUES JSON values. Linear, and for a
    text shorter than that (every chunk of a stream) a length check only."""
    if len(text) <= MAX_VALUES:
        return  # each value takes a character at least
    if text.count(",") + text.count(":") + text.count("[") + text.count("{") < MAX_VALUES:
        return
    global _STRUCTURE
    if _STRUCTURE is None:
        # Everything up to the next , : [ { outside strings, and that character: one match
        # per value. A string that is not terminated runs to the end; each part starts on a
        # character of its own, and the last part is optional, so a match never fails once
        # begun and nothing is read twice (linear).
        _STRUCTURE = re.compile(r'(?:"[^"\\]*(?:\\.[^"\\]*)*"?|[^",:\[{])*([,:\[{])?', re.DOTALL)
    values = 0
    for match in _STRUCTURE.finditer(text):  # keeps nothing, and stops at the cap
        if match.lastindex is None:
            break
        values += 1
        if values >= MAX_VALUES:
            raise ValueError(f"more than {MAX_VALUES:,} JSON values")


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
    check_values(text)
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
