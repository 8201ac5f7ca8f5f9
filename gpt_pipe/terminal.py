"""Text a server controls, made harmless for a terminal: control characters (C0 but tab
and newline, DEL, C1) and bidirectional overrides are shown escaped, so no answer, error
message or header can write the clipboard (OSC 52), hide a link (OSC 8), retitle or clear
the screen, or reorder what the user reads. And the one place that asks whether stdin,
stdout or stderr is a terminal (once per run)."""

from __future__ import annotations

import os
import re

_TERMINALS: dict[int, bool] = {}


def is_terminal(fd: int) -> bool:
    """Whether fd 0, 1 or 2 is a terminal (a closed one is not), asked once per run."""
    answer = _TERMINALS.get(fd)
    if answer is None:
        try:
            answer = _TERMINALS[fd] = os.isatty(fd)
        except (OSError, ValueError):
            answer = _TERMINALS[fd] = False
    return answer


def can_redraw(fd: int) -> bool:
    """Whether a line on ``fd`` may be redrawn (carriage return, erase to the end of the
    line): a terminal that is not TERM=dumb (Emacs' shell, some CI logs)."""
    return is_terminal(fd) and os.environ.get("TERM", "") != "dumb"


_UNSAFE = "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]|\r(?!\n)"

# The same characters as they stand, UTF-8 encoded, inside a JSON line: raw C0 cannot occur
# in valid JSON, so only DEL, C1 and the bidi controls are left to escape (as \uXXXX, the
# same JSON value).
_UNSAFE_JSON = rb"\x7f|\xc2[\x80-\x9f]|\xd8\x9c|\xe2\x80[\x8e\x8f\xaa-\xae]|\xe2\x81[\xa6-\xa9]"

# Compiled on first use (re's cache), not at import: most runs never need them.


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def neutralize(text: str) -> str:
    """``text`` with every unsafe character shown as ``\\x1b`` or ``\\u202e``."""
    pattern = re.compile(_UNSAFE)
    return pattern.sub(_escaped, text) if pattern.search(text) else text


def _json_escaped(match: re.Match[bytes]) -> bytes:
    return b"\\u%04x" % ord(match.group().decode("utf-8"))


def neutralize_json(line: bytes) -> bytes:
    """A UTF-8 JSON line with unsafe characters written as \\u escapes (the same JSON)."""
    pattern = re.compile(_UNSAFE_JSON)
    return pattern.sub(_json_escaped, line) if pattern.search(line) else line
