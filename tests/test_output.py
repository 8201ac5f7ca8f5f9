"""The three output modes, the final-newline rule, and what a failure leaves on stdout."""

from __future__ import annotations

import json

import pytest
from server import Cut, Reply, chunk, event, sse_chunks


@pytest.mark.parametrize("texts,default,no_newline", [
    (["Hello", " world"], b"Hello world\n", b"Hello world"),
    (["ends with newline\n"], b"ends with newline\n", b"ends with newline\n"),
    (["two\n\n"], b"two\n\n", b"two\n\n"),
    ([], b"", b""),
    ([""], b"", b""),
])
def test_final_newline_rule(run, server, texts, default, no_newline):
    server.reply = Reply(sse_chunks(texts))
    assert run("hi").out == default
    assert run("-n", "hi").out == no_newline
    assert run("--no-newline", "hi").out == no_newline
    assert run("--full", "hi").out == default
    assert run("--full", "-n", "hi").out == no_newline


@pytest.mark.parametrize("reason", ["length", "content_filter"])
def test_newline_added_for_any_finish_reason(run, server, reason):
    server.reply = Reply(sse_chunks(["cut"], finish=reason))
    assert run("hi").out == b"cut\n"


def test_failed_run_adds_nothing(run, server):
    server.reply = Reply(sse_chunks(["half"], finish=None, done=False) + [Cut()])
    r = run("hi")
    assert (r.code, r.out) == (7, b"half")


def test_full_writes_everything_at_the_end(run, server):
    server.reply = Reply(sse_chunks(["a", "b", "c"]))
    assert (run("--full", "hi").code, run("--full", "hi").out) == (0, b"abc\n")


@pytest.mark.parametrize("failure", [
    [Cut()],
    [event({"error": {"message": "boom"}})],
    [b"data: {not json\n\n"],
])
def test_full_leaves_stdout_empty_on_failure(run, server, failure):
    server.reply = Reply(sse_chunks(["half"], finish=None, done=False) + failure)
    r = run("--full", "hi")
    assert r.code in (7, 69, 76) and r.out == b""


def test_full_leaves_stdout_empty_on_http_error(run, server):
    server.reply = Reply([b'{"error": {"message": "nope"}}'], status=400, content_type="application/json",
                         framing="length")
    r = run("--full", "hi")
    assert (r.code, r.out) == (65, b"")


def test_jsonl_writes_the_data_bytes_as_received(run, server):
    odd = b'{"id":"x",  "choices":[{"index":0,"delta":{"content":"\\u00e9 spaced"},"finish_reason":null}],"z":1}'
    multi = json.dumps(chunk("two lines", unknown_field=[1, 2]), indent=1).encode()
    usage = b'{"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":14,"total_tokens":19}}'
    body = (b"data: " + odd + b"\n\n" + b"data: " + multi.replace(b"\n", b"\ndata: ") + b"\n\n"
            + event(chunk(finish="stop")) + b"data: " + usage + b"\n\ndata: [DONE]\n\n")
    server.reply = Reply([body])
    r = run("--jsonl", "hi")
    assert r.code == 0
    lines = r.out.split(b"\n")
    assert lines[-1] == b"" and len(lines) == 5
    assert lines[0] == odd
    assert json.loads(lines[1]) == json.loads(multi) and b"\n" not in lines[1]
    assert lines[1] == json.dumps(json.loads(multi), ensure_ascii=False, separators=(",", ":")).encode()
    assert lines[3] == usage
    assert b"[DONE]" not in r.out


@pytest.mark.parametrize("failure,code", [
    ([Cut()], 7),
    ([b'data: {"error": {"message": "overloaded"}}\n\n'], 69),
    ([b"data: {not json\n\n"], 76),
])
def test_jsonl_failure_ends_with_an_error_line(run, server, failure, code):
    server.reply = Reply(sse_chunks(["half"], finish=None, done=False) + failure)
    r = run("--jsonl", "hi")
    assert r.code == code
    lines = r.out.decode().splitlines()
    assert json.loads(lines[0])["choices"][0]["delta"]["content"] == "half"
    last = json.loads(lines[-1])
    assert last["error"]["type"] == "gpt_pipe" and last["error"]["exit"] == code
    assert last["error"]["message"] and r.err.strip().endswith(last["error"]["message"])


def test_jsonl_http_error_is_an_error_line(run, server):
    server.reply = Reply([b'{"error": {"message": "rate limited"}}'], status=429, content_type="application/json",
                         framing="length")
    r = run("--jsonl", "hi")
    assert r.code == 75
    assert json.loads(r.out) == {"error": {"message": "HTTP 429 Too Many Requests: rate limited",
                                           "type": "gpt_pipe", "exit": 75}}


def test_jsonl_input_errors_write_nothing(run, server):
    r = run("--jsonl", stdin=b"\xff")
    assert (r.code, r.out) == (65, b"")


def test_stdout_carries_only_the_answer(run, server):
    server.reply = Reply(sse_chunks(["answer"], finish="length"))
    r = run("hi")
    assert r.out == b"answer\n" and r.code == 3


def test_stdout_closed_or_full_is_one_line_exit_74(server, env):
    import subprocess

    from conftest import GPT_PIPE

    proc = subprocess.run(GPT_PIPE + ["hi"], stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
                          preexec_fn=lambda: __import__("os").close(1), timeout=60)
    assert proc.returncode == 74 and proc.stderr.decode().count("\n") == 1
    with open("/dev/full", "wb") as full:
        proc = subprocess.run(GPT_PIPE + ["hi"], stdin=subprocess.DEVNULL, stdout=full, stderr=subprocess.PIPE,
                              env=env, timeout=60)
    err = proc.stderr.decode()
    assert proc.returncode == 74 and err.count("\n") == 1 and "No space left" in err


def test_error_body_sent_as_an_event_stream(run, server):
    server.reply = Reply([b'data: {"error": {"message": "bad model"}}\n\n'], status=404, framing="length")
    r = run("hi")
    assert r.code == 65 and r.err.strip().endswith("bad model")
