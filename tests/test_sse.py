"""The SSE parser alone: WHATWG rules, and any split of the bytes gives the same events."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from gpt_pipe.sse import Event, SSEParser, iter_events


def parse(*reads: bytes) -> list[Event]:
    return list(iter_events(reads))


def datas(*reads: bytes) -> list[bytes]:
    return [e.data for e in parse(*reads)]


def test_data_with_and_without_space():
    assert datas(b"data: a\n\ndata:b\n\ndata:  c\n\n") == [b"a", b"b", b" c"]


def test_line_endings_lf_crlf_and_lone_cr():
    assert datas(b"data: a\r\n\r\ndata: b\r\rdata: c\n\n") == [b"a", b"b", b"c"]


def test_crlf_split_across_reads_is_one_line_end():
    assert datas(b"data: a\r", b"\n", b"\r", b"\ndata: b\r\n\r\n") == [b"a", b"b"]


def test_lone_cr_ends_its_line_at_once():
    parser = SSEParser()
    assert parser.feed(b"data: a\r") == []
    assert [e.data for e in parser.feed(b"\r")] == [b"a"]  # CR CR: the blank line is there


def test_multiline_data_joined_with_lf():
    events = parse(b"data: {\"a\":\ndata: 1}\n\n")
    assert events == [Event("message", b'{"a":\n1}', 2)]


def test_comments_and_other_fields_ignored():
    assert parse(b": keep-alive\nid: 7\nretry: 100\nfoo: bar\ndata: x\n\n") == [Event("message", b"x", 1)]


def test_event_type_and_reset():
    events = parse(b"event: error\ndata: boom\n\ndata: ok\n\n")
    assert events == [Event("error", b"boom", 1), Event("message", b"ok", 1)]


def test_error_field_is_an_error_event():
    assert parse(b'error: {"message":"bad"}\n\n') == [Event("error", b'{"message":"bad"}', 1)]


def test_leading_bom_stripped_once_even_when_split():
    assert datas(b"\xef\xbb", b"\xbfdata: a\n\n\xef\xbb\xbfdata: b\n\n") == [b"a"]


def test_unterminated_last_event_discarded():
    assert datas(b"data: a\n\ndata: b\n") == [b"a"]


def test_empty_data_line_makes_an_event_but_no_data_does_not():
    assert datas(b"data:\n\nevent: x\n\n") == [b""]


def test_unicode_line_separators_are_not_line_ends():
    body = "data: a\u2028b\u0085c\n\n".encode()
    assert datas(body) == ["a\u2028b\u0085c".encode()]


def test_field_without_colon():
    assert parse(b"data\n\n") == [Event("message", b"", 1)]


STREAM = (
    b"\xef\xbb\xbf: hello\r\n"
    b"data: {\"choices\":[{\"delta\":{\"content\":\"h\xc3\xa9\"}}]}\r\n\r\n"
    b"event: ping\rdata: 1\rdata:2\r\r"
    b"data: x\n\n"
    b"error: oops\n\n"
    b"data: [DONE]\r\n\r\n"
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=30))
def test_any_split_gives_the_same_events(cuts):
    points = sorted(set(cuts))
    reads = [STREAM[a:b] for a, b in zip([0] + points, points + [len(STREAM)], strict=False)]
    assert parse(*reads) == parse(STREAM)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400), st.lists(st.integers(min_value=0, max_value=400), max_size=20))
def test_garbage_never_raises_and_split_does_not_matter(data, cuts):
    points = sorted({c for c in cuts if c <= len(data)})
    reads = [data[a:b] for a, b in zip([0] + points, points + [len(data)], strict=False)]
    assert parse(*reads) == parse(data)


def test_byte_by_byte_equals_whole():
    assert parse(*[STREAM[i:i + 1] for i in range(len(STREAM))]) == parse(STREAM)
    assert [e.type for e in parse(STREAM)] == ["message", "ping", "message", "error", "message"]


PIECES = [b"data: {\"a\": 1}\n\n", b"data: x\r\n\r\n", b"data:y\n\n", b": c\n", b"\n", b"\r", b"event: e\n",
          b"data: two\ndata: lines\n\n", b"id: 3\n", b"error: boom\n\n", b"data: [DONE]\n\n", b"data:\n\n",
          b"data: \xe2\x80\xa8\n\n", b"retry: 1\r\n", b"\n\n\n"]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=30), st.lists(st.integers(min_value=0, max_value=600), max_size=20))
def test_fast_paths_agree_with_byte_by_byte(pieces, cuts):
    stream = b"".join(pieces)
    points = sorted({c for c in cuts if c <= len(stream)})
    reads = [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)], strict=True)]
    assert parse(*reads) == parse(*[stream[i:i + 1] for i in range(len(stream))])
