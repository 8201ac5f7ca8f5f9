"""Issue 5, for scripts and cron: --usage, --json, reasoning, and what GreenPT adds."""

from __future__ import annotations

import json
import re

import pytest
from server import Reply, event, sse_chunks

from gpt_pipe.usage import usage_line

USAGE = {"prompt_tokens": 5, "completion_tokens": 14, "total_tokens": 19, "inferenceTiming": {"inferenceTimeMs": 165.3}}
IMPACT = {"version": "20250922", "inferenceTime": {"total": 165, "unit": "ms"},
          "energy": {"total": 42784, "unit": "Wms"}, "emissions": {"total": 1, "unit": "ugCO2e"}}
THINK = {"choices": [{"index": 0, "delta": {"reasoning_content": "Let me think. "}, "finish_reason": None}]}
THINK2 = {"choices": [{"index": 0, "delta": {"reasoning": "Done thinking."}, "finish_reason": None}]}


def greenpt(texts=("Hello", "! How"), finish="stop", reasoning=False, credits_header="x-credits-remaining"):
    steps = ([event(THINK), event(THINK2)] if reasoning else []) + sse_chunks(list(texts), finish=finish, done=False)
    steps += [event({"choices": [], "usage": USAGE, "impact": IMPACT}), b"data: [DONE]\n\n"]
    return Reply(steps, headers={credits_header: "9.87"} if credits_header else {})


@pytest.mark.parametrize("header", ["x-credits-remaining", "x-credit-balance"])
def test_usage_line_with_greenpt_impact_and_credits(run, server, header):
    server.reply = greenpt(credits_header=header)
    r = run("--usage", "hi")
    assert (r.code, r.out) == (0, b"Hello! How\n")
    (line,) = r.err.splitlines()
    assert line.startswith("gpt-pipe: usage: 5 prompt + 14 completion = 19 tokens, first token ")
    assert "energy 0.0119 Wh (42.8 J)" in line and "emissions 1e-06 g CO2e" in line
    assert line.endswith("credits remaining 9.87") and re.search(r"total \d+\.\d\d s", line)


def test_usage_is_never_on_stdout_and_not_silenced_by_quiet(run, server):
    server.reply = greenpt()
    r = run("--usage", "-q", "--full", "hi")
    assert r.out == b"Hello! How\n" and r.err.startswith("gpt-pipe: usage: ")


def test_usage_without_a_usage_event(run, server):
    server.reply = Reply(sse_chunks(["plain"]))
    r = run("--usage", "hi")
    assert r.code == 0 and "tokens not reported" in r.err


def test_include_usage_is_asked_only_of_other_servers_and_only_when_shown(run, server):
    run("hi")
    run("--usage", "hi")
    run("--json", "hi")
    assert [req.json.get("stream_options") for req in server.requests] == [
        None, {"include_usage": True}, {"include_usage": True}]


def test_usage_line_units():
    line = usage_line(USAGE, {"energy": {"total": 2, "unit": "Wh"}, "emissions": {"total": 3, "unit": "gCO2e"}},
                      0.5, 1.5, None)
    assert line == ("usage: 5 prompt + 14 completion = 19 tokens, first token 0.50 s, total 1.50 s, "
                    "14.0 tokens/s, energy 2 Wh (7.2e+03 J), emissions 3 g CO2e")


def test_json_is_a_chat_completion(run, server):
    server.reply = greenpt(reasoning=True, finish="length")
    r = run("--json", "hi")
    assert r.code == 3 and r.err == "gpt-pipe: the answer was cut at the token limit (finish_reason: length)\n"
    answer = json.loads(r.out)
    assert r.out.endswith(b"}\n") and r.out.count(b"\n") == 1
    assert answer == {"id": "cmpl-12345", "object": "chat.completion", "created": 1699044968, "model": "green-l",
                      "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello! How",
                                                           "reasoning_content": "Let me think. Done thinking."},
                                   "finish_reason": "length"}],
                      "usage": USAGE, "impact": IMPACT}


