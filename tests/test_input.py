"""argv, stdin, system prompt and messages file -> the messages array the server receives."""

from __future__ import annotations

import json
import os
import pty
import subprocess

import pytest
from conftest import GPT_PIPE


def user(server) -> str:
    return server.requests[-1].json["messages"][-1]["content"]


def test_echo_hello(run, server):
    r = run(stdin=b"Hello\n")
    assert (r.code, r.out, r.err) == (0, b"Hello\n", "")
    assert server.requests[0].json["messages"] == [{"role": "user", "content": "Hello\n"}]


def test_prompt_words_joined_with_single_spaces(run, server):
    assert run("Write", "a  haiku", "now").code == 0
    assert user(server) == "Write a  haiku now"


def test_prompt_then_blank_line_then_stdin_verbatim(run, server):
    assert run("Summarise:", stdin=b"line 1\r\nline 2\n\n").code == 0
    assert user(server) == "Summarise:\n\nline 1\r\nline 2\n\n"


def test_prompt_with_empty_stdin_is_the_prompt_alone(run, server):
    assert run("just this", stdin=b"").code == 0
    assert user(server) == "just this"


def test_no_stdin_never_reads_it(run, server):
    assert run("--no-stdin", "question", stdin=b"not for me").code == 0
    assert user(server) == "question"


def test_dev_null_and_closed_stdin_are_no_stdin(run, server, env):
    assert run("q1", stdin=None).code == 0
    proc = subprocess.run(GPT_PIPE + ["q2"], env=env, capture_output=False, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, preexec_fn=lambda: os.close(0), timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert [r.json["messages"][-1]["content"] for r in server.requests] == ["q1", "q2"]
    proc = subprocess.run(GPT_PIPE, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          preexec_fn=lambda: os.close(0), timeout=60)
    assert proc.returncode == 2 and len(server.requests) == 2


def test_no_prompt_and_terminal_stdin_is_a_usage_error_not_a_wait(server, env):
    master, slave = pty.openpty()
    try:
        proc = subprocess.run(GPT_PIPE, stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                              timeout=60)
    finally:
        os.close(slave)
        os.close(master)
    err = proc.stderr.decode()
    assert proc.returncode == 2 and proc.stdout == b""
    assert err.count("\n") == 1 and "no prompt" in err
    assert server.requests == []


@pytest.mark.parametrize("args,stdin", [((), b""), ((), b"  \n\t\n"), (("  ",), b""), (("",), b" \n")])
def test_empty_or_blank_prompt_is_a_usage_error(run, server, args, stdin):
    r = run(*args, stdin=stdin)
    assert r.code == 2 and r.out == b"" and r.err.count("\n") == 1
    assert server.requests == []


@pytest.mark.parametrize("data,offset", [(b"caf\xc3\xa9 \xff rest", 6), (b"ok\x00binary", 2), (b"\xc3", 0)])
def test_binary_or_invalid_stdin_is_exit_65_with_offset(run, server, data, offset):
    r = run("look:", stdin=data)
    assert r.code == 65 and r.out == b""
    assert f"offset {offset}" in r.err and r.err.count("\n") == 1
    assert server.requests == []


def test_invalid_utf8_argument_is_exit_65(server, env):
    proc = subprocess.run(GPT_PIPE + [b"caf\xe9".decode("utf-8", "surrogateescape")], env=env,
                          stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    assert proc.returncode == 65 and server.requests == []


def test_system_message_comes_first(run, server):
    assert run("-s", "Be terse.", "hi").code == 0
    assert server.requests[0].json["messages"] == [{"role": "system", "content": "Be terse."},
                                                   {"role": "user", "content": "hi"}]


def test_messages_file_before_the_prompt(run, server, tmp_path):
    history = [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]
    path = tmp_path / "m.json"
    path.write_text(json.dumps(history))
    assert run("-s", "sys", "--messages", str(path), "and 3+3?").code == 0
    assert server.requests[0].json["messages"] == [{"role": "system", "content": "sys"}, *history,
                                                   {"role": "user", "content": "and 3+3?"}]


def test_messages_file_makes_the_prompt_optional(run, server, tmp_path):
    path = tmp_path / "m.json"
    path.write_text(json.dumps([{"role": "user", "content": "only this"}]))
    assert run("--messages", str(path)).code == 0
    assert server.requests[0].json["messages"] == [{"role": "user", "content": "only this"}]


def test_messages_from_stdin(run, server):
    assert run("--messages", "-", "next", stdin=b'[{"role": "user", "content": "first"}]').code == 0
    assert [m["content"] for m in server.requests[0].json["messages"]] == ["first", "next"]


@pytest.mark.parametrize("content,reason", [
    ("[{\"role\": \"user\"", "not valid JSON"),
    ("{\"role\": \"user\", \"content\": \"x\"}", "JSON array"),
    ("[{\"content\": \"x\"}]", "role"),
    ("[{\"role\": \"user\", \"content\": 5}]", "content"),
    ("[\"hello\"]", "not a JSON object"),
])
def test_malformed_messages_file_is_exit_65_with_reason(run, server, tmp_path, content, reason):
    path = tmp_path / "m.json"
    path.write_text(content)
    r = run("--messages", str(path), "hi")
    assert r.code == 65 and reason in r.err and r.err.count("\n") == 1
    assert server.requests == []


def test_missing_messages_file_is_exit_65(run, server, tmp_path):
    r = run("--messages", str(tmp_path / "nope.json"), "hi")
    assert r.code == 65 and "nope.json" in r.err


def test_twenty_megabytes_of_stdin(run, server):
    data = (b"0123456789abcdef" * 64 + b"\n") * 20000
    r = run("count:", stdin=data)
    assert r.code == 0
    assert user(server) == "count:\n\n" + data.decode()
