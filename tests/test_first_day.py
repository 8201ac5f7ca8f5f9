"""A user's first day (part of issue 20): what other tools taught them gets an answer that
says what to write here."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("flag, hint", [("--no-stream", "use --full"), ("--api-key", "GREENPT_API_KEY"),
                                        ("--temp", "--temperature")])
def test_options_of_other_tools_get_a_hint(run, server, flag, hint):
    r = run(flag, "x", "hi")
    assert r.code == 2 and hint in r.err and server.requests == []


def test_a_key_in_the_config_file_says_how_to_keep_it(run, server, home):
    path = home / ".config" / "gpt-pipe"
    path.mkdir(parents=True)
    (path / "config.toml").write_text('api_key = "sk-in-plain-text-000000"\n')
    r = run("hi")
    assert r.code == 0 and "api_key_file" in r.err and "unknown setting" not in r.err


def test_a_batch_file_after_other_options_says_where_it_goes(run, server):
    r = run("--batch", "-P", "16", "tickets.jsonl")
    assert r.code == 2 and "--batch tickets.jsonl" in r.err


def test_replay_takes_no_prompt(run, server, tmp_path):
    log = tmp_path / "log.jsonl"
    log.write_text("{}\n")
    r = run("--replay", str(log), "summarise")
    assert r.code == 2 and "takes no PROMPT" in r.err


def test_invalid_utf8_on_stdin_gets_a_way_round(run, server):
    r = run("hi", stdin=b"caf\xe9\n")
    assert r.code == 65 and "iconv -c" in r.err and server.requests == []


def test_a_batch_stops_taking_lines_once_the_key_is_refused(run, server, tmp_path):
    from server import Reply

    server.reply = Reply([b'{"error": {"message": "invalid api key"}}'], status=401,
                         content_type="application/json", framing="length")
    out = tmp_path / "out.jsonl"
    lines = b"".join(b'{"id": %d, "prompt": "x"}\n' % i for i in range(50))
    r = run("--batch", "-P", "2", "--output", str(out), stdin=lines)
    assert r.code == 77 and len(server.requests) <= 4, (len(server.requests), r.err)
    assert "refused the key" in r.err and "--resume" in r.err