def test_json_without_usage_or_reasoning_and_on_failure(run, server):
    server.reply = Reply(sse_chunks(["x"]))
    answer = json.loads(run("--json", "hi").out)
    assert answer["usage"] is None and "impact" not in answer
    assert "reasoning_content" not in answer["choices"][0]["message"]
    server.reply = Reply(sse_chunks(["half"], finish=None, done=False))
    r = run("--json", "hi")
    assert (r.code, r.out) == (7, b"")


def test_json_and_another_mode_is_a_usage_error(run):
    assert run("--json", "--jsonl", "hi").code == 2
    assert run("--json", "--full", "hi").code == 2


def test_reasoning_never_on_stdout_and_shown_on_stderr_when_asked(run, server):
    server.reply = greenpt(reasoning=True)
    r = run("hi")
    assert (r.out, r.err) == (b"Hello! How\n", "")
    r = run("--show-reasoning", "hi")
    assert (r.out, r.err) == (b"Hello! How\n", "Let me think. Done thinking.\n")
    r = run("--show-reasoning", "--usage", "hi")
    lines = r.err.splitlines()
    assert lines[0] == "Let me think. Done thinking." and lines[1].startswith("gpt-pipe: usage")


def test_reasoning_effort_is_sent_only_when_given(run, server):
    run("hi")
    run("--reasoning-effort", "high", "hi")
    assert ["reasoning_effort" in req.json for req in server.requests] == [False, True]
    assert server.requests[1].json["reasoning_effort"] == "high"


def test_402_with_a_plain_string_error_is_77(run, server):
    server.reply = Reply([b'{"error": "No remaining credits (EUR)"}'], status=402, content_type="application/json",
                         framing="length")
    r = run("--retries", "3", "hi")
    assert (r.code, r.out) == (77, b"") and r.err == "gpt-pipe: HTTP 402 Payment Required: No remaining credits (EUR)\n"
    assert len(server.requests) == 1


# --tee and --replay ------------------------------------------------------------------------

from server import Cut  # noqa: E402

ENDINGS = {
    "complete": lambda: greenpt(finish="length"),
    "truncated": lambda: Reply(sse_chunks(["par", "tial"], finish=None, done=False) + [Cut()]),
    "server error": lambda: Reply(sse_chunks(["par"], finish=None, done=False)
                                  + [event({"error": {"message": "overloaded"}})]),
}


@pytest.mark.parametrize("ending", list(ENDINGS))
@pytest.mark.parametrize("mode", [(), ("--full",), ("--jsonl",), ("--json",), ("-n",)])
def test_replay_matches_the_live_run_byte_for_byte(run, server, tmp_path, ending, mode):
    server.reply = ENDINGS[ending]()
    log = tmp_path / "chunks.jsonl"
    live = run(*mode, "--tee", str(log), "hi")
    replayed = run(*mode, "--replay", str(log), drop_env=("GREENPT_API_KEY",))
    assert (replayed.code, replayed.out) == (live.code, live.out)
    assert replayed.err.splitlines()[-1:] == live.err.splitlines()[-1:]
    assert len(server.requests) == 1  # the replay asked nothing


def test_tee_log_is_the_jsonl_output_and_ends_with_the_error_line(run, server, tmp_path):
    server.reply = ENDINGS["truncated"]()
    log = tmp_path / "chunks.jsonl"
    log.write_bytes(b'{"earlier": "run"}\n')  # appended to, never truncated
    r = run("--tee", str(log), "hi")
    jsonl = run("--jsonl", "hi")
    assert (r.code, r.out) == (7, b"partial") and jsonl.code == 7
    lines = log.read_bytes().splitlines(keepends=True)
    markers = [json.loads(line)["gpt_pipe"] for line in lines if b'"gpt_pipe": {' in line]
    assert lines[0] == b'{"earlier": "run"}\n' and [m["event"] for m in markers] == ["run"]
    assert b"".join(line for line in lines[1:] if b'"gpt_pipe": {' not in line) == jsonl.out
    assert json.loads(lines[-1])["error"]["exit"] == 7


def test_replay_from_stdin_and_bad_logs(run, server, tmp_path):
    log = run("--jsonl", "hi").out
    r = run("--replay", "-", stdin=log)
    assert (r.code, r.out) == (0, b"Hello\n")
    r = run("--replay", "-", stdin=b'{"choices": []}\nnot json\n')
    assert r.code == 65 and "line 2" in r.err
    assert run("--replay", str(tmp_path / "missing")).code == 65


