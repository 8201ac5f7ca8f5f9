"""What goes on the wire: URL, headers, body, settings precedence, the key and its secrecy."""

from __future__ import annotations

import json

import pytest
from conftest import KEY
from server import Reply

from gpt_pipe import __version__


def test_request_line_headers_and_body(run, server):
    assert run("hi").code == 0
    req = server.requests[0]
    assert (req.method, req.path) == ("POST", "/v1/chat/completions")
    assert req.headers["authorization"] == f"Bearer {KEY}"
    assert req.headers["user-agent"] == f"gpt-pipe/{__version__}"
    assert req.headers["content-type"] == "application/json"
    assert req.json == {"model": "green-l", "messages": [{"role": "user", "content": "hi"}], "stream": True}


def test_base_url_with_trailing_slash(run, server):
    assert run("--base-url", server.url + "/", "hi").code == 0
    assert server.requests[0].path == "/v1/chat/completions"


def test_model_flag_beats_env_beats_config(run, server, home):
    config = home / ".config" / "gpt-pipe"
    config.mkdir(parents=True)
    (config / "config.toml").write_text('model = "from-config"\ntemperature = 0.25\n')
    run("hi")
    run("hi", extra_env={"GREENPT_MODEL": "from-env"})
    run("-m", "from-flag", "hi", extra_env={"GREENPT_MODEL": "from-env"})
    assert [r.json["model"] for r in server.requests] == ["from-config", "from-env", "from-flag"]
    assert all(r.json["temperature"] == 0.25 for r in server.requests)


def test_config_base_url_and_key_file(run, server, home, tmp_path):
    keyfile = tmp_path / "key"
    keyfile.write_text("sk-from-file-1234567890\n")
    config = home / ".config" / "gpt-pipe"
    config.mkdir(parents=True)
    (config / "config.toml").write_text(f'base_url = "{server.url}"\napi_key_file = "{keyfile}"\n')
    r = run("hi", drop_env=("GREENPT_BASE_URL", "GREENPT_API_KEY"))
    assert r.code == 0, r
    assert server.requests[0].headers["authorization"] == "Bearer sk-from-file-1234567890"


def test_key_precedence_flag_file_then_env_then_config_file(run, server, home, tmp_path):
    flag_file, config_file = tmp_path / "flag", tmp_path / "config"
    flag_file.write_text("sk-flag-file-000000001")
    config_file.write_text("sk-config-file-0000002")
    config = home / ".config" / "gpt-pipe"
    config.mkdir(parents=True)
    (config / "config.toml").write_text(f'api_key_file = "{config_file}"\n')
    run("--api-key-file", str(flag_file), "hi")
    run("hi")
    run("hi", drop_env=("GREENPT_API_KEY",))
    assert [r.headers["authorization"] for r in server.requests] == [
        "Bearer sk-flag-file-000000001", f"Bearer {KEY}", "Bearer sk-config-file-0000002"]


def test_no_key_is_exit_78_naming_the_variable(run, server):
    r = run("hi", drop_env=("GREENPT_API_KEY",))
    assert r.code == 78 and "GREENPT_API_KEY" in r.err and r.err.count("\n") == 1
    assert server.requests == []


def test_unreadable_key_file_and_bad_config_are_exit_78(run, server, home, tmp_path):
    assert run("--api-key-file", str(tmp_path / "missing"), "hi").code == 78
    config = home / ".config" / "gpt-pipe"
    config.mkdir(parents=True)
    (config / "config.toml").write_text("model = [unclosed\n")
    r = run("hi")
    assert r.code == 78 and "config.toml" in r.err
    assert server.requests == []


def test_body_options(run, server):
    r = run("--temperature", "0.5", "--max-tokens", "64", "--top-p", "0.9", "--stop", "END", "--stop", "\n\n",
            "--seed", "7", "-o", "presence_penalty=0.1", "-o", "user=alice", "-o", 'response_format={"type":"text"}',
            "-o", "logprobs=true", "hi")
    assert r.code == 0
    body = server.requests[0].json
    assert {k: body[k] for k in ("temperature", "max_tokens", "top_p", "stop", "seed", "presence_penalty", "user",
                                  "response_format", "logprobs")} == {
        "temperature": 0.5, "max_tokens": 64, "top_p": 0.9, "stop": ["END", "\n\n"], "seed": 7,
        "presence_penalty": 0.1, "user": "alice", "response_format": {"type": "text"}, "logprobs": True}


