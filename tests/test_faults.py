"""Fault injection: what flaky networks and odd servers do, and what gpt-pipe makes of it.

Every case checks the exact stdout, the exit code, one clear stderr line per event (no
traceback; the fixture checks that and the key's absence on every run), and that the
process ended within a generous bound: a hang fails the test instead of the suite.
"""

from __future__ import annotations

import email.utils
import json
import signal
import socket
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from server import Cut, Gate, Hang, Pause, Raw, Reply, UntilGone, chunk, event, replies, sse_chunks

from gpt_pipe.exitcodes import GptPipeError
from gpt_pipe.sse import SSEParser
from gpt_pipe.stream import StreamDecoder

BOUND = 20.0  # seconds: far above any case's real duration


def status(code: int, retry_after: str | None = None, message: str = "try later") -> Reply:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    return Reply([json.dumps({"error": {"message": message}}).encode()], status=code, framing="length",
                 content_type="application/json", headers=headers)


OK = Reply(sse_chunks(["fine"]))


def err_lines(r) -> list[str]:
    return r.err.splitlines()


# Retries, before the answer starts ------------------------------------------------------

@pytest.mark.parametrize("code,reason", [(429, "Too Many Requests"), (500, "Internal Server Error"),
                                         (502, "Bad Gateway"), (503, "Service Unavailable"),
                                         (504, "Gateway Timeout")])
def test_retryable_status_then_success(run, server, code, reason):
    server.reply = replies(status(code, "0"), OK)
    r = run("--retries", "3", "hi")
    assert (r.code, r.out) == (0, b"fine\n") and r.seconds < BOUND
    assert err_lines(r) == [f"gpt-pipe: {code} {reason}, retrying in 0.0 s (1/3)"]
    assert len(server.requests) == 2 and server.requests[0].body == server.requests[1].body


def test_retries_run_out_with_the_last_failures_code(run, server):
    server.reply = replies(status(429, "0"), status(503, "0"))
    r = run("--retries", "2", "hi")
    assert (r.code, r.out) == (69, b"") and len(server.requests) == 3
    assert err_lines(r)[:2] == ["gpt-pipe: 429 Too Many Requests, retrying in 0.0 s (1/2)",
                                "gpt-pipe: 503 Service Unavailable, retrying in 0.0 s (2/2)"]
    assert err_lines(r)[2] == "gpt-pipe: HTTP 503 Service Unavailable: try later (after 2 retries)"


@pytest.mark.parametrize("code,exit_code", [(400, 65), (401, 77), (402, 77), (403, 77), (404, 65), (422, 65)])
def test_rejected_requests_are_never_retried(run, server, code, exit_code):
    server.reply = status(code, "0", "no")
    r = run("--retries", "3", "hi")
    assert (r.code, r.out) == (exit_code, b"") and len(server.requests) == 1 and len(err_lines(r)) == 1


def test_retry_after_longer_than_max_retry_wait_is_75_at_once(run, server):
    server.reply = status(503, "120")
    r = run("--retries", "3", "hi")
    assert (r.code, r.out) == (75, b"") and len(server.requests) == 1 and r.seconds < BOUND
    assert len(err_lines(r)) == 1 and "retry after 120 s" in r.err and "--max-retry-wait (60 s)" in r.err


def test_retry_after_as_an_http_date(run, server, tmp_path):
    future = email.utils.formatdate(time.time() + 3600, usegmt=True)
    server.reply = status(429, future)
    r = run("--retries", "3", "--max-retry-wait", "5", "hi")
    assert r.code == 75 and len(server.requests) == 1 and "retry after 3" in r.err
    r = run("hi")  # the hour is recorded for other runs: longer than they wait, so nothing is sent
    assert r.code == 75 and len(server.requests) == 1 and "asked another run to wait" in r.err
    past = email.utils.formatdate(time.time() - 60, usegmt=True)
    server.reply = replies(status(429, past), OK)
    server.requests.clear()
    r = run("--retries", "3", "hi", extra_env={"XDG_CACHE_HOME": str(tmp_path / "fresh-cache")})
    assert (r.code, r.out) == (0, b"fine\n") and "retrying in 0.0 s (1/3)" in r.err


def test_backoff_without_retry_after_and_quiet(run, server):
    server.reply = replies(status(500), OK)
    r = run("--retries", "1", "hi")
    assert (r.code, r.out) == (0, b"fine\n") and r.seconds < BOUND
    (line,) = err_lines(r)
    delay = float(line.split("retrying in ")[1].split(" s")[0])
    assert 0.5 <= delay <= 1.0 and line.endswith("(1/1)")  # base 1 s, equal jitter
    server.reply = replies(status(500, "0"), OK)
    r = run("--retries", "1", "-q", "hi")
    assert (r.code, r.out, r.err) == (0, b"fine\n", "")


