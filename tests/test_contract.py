"""The core contract under the hardening: every event's text, at once, and no hang the
docs say is gone. Each case runs the installed command against the local server."""

from __future__ import annotations

import json
import os

import pytest
from conftest import KEY
from server import Gate, Pause, Raw, Reply, chunk, event, sse_chunks

SHOWN = "sk-\u2026WXYZ"  # how the key is shown: redact(KEY)


def named(obj, name: str) -> bytes:
    return f"event: {name}\n".encode() + event(obj)


# Named events -------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", [[], ["--full"], ["--json"], ["--jsonl"]])
def test_a_stream_whose_chunks_are_all_named_gives_the_whole_answer(run, server, mode):
    server.reply = Reply([named(chunk("Hel", role="assistant"), "completion"), named(chunk("lo"), "completion"),
                          named(chunk(finish="stop"), "completion"), b"event: done\ndata: [DONE]\n\n"])
    r = run(*mode, "hi")
    assert r.code == 0 and len(server.requests) == 1, r
    if mode == ["--json"]:
        assert json.loads(r.out)["choices"][0]["message"]["content"] == "Hello"
    elif mode == ["--jsonl"]:
        assert run("--replay", "-", stdin=r.out).out == b"Hello\n"
    else:
        assert r.out == b"Hello\n"


def test_some_named_events_lose_nothing(run, server):
    server.reply = Reply([event(chunk("A", role="assistant")), named(chunk("B"), "message"),
                          named(chunk("C"), "thread.message.delta"), b"event: ping\ndata: ping\n\n",
                          event(chunk("D")), named(chunk(finish="stop"), "completion"), b"data: [DONE]\n\n"])
    r = run("hi")
    assert (r.code, r.out) == (0, b"ABCD\n")


def test_a_named_error_event_is_still_an_error(run, server):
    server.reply = Reply([event(chunk("partial", role="assistant")),
                          b'event: error\ndata: {"error": {"message": "overloaded"}}\n\n'])
    r = run("hi")
    assert r.code == 69 and r.out == b"partial" and "overloaded" in r.err


def test_unnamed_data_that_is_not_json_stays_a_protocol_error(run, server):
    server.reply = Reply([event(chunk("a", role="assistant")), b"data: not json\n\n"])
    r = run("hi")
    assert r.code == 76 and "not valid JSON" in r.err


# BOM ------------------------------------------------------------------------------------------

def test_only_one_bom_is_stripped(run, server):
    """WPT eventsource/format-bom-2: a second BOM makes the first line a field named
    '\\ufeffdata', which is ignored; the events after it are not."""
    bom = "\ufeff".encode()
    server.reply = Reply([bom + bom + event(chunk("lost", role="assistant")), event(chunk("kept")),
                          *sse_chunks([])])
    r = run("hi")
    assert (r.code, r.out) == (0, b"kept\n"), r


def test_one_bom_split_across_reads_is_stripped(run, server):
    bom = "\ufeff".encode()
    server.reply = Reply([bom[:1], bom[1:] + event(chunk("one", role="assistant")), *sse_chunks([])])
    r = run("hi")
    assert (r.code, r.out) == (0, b"one\n")


# Real time and scrubbing together -------------------------------------------------------------

@pytest.mark.parametrize("tail", ["This", " is", " runs", "ask", "task-", "s", "sk", "sk-"])
@pytest.mark.parametrize("mode", [[], ["--jsonl"]])
def test_a_delta_ending_like_the_key_starts_is_shown_at_once(start, server, tail, mode):
    """The key starts with "sk-": a delta ending in "s", "sk" or "sk-" matches no more of it
    than the redaction shows, so it is written before the next delta is even sent."""
    gate = Gate()
    server.reply = Reply([event(chunk(tail, role="assistant")), gate, event(chunk(" next")), *sse_chunks([])])
    reader = start(*mode, "hi")
    reader.until(tail.encode())
    gate.open()
    result = reader.finish()
    assert result.code == 0
    if not mode:
        assert result.out == f"{tail} next\n".encode()


@pytest.mark.parametrize("cut", [1, 2, 3, 4, 10, len(KEY) - 1])
@pytest.mark.parametrize("mode", [[], ["--full"], ["--json"], ["--jsonl"]])
def test_a_key_split_anywhere_is_never_shown(run, server, tmp_path, cut, mode):
    server.reply = Reply([event(chunk("k=" + KEY[:cut], role="assistant")), event(chunk(KEY[cut:] + " end")),
                          *sse_chunks([])])
    tee = tmp_path / "tee.jsonl"
    r = run(*mode, "--tee", str(tee), "hi")
    assert r.code == 0
    log = tee.read_text()
    assert KEY not in log
    text = "".join(json.loads(line)["choices"][0]["delta"].get("content") or "" for line in log.splitlines()
                   if '"choices"' in line)
    assert text == f"k={SHOWN} end"  # what `jq -rj` gives: the redaction, never two halves of the key
    if mode == ["--jsonl"]:
        got = "".join(json.loads(line)["choices"][0]["delta"].get("content") or ""
                      for line in r.out.decode().splitlines())
        assert got == f"k={SHOWN} end" and len(r.out.splitlines()) == 3  # one line per chunk, still
    elif mode == ["--json"]:
        assert json.loads(r.out)["choices"][0]["message"]["content"] == f"k={SHOWN} end"
    else:
        assert r.out.decode() == f"k={SHOWN} end\n"