def test_tee_file_that_cannot_be_opened_is_74(run, server, tmp_path):
    r = run("--tee", str(tmp_path / "no" / "such" / "dir" / "log"), "hi")
    assert (r.code, r.out) == (74, b"") and "--tee" in r.err and server.requests == []


# --dry-run ----------------------------------------------------------------------------------

def test_dry_run_prints_the_curl_command_and_sends_nothing(run, server):
    r = run("--dry-run", "-s", "Be brief", "--temperature", "0.2", "it's", drop_env=("GREENPT_API_KEY",))
    assert r.code == 0 and server.requests == [] and r.err == ""
    line = r.out.decode()
    assert line.startswith(f"curl -sN {server.url}/chat/completions -H \"Authorization: Bearer $GREENPT_API_KEY\"")
    body = json.loads(line.split(" -d ", 1)[1].strip()[1:-1].replace("'\"'\"'", "'"))
    assert body == {"model": "green-l", "messages": [{"role": "system", "content": "Be brief"},
                                                     {"role": "user", "content": "it's"}],
                    "stream": True, "temperature": 0.2}


def test_dry_run_command_sends_what_gpt_pipe_sends(run, server, env):
    import shutil
    import subprocess

    if not shutil.which("curl"):
        pytest.skip("curl is needed to run the printed command")
    command = run("--dry-run", "-o", "user=cron", "say hi").out.decode()
    run("-o", "user=cron", "say hi")
    subprocess.run(["sh", "-c", command], env=env, capture_output=True, timeout=60, check=True)
    assert server.requests[1].json == server.requests[0].json
    assert server.requests[1].headers["authorization"] == server.requests[0].headers["authorization"]


# --conversation -------------------------------------------------------------------------------

def echo(request):
    prompt = request.json["messages"][-1]["content"]
    return Reply(sse_chunks([f"answer to {prompt}"]))


def test_conversation_sends_history_and_appends_the_exchange(run, server, tmp_path):
    server.reply = echo
    conv = tmp_path / "conv.jsonl"  # missing: a new conversation
    assert run("--conversation", str(conv), "one").code == 0
    assert run("--conversation", str(conv), "-s", "Be brief", "two").out == b"answer to two\n"
    assert server.requests[1].json["messages"] == [
        {"role": "system", "content": "Be brief"}, {"role": "user", "content": "one"},
        {"role": "assistant", "content": "answer to one"}, {"role": "user", "content": "two"}]
    assert [json.loads(line) for line in conv.read_text().splitlines()] == [  # -s stays with it
        {"role": "user", "content": "one"}, {"role": "assistant", "content": "answer to one"},
        {"role": "system", "content": "Be brief"},
        {"role": "user", "content": "two"}, {"role": "assistant", "content": "answer to two"}]
    assert oct(conv.stat().st_mode & 0o777) == "0o600"


@pytest.mark.parametrize("reply", [Reply(sse_chunks(["half"], finish=None, done=False)),
                                   Reply([b'{"error": "no"}'], status=400, framing="length")])
def test_a_failed_run_appends_nothing(run, server, tmp_path, reply):
    conv = tmp_path / "conv.jsonl"
    conv.write_text('{"role": "user", "content": "old"}\n')
    server.reply = reply
    assert run("--conversation", str(conv), "new").code in (7, 65)
    assert conv.read_text() == '{"role": "user", "content": "old"}\n'


def test_a_truncated_answer_still_completes_the_exchange(run, server, tmp_path):
    conv = tmp_path / "conv.jsonl"
    server.reply = Reply(sse_chunks(["cut"], finish="length"))
    assert run("--conversation", str(conv), "q").code == 3
    assert len(conv.read_text().splitlines()) == 2


def test_malformed_conversation_file_is_65(run, server, tmp_path):
    conv = tmp_path / "conv.jsonl"
    conv.write_text('{"role": "user", "content": "ok"}\n{broken\n')
    r = run("--conversation", str(conv), "q")
    assert r.code == 65 and "line 2" in r.err and server.requests == []


