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


# The -c trap: -c is --continue (as in llm and mods), files take --conversation -----------------

def test_c_continues_the_default_conversation_with_stdin_and_the_prompt(run, server, home, tmp_path):
    import json
    import os

    from server import Reply, sse_chunks

    server.reply = Reply(sse_chunks(["a summary"]))
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        r = run("-c", "Summarise this", stdin=b"some text\n")
    finally:
        os.chdir(cwd)
    assert r.code == 0 and r.out == b"a summary\n", r
    assert server.requests[0].json["messages"][-1]["content"] == "Summarise this\n\nsome text\n"
    assert not (tmp_path / "Summarise this").exists()
    saved = home / ".local" / "state" / "gpt-pipe" / "conversation.jsonl"
    assert [json.loads(line)["role"] for line in saved.read_text().splitlines()] == ["user", "assistant"]


@pytest.mark.parametrize("name, content", [("chat.jsonl", None), ("notes", b'{"role": "user", "content": "x"}\n')])
def test_an_old_style_c_file_is_a_usage_error_naming_conversation(run, server, tmp_path, name, content):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    r = run("-c", str(path), "hi")
    assert r.code == 2 and f"--conversation {path}" in r.err and server.requests == [], r


def test_a_prompt_given_to_conversation_is_a_usage_error(run, server):
    r = run("--conversation", "Summarise this", stdin=b"text\n")
    assert r.code == 2 and "looks like a prompt" in r.err and "-c" in r.err and server.requests == [], r


def test_conversation_file_keeps_the_exchange(run, server, tmp_path):
    chat = tmp_path / "chat.jsonl"
    assert run("--conversation", str(chat), "one").code == 0
    assert len(chat.read_text().splitlines()) == 2


# Keys follow their host ---------------------------------------------------------------------

def _elsewhere(server):
    """The test server named by --base-url only: to gpt-pipe, a server other than GreenPT's."""
    return ["--base-url", server.url + "/v1"]


def test_greenpt_key_never_goes_to_another_server(run, server):
    r = run(*_elsewhere(server), "hi", drop_env=("GREENPT_BASE_URL",))
    assert r.code == 0 and "authorization" not in server.requests[0].headers, r


@pytest.mark.parametrize("source", ["env", "file", "cmd"])
def test_a_key_source_given_with_another_server_is_used(run, server, tmp_path, source):
    from conftest import KEY

    key_file = tmp_path / "key"
    key_file.write_text(KEY + "\n")
    key_file.chmod(0o600)
    args = {"env": ["--api-key-env", "GREENPT_API_KEY"], "file": ["--api-key-file", str(key_file)],
            "cmd": ["--api-key-cmd", f"cat {key_file}"]}[source]
    r = run(*_elsewhere(server), *args, "hi", drop_env=("GREENPT_BASE_URL",))
    assert r.code == 0 and server.requests[0].headers["authorization"] == f"Bearer {KEY}", r


def test_a_401_from_a_server_given_no_key_says_so(run, server):
    from server import Reply

    server.reply = Reply([b'{"error": {"message": "missing key"}}'], status=401, content_type="application/json",
                         framing="length")
    r = run(*_elsewhere(server), "hi", drop_env=("GREENPT_BASE_URL",))
    assert r.code == 77 and "no key was sent" in r.err and "--api-key-env" in r.err, r


def test_greenpt_without_a_key_is_78_before_any_connection_even_with_a_config_file(run, server, home):
    path = home / ".config" / "gpt-pipe"
    path.mkdir(parents=True)
    (path / "config.toml").write_text('model = "green-s"\n')
    r = run("hi", drop_env=("GREENPT_API_KEY",))
    assert r.code == 78 and "no API key" in r.err and server.connections == 0, r


def test_a_profile_key_goes_with_the_profile_server_only(run, server, home, tmp_path):
    from conftest import KEY

    key_file = tmp_path / "key"
    key_file.write_text("sk-profile-key-0000000000\n")
    key_file.chmod(0o600)
    path = home / ".config" / "gpt-pipe"
    path.mkdir(parents=True)
    (path / "config.toml").write_text(f'[profile.local]\nbase_url = "{server.url}/v1"\n'
                                      f'[profile.keyed]\nbase_url = "{server.url}/v1"\napi_key_file = "{key_file}"\n')
    env = ("GREENPT_BASE_URL",)
    assert run("--profile", "local", "hi", drop_env=env).code == 0
    assert run("--profile", "keyed", "hi", drop_env=env).code == 0
    headers = [request.headers.get("authorization") for request in server.requests]
    assert headers == [None, "Bearer sk-profile-key-0000000000"] and KEY not in str(headers)