def test_retries_from_the_environment(run, server):
    server.reply = replies(status(503, "0"), status(503, "0"), OK)
    r = run("hi", extra_env={"GPT_PIPE_RETRIES": "2"})
    assert (r.code, r.out) == (0, b"fine\n") and len(server.requests) == 3
    server.reply = status(503, "0")
    r = run("--retries", "0", "hi", extra_env={"GPT_PIPE_RETRIES": "2"})
    assert r.code == 69 and len(err_lines(r)) == 1  # the flag beats the environment


def test_connection_refused_on_loopback_is_69_at_once_without_retries(run):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    r = run("--retries", "3", "--base-url", f"http://127.0.0.1:{port}/v1", "hi")
    assert (r.code, r.out) == (69, b"") and r.seconds < BOUND
    assert len(err_lines(r)) == 1 and "Connection refused (nothing listens there)" in err_lines(r)[0]


def test_connection_dropped_after_the_request_is_not_sent_again(run, server):
    """The server read the whole POST, then hung up: it may have reached the model."""
    def flaky(request):
        if len(server.requests) == 1:
            raise OSError("drop the connection unanswered")
        return OK

    server.reply = flaky
    r = run("--retries", "2", "hi")
    assert (r.code, r.out) == (69, b"") and len(server.requests) == 1
    assert len(err_lines(r)) == 1 and "closed the connection without answering" in r.err
    assert "may have reached the model" in r.err and "cannot connect" not in r.err


@pytest.mark.parametrize("head,says", [
    (b"SSH-2.0-OpenSSH_9.6\r\n\r\n", "status line 'SSH-2.0-OpenSSH_9.6'"),
    (b"HTTP/2.0 200 OK\r\n\r\n", "protocol 'HTTP/2.0'"),
    (b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-%d: v\r\n" % n for n in range(150)) + b"\r\n", "more than 100 headers"),
    (b"HTTP/1.1 200 OK\r\nX: " + b"a" * 70000 + b"\r\n\r\n", "65536 bytes"),
])
def test_a_response_head_that_is_not_http_is_a_protocol_error(run, server, head, says):
    """Not "closed the connection": the server answered, with something http.client cannot read."""
    server.reply = Reply([Raw(head)], framing="close", head=False)
    r = run("--retries", "2", "hi")
    assert (r.code, r.out) == (76, b"") and len(server.requests) == 1, r
    assert len(err_lines(r)) == 1 and "not an HTTP response" in r.err and says in r.err, r


def test_after_a_delta_is_written_nothing_is_retried(run, server):
    for mode, out in (((), b"partial"), (("--jsonl",), None)):
        server.reply = replies(Reply(sse_chunks(["partial"], finish=None, done=False) + [Cut()]), OK)
        server.requests.clear()
        r = run(*mode, "--retries", "3", "hi")
        assert r.code == 7 and len(server.requests) == 1 and r.seconds < BOUND
        if out is not None:
            assert r.out == out


def test_full_mode_retries_a_dropped_stream(run, server):
    server.reply = replies(Reply(sse_chunks(["half "], finish=None, done=False) + [Cut()]),
                           Reply(sse_chunks(["whole", " answer"])))
    r = run("--full", "--retries", "1", "hi")
    assert (r.code, r.out) == (0, b"whole answer\n") and len(server.requests) == 2
    assert err_lines(r)[0].startswith("gpt-pipe: the connection was closed before the answer finished, retrying in")


def test_full_mode_gives_up_with_empty_stdout(run, server):
    server.reply = Reply(sse_chunks(["half "], finish=None, done=False))
    r = run("--full", "--retries", "1", "hi")
    assert (r.code, r.out) == (7, b"") and len(server.requests) == 2


def test_nothing_written_yet_in_text_mode_is_retried(run, server):
    role_only = event({"choices": [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}]})
    server.reply = replies(Reply([role_only, Cut()]), OK)
    r = run("--retries", "1", "hi")
    assert (r.code, r.out) == (0, b"fine\n") and len(server.requests) == 2


def test_errors_inside_the_stream_and_bad_chunks_are_not_retried(run, server):
    for reply in (Reply([event({"error": {"message": "context too long"}})]), Reply([b"data: {oops\n\n"])):
        server.requests.clear()
        server.reply = reply
        r = run("--retries", "3", "hi")
        assert r.code in (69, 76) and len(server.requests) == 1