def test_concurrent_appends_never_interleave(server, env, tmp_path):
    import subprocess
    import threading

    from conftest import GPT_PIPE

    n = 6
    barrier = threading.Barrier(n, timeout=30)

    def together(request):
        prompt = request.json["messages"][-1]["content"]
        barrier.wait()  # every process gets its answer at the same moment, then appends
        return Reply(sse_chunks([f"answer to {prompt} " + "x" * 5000]))

    server.reply = together
    conv = tmp_path / "conv.jsonl"
    procs = [subprocess.Popen([*GPT_PIPE, "--conversation", str(conv), "--no-stdin", f"q{i}"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for i in range(n)]
    assert [p.wait(60) for p in procs] == [0] * n
    lines = [json.loads(line) for line in conv.read_text().splitlines()]
    assert len(lines) == 2 * n
    for user, assistant in zip(lines[::2], lines[1::2], strict=True):
        assert user["role"] == "user" and assistant["role"] == "assistant"
        assert assistant["content"] == f"answer to {user['content']} " + "x" * 5000
    assert sorted(m["content"] for m in lines[::2]) == [f"q{i}" for i in range(n)]


# Shell completion ---------------------------------------------------------------------------

@pytest.mark.parametrize("shell,marker", [("bash", "complete -o nosort -F _gpt_pipe_completion gpt-pipe"),
                                          ("zsh", "#compdef gpt-pipe"), ("fish", "complete --no-files")])
def test_completion_scripts(run, shell, marker):
    r = run(extra_env={"_GPT_PIPE_COMPLETE": f"{shell}_source"})
    assert r.code == 0 and marker in r.out.decode()


def test_model_completes_from_the_list_models_cache(run, server, home):
    import json as json_

    def complete(words: str) -> list[str]:
        r = run(extra_env={"_GPT_PIPE_COMPLETE": "bash_complete", "COMP_WORDS": words,
                           "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1))})
        assert r.code == 0
        return r.out.decode().split()

    assert complete("gpt-pipe --model gr") == []  # no cache yet
    server.reply = Reply([json_.dumps({"data": [{"id": "green-l"}, {"id": "green-r"}, {"id": "llama"}]}).encode()],
                         content_type="application/json", framing="length")
    assert run("--list-models").out == b"green-l\ngreen-r\nllama\n"
    assert (home / ".cache" / "gpt-pipe" / "models").read_text() == "green-l\ngreen-r\nllama\n"
    assert complete("gpt-pipe --model gr") == ["plain,green-l", "plain,green-r"]
    assert "plain,--jsonl" in complete("gpt-pipe --js")


@pytest.mark.parametrize("mode", [(), ("--full",), ("--jsonl",), ("--json",), ("--tee", "LOG")])
def test_conversation_composes_with_every_output_mode(run, server, tmp_path, mode):
    server.reply = greenpt()
    conv = tmp_path / "conv.jsonl"
    mode = tuple(str(tmp_path / "log") if m == "LOG" else m for m in mode)
    r = run(*mode, "--conversation", str(conv), "q")
    assert r.code == 0 and r.out
    assert [json.loads(line) for line in conv.read_text().splitlines()] == [
        {"role": "user", "content": "q"}, {"role": "assistant", "content": "Hello! How"}]


def test_usage_of_a_replay_has_tokens_and_energy_but_no_times(run, server):
    server.reply = greenpt()
    log = run("--jsonl", "hi").out
    r = run("--replay", "-", "--usage", stdin=log)
    assert r.out == b"Hello! How\n"
    assert r.err == ("gpt-pipe: usage: 5 prompt + 14 completion = 19 tokens, energy 0.0119 Wh (42.8 J), "
                     "emissions 1e-06 g CO2e\n")


def test_dry_run_of_list_models(run, server):
    r = run("--dry-run", "--list-models")
    assert r.code == 0 and server.requests == []
    assert r.out.decode().startswith(f"curl -sN {server.url}/models -H \"Authorization: Bearer $GREENPT_API_KEY\"")
    assert " -d " not in r.out.decode()
