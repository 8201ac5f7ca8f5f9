"""Real servers' streams, end to end: SSE variants, odd framing, errors, and the exit codes."""

from __future__ import annotations

import json
import socket

import pytest
from server import Cut, Hang, Raw, Reply, chunk, event, sse_chunks


def lines_of(err: str) -> list[str]:
    return err.splitlines()


@pytest.mark.parametrize("framing", ["chunked", "close", "length"])
@pytest.mark.parametrize("gzip", [False, True])
def test_greenpt_example_every_framing(run, server, framing, gzip):
    server.reply = Reply(sse_chunks(["Hello", "! How", " can I help you today?"]), framing=framing, gzip=gzip)
    r = run("Hello!")
    assert (r.code, r.out, r.err) == (0, b"Hello! How can I help you today?\n", "")


@pytest.mark.parametrize("body", [
    # CRLF, lone CR, no space after the colon, comments, id/retry, a BOM, multi-line data.
    b"\xef\xbb\xbf: comment\r\nid: 1\r\nretry: 10\r\ndata: " + json.dumps(chunk("a")).encode() + b"\r\n\r\n",
    b"data:" + json.dumps(chunk("a")).encode() + b"\r\r",
    b"event: message\ndata: " + json.dumps(chunk("a"), indent=1).replace(b"\n" if False else "\n", "\ndata: ").encode()
    + b"\n\n",
])
def test_sse_variants(run, server, body):
    server.reply = Reply([body, event(chunk(finish="stop")), b"data: [DONE]\n\n"])
    r = run("hi")
    assert (r.code, r.out) == (0, b"a\n")


def test_every_byte_its_own_read(run, server):
    body = b"".join(sse_chunks(["h\u00e9", "llo \u4e16\u754c"]))
    server.reply = Reply([body[i:i + 1] for i in range(len(body))])
    assert run("hi").out == "h\u00e9llo \u4e16\u754c\n".encode()


def test_crlf_and_utf8_split_across_reads(run, server):
    body = b"".join(sse_chunks(["\u00e9t\u00e9"])).replace(b"\n", b"\r\n")
    cut = body.index(b"\r\n") + 1
    mid = body.index("\u00e9".encode()) + 1
    server.reply = Reply([body[:mid], body[mid:cut], body[cut:]])
    assert run("hi").out == "\u00e9t\u00e9\n".encode()


def test_two_chunks_on_consecutive_data_lines(run, server):
    a, b = json.dumps(chunk("one ")).encode(), json.dumps(chunk("two", finish="stop")).encode()
    server.reply = Reply([b"data: " + a + b"\ndata: " + b + b"\n\ndata: [DONE]\n\n"])
    assert run("hi").out == b"one two\n"


def test_unicode_separators_inside_content_survive(run, server):
    text = "a\u2028b\u2029c\u0085d"
    server.reply = Reply(sse_chunks([text]), content_type="text/event-stream; charset=iso-8859-1")
    assert run("hi").out == (text + "\n").encode()


def test_invalid_utf8_in_the_stream_becomes_replacement_character(run, server):
    server.reply = Reply([b'data: {"choices":[{"index":0,"delta":{"content":"a\xffb"}}]}\n\n',
                          event(chunk(finish="stop"))])
    r = run("hi")
    assert (r.code, r.out) == (0, "a\ufffdb\n".encode())


@pytest.mark.parametrize("content_type", ["text/plain", "application/json", None])
def test_event_stream_behind_the_wrong_content_type(run, server, content_type):
    server.reply = Reply(sse_chunks(["ok"]), content_type=content_type)
    assert (run("hi").code, run("hi").out) == (0, b"ok\n")


