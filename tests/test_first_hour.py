"""A new user's first hour: what the README promises holds, and the everyday mistakes
get a hint instead of a puzzle."""

from __future__ import annotations

import json
import os
import subprocess
import threading
from pathlib import Path

import pytest
from conftest import GPT_PIPE, KEY, PROCESS_TIMEOUT, read_terminal
from server import Reply, chunk, event, sse_chunks


def lines_of(text: str) -> list[str]:
    return [line for line in text.splitlines() if line]


def write_config(home: Path, text: str) -> Path:
    path = home / ".config" / "gpt-pipe" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# Flags beat the config file ----------------------------------------------------------------

@pytest.mark.parametrize("flag", ["--jsonl", "--json", "--text", "--full"])
def test_a_flag_replaces_the_output_mode_of_the_config_file(run, server, home, flag):
    write_config(home, "full = true\n")
    r = run(flag, "hi")
    assert r.code == 0, r
    if flag == "--jsonl":
        assert len(r.out.splitlines()) == 2 and json.loads(r.out.splitlines()[0])["object"]
    elif flag == "--json":
        assert json.loads(r.out)["choices"][0]["message"]["content"] == "Hello"
    else:
        assert r.out == b"Hello\n"


def test_two_modes_on_the_command_line_are_still_a_usage_error(run, server, home):
    write_config(home, "full = true\n")
    assert run("--jsonl", "--json", "hi").code == 2 and server.requests == []


def test_a_key_source_flag_replaces_the_config_files(run, server, home, tmp_path):
    key_file = tmp_path / "key"
    key_file.write_text("sk-from-the-key-file-0001\n")
    os.chmod(key_file, 0o600)
    write_config(home, 'api_key_cmd = "exit 3"\n')
    r = run("--api-key-file", str(key_file), "hi")
    assert r.code == 0 and server.requests[0].headers["authorization"] == "Bearer sk-from-the-key-file-0001"


@pytest.mark.parametrize("line, message", [
    ('temperature = "hot"', "config.toml: temperature: not a number: 'hot'"),
    ("max_tokens = 0", "config.toml: max_tokens: out of range: 0"),
    ('retries = 1.5', "config.toml: retries: not a whole number: 1.5"),
    ('full = "yes"', "config.toml: full: not true or false: 'yes'"),
    ("model = 5", "config.toml: model: not a string: 5"),
    ('stop = [1, 2]', "config.toml: stop: not a list of strings"),
    ('max_event = "lots"', "config.toml: max_event: not a size"),
])
def test_config_values_are_checked_against_the_file(run, server, home, line, message):
    write_config(home, line + "\n")
    r = run("hi")
    assert r.code == 78 and message in r.err and len(lines_of(r.err)) == 1 and server.requests == []


def test_an_environment_value_is_checked_too(run, server):
    r = run("hi", extra_env={"GPT_PIPE_RETRIES": "many"})
    assert r.code == 78 and "GPT_PIPE_RETRIES: retries: not a whole number: 'many'" in r.err


# Profiles ---------------------------------------------------------------------------------

PROFILES = """
model = "top-level"
[profile.local]
base_url = "{url}"
model = "local-model"
api_key_file = "{key}"
[profile.other]
model = "other-model"
"""


@pytest.fixture
def profiles(home, server, tmp_path):
    key = tmp_path / "local.key"
    key.write_text("sk-local-profile-key-42\n")
    os.chmod(key, 0o600)
    return write_config(home, PROFILES.format(url=server.url, key=key))


def test_a_profile_beats_the_environment_and_flags_beat_the_profile(run, server, profiles):
    env = {"GREENPT_BASE_URL": "http://127.0.0.1:9/v1", "GREENPT_MODEL": "from-env"}
    assert run("--profile", "local", "hi", extra_env=env).code == 0
    assert run("hi", extra_env={**env, "GPT_PIPE_PROFILE": "local"}).code == 0
    assert run("--profile", "local", "-m", "from-flag", "hi", extra_env=env).code == 0
    got = [(r.json["model"], r.headers["authorization"]) for r in server.requests]
    assert got == [("local-model", "Bearer sk-local-profile-key-42")] * 2 + [
        ("from-flag", "Bearer sk-local-profile-key-42")]


def test_without_a_profile_the_environment_beats_the_top_level(run, server, profiles):
    assert run("hi", extra_env={"GREENPT_MODEL": "from-env"}).code == 0
    assert run("hi").code == 0
    assert [r.json["model"] for r in server.requests] == ["from-env", "top-level"]


def test_an_unknown_profile_is_78_naming_the_known_ones(run, server, profiles):
    r = run("--profile", "nope", "hi")
    assert r.code == 78 and "no profile 'nope'" in r.err and "local, other" in r.err and server.requests == []


