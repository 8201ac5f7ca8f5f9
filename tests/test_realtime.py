"""Each delta reaches stdout as soon as its bytes arrive: proved by handshake, not by clock.

The server sends delta k+1 only after the test has read delta k from gpt-pipe's stdout.
A client that waits for a buffer to fill (or for the end) never shows delta k, the server
never sends more, and the test fails at its deadline.
"""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import time

import pytest
from conftest import GPT_PIPE
from server import Gate, Reply, chunk, event, sse_chunks

WORDS = ["Hello", " ,", " w", "o", "rld", " \u00e9t\u00e9", "!"]


def gated(words, framing="chunked", gzip=False):
    steps, gates = [], []
    pieces = sse_chunks(words)
    for piece in pieces[:len(words)]:
        gate = Gate()
        steps += [piece, gate]
        gates.append(gate)
    steps += pieces[len(words):]
    return Reply(steps, framing=framing, gzip=gzip), gates


@pytest.mark.parametrize("framing", ["chunked", "close", "length"])
@pytest.mark.parametrize("gzip", [False, True])
@pytest.mark.parametrize("mode", [(), ("--jsonl",)])
def test_each_delta_arrives_before_the_next_is_sent(start, server, framing, gzip, mode):
    server.reply, gates = gated(WORDS, framing, gzip)
    reader = start(*mode, "hi")
    for word, gate in zip(WORDS, gates, strict=False):
        reader.until(word.encode())
        gate.open()
    result = reader.finish()
    assert result.code == 0
    if not mode:
        assert result.out == ("".join(WORDS) + "\n").encode()


def test_delta_split_mid_event_and_mid_character(start, server):
    body = event(chunk("\u00e9t\u00e9"))
    cut = body.index("\u00e9".encode()) + 1
    g1, g2 = Gate(), Gate()
    server.reply = Reply([body[:cut], g1, body[cut:], g2] + sse_chunks([]), framing="close")
    reader = start("hi")
    g1.open()  # the first half cannot be shown: it is not a complete event yet
    reader.until("\u00e9t\u00e9".encode())
    g2.open()
    assert reader.finish().out == "\u00e9t\u00e9\n".encode()


def test_event_ended_by_lone_cr_is_shown_before_more_bytes(start, server):
    gate = Gate()
    server.reply = Reply([event(chunk("now"))[:-2] + b"\r\r", gate, b"\n"] + sse_chunks([]), framing="close")
    reader = start("hi")
    reader.until(b"now")
    gate.open()
    assert reader.finish().out == b"now\n"


def test_stdout_a_file(server, env, tmp_path):
    server.reply, gates = gated(WORDS, "close")
    path = tmp_path / "out"
    with open(path, "wb") as out:
        proc = subprocess.Popen(GPT_PIPE + ["hi"], stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.PIPE,
                                env=env)
        try:
            for word, gate in zip(WORDS, gates, strict=False):
                deadline = time.monotonic() + 20
                while word.encode() not in path.read_bytes():
                    assert time.monotonic() < deadline, f"{word!r} never reached the file"
                    time.sleep(0.01)
                gate.open()
            assert proc.wait(60) == 0
        finally:
            proc.kill()
    assert path.read_bytes() == ("".join(WORDS) + "\n").encode()


def test_stdout_a_terminal(server, env):
    server.reply, gates = gated(WORDS, "chunked")
    master, slave = pty.openpty()
    proc = subprocess.Popen(GPT_PIPE + ["hi"], stdin=subprocess.DEVNULL, stdout=slave, stderr=subprocess.PIPE, env=env)
    os.close(slave)
    seen = b""
    try:
        for word, gate in zip(WORDS, gates, strict=False):
            deadline = time.monotonic() + 20
            while word.encode() not in seen:
                left = deadline - time.monotonic()
                assert left > 0, f"{word!r} never reached the terminal; saw {seen!r}"
                if select.select([master], [], [], left)[0]:
                    seen += os.read(master, 4096)
            gate.open()
        assert proc.wait(60) == 0
    finally:
        proc.kill()
        os.close(master)


def test_reader_closing_early_ends_like_sigpipe_without_noise(start, server):
    gate = Gate()
    server.reply = Reply(sse_chunks(["first"], finish=None, done=False) + [gate] + sse_chunks(["more"] * 100))
    reader = start("hi")
    reader.until(b"first")
    reader.proc.stdout.close()  # like `| head -c 5` exiting
    gate.open()
    assert reader.proc.wait(60) == -signal.SIGPIPE
    assert reader.proc.stderr.read() == b""


@pytest.mark.parametrize("sig,code,word", [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")])
def test_signals_keep_what_was_written(start, server, sig, code, word):
    gate = Gate()
    server.reply = Reply(sse_chunks(["kept"], finish=None, done=False) + [gate])
    reader = start("hi")
    reader.until(b"kept")
    reader.proc.send_signal(sig)
    result = reader.finish()
    gate.open()
    assert (result.code, result.out) == (code, b"kept")
    assert word in result.err and "Traceback" not in result.err
