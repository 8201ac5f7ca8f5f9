"""The chunk decoder alone: deltas, finish reasons, errors, odd but real server output."""

from __future__ import annotations

import json

import pytest

from gpt_pipe.exitcodes import ExitCode, GptPipeError, for_finish_reason, for_http_status
from gpt_pipe.sse import Event
from gpt_pipe.stream import StreamDecoder, describe_error


def decode(*events: Event):
    got: list[tuple[bytes, str]] = []
    decoder = StreamDecoder(lambda raw, text: got.append((raw, text)))
    for e in events:
        decoder.feed(e)
        if decoder.done:
            break
    return decoder, got


def ev(obj, type_="message") -> Event:
    return Event(type_, obj if isinstance(obj, bytes) else json.dumps(obj).encode(), 1)


def test_content_null_missing_role_only_and_usage_chunk():
    d, got = decode(
        ev({"choices": [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}]}),
        ev({"choices": [{"index": 0, "delta": {"content": None}, "finish_reason": ""}]}),
        ev({"choices": [{"index": 0, "delta": {"content": "hi"}}]}),
        ev({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}),
        ev({"choices": [], "usage": {"total_tokens": 3}}),
    )
    assert [t for _, t in got] == ["", "", "hi", "", ""]
    assert d.finish_reason == "stop" and not d.done


def test_choices_routed_by_index_not_position():
    choices = [{"index": 1, "delta": {"content": "B"}}, {"index": 0, "delta": {"content": "A"}}]
    _d, got = decode(ev({"choices": choices}))
    assert [t for _, t in got] == ["A"]


def test_raw_bytes_kept_for_one_line_and_reserialised_for_many():
    _d, got = decode(Event("message", b'{"choices": [ ], "x":1}', 1), Event("message", b'{"a":\n 1}', 2))
    assert [r for r, _ in got] == [b'{"choices": [ ], "x":1}', b'{"a":1}']


def test_two_chunks_on_consecutive_data_lines():
    a = json.dumps({"choices": [{"index": 0, "delta": {"content": "a"}}]})
    b = json.dumps({"choices": [{"index": 0, "delta": {"content": "b"}}]})
    _d, got = decode(Event("message", f"{a}\n{b}".encode(), 2))
    assert [t for _, t in got] == ["a", "b"]


def test_done_ends():
    d, got = decode(ev(b"[DONE]"), ev({"choices": [{"delta": {"content": "late"}}]}))
    assert d.done and got == []
    assert d.outcome() == (ExitCode.OK, "the stream ended with [DONE] but gave no finish_reason")


@pytest.mark.parametrize("event", [
    ev({"error": {"message": "overloaded"}}),
    ev({"error": "overloaded"}),
    ev({"object": "error", "message": "overloaded"}),
    ev({"message": "overloaded"}, type_="error"),
    ev(b"overloaded", type_="error"),
])
def test_errors_in_the_stream(event):
    with pytest.raises(GptPipeError) as info:
        decode(event)
    assert info.value.code == ExitCode.UNAVAILABLE and "overloaded" in info.value.message


def test_finish_reason_error():
    with pytest.raises(GptPipeError) as info:
        decode(ev({"choices": [{"index": 0, "delta": {}, "finish_reason": "error"}]}))
    assert info.value.code == ExitCode.UNAVAILABLE


@pytest.mark.parametrize("data", [b"{not json", b"[1, 2]", b"42"])
def test_bad_chunks_are_protocol_errors(data):
    with pytest.raises(GptPipeError) as info:
        decode(Event("message", data, 1))
    assert info.value.code == ExitCode.PROTOCOL


def test_invalid_utf8_becomes_replacement_character():
    _d, got = decode(Event("message", b'{"choices":[{"delta":{"content":"a\xffb"}}]}', 1))
    assert got[0][1] == "a\ufffdb"


def test_outcome_without_finish_is_incomplete():
    d, _ = decode(ev({"choices": [{"delta": {"content": "x"}}]}))
    with pytest.raises(GptPipeError) as info:
        d.outcome()
    assert info.value.code == ExitCode.INCOMPLETE


def test_non_streamed_completion():
    got: list[tuple[bytes, str]] = []
    d = StreamDecoder(lambda raw, text: got.append((raw, text)))
    d.feed_completion(b'{"object": "chat.completion",\n "choices": [{"index": 0, "message": {"content": "whole"},'
                      b' "finish_reason": "length"}]}')
    assert got[0][1] == "whole" and d.outcome() == (ExitCode.LENGTH, None)


@pytest.mark.parametrize("reason,code", [("stop", 0), ("length", 3), ("content_filter", 4), ("tool_calls", 5),
                                         ("function_call", 5), ("eos", 6), ("error", 69)])
def test_finish_codes(reason, code):
    assert for_finish_reason(reason) == code


@pytest.mark.parametrize("status,code", [(400, 65), (404, 65), (422, 65), (418, 65), (401, 77), (402, 77), (403, 77),
                                         (429, 75), (500, 69), (503, 69), (302, 76), (101, 76)])
def test_status_codes(status, code):
    assert for_http_status(status) == code


def test_describe_error_shapes():
    assert describe_error({"error": {"message": "m"}}) == "m"
    assert describe_error({"error": "No remaining credits (EUR)"}) == "No remaining credits (EUR)"
    assert describe_error({"detail": "Not Found"}) == "Not Found"
    assert describe_error({"object": "error", "message": "m2"}) == "m2"