def test_a_mistyped_setting_or_profile_table_says_what_was_meant(run, server, home):
    write_config(home, '[profiles.local]\nmodle = "x"\n')
    r = run("--profile", "local", "hi")
    assert r.code == 78 and server.requests == [], r
    assert "[profiles.local] is not read: a profile is a [profile.NAME] table" in r.err
    write_config(home, 'modle = "x"\ntemprature = 1\nzzz = 1\n[profiles.local]\nmodel = "y"\n')
    r = run("hi")
    assert r.code == 0 and "unknown setting 'modle' ignored (did you mean 'model'?)" in r.err, r
    assert "'temprature' ignored (did you mean 'temperature'?)" in r.err and "'zzz' ignored\n" in r.err
    assert "'profiles' ignored (did you mean [profile.NAME] tables?)" in r.err


# Nothing paid for is lost -----------------------------------------------------------------

@pytest.mark.parametrize("args", [["--conversation", "/no/such/dir/chat.jsonl"], ["--tee", "/no/such/dir/log.jsonl"]])
def test_files_the_run_writes_are_checked_before_anything_is_sent(run, server, args):
    r = run(*args, "hi")
    assert (r.code, r.out) == (74, b"") and server.requests == [] and "/no/such/dir" in r.err


def test_batch_output_is_checked_before_anything_is_sent(run, server):
    r = run("--batch", "--output", "/no/such/dir/out.jsonl", stdin=b'{"prompt": "hi"}\n')
    assert r.code == 74 and server.requests == []


# --continue and --new ---------------------------------------------------------------------

def test_continue_keeps_a_default_conversation_and_new_starts_it_afresh(run, server, home):
    state = home / "state"
    env = {"XDG_STATE_HOME": str(state)}
    assert run("--continue", "first", extra_env=env).code == 0
    assert run("--continue", "second", extra_env=env).code == 0
    sent = [m["content"] for m in server.requests[1].json["messages"]]
    assert sent == ["first", "Hello", "second"]
    assert run("--continue", "--new", "fresh", extra_env=env).code == 0
    assert [m["content"] for m in server.requests[2].json["messages"]] == ["fresh"]
    assert run("--continue", "again", extra_env=env).code == 0
    assert [m["content"] for m in server.requests[3].json["messages"]] == ["fresh", "Hello", "again"]
    chat = state / "gpt-pipe" / "conversation.jsonl"
    assert (chat.stat().st_mode & 0o777) == 0o600 and (chat.parent.stat().st_mode & 0o777) == 0o700
    previous = [json.loads(line)["content"] for line in chat.with_suffix(".jsonl.prev").read_text().splitlines()]
    assert previous == ["first", "Hello", "second", "Hello"]


@pytest.mark.parametrize("args", [["--new", "hi"], ["--conversation", "x.jsonl", "--continue", "hi"]])
def test_new_without_a_conversation_and_two_conversations_are_usage_errors(run, server, args):
    assert run(*args).code == 2 and server.requests == []


# --help and the man page ------------------------------------------------------------------

def test_help_groups_every_option_fits_80_columns_and_names_the_config_file(run, home):
    from gpt_pipe.cli import command
    from gpt_pipe.helptext import GROUPS, unused

    assert unused(command.params) == []
    r = run("--help", extra_env={"COLUMNS": "200"})
    text = r.out.decode()
    path = str(home / ".config" / "gpt-pipe" / "config.toml")  # a path is as long as it is
    assert r.code == 0 and max(len(line) for line in text.splitlines() if path not in line) <= 80
    positions = [text.index(f"\n{heading}:\n") for heading in GROUPS]
    assert positions == sorted(positions)
    assert str(home / ".config" / "gpt-pipe" / "config.toml") in text


def test_the_man_page_follows_the_same_headings():
    from gpt_pipe.helptext import GROUPS

    page = (Path(__file__).parent.parent / "man" / "gpt-pipe.1").read_text()
    positions = [page.index(f'.SS "{heading}"') for heading in GROUPS]
    assert positions == sorted(positions)


# Hints where users go wrong ---------------------------------------------------------------

def test_a_prompt_that_starts_with_a_dash_gets_a_hint(run, server):
    r = run("-v", "means", "verbose")
    assert r.code == 2 and "gpt-pipe -- '-v ...'" in r.err and server.requests == []
    assert run("--", "-v", "means", "verbose").code == 0


def test_a_base_url_that_already_ends_in_chat_completions_is_trimmed(run, server):
    r = run("--base-url", server.url + "/chat/completions", "hi")
    assert r.code == 0 and server.requests[0].path == "/v1/chat/completions"


