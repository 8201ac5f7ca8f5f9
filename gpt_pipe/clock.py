"""Deadlines on the monotonic clock: the one way gpt-pipe bounds a wait (a file, a lock,
a key command, the response head, the answer's progress, --max-time). Standard library
only."""

from __future__ import annotations

import time


class Deadline:
    """``seconds`` from now (None: no bound); ``restart`` starts the same span again."""

    __slots__ = ("seconds", "until")

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self.until: float | None = None if seconds is None else time.monotonic() + seconds

    def restart(self) -> None:
        self.until = None if self.seconds is None else time.monotonic() + self.seconds

    def clear(self) -> None:
        self.until = None

    def left(self) -> float | None:
        """Seconds left (0 or less once passed), or None without a bound."""
        return None if self.until is None else self.until - time.monotonic()

    def passed(self) -> bool:
        left = self.left()
        return left is not None and left <= 0
