"""Rate limits: the server's numbers are read in every header style, a batch keeps to them
without losing a line, --rate sets a ceiling by hand, and a single run waits for the reset
a 429 names. The local server enforces a fixed-window limit of its own."""

from __future__ import annotations

import json
import time

import pytest
from conftest import KEY
from server import RateWindow as Window
from server import refused_once

from gpt_pipe.ratelimit import Pace, duration, read


def prompts(n: int) -> bytes:
    return b"".join(json.dumps({"id": i, "prompt": f"q{i}"}).encode() + b"\n" for i in range(n))


@pytest.mark.parametrize("style", ["openai", "ietf", "structured", "tokens", "retry-after", "bare"])
def test_a_batch_keeps_to_the_limit_and_loses_no_line(run, server, style):
    window = Window(4, 1.0, style)
    server.reply = window
    r = run("--batch", "-P", "4", "--retries", "0", stdin=prompts(12))
    codes = [json.loads(line)["exit"] for line in r.out.splitlines()]
    assert codes == [0] * 12 and r.code == 0, r.err
    if style in ("openai", "ietf", "structured"):
        assert window.refused <= 4, window.refused  # at most -P responses 429 in the whole batch
    assert "waiting for the rate limit" in r.err or window.refused == 0


def test_a_limit_below_parallel_with_a_long_window_loses_no_line(run, server):
    window = Window(2, 2.0, "ietf")
    server.reply = window
    r = run("--batch", "-P", "8", "--retries", "0", stdin=prompts(5))
    assert [json.loads(line)["exit"] for line in r.out.splitlines()] == [0] * 5, r.err


def test_rate_by_hand_keeps_below_a_server_that_says_nothing(run, server):
    window = Window(5, 0.5, "none")  # 10 per second, and no headers
    server.reply = window
    r = run("--batch", "-P", "8", "--rate", "5/s", stdin=prompts(8))
    assert r.code == 0 and window.refused == 0, r.err


def test_a_single_run_waits_for_the_reset_a_429_names(run, server):
    server.reply, arrivals = refused_once({"x-ratelimit-reset-requests": "1.5s"})
    r = run("--retries", "1", "hi")
    assert (r.code, r.out) == (0, b"ok\n") and "retrying in 1.5 s" in r.err
    assert arrivals[1] - arrivals[0] >= 1.4


def test_debug_shows_what_was_read(run, server):
    server.reply = Window(10, 60.0, "openai")
    r = run("--debug", "hi")
    assert "rate limit read: limit=10, remaining=9, reset=" in r.err


@pytest.mark.parametrize("value, per_second", [("9/s", 9.0), ("540/min", 9.0), ("3600/h", 1.0)])
def test_rate_takes_per_second_minute_or_hour(value, per_second):
    from gpt_pipe.options import parse_rate

    assert parse_rate(value) == per_second


def test_a_bad_rate_is_a_usage_error(run, server):
    r = run("--rate", "fast", "hi")
    assert r.code == 2 and "not a rate" in r.err and server.requests == []


# The readers, on their own -------------------------------------------------------------------

@pytest.mark.parametrize("text, seconds", [("1s", 1.0), ("20ms", 0.02), ("6m0s", 360.0), ("1h2m3.5s", 3723.5),
                                           ("2", 2.0), ("1.5", 1.5), ("soon", None), ("", None)])
def test_durations(text, seconds):
    assert duration(text) == seconds


def test_every_header_style_is_read_case_insensitively():
    from requests.structures import CaseInsensitiveDict

    openai = read(CaseInsensitiveDict({"X-RateLimit-Remaining-Requests": "0", "x-ratelimit-reset-requests": "6m0s",
                                       "x-ratelimit-remaining-tokens": "10", "x-ratelimit-reset-tokens": "20ms"}))
    assert (openai.remaining, openai.reset, openai.token_remaining, openai.token_reset) == (0, 360.0, 10, 0.02)
    greenpt = read(CaseInsensitiveDict({"ratelimit-limit": "40", "ratelimit-policy": "40;w=60"}))
    assert (greenpt.limit, greenpt.window) == (40, 60.0)
    structured = read(CaseInsensitiveDict({"RateLimit": '"default";r=0;t=30',
                                           "RateLimit-Policy": '"default";q=40;w=60'}))
    assert (structured.remaining, structured.reset, structured.limit, structured.window) == (0, 30.0, 40, 60.0)
    assert not read(CaseInsensitiveDict({"Content-Type": "text/event-stream"}))