def test_dry_run_shows_the_key_source_never_the_key(run, server, tmp_path):
    from conftest import KEY

    key_file = tmp_path / "key"
    key_file.write_text(KEY + "\n")
    key_file.chmod(0o600)
    r = run("--dry-run", "--api-key-file", str(key_file), "hi")
    assert r.code == 0 and f"Bearer $(cat {key_file})" in r.out.decode() and KEY not in r.out.decode(), r
    r = run("--dry-run", "--api-key-cmd", "pass show greenpt", "hi")
    assert "Bearer $(pass show greenpt)" in r.out.decode(), r
    r = run("--dry-run", *_elsewhere(server), "hi", drop_env=("GREENPT_BASE_URL",))
    assert "Authorization" not in r.out.decode(), r


def test_an_output_that_fails_when_written_stops_the_batch_at_once(run, server):
    lines = b"".join(b'{"prompt": "x%d"}\n' % i for i in range(20))
    r = run("--batch", "-P", "2", "--output", "/dev/full", stdin=lines)
    # Only the lines already on their way: at most 2 x -P (in flight, and queued for a worker).
    assert r.code == 74 and "No space left" in r.err and len(server.requests) <= 4, (len(server.requests), r.err)


def test_tee_to_stdout_redirected_to_a_file_overwrites_nothing(server, env, tmp_path):
    import json
    import subprocess

    from conftest import GPT_PIPE

    out = tmp_path / "out.txt"
    with out.open("wb") as f:  # as the shell's `> out.txt`: no O_APPEND, its own offset
        code = subprocess.run([*GPT_PIPE, "--tee", "/dev/stdout", "hi"], stdout=f, env=env, timeout=60).returncode
    lines = out.read_bytes().splitlines()
    assert code == 0 and lines.count(b"Hello") == 1, lines
    logged = [json.loads(line) for line in lines if line != b"Hello"]  # every other line whole
    assert any("gpt_pipe" in entry for entry in logged) and len(logged) >= 3, logged


def test_a_tee_log_says_what_was_asked_never_the_key(run, server, tmp_path):
    import json

    from conftest import KEY

    log = tmp_path / "log.jsonl"
    r = run("--tee", str(log), "-s", "Be brief", "--temperature", "0.3", "say", KEY)
    markers = [json.loads(line)["gpt_pipe"] for line in log.read_text().splitlines() if '"gpt_pipe"' in line]
    request = markers[0]["request"]
    assert r.code == 0 and markers[0]["event"] == "run" and request["temperature"] == 0.3
    assert [m["role"] for m in request["messages"]] == ["system", "user"]
    assert request["messages"][1]["content"].startswith("say sk-") and KEY not in log.read_text()


def test_the_system_message_stays_with_the_conversation(run, server, tmp_path):
    import json

    chat = tmp_path / "chat.jsonl"
    assert run("--conversation", str(chat), "-s", "Be a pirate", "one").code == 0
    assert run("--conversation", str(chat), "two").code == 0
    r = run("--conversation", str(chat), "-s", "Be brief", "three")
    sent = [[(m["role"], m["content"]) for m in request.json["messages"]] for request in server.requests]
    assert sent[0] == [("system", "Be a pirate"), ("user", "one")]
    assert sent[1] == [("system", "Be a pirate"), ("user", "one"), ("assistant", "Hello"), ("user", "two")]
    assert sent[2][0] == ("system", "Be brief") and [role for role, _ in sent[2]].count("system") == 1
    assert r.code == 0 and "replaces the conversation's system message" in r.err
    roles = [json.loads(line)["role"] for line in chat.read_text().splitlines()]
    assert roles == ["system", "user", "assistant", "user", "assistant", "system", "user", "assistant"]


def test_a_cut_answer_is_asked_for_again_once_and_says_it_is_paid(run, server):
    from server import Cut, Reply, chunk, event

    server.reply = Reply([event(chunk("half an ans", role="assistant")), Cut()])
    r = run("--full", "--retries", "3", "hi")
    assert r.code == 7 and len(server.requests) == 2, (len(server.requests), r.err)
    assert "new paid request" in r.err


def test_messages_given_a_conversation_file_says_which_option_reads_it(run, server, tmp_path):
    chat = tmp_path / "chat.jsonl"
    chat.write_text('{"role": "user", "content": "one"}\n{"role": "assistant", "content": "two"}\n')
    r = run("--messages", str(chat), "hi")
    assert r.code == 65 and f"--conversation {chat}" in r.err and server.requests == [], r


def test_extract_writes_the_first_code_block_only(run, server):
    from server import Reply, sse_chunks

    answer = "Here is your message:\n\n```text\nFix the parser\n\nIt dropped a line.\n```\n\nAnything else?"
    server.reply = Reply(sse_chunks([answer[i:i + 7] for i in range(0, len(answer), 7)]))
    r = run("-x", "commit message")
    assert (r.code, r.out) == (0, b"Fix the parser\n\nIt dropped a line.\n"), r
    server.reply = Reply(sse_chunks(["no fence here"]))
    assert run("--extract", "hi").out == b"no fence here\n"