@pytest.mark.parametrize("key", ["sk-test", "sk-1234", "testkey"])
def test_a_short_test_key_is_still_a_secret(run, server, key):
    """The fake keys of test suites and proxies' examples are kept out of every output too:
    echoed split across deltas, and in an error message."""
    server.reply = Reply([event(chunk("k=" + key[:3], role="assistant")), event(chunk(key[3:] + " end")),
                          *sse_chunks([])])
    r = run("hi", extra_env={"GREENPT_API_KEY": key})
    assert (r.code, r.out) == (0, f"k={key[:3] if key.startswith('sk-') else ''}\u2026 end\n".encode()), r
    server.reply = Reply([f'{{"error": {{"message": "bad key {key}"}}}}'.encode()], status=401,
                         content_type="application/json")
    r = run("hi", extra_env={"GREENPT_API_KEY": key})
    assert r.code != 0 and key not in r.err and "bad key" in r.err, r


@pytest.mark.parametrize("key", ["dummy", "EMPTY", "ollama"])
def test_a_placeholder_key_is_not_scrubbed_from_the_answer(run, server, key):
    server.reply = Reply([event(chunk(f"about {key}: yes", role="assistant")), *sse_chunks([])])
    assert run("hi", extra_env={"GREENPT_API_KEY": key}).out == f"about {key}: yes\n".encode()


def test_text_that_looks_like_the_key_but_is_not_comes_out_whole(run, server):
    server.reply = Reply([event(chunk("a " + KEY[:9], role="assistant")), event(chunk("XYZ done")), *sse_chunks([])])
    for mode in ([], ["--jsonl"]):
        r = run(*mode, "hi")
        if mode:
            r = run("--replay", "-", stdin=r.out)
        assert r.out.decode() == f"a {KEY[:9]}XYZ done\n"


# Bounded trailers -----------------------------------------------------------------------------

def test_endless_trailer_lines_are_bounded_by_the_progress_timeout(run, server):
    def drip():
        yield from sse_chunks(["Hi"], finish=None, done=False)
        yield Raw(b"0\r\n")
        for number in range(1000):  # whole trailer lines, each well within the idle timeout (20 s in all)
            yield Raw(f"X-Trailer-{number}: x\r\n".encode())
            yield Pause(0.02)

    server.reply = Reply(drip())
    r = run("--idle-timeout", "5", "--progress-timeout", "1", "hi")
    assert (r.code, r.out) == (7, b"Hi") and "--progress-timeout" in r.err


# --file-wait for every file -------------------------------------------------------------------

def test_file_wait_bounds_an_api_key_fifo_nobody_writes(run, server, tmp_path):
    fifo = tmp_path / "key.fifo"
    os.mkfifo(fifo)
    r = run("--api-key-file", str(fifo), "--file-wait", "0.3", "hi", drop_env=("GREENPT_API_KEY",))
    assert r.code == 78 and "0.3 s" in r.err and r.seconds < 20 and server.requests == []


# The 404 hint ---------------------------------------------------------------------------------

def test_openai_s_invalid_url_404_suggests_v1(run, server):
    body = b'{"error": {"message": "Invalid URL (POST /chat/completions)", "type": "invalid_request_error"}}'
    server.reply = Reply([body], status=404, content_type="application/json", framing="length")
    r = run("--base-url", server.url.removesuffix("/v1"), "hi")
    assert r.code == 65 and "Invalid URL" in r.err and "is /v1 missing from --base-url?" in r.err


def call_piece(arguments: str, index: int = 0) -> dict:
    call = {"index": index, "function": {"arguments": arguments}}
    return {"choices": [{"index": 0, "delta": {"tool_calls": [call]}}]}


@pytest.mark.parametrize("cut", [2, 3, 6, len(KEY) - 2])
@pytest.mark.parametrize("mode", [["--jsonl"], ["--json"], ["--tee"]])
def test_a_key_split_across_tool_call_arguments_is_never_shown(run, server, tmp_path, cut, mode):
    server.reply = Reply([event(chunk(role="assistant")), event(call_piece('{"k": "' + KEY[:cut])),
                          event(call_piece(KEY[cut:] + '"}')), *sse_chunks([], "tool_calls")])
    args = [*mode, str(tmp_path / "tee.jsonl")] if mode == ["--tee"] else mode
    r = run(*args, "hi")
    assert r.code == 5
    lines = (tmp_path / "tee.jsonl").read_text().splitlines() if mode == ["--tee"] else \
        r.out.decode().splitlines() if mode == ["--jsonl"] else []
    if lines:
        joined = "".join(call["function"].get("arguments", "") for line in lines if '"tool_calls"' in line
                         for call in json.loads(line)["choices"][0]["delta"].get("tool_calls", []))
        assert KEY not in joined and joined == '{"k": "' + SHOWN + '"}', joined
    else:
        assert KEY not in r.out.decode()
