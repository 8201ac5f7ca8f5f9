"""The chunked-coding decoder alone: any split of the wire bytes gives the same body."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpt_pipe.chunked import ChunkedDecoder
from gpt_pipe.exitcodes import ExitCode, GptPipeError


def encode(pieces: list[bytes], trailers: bytes = b"", ext: bool = False) -> bytes:
    body = b"".join(b"%x%s\r\n%s\r\n" % (len(p), b";name=v" if ext else b"", p) for p in pieces if p)
    return body + b"0\r\n" + trailers + b"\r\n"


def decode(*reads: bytes) -> tuple[bytes, bool]:
    decoder = ChunkedDecoder()
    return b"".join(decoder.feed(r) for r in reads), decoder.done


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=40), max_size=12), st.lists(st.integers(min_value=0, max_value=600), max_size=25),
       st.booleans(), st.booleans())
def test_any_split_gives_the_body(pieces, cuts, ext, trailer):
    wire = encode(pieces, b"X-Trailer: 1\r\n" if trailer else b"", ext) + b"extra bytes after the end"
    points = sorted({c for c in cuts if c <= len(wire)})
    reads = [wire[a:b] for a, b in zip([0, *points], [*points, len(wire)], strict=True)]
    assert decode(*reads) == (b"".join(pieces), True)


def test_partial_chunk_data_comes_out_at_once():
    decoder = ChunkedDecoder()
    assert decoder.feed(b"a\r\nhello") == b"hello"
    assert decoder.feed(b"world\r") == b"world"
    assert decoder.feed(b"\n0\r\n\r\n") == b"" and decoder.done


def test_bare_lf_line_ends_are_tolerated():
    assert decode(b"3\nabc\n0\n\n") == (b"abc", True)


def test_cut_short_is_not_done():
    assert decode(b"5\r\nhel") == (b"hel", False)


@pytest.mark.parametrize("wire", [b"zz\r\n", b"-1\r\n", b"+1\r\n", b"1_0\r\n", b"\r\n", b"3\r\nabcdef\r\n",
                                  b"9" * 5000])
def test_broken_framing_is_our_error(wire):
    with pytest.raises(GptPipeError) as info:
        decode(wire, b"")  # the error comes at the latest with the read after the break
    assert info.value.code == ExitCode.INCOMPLETE


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=30), max_size=10))
def test_garbage_raises_only_our_error(reads):
    try:
        decode(*reads)
    except GptPipeError:
        pass


def test_good_bytes_before_broken_framing_come_out_first():
    decoder = ChunkedDecoder()
    assert decoder.feed(b"3\r\nabc\r\nzz\r\n") == b"abc"
    with pytest.raises(GptPipeError):
        decoder.feed(b"more")
