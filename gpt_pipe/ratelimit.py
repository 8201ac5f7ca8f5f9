"""Rate limits: what a server says of them (every header style in use), and the one pace
all requests of a run keep to (a --batch's workers share it).

Header styles read, case-insensitively, for requests and for tokens:
- OpenAI: ``x-ratelimit-limit-requests``, ``x-ratelimit-remaining-requests``,
  ``x-ratelimit-reset-requests`` (durations: ``1s``, ``20ms``, ``6m0s``, ``1h2m3.5s``), and
  the same three for ``-tokens``;
- the IETF httpapi drafts: ``RateLimit-Limit``, ``RateLimit-Remaining``, ``RateLimit-Reset``
  (seconds) with ``RateLimit-Policy: 40;w=60`` (GreenPT sends these), and the structured
  ``RateLimit: "default";r=0;t=30`` with ``RateLimit-Policy: "default";q=40;w=60``;
- ``Retry-After`` (seconds or an HTTP date) on a 429.
"""

from __future__ import annotations

import re
import threading
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

# The longest a batch waits for the rate limit with no request accepted at all: past it,
# the lines still waiting end with 75 (a server that will never let them through).
STARVED_SECONDS = 600.0

# Compiled on first use (re's cache), not at import: most responses carry no duration.
_DURATION = r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m(?!s))?(?:(\d+(?:\.\d+)?)s)?(?:(\d+(?:\.\d+)?)ms)?"


def duration(text: str | None) -> float | None:
    """Seconds from ``2``, ``1.5``, ``1s``, ``20ms``, ``6m0s``, ``1h2m3.5s``; None if not one."""
    if not text:
        return None
    text = text.strip().lower()[:32]
    try:
        seconds = float(text)
    except ValueError:
        match = re.fullmatch(_DURATION, text)
        if match is None or not any(match.groups()):
            return None
        hours, minutes, secs, millis = (float(group) if group else 0.0 for group in match.groups())
        seconds = hours * 3600 + minutes * 60 + secs + millis / 1000
    return seconds if 0 <= seconds < 1e9 else None


def _count(text: str | None) -> int | None:
    if text is None:
        return None
    text = text.strip()[:20]
    return int(text) if text.isascii() and text.isdigit() else None


def _parameters(text: str) -> dict[str, str]:
    """``"default";q=40;w=60`` or ``40;w=60`` -> {"": "40", "q": "40", "w": "60"} (the first
    item of a list, as the structured fields give one policy per name)."""
    first = text.split(",", 1)[0]
    items = [item.strip() for item in first.split(";")]
    found: dict[str, str] = {}
    if items and "=" not in items[0]:
        found[""] = items[0].strip('"')
    for item in items[1:]:
        key, _, value = item.partition("=")
        found[key.strip().lower()] = value.strip().strip('"')
    return found


class Reading:
    """What one response said; None where it said nothing."""

    __slots__ = ("limit", "remaining", "reset", "retry_after", "token_remaining", "token_reset", "window")

    def __init__(self) -> None:
        self.limit: int | None = None  # requests per window
        self.remaining: int | None = None  # requests left in this window
        self.reset: float | None = None  # seconds until the window resets
        self.window: float | None = None  # the window's length
        self.token_remaining: int | None = None
        self.token_reset: float | None = None
        self.retry_after: float | None = None

    def __bool__(self) -> bool:
        return any(getattr(self, name) is not None for name in self.__slots__)

    def describe(self) -> str:
        return ", ".join(f"{name}={value:g}" for name in self.__slots__
                         if (value := getattr(self, name)) is not None)


def read(headers: Mapping[str, str]) -> Reading:
    """The rate-limit fields of a response's headers (a case-insensitive mapping)."""
    found = Reading()
    get = headers.get
    found.limit = _count(get("x-ratelimit-limit-requests"))
    found.remaining = _count(get("x-ratelimit-remaining-requests"))
    found.reset = duration(get("x-ratelimit-reset-requests"))
    found.token_remaining = _count(get("x-ratelimit-remaining-tokens"))
    found.token_reset = duration(get("x-ratelimit-reset-tokens"))
    # The IETF drafts' fields, where the OpenAI style said nothing.
    if found.limit is None:
        found.limit = _count(get("ratelimit-limit"))
    if found.remaining is None:
        found.remaining = _count(get("ratelimit-remaining"))
    if found.reset is None:
        found.reset = duration(get("ratelimit-reset"))
    structured = get("ratelimit")
    if structured:
        fields = _parameters(structured)
        if found.remaining is None:
            found.remaining = _count(fields.get("r"))
        if found.reset is None:
            found.reset = duration(fields.get("t"))
    policy = get("ratelimit-policy")
    if policy:
        fields = _parameters(policy)
        found.limit = found.limit if found.limit is not None else _count(fields.get("q") or fields.get(""))
        found.window = duration(fields.get("w"))
    retry_after = get("retry-after")
    if retry_after:
        from gpt_pipe.failures import parse_retry_after

        found.retry_after = parse_retry_after(retry_after)
    return found