def test_a_404_suggests_the_missing_v1(run, server):
    server.reply = Reply([b'{"detail": "Not Found"}'], status=404, content_type="application/json",
                         framing="length")
    r = run("--base-url", server.url.removesuffix("/v1"), "hi")
    assert r.code == 65 and "/v1" in r.err and "--base-url" in r.err


def test_no_key_but_openai_api_key_says_so_and_never_sends_it(run, server):
    r = run("hi", drop_env=("GREENPT_API_KEY",), extra_env={"OPENAI_API_KEY": "sk-openai-not-for-greenpt-1"})
    assert r.code == 78 and "OPENAI_API_KEY" in r.err and "GREENPT_API_KEY" in r.err and server.requests == []
    assert "sk-openai-not-for-greenpt-1" not in r.err


def test_list_models_refuses_what_it_would_ignore(run, server):
    for args in (["--list-models", "hi"], ["--list-models", "--json"], ["--list-models", "--tee", "x"]):
        r = run(*args)
        assert r.code == 2 and "--list-models" in r.err and server.requests == [], r


def test_batch_refusals_say_what_to_use_instead(run, server):
    r = run("--batch", "--json", stdin=b"")
    assert r.code == 2 and "jq" in r.err
    r = run("--batch", "--tee", "log", stdin=b"")
    assert r.code == 2 and "--output" in r.err


def test_key_never_in_any_of_these(run, server):
    r = run("--debug", "hi")
    assert KEY not in r.err


# Logs keep runs and attempts apart ----------------------------------------------------------

def answer(run_id: str, texts: list[str], finish: str | None = "stop") -> list[bytes]:
    out = [event(dict(chunk(text), id=run_id)) for text in texts]
    if finish:
        out.append(event(dict(chunk(finish=finish), id=run_id)))
    return out


def test_a_retried_full_run_logs_its_attempts_and_replays_only_the_last(run, server, tmp_path):
    from server import Cut, replies

    server.reply = replies(Reply(answer("a", ["Hello! How"], finish=None) + [Cut()]),
                           Reply(answer("b", ["Hello! How are you?"]) + [b"data: [DONE]\n\n"]))
    log = tmp_path / "log.jsonl"
    live = run("--full", "--retries", "1", "--max-retry-wait", "0", "--tee", str(log), "hi")
    assert (live.code, live.out) == (0, b"Hello! How are you?\n")
    markers = [json.loads(line)["gpt_pipe"] for line in log.read_text().splitlines() if '"gpt_pipe": {' in line]
    assert [m["event"] for m in markers] == ["run", "attempt", "end"]
    assert markers[1]["attempt"] == 2 and markers[1]["after"] and markers[2]["exit"] == 0
    assert len({m["run"] for m in markers}) == 1
    for mode in ([], ["--full"]):
        replayed = run(*mode, "--replay", str(log), drop_env=("GREENPT_API_KEY",))
        assert (replayed.code, replayed.out) == (0, b"Hello! How are you?\n")


def test_a_log_appended_by_many_runs_replays_run_by_run(run, server, tmp_path):
    from server import replies

    server.reply = replies(Reply(answer("one", ["First"])), Reply(answer("two", ["Cut"], finish="length")))
    log = tmp_path / "cron.jsonl"
    assert run("--tee", str(log), "hi").code == 0
    assert run("--tee", str(log), "hi").code == 3
    r = run("--replay", str(log), drop_env=("GREENPT_API_KEY",))
    assert (r.code, r.out) == (3, b"First\nCut\n")  # each run as live; the last run's code
    r = run("--replay", str(log), "--json", drop_env=("GREENPT_API_KEY",))
    assert [json.loads(line)["choices"][0]["message"]["content"] for line in r.out.splitlines()] == ["First", "Cut"]


def test_a_jsonl_log_appended_with_redirection_splits_by_the_chunks_ids(run, server, tmp_path):
    from server import replies

    server.reply = replies(Reply(answer("one", ["Morning"])), Reply(answer("two", ["Evening"])),
                           Reply(answer("three", ["Cut short"], finish=None)))
    log = b"".join(run("--jsonl", "hi").out for _ in range(3))
    r = run("--replay", "-", stdin=log, drop_env=("GREENPT_API_KEY",))
    assert (r.code, r.out) == (7, b"Morning\nEvening\nCut short")
    assert lines_of(r.err)[-1].startswith("gpt-pipe: the stream ended before the answer finished")


# Messages a user reads ----------------------------------------------------------------------