# Timeouts: nothing hangs forever -------------------------------------------------------

def test_max_time_before_any_delta_is_75(run, server):
    server.reply = Reply([Hang()])
    r = run("--max-time", "0.5", "hi")
    assert (r.code, r.out) == (75, b"") and r.seconds < BOUND
    assert err_lines(r) == ["gpt-pipe: no answer within --max-time (0.5 s)"]


def test_max_time_after_a_delta_is_7_with_partial_text(run, server):
    server.reply = Reply(sse_chunks(["so far"], finish=None, done=False) + [Hang()])
    for mode, out in (((), b"so far"), (("--full",), b"")):
        r = run(*mode, "--max-time", "0.5", "hi")
        assert (r.code, r.out) == ((7, out) if not mode else (75, out)) and r.seconds < BOUND
    r = run("--jsonl", "--max-time", "0.5", "hi")
    assert r.code == 7 and json.loads(r.out.splitlines()[-1])["error"]["exit"] == 7


def test_max_time_covers_retry_waits(run, server):
    server.reply = status(429, "30")
    r = run("--retries", "3", "--max-time", "0.5", "hi")
    assert (r.code, r.out) == (75, b"") and r.seconds < BOUND and "--max-time" in err_lines(r)[-1]


def test_max_time_is_no_limit_on_a_finished_answer(run, server):
    server.reply = Reply(sse_chunks(["done"], done=False) + [Hang()])
    r = run("--max-time", "60", "hi")
    assert (r.code, r.out) == (0, b"done\n") and r.seconds < BOUND


def test_sse_comments_count_as_traffic(run, server):
    # Silence between bytes stays well under the idle timeout; the whole stream does not.
    steps = []
    for word in ("a", "b"):
        steps += [event(chunk(word))] + [b": keep-alive\n\n", Pause(0.2)] * 6
    server.reply = Reply(steps + sse_chunks([]))
    r = run("--idle-timeout", "1", "hi")
    assert (r.code, r.out) == (0, b"ab\n")


def test_connect_timeout_option_is_validated(run):
    assert run("--connect-timeout", "0", "hi").code == 2
    assert run("--max-time", "-1", "hi").code == 2


# Signals and the shell -----------------------------------------------------------------

def test_reader_going_away_closes_the_http_stream(start, server):
    gate = Gate()
    server.reply = Reply([event(chunk("first")), gate, event(chunk("second")), UntilGone()])
    reader = start("hi")
    reader.until(b"first")
    reader.proc.stdout.close()
    gate.open()
    assert reader.proc.wait(BOUND) == -signal.SIGPIPE
    assert reader.proc.stderr.read() == b""
    assert server.client_gone.wait(BOUND), "the server never saw gpt-pipe hang up"


def test_sigterm_while_waiting_for_the_response(start, server):
    gate = Gate()
    server.reply = Reply([gate] + sse_chunks(["late"]))
    reader = start("hi")
    deadline = time.monotonic() + BOUND
    while not server.requests:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    reader.proc.send_signal(signal.SIGTERM)
    result = reader.finish()
    gate.open()
    assert (result.code, result.out) == (143, b"") and result.err == "gpt-pipe: terminated (SIGTERM)\n"


# Big and small -------------------------------------------------------------------------

def test_hundred_thousand_tiny_deltas(run, server):
    server.reply = Reply([b"".join(event(chunk("y")) for _ in range(100_000))] + sse_chunks([]))
    r = run("hi")
    assert (r.code, r.out) == (0, b"y" * 100_000 + b"\n") and r.seconds < BOUND


# The parser never raises anything but our own error -------------------------------------

@settings(max_examples=400, deadline=None)
@given(st.lists(st.binary(max_size=64) | st.sampled_from([
    b"data: ", b"\n", b"\r", b"\r\n", b"\n\n", b"data: [DONE]\n\n",
    b'data: {"choices":[{"delta":{"content":"x"}}]}\n\n',
    b'data: {"choices": 5}\n\n', b'data: {"error": 1}\n\n', b"event: error\n", b"error: x\n\n", b"\xef\xbb\xbf",
    b'data: {"choices":[{"index":"0","finish_reason":7,"delta":[]}]}\n\n', b"data: []\n\n", b"data: \xff\n\n",
]), max_size=40))
def test_garbage_and_random_splits_raise_only_our_error(reads):
    decoder = StreamDecoder(lambda raw, text: None)
    parser = SSEParser()
    try:
        for data in reads:
            for ev in parser.feed(data):
                decoder.feed(ev)
                if decoder.done:
                    return
        decoder.outcome()
    except GptPipeError:
        pass