def test_remaining_requests_are_counted_down_locally():
    from requests.structures import CaseInsensitiveDict

    pace = Pace()
    pace.learn(read(CaseInsensitiveDict({"RateLimit-Remaining": "2", "RateLimit-Reset": "30"})), 200)
    assert pace.delay() == 0 and pace.delay() == 0
    assert pace.delay() > 25  # the window is used up: wait for its reset


def test_the_budget_counts_requests_in_flight_whatever_order_the_server_counted_them():
    """Four requests start before any numbers are known, in a window of 4. The server counts
    them in another order than they started (1, 3, 0, 2) and their answers come in yet another:
    no fifth request may start before the reset, whatever each answer says."""
    import threading

    from requests.structures import CaseInsensitiveDict

    def numbers(remaining: int, reset: str = "30") -> object:
        return read(CaseInsensitiveDict({"RateLimit-Remaining": str(remaining), "RateLimit-Reset": reset}))

    pace = Pace()
    left_when_counted = {1: 3, 3: 2, 0: 1, 2: 0}
    answer = [threading.Event() for _ in range(4)]
    answered = [threading.Event() for _ in range(4)]
    started = threading.Barrier(5)

    def request(number: int) -> None:
        assert pace.delay() == 0
        started.wait()
        answer[number].wait()
        pace.learn(numbers(left_when_counted[number]), 200)
        answered[number].set()

    threads = [threading.Thread(target=request, args=(number,)) for number in range(4)]
    for thread in threads:
        thread.start()
    started.wait()
    blocked: list[float] = []
    for number in (3, 1, 2, 0):  # the order the answers arrive in
        answer[number].set()
        answered[number].wait()
        waiter = threading.Thread(target=lambda: blocked.append(pace.delay()))  # a fifth request
        waiter.start()
        waiter.join()
    for thread in threads:
        thread.join()
    assert len(blocked) == 4 and all(wait > 25 for wait in blocked), blocked  # each had to wait for the reset


def test_a_fleet_of_runs_shares_what_one_learnt(run, server, home):
    """One run meets a 429 with Retry-After: 2; the next run, started at once, waits for it
    instead of being refused too (the wait is recorded under the cache directory)."""
    server.reply, arrivals = refused_once({"Retry-After": "2"})
    first = run("--retries", "0", "hi")
    assert first.code == 75
    second = run("--retries", "0", "hi")
    assert (second.code, second.out) == (0, b"ok\n") and arrivals[1] - arrivals[0] >= 1.8
    shared = list((home / ".cache" / "gpt-pipe" / "ratelimit").iterdir())
    assert shared and all(KEY.encode() not in path.read_bytes() for path in shared if path.is_file())


def test_a_corrupt_shared_record_is_ignored(run, server, home):
    import hashlib

    folder = home / ".cache" / "gpt-pipe" / "ratelimit"
    folder.mkdir(parents=True, mode=0o700)
    name = hashlib.sha256(f"127.0.0.1:{server.port}".encode()).hexdigest()[:24]
    for content in (b"\xff garbage", b"1e400\n", b""):
        (folder / name).write_bytes(content)
        r = run("hi")
        assert (r.code, r.out) == (0, b"Hello\n")
    (folder / name).write_bytes(f"{time.time() + 1.5:.3f}\n".encode())  # a good one is followed
    began = time.monotonic()
    assert run("hi").code == 0 and time.monotonic() - began >= 1.2