def test_first_code_block_rules():
    from gpt_pipe.extract import first_code_block

    assert first_code_block("a\n~~~~\nx\n```\ny\n~~~~\nb") == "x\n```\ny\n"  # a ``` inside ~~~~ is text
    assert first_code_block("```py\nprint(1)") == "print(1)\n"  # no closing fence: to the end
    indented = "    ```\nindented code, not a fence\n    ```"
    assert first_code_block(indented) == indented
    assert first_code_block("``` a`b\nnot a fence") == "``` a`b\nnot a fence"


def test_ctrl_c_in_a_batch_writes_the_lines_in_flight_a_summary_and_the_resume_command(start, server, tmp_path):
    import json
    import signal
    import time

    from server import Gate, Reply, sse_chunks

    gate = Gate()

    def answer(request):
        if request.json["messages"][-1]["content"] == "first":
            return Reply(sse_chunks(["done"]))
        return Reply([gate, *sse_chunks(["late"])])

    server.reply = answer
    out = tmp_path / "out.jsonl"
    lines = b"".join(b'{"id": "%s", "prompt": "%s"}\n' % (name, name) for name in (b"first", b"second", b"third"))
    reader = start("--batch", "-P", "3", "--keep-order", "--output", str(out), stdin=lines)
    deadline = time.monotonic() + 30
    # Every line's request has reached the server, and the first line's result is written.
    while len(server.requests) < 3 or not (out.exists() and out.read_text().endswith("\n")):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    reader.proc.send_signal(signal.SIGINT)
    result = reader.finish()
    gate.open()
    results = [json.loads(line) for line in out.read_text().splitlines()]
    assert result.code == 130 and [r["id"] for r in results] == ["first", "second", "third"], (result, results)
    assert [r["exit"] for r in results] == [0, 130, 130] and "interrupted" in results[1]["error"]
    assert "3 lines" in result.err and f"--output {out} --resume" in result.err, result.err


def test_a_batch_of_tool_calls_has_null_content_and_says_1_line(run, server):
    import json

    from server import Reply, event, sse_chunks

    call = {"index": 0, "id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    server.reply = Reply([event({"choices": [{"index": 0, "delta": {"role": "assistant", "tool_calls": [call]}}]}),
                          *sse_chunks([], "tool_calls")])
    r = run("--batch", stdin=b'{"prompt": "hi"}\n')
    result = json.loads(r.out)
    assert result["content"] is None and result["tool_calls"][0]["function"]["name"] == "f", result
    assert "batch: 1 line," in r.err, r.err


def test_debug_says_where_each_setting_came_from(run, server, home, tmp_path):
    from conftest import KEY

    key_file = tmp_path / "key"
    key_file.write_text(KEY + "\n")
    key_file.chmod(0o600)
    path = home / ".config" / "gpt-pipe"
    path.mkdir(parents=True)
    (path / "config.toml").write_text(f'model = "from-file"\n[profile.p]\napi_key_file = "{key_file}"\n')
    r = run("--debug", "--profile", "p", "hi")
    assert r.code == 0 and f"config file: {path / 'config.toml'}, profile p" in r.err, r.err
    assert "model: from-file (from the config file)" in r.err
    assert "base URL:" in r.err and "(from env GREENPT_BASE_URL)" in r.err
    assert f"key: from file {key_file} (set by profile p)" in r.err and KEY not in r.err


def test_a_profile_without_a_config_file_says_there_is_none(run, server, home):
    r = run("--profile", "work", "hi")
    assert r.code == 78 and "there is no config file" in r.err and "[profile.NAME]" in r.err, r


def test_a_second_new_keeps_the_first_previous_conversation(run, server, tmp_path):
    chat = tmp_path / "chat.jsonl"
    for args in (["one"], ["--new", "two"], ["--new", "three"]):
        assert run("--conversation", str(chat), *args).code == 0
    first = (tmp_path / "chat.jsonl.prev.1").read_text()
    assert '"one"' in first and '"two"' in (tmp_path / "chat.jsonl.prev").read_text()
    assert '"three"' in chat.read_text()


@pytest.mark.parametrize("args", [["--retries-invalid", "2", "--schema", "a", "hi"], ["--retries-invalid", "2", "hi"]])
def test_retries_invalid_where_it_cannot_work_is_a_usage_error(run, server, args):
    r = run(*args)
    assert r.code == 2 and "--retries-invalid" in r.err and server.requests == [], r


def test_a_context_length_error_in_a_conversation_suggests_new(run, server, tmp_path):
    from server import Reply

    chat = tmp_path / "chat.jsonl"
    chat.write_text('{"role": "user", "content": "old"}\n{"role": "assistant", "content": "reply"}\n')
    server.reply = Reply([b'{"error": {"message": "This model\'s maximum context length is 8192 tokens"}}'],
                         status=400, content_type="application/json", framing="length")
    r = run("--conversation", str(chat), "hi")
    assert r.code == 65 and "holds 2 messages" in r.err and f"--conversation {chat} --new" in r.err, r