@pytest.mark.parametrize("content_type", ["application/json", "text/event-stream"])
def test_non_streamed_json_answer(run, server, content_type):
    body = {"id": "x", "object": "chat.completion", "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "whole answer"}, "finish_reason": "length"}]}
    server.reply = Reply([json.dumps(body, indent=2).encode()], content_type=content_type, framing="length")
    r = run("hi")
    assert (r.code, r.out) == (3, b"whole answer\n")
    r = run("--jsonl", "hi")
    assert r.code == 3 and json.loads(r.out) == body


@pytest.mark.parametrize("reason,code", [("stop", 0), ("length", 3), ("content_filter", 4), ("tool_calls", 5),
                                         ("function_call", 5), ("end_turn", 6)])
def test_finish_reason_decides_the_exit_code(run, server, reason, code):
    server.reply = Reply(sse_chunks(["text"], finish=reason))
    r = run("hi")
    assert (r.code, r.out) == (code, b"text\n")


def test_finish_without_done_then_close(run, server):
    server.reply = Reply(sse_chunks(["fin"], finish="length", done=False))
    assert (run("hi").code, run("hi").out) == (3, b"fin\n")


@pytest.mark.parametrize("after", [Cut(), Hang(), Raw(b"zz\r\n garbage")])
def test_cut_stall_or_garbage_after_the_finish_reason(run, server, after):
    server.reply = Reply(sse_chunks(["fin"], done=False) + [after])
    r = run("hi")
    assert (r.code, r.out) == (0, b"fin\n")


def test_done_without_finish_reason_is_0_with_a_warning(run, server):
    server.reply = Reply(sse_chunks(["no reason"], finish=None))
    r = run("hi")
    assert (r.code, r.out) == (0, b"no reason\n")
    assert len(lines_of(r.err)) == 1 and "warning" in r.err and "finish_reason" in r.err


def test_nothing_after_done_is_read(run, server):
    server.reply = Reply(sse_chunks(["a"], finish=None) + [event(chunk("LATE", finish="length"))])
    r = run("hi")
    assert (r.code, r.out) == (0, b"a\n")


@pytest.mark.parametrize("tail", [Cut(), []])
@pytest.mark.parametrize("framing", ["chunked", "close"])
def test_cut_before_the_finish_reason_is_exit_7_partial_kept(run, server, tail, framing):
    server.reply = Reply(sse_chunks(["part", "ial"], finish=None, done=False) + ([tail] if tail else []),
                         framing=framing)
    r = run("hi")
    assert (r.code, r.out) == (7, b"partial")
    assert len(lines_of(r.err)) == 1 and "before the answer finished" in r.err


def test_content_length_body_cut_short_is_exit_7(run, server):
    body = b"".join(sse_chunks(["abc"]))
    server.reply = Reply([body[:60], Raw(b""), Cut()], framing="length")
    server.reply.headers["X-Note"] = "cut"
    r = run("hi")
    assert r.code == 7


def test_stall_before_the_finish_is_exit_7_partial_kept(run, server):
    server.reply = Reply(sse_chunks(["so far"], finish=None, done=False) + [Hang()])
    r = run("--idle-timeout", "0.5", "hi")
    assert (r.code, r.out) == (7, b"so far") and "stalled" in r.err


def test_unterminated_last_event_is_discarded(run, server):
    server.reply = Reply([event(chunk("kept")), b"data: " + json.dumps(chunk("dropped", finish="stop")).encode()])
    assert (run("hi").code, run("hi").out) == (7, b"kept")


def test_only_comments_then_close(run, server):
    server.reply = Reply([b": ping\n\n"] * 3)
    r = run("hi")
    assert (r.code, r.out) == (7, b"")


@pytest.mark.parametrize("error", [
    event({"error": {"message": "model overloaded", "type": "server_error"}}),
    event({"error": "model overloaded"}),
    event({"object": "error", "message": "model overloaded", "code": 500}),
    b"event: error\ndata: " + json.dumps({"message": "model overloaded"}).encode() + b"\n\n",
    b'error: {"code": 500, "message": "model overloaded"}\n\n',
    event(chunk(finish="error", error={"message": "model overloaded"})),
])
def test_error_inside_the_stream_is_69_with_message_partial_kept(run, server, error):
    server.reply = Reply(sse_chunks(["par", "tial"], finish=None, done=False) + [error, b"data: [DONE]\n\n"])
    r = run("hi")
    assert (r.code, r.out) == (69, b"partial")
    assert len(lines_of(r.err)) == 1 and "model overloaded" in r.err


def test_chunk_that_is_not_json_is_76(run, server):
    server.reply = Reply([event(chunk("ok")), b"data: {not json\n\n"])
    r = run("hi")
    assert (r.code, r.out) == (76, b"ok") and "not valid JSON" in r.err


@pytest.mark.parametrize("content_type,body", [
    ("text/plain", b"Hello, this is not an event stream at all\n" * 50),
    ("text/html", b"<!DOCTYPE html><html><body>" + b"x" * 5000 + b"</body></html>"),
    (None, b""),
])
def test_200_that_is_not_an_event_stream_is_76_short(run, server, content_type, body):
    server.reply = Reply([body], content_type=content_type, framing="length")
    r = run("hi")
    assert r.code == 76 and r.out == b"" and len(lines_of(r.err)) == 1 and len(r.err) < 300


@pytest.mark.parametrize("status,code", [(400, 65), (404, 65), (422, 65), (401, 77), (402, 77), (403, 77),
                                         (429, 75), (500, 69), (503, 69)])
def test_http_errors_map_to_codes_with_the_api_message(run, server, status, code):
    server.reply = Reply([json.dumps({"error": {"message": f"api says {status}"}}).encode()], status=status,
                         content_type="application/json", framing="length")
    r = run("hi")
    assert (r.code, r.out) == (code, b"")
    assert lines_of(r.err) == [f"gpt-pipe: HTTP {status} {r.err.split(str(status))[1].split(':')[0].strip()}: "
                               f"api says {status}"]


def test_402_with_plain_string_error(run, server):
    server.reply = Reply([b'{"error": "No remaining credits (EUR)"}'], status=402,
                         content_type="application/json", framing="length")
    r = run("hi")
    assert r.code == 77 and "No remaining credits (EUR)" in r.err


def test_html_502_from_a_proxy_is_one_line_without_html(run, server):
    server.reply = Reply([b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"],
                         status=502, content_type="text/html", framing="length")
    r = run("hi")
    assert r.code == 69 and lines_of(r.err) == ["gpt-pipe: HTTP 502 Bad Gateway"]


def test_redirect_status_left_over_is_76(run, server):
    server.reply = Reply([b""], status=304, content_type=None, framing="length")
    assert run("hi").code == 76


def test_cannot_connect_is_69(run):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    r = run("--base-url", f"http://127.0.0.1:{port}/v1", "hi")
    assert r.code == 69 and len(lines_of(r.err)) == 1 and "cannot connect" in r.err and "refused" in r.err


def test_server_that_never_answers_is_75(run, server):
    def silent(request):
        server._stop.wait()  # accept, read the request, then say nothing until the test ends
        return Reply([])

    server.reply = silent
    r = run("--idle-timeout", "0.5", "hi")
    assert (r.code, r.out) == (75, b"") and len(lines_of(r.err)) == 1


def test_headers_then_silence_is_75(run, server):
    server.reply = Reply([Hang()])
    r = run("--idle-timeout", "0.5", "hi")
    assert (r.code, r.out) == (75, b"") and len(lines_of(r.err)) == 1


def test_server_closing_without_answering_is_69(run, server):
    def hang_up(request):
        raise OSError("hang up")

    server.reply = hang_up
    r = run("hi")
    assert r.code == 69 and len(lines_of(r.err)) == 1


def test_several_choices_write_index_0(run, server):
    server.reply = Reply([event(chunk("B", index=1)), event(chunk("A", index=0)),
                          event(chunk(finish="stop", index=1)), event(chunk(finish="length", index=0)),
                          b"data: [DONE]\n\n"])
    assert (run("hi").code, run("hi").out) == (3, b"A\n")


def test_reasoning_never_reaches_stdout(run, server):
    reasoning = {"choices": [{"index": 0, "delta": {"reasoning_content": "hmm", "reasoning": "hmm", "content": None}}]}
    server.reply = Reply([event(reasoning), *sse_chunks(["answer"])])
    assert run("hi").out == b"answer\n"


def test_one_megabyte_delta_and_many_tiny_ones(run, server):
    big = "x" * (1 << 20)
    server.reply = Reply(sse_chunks([big]))
    assert run("hi").out == (big + "\n").encode()
    server.reply = Reply([b"".join(event(chunk("y")) for _ in range(20000))] + sse_chunks([]))
    assert run("hi").out == b"y" * 20000 + b"\n"