def on_one_terminal(env: dict[str, str], args: list[str], gate=None) -> bytes:
    """stdout and stderr on the same pseudo-terminal, as in an interactive shell."""
    import pty

    master, slave = pty.openpty()
    proc = subprocess.Popen(GPT_PIPE + args, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, env=env)
    os.close(slave)

    def open_gate(seen: bytes) -> None:
        if gate is not None and gate[1](seen):
            gate[0].open()

    seen = read_terminal(master, open_gate)
    proc.wait(PROCESS_TIMEOUT)
    return seen


def test_on_a_terminal_an_error_after_partial_text_starts_a_new_line(env, server):
    from server import Cut

    server.reply = Reply(sse_chunks(["Hello! How"], finish=None, done=False) + [Cut()])
    seen = on_one_terminal(env, ["hi"])
    assert b"Hello! How\r\ngpt-pipe: " in seen


def test_shown_reasoning_ends_its_line_before_the_answer_and_leaves_no_blank_line(env, server):
    thought = {"choices": [{"index": 0, "delta": {"reasoning_content": "Let me think."}, "finish_reason": None}]}
    server.reply = Reply([event(thought), *sse_chunks(["Hello"])])
    seen = on_one_terminal(env, ["--show-reasoning", "hi"])
    assert b"Let me think.\r\nHello\r\n" in seen and b"\r\n\r\n" not in seen


def test_waiting_is_shown_on_a_terminal_and_erased_by_the_answer(env, server):
    from server import Gate

    gate = Gate()
    server.reply = Reply([gate, *sse_chunks(["Hello"])])
    seen = on_one_terminal(env, ["hi"], (gate, lambda seen: b"waiting for the answer" in seen))
    assert b"waiting for the answer" in seen and b"\r\x1b[K" in seen
    assert seen.index(b"\r\x1b[K") < seen.index(b"Hello")


def test_no_waiting_indicator_off_a_terminal(run, server):
    r = run("hi")
    assert r.err == "" and r.out == b"Hello\n"


@pytest.mark.parametrize("finish, note", [
    ("length", "the answer was cut at the token limit (finish_reason: length)"),
    ("content_filter", "the answer was stopped by the content filter (finish_reason: content_filter)"),
    ("something_new", "the answer ended with finish_reason: something_new"),
])
def test_a_finish_other_than_stop_says_one_line_unless_quiet(run, server, finish, note):
    server.reply = Reply(sse_chunks(["Hi"], finish=finish))
    r = run("hi")
    assert lines_of(r.err) == [f"gpt-pipe: {note}"] and r.out == b"Hi\n"
    assert run("-q", "hi").err == ""


def test_tool_calls_are_counted_and_named(run, server):
    def call(index, **fields):
        return {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": index, **fields}]},
                             "finish_reason": None}]}

    server.reply = Reply([event(call(0, id="c1", type="function", function={"name": "get_weather", "arguments": ""})),
                          event(call(1, id="c2", type="function", function={"name": "search", "arguments": '{"q"'})),
                          event(call(0, function={"arguments": '{"city": "Oslo"}'})),
                          event(call(1, function={"arguments": ': "x"}'})),
                          event(chunk(finish="tool_calls")), b"data: [DONE]\n\n"])
    r = run("hi")
    assert r.code == 5 and lines_of(r.err) == [
        "gpt-pipe: the model asked for 2 tool calls: get_weather, search (finish_reason: tool_calls)"]


def test_tokens_per_second_only_when_the_time_means_something():
    from gpt_pipe.usage import usage_line

    usage = {"prompt_tokens": 5, "completion_tokens": 40, "total_tokens": 45}
    assert "tokens/s" not in usage_line(usage, None, 0.01, 0.02, None)
    assert "20.0 tokens/s" in usage_line(usage, None, 0.5, 2.5, None)


def test_full_keeps_the_indicator_counting_what_has_arrived(env, server):
    from server import Gate

    gate = Gate()
    first, rest = sse_chunks(["Hello"], finish=None, done=False), sse_chunks([" world"])
    server.reply = Reply([*first, gate, *rest])
    seen = on_one_terminal(env, ["--full", "hi"], (gate, lambda seen: b"receiving the answer: 5 characters" in seen))
    assert b"receiving the answer: 5 characters" in seen and seen.rstrip().endswith(b"Hello world"), seen


def test_no_indicator_on_a_dumb_terminal(env, server):
    from server import Gate

    gate = Gate()
    server.reply = Reply([gate, *sse_chunks(["Hello"])])
    with_timer = threading.Timer(1.0, gate.open)  # nothing to wait for: the indicator must never come
    with_timer.start()
    seen = on_one_terminal(dict(env, TERM="dumb"), ["hi"])
    assert b"waiting" not in seen and b"\x1b[K" not in seen and b"Hello" in seen, seen
