"""A new user's first hour: what the README promises holds, and the everyday mistakes
get a hint instead of a puzzle."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import KEY
from server import Reply


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


# Nothing paid for is lost -----------------------------------------------------------------

@pytest.mark.parametrize("args", [["-c", "/no/such/dir/chat.jsonl"], ["--tee", "/no/such/dir/log.jsonl"]])
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


@pytest.mark.parametrize("args", [["--new", "hi"], ["-c", "x.jsonl", "--continue", "hi"]])
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