# A reset a server names is rounded (to 10 ms, to a second): a request sent at the very
# reset can reach it a little before its window turns, and be refused.
RESET_MARGIN = 0.02


class Pace:
    """When the next request may start, for all the requests of one run (a --batch's
    workers share one): the server's own numbers (remaining requests and tokens, less the
    requests in flight; the reset; a 429's wait), and
    a ceiling set by hand (--rate). A bare 429 holds every worker back, longer after each
    wait that ended in another one."""

    def __init__(self, rate: float | None = None, origin: str | None = None, most: float = 86400.0) -> None:
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)  # notified by each answer's numbers
        self._news = 0  # answers learnt so far
        self._origin = origin  # shared with other processes through a file (record/recorded)
        self._interval = 1.0 / rate if rate else 0.0  # --rate: the least time between two starts
        self._next = 0.0  # the earliest the next request may start (--rate)
        self._blocked = 0.0  # no request before this (a 429's wait, or a window used up)
        # Requests left in the server's window: the fewest any response of the window gave,
        # less the requests that ended unanswered since (the server may have counted them).
        # The budget is that, less every request in flight: each may reach the server after
        # the counts seen so far, so the budget errs low, never high, whatever order requests
        # arrive in, and it is exact again once their answers come.
        self._left: int | None = None
        self._in_flight = 0
        self._mine = threading.local()  # ``flying``: this thread's request awaits its answer
        self._reset = 0.0  # when that window resets
        self._backoff = 0.0  # a bare 429's wait, doubled by each one in a row
        self._tokens_seen: int | None = None  # the token budget the last response gave
        self._token_cost = 0  # what one request costs of it, as far as seen
        self.waited = 0.0  # wall time with some request waiting here, for the summary
        self._counted = 0.0  # waits are counted up to this time
        self.refusals = 0  # 429s met
        self.last_accepted = time.monotonic()
        self._beyond: float | None = None  # a recorded wait longer than the run may wait
        self._most = most
        if origin is not None:
            until = recorded(origin)  # another run learnt that this origin is blocked: wait too
            if until is not None:
                left = until - time.time()
                if left > most:
                    self._beyond = left
                else:
                    self._blocked = time.monotonic() + left

    def delay(self) -> float:
        """Seconds to wait before the next request may start (0: now, and it is counted)."""
        with self._lock:
            return self._delay()

    def _delay(self) -> float:
        """delay() with self._lock held."""
        now = time.monotonic()
        until = max(self._blocked, self._next)
        if getattr(self._mine, "flying", False):  # this thread's last request got no answer
            self._mine.flying = False
            self._in_flight -= 1
            self._left = None if self._left is None else self._left - 1  # counted, maybe: still spent
        if self._left is not None and self._left - self._in_flight <= 0 and self._reset + RESET_MARGIN > now:
            until = max(until, self._reset + RESET_MARGIN)
        if until > now:
            return until - now
        self._in_flight += 1
        self._mine.flying = True
        self._next = now + self._interval
        return 0.0

    def wait(self, left: float | None = None, on_wait: Any = None) -> bool:
        """Wait for this request's turn; False when it would not come within ``left`` s."""
        if self._beyond is not None:
            from gpt_pipe.exitcodes import ExitCode, GptPipeError

            beyond, self._beyond = self._beyond, None
            raise GptPipeError(f"{self._origin} asked another run to wait {beyond:.0f} s more for its rate limit, "
                               f"longer than --max-retry-wait ({self._most:g} s); nothing was sent", ExitCode.TEMPFAIL)
        started = time.monotonic()
        while True:
            with self._lock:
                delay = self._delay()
                news = self._news
            if delay <= 0:
                return True
            if left is not None and time.monotonic() - started + delay > left:
                return False
            if on_wait is not None:
                on_wait(delay)
            began = time.monotonic()
            with self._changed:  # an answer may shorten the wait (a budget that erred low): look again then
                if self._news == news:
                    self._changed.wait(min(delay, 1.0))
            ended = time.monotonic()
            with self._lock:  # wall time with some request waiting (workers' waits overlap)
                self.waited += max(0.0, ended - max(began, self._counted))
                self._counted = max(self._counted, ended)

    def learn(self, reading: Reading, status: int) -> float | None:
        """A response's numbers; for a 429, the wait it asks for (None: no hint at all)."""
        now = time.monotonic()
        hinted = None
        with self._lock:
            if getattr(self._mine, "flying", False):
                self._mine.flying = False
                self._in_flight -= 1
            self._news += 1
            self._changed.notify_all()
            before = self._blocked
            if status != 429:
                self.last_accepted = now
                self._backoff = 0.0
            remaining, reset = reading.remaining, reading.reset
            if reading.token_remaining is not None:
                # Tokens: what one request costs is learnt from how the remaining budget falls
                # between responses, so the token budget counts down in requests too.
                seen = self._tokens_seen
                if seen is not None and 0 < seen - reading.token_remaining < (self._token_cost or 1 << 62):
                    self._token_cost = seen - reading.token_remaining
                    self._left = None  # counted with a cost now known to be too high: afresh
                self._tokens_seen = reading.token_remaining
                if reading.token_remaining <= 0 and reading.token_reset is not None:
                    self._blocked = max(self._blocked, now + reading.token_reset)
                if self._token_cost and (remaining is None or reading.token_remaining // self._token_cost < remaining):
                    remaining, reset = reading.token_remaining // self._token_cost, reading.token_reset
            if remaining is not None:
                ends = now + reset if reset is not None else self._reset
                if reset is not None and ends > self._reset + 0.5:
                    self._left = remaining  # a new window
                    self._tokens_seen = reading.token_remaining
                elif reset is None or ends > self._reset - 0.5:  # not a late answer from the window before
                    self._left = remaining if self._left is None else min(self._left, remaining)
                self._reset = max(self._reset, ends) if reset is not None else self._reset
                if remaining <= 0 and reset is not None:
                    self._blocked = max(self._blocked, now + reset + RESET_MARGIN)
            if status == 429:
                self.refusals += 1
                wait = reading.retry_after
                if wait is None:
                    wait = reading.reset if reading.reset is not None else reading.token_reset
                hinted = wait
                if wait is None:  # a bare 429: every worker waits, twice as long after each
                    # wait that ended in another 429 (those of requests already out meanwhile
                    # do not count); an accepted request starts the wait at 1 s again
                    if now >= self._blocked:
                        self._backoff = min(30.0, max(1.0, self._backoff * 2))
                    wait = self._backoff
                self._blocked = max(self._blocked, now + wait)
            blocked = self._blocked
        if self._origin is not None and blocked > max(before, now + 0.05):
            record(self._origin, time.time() + (blocked - now))  # other runs wait for it too
        return hinted

    def hold(self, seconds: float) -> None:
        """No request starts for ``seconds`` (a retry's wait, for every worker)."""
        with self._lock:
            self._blocked = max(self._blocked, time.monotonic() + seconds)

    def starved(self) -> bool:
        """Whether no request has been accepted for STARVED_SECONDS."""
        return time.monotonic() - self.last_accepted > STARVED_SECONDS


# Several processes share what they learn: "this origin is blocked until T" in a small file
# under the cache directory, one per origin (named by a hash of host and port; no key, no
# URL path). A missing, corrupt or unwritable file is ignored, never an error.

def _shared_file(origin: str) -> str:
    import hashlib
    import os

    from gpt_pipe.paths import cache_dir

    name = hashlib.sha256(origin.encode("utf-8", "replace")).hexdigest()[:24]
    return os.path.join(cache_dir(), "ratelimit", name)


def recorded(origin: str) -> float | None:
    """The time (epoch seconds) another run recorded this origin as blocked until, if later than now."""
    try:
        with open(_shared_file(origin), "rb") as f:
            until = float(f.read(64).split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return until if time.time() < until < time.time() + 86400 else None


def record(origin: str, until: float) -> None:
    """Record this origin as blocked until ``until`` (epoch seconds), keeping a later record;
    whole or not at all, under a lock, in a directory of the user's own."""
    import fcntl
    import os

    from gpt_pipe.exitcodes import GptPipeError
    from gpt_pipe.files import private_dir, write_replace

    path = _shared_file(origin)
    try:
        private_dir(os.path.dirname(path), "rate-limit directory")
        fd = os.open(path + ".lock", os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # busy: another run is recording it
            known = recorded(origin)
            if known is None or until > known:
                write_replace(path, f"{until:.3f}\n".encode())
        finally:
            os.close(fd)
    except (OSError, GptPipeError):
        pass