@pytest.mark.parametrize("option", ["messages=[]", "stream=false", "novalue", "=1"])
def test_forbidden_or_malformed_option_is_a_usage_error(run, server, option):
    r = run("-o", option, "hi")
    assert r.code == 2 and r.err.count("\n") == 1 and server.requests == []


def test_full_and_jsonl_together_is_a_usage_error(run, server):
    assert run("--full", "--jsonl", "hi").code == 2


def test_unknown_option_is_one_line_exit_2(run):
    r = run("--frobnicate", "hi")
    assert r.code == 2 and r.err.count("\n") == 1 and "--frobnicate" in r.err


def test_list_models(run, server):
    server.reply = Reply([json.dumps({"object": "list", "data": [{"id": "green-l"}, {"id": "green-r"}]}).encode()],
                         content_type="application/json", framing="length")
    r = run("--list-models", stdin=b"ignored")
    assert (r.code, r.out) == (0, b"green-l\ngreen-r\n")
    assert (server.requests[0].method, server.requests[0].path) == ("GET", "/v1/models")


def test_list_models_error(run, server):
    server.reply = Reply([b'{"error": {"message": "bad key"}}'], status=401, content_type="application/json",
                         framing="length")
    r = run("--list-models")
    assert r.code == 77 and "bad key" in r.err


def test_debug_shows_request_and_response_with_key_redacted(run, server):
    r = run("--debug", "hi")
    assert r.code == 0
    assert "POST " + server.url + "/chat/completions" in r.err
    assert "Bearer sk-…WXYZ" in r.err and KEY not in r.err
    assert "HTTP 200" in r.err and '"stream": true' in r.err


def test_server_echoing_the_key_never_shows_it(run, server):
    server.reply = Reply([json.dumps({"error": {"message": f"invalid key {KEY}"}}).encode()], status=401,
                         content_type="application/json", framing="length")
    for mode in ((), ("--jsonl",), ("--debug",)):
        r = run(*mode, "hi")
        assert r.code == 77 and KEY not in r.err and KEY.encode() not in r.out and "sk-…WXYZ" in r.err


def test_server_echoing_the_key_inside_the_stream_never_shows_it(run, server):
    server.reply = Reply([f'data: {{"error": {{"message": "bad key {KEY}"}}}}\n\n'.encode()])
    r = run("--jsonl", "hi")
    assert r.code == 69 and "sk-…WXYZ" in r.err
    messages = [json.loads(line)["error"]["message"] for line in r.out.splitlines()]
    assert messages == ["bad key sk-…WXYZ", "server error: bad key sk-…WXYZ"]


def test_key_with_newline_is_rejected_without_showing_it(run, server):
    r = run("hi", extra_env={"GREENPT_API_KEY": "sk-abc\ndef-secret"})
    assert r.code == 78 and "secret" not in r.err


def test_version_and_help(run):
    r = run("--version")
    assert (r.code, r.out) == (0, f"gpt-pipe {__version__}\n".encode())
    r = run("--help")
    assert r.code == 0 and b"Examples:" in r.out and b"--jsonl" in r.out


CRASH = """
import sys
import gpt_pipe.pipeline
def crash(*args):
    raise ZeroDivisionError("simulated bug")
gpt_pipe.pipeline.run_chat = crash
from gpt_pipe.launch import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("debug", [False, True])
def test_internal_error_is_one_line_exit_70_traceback_only_with_debug(server, env, debug):
    import subprocess
    import sys

    args = ["--debug", "hi"] if debug else ["hi"]
    proc = subprocess.run([sys.executable, "-c", CRASH, *args], env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, timeout=60)
    err = proc.stderr.decode()
    assert proc.returncode == 70 and proc.stdout == b""
    assert err.splitlines()[-1].startswith("gpt-pipe: internal error: ZeroDivisionError: simulated bug")
    assert ("Traceback" in err) is debug
    if not debug:
        assert err.count("\n") == 1
    assert KEY not in err


def test_python_dash_m_gpt_pipe(server, env):
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "gpt_pipe", "hi"], env=env, input=b"", capture_output=True,
                          timeout=60)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, b"Hello\n", b"")
