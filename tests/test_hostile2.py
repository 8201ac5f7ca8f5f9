"""Hostile conditions, round two: the paths added after the first round (tool calls,
redirects, batch results, the model list, the early connection) are as bounded and as
secret as the core. Memory cases run under an address-space limit and report the child's
own peak RSS."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess

import pytest
from conftest import KEY
from server import Raw, Reply, Server, chunk, event, sse_chunks
from test_hostile import RSS_BOUND_MIB, MiB, endless, measured

EARLY = "the request went out on the connection set up during start-up"


# Unbounded memory or time ---------------------------------------------------------------------

def test_a_redirect_body_is_never_read(server, env):
    """A 302 whose body is a gzip bomb (and endless): followed without reading it."""
    bomb = gzip.compress(b"\0" * (64 * MiB))

    def answer(request):
        if request.path == "/v1/chat/completions":
            return Reply([bomb, *endless(b"\0" * 65536, 1 << 40)], status=302, content_type="text/plain",
                         headers={"Location": "/v2/chat/completions", "Content-Encoding": "gzip"})
        return Reply(sse_chunks(["moved"]))

    server.reply = answer
    r, rss = measured(["hi"], env)
    assert (r.code, r.out) == (0, b"moved\n") and rss < RSS_BOUND_MIB, (r, rss)


def test_tool_call_arguments_count_toward_max_answer(server, env):
    piece = "x" * 65536
    calls = ({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}}]}
             for _ in range(64))  # 4 MiB of arguments
    server.reply = Reply([event(chunk(role="assistant")), *(event(c) for c in calls), *sse_chunks([], "tool_calls")])
    r, rss = measured(["--max-answer", "1M", "--json", "hi"], env)
    assert r.code == 76 and "tool calls are longer than 1 MiB" in r.err and "--max-answer" in r.err, r
    assert rss < RSS_BOUND_MIB


def test_a_million_tool_call_indexes_are_bounded(server, env):
    def deltas():
        yield event(chunk(role="assistant"))
        for start in range(0, 1_000_000, 1000):
            calls = [{"index": i, "function": {"name": "f"}} for i in range(start, start + 1000)]
            yield event({"choices": [{"index": 0, "delta": {"tool_calls": calls}}]})
        yield from sse_chunks([], "tool_calls")

    server.reply = Reply(deltas())
    r, rss = measured(["--max-answer", "1M", "hi"], env)
    assert r.code == 76 and "tool calls" in r.err and rss < RSS_BOUND_MIB, (r, rss)


def test_many_tool_names_make_one_short_line(run, server):
    calls = [{"index": i, "id": f"c{i}", "function": {"name": "n" * 100 + str(i), "arguments": "{}"}}
             for i in range(1000)]
    server.reply = Reply([event({"choices": [{"index": 0, "delta": {"tool_calls": calls}}]}),
                          *sse_chunks([], "tool_calls")])
    r = run("hi")
    assert r.code == 5 and "1000 tool calls" in r.err and "and 995 more" in r.err and len(r.err) < 600, r


def test_scrubbing_a_long_answer_with_an_at_sign_is_linear(run, server):
    """The URL-password pattern backtracked on a long run of letters before an "@": a 150 KB
    answer took 23 s; this one (2 MB) would take hours. It must finish at once."""
    text = "a" * (2 * MiB) + "@"
    server.reply = Reply([event(chunk(text[i:i + 65536], role="assistant")) for i in range(0, len(text), 65536)]
                         + sse_chunks([]))
    r = run("--json", "hi")
    assert r.code == 0 and json.loads(r.out)["choices"][0]["message"]["content"] == text


def test_the_url_password_pattern_is_the_same_rule():
    from gpt_pipe.keys import redact_url

    assert redact_url("see https://user:pass@host/x and 1http://u:pw@h") == \
        "see https://user:***@host/x and 1http://u:***@h"
    assert redact_url("mailto:x@y and http://host/a@b") == "mailto:x@y and http://host/a@b"
    assert redact_url("x" * 10000 + "@") == "x" * 10000 + "@"


# The key shown --------------------------------------------------------------------------------

def test_batch_results_scrub_every_field(run, server):
    usage = {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2, "note": KEY}
    server.reply = Reply([
        event(chunk("ok", role="assistant")),
        event({"choices": [{"index": 0, "delta": {"tool_calls": [
            {"index": 0, "id": KEY, "function": {"name": "f", "arguments": json.dumps({"k": KEY})}}]}}]}),
        event({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "usage": usage,
               "impact": {"note": KEY.replace("/", "\\/")}}),
        b"data: [DONE]\n\n"])
    r = run("--batch", stdin=b'{"prompt": "hi"}\n')
    result = json.loads(r.out)
    assert r.code == 0 and KEY not in json.dumps(result), r
    assert "sk-\u2026WXYZ" in result["usage"]["note"] and "sk-\u2026WXYZ" in result["tool_calls"][0]["id"]


def test_batch_ids_json_cannot_carry_still_give_json_lines(run, server):
    r = run("--batch", stdin=b'{"id": NaN, "prompt": "a"}\n{"id": Infinity, "prompt": "b"}\n')
    lines = r.out.splitlines()
    assert len(lines) == 2 and all(json.loads(line, parse_constant=lambda c: pytest.fail(c)) for line in lines)


def test_list_models_never_prints_or_caches_the_key(run, server, home):
    server.reply = Reply([json.dumps({"data": [{"id": "green-l"}, {"id": KEY}]}).encode()],
                         content_type="application/json", framing="length")
    r = run("--list-models", extra_env={"XDG_CACHE_HOME": str(home / "cache")})
    assert r.code == 0 and r.out.decode().splitlines() == ["green-l", "sk-\u2026WXYZ"]
    assert KEY not in (home / "cache" / "gpt-pipe" / "models").read_text()


# A host the user did not choose ---------------------------------------------------------------

@pytest.mark.parametrize("variable", ["Http_Proxy", "ALL_proxy", "http_proxy", "all_proxy"])
def test_any_proxy_variable_keeps_the_early_connection_away(run, server, variable):
    with Server(Reply(sse_chunks(["proxied"]))) as proxy:
        r = run("--debug", "--base-url", "http://api.example.invalid/v1", "hi",
                extra_env={variable: f"http://127.0.0.1:{proxy.port}", "NO_PROXY": ""})
        assert EARLY not in r.err and server.connections == 0
        assert r.code == 0 and r.out == b"proxied\n", r


def test_a_port_in_full_width_digits_opens_no_connection(run, server):
    url = server.url.replace(str(server.port), str(server.port).translate(str.maketrans("0123456789",
                                                                                         "０１２３４５６７８９")))
    r = run("--debug", "--base-url", url, "hi")
    assert EARLY not in r.err and server.connections == 0 and r.code != 0


@pytest.fixture(scope="module")
def cn_only(tmp_path_factory):
    """A private CA and a certificate for 127.0.0.1 in its CN only (no subjectAltName)."""
    if not shutil.which("openssl"):
        pytest.skip("the openssl command is needed to make test certificates")
    d = tmp_path_factory.mktemp("cn-only")

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=d)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=gpt-pipe test ca",
            "-keyout", "ca.key", "-out", "ca.pem")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "leaf.key", "-out",
            "leaf.csr")
    openssl("x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-set_serial", "9", "-days", "2",
            "-out", "leaf.pem")
    return d


@pytest.mark.parametrize("early", [True, False])
def test_a_certificate_named_only_in_its_cn_is_refused_on_both_paths(run, cn_only, early):
    with Server(Reply(sse_chunks(["secret"])), tls=(str(cn_only / "leaf.pem"), str(cn_only / "leaf.key"))) as tls:
        r = run("--debug", "--base-url", f"https://127.0.0.1:{tls.port}/v1", "--ca-bundle", str(cn_only / "ca.pem"),
                "hi", extra_env={} if early else {"GPT_PIPE_EARLY": "0"})
        assert r.code == 69 and "TLS failure" in r.err and EARLY not in r.err, r
        assert tls.requests == []


# Wrong codes ----------------------------------------------------------------------------------

def test_a_ca_bundle_variable_naming_no_file_is_a_configuration_error(run, server):
    r = run("--base-url", "https://127.0.0.1:9/v1", "hi", extra_env={"REQUESTS_CA_BUNDLE": "/nonexistent/ca.pem"})
    assert r.code == 78 and "REQUESTS_CA_BUNDLE /nonexistent/ca.pem" in r.err


def test_a_config_file_that_is_a_fifo_does_not_hang(run, server, home):
    import os

    path = home / ".config" / "gpt-pipe"
    path.mkdir(parents=True)
    os.mkfifo(path / "config.toml")
    for args in (["--version"], ["hi"]):
        r = run(*args)
        assert r.code == 78 and "not a regular file" in r.err, r



def test_batch_lines_whose_status_line_drips_do_not_use_up_threads(run, server):
    """Each stuck head used to leave a thread behind: after ~126 lines, exit 70 for the rest."""
    from server import Pause, Raw

    def answer(request):
        def drip():
            for _ in range(200):  # at most 10 s; gpt-pipe gives up after --progress-timeout
                yield Raw(b"H")
                yield Pause(0.05)
        return Reply(drip(), head=False)

    server.reply = answer
    lines = b"".join(b'{"id": %d, "prompt": "x"}\n' % i for i in range(160))
    r = run("--batch", "-P", "16", "--progress-timeout", "0.2", stdin=lines)
    codes = [json.loads(line)["exit"] for line in r.out.splitlines()]
    assert len(codes) == 160 and set(codes) == {75}, r.err[-500:]


def test_a_remote_ref_in_the_schema_is_never_fetched(run, server):
    schema = {"type": "object", "properties": {"a": {"$ref": f"{server.url}/schemas/a.json"}}}
    server.reply = Reply(sse_chunks(['{"a": 1}']))
    r = run("--full", "--schema", json.dumps(schema), "hi")
    assert r.code == 65 and "only references within the schema" in r.err, r
    assert [request.path for request in server.requests] == ["/v1/chat/completions"]


def test_a_pattern_that_backtracks_is_bounded_by_max_time(run, server):
    schema = {"type": "object", "properties": {"a": {"type": "string", "pattern": "^(a+)+$"}}}
    server.reply = Reply(sse_chunks([json.dumps({"a": "a" * 40 + "!"})]))
    r = run("--full", "--max-time", "3", "--schema", json.dumps(schema), "hi")
    assert r.code == 8 and "could not be checked" in r.err and r.out == b"", r


def test_a_pattern_that_backtracks_in_a_batch_is_bounded_too(run, server, tmp_path):
    """A --batch worker's check ran in a thread the worker waited for, but the pattern holds
    the GIL: the wait could not end until the match did (2**60 steps). Checks run in the
    main thread, where the timer signal ends them."""
    schema = {"type": "object", "properties": {"a": {"type": "string", "pattern": "^(a+)+$"}}}
    server.reply = Reply(sse_chunks([json.dumps({"a": "a" * 60 + "!"})]))
    batch = tmp_path / "lines.jsonl"
    batch.write_text("".join(json.dumps({"id": n, "prompt": "hi"}) + "\n" for n in range(2)))
    r = run("--batch", str(batch), "-P", "2", "--max-time", "3", "--schema", json.dumps(schema))
    results = [json.loads(line) for line in r.out.splitlines()]
    assert r.code == 8 and sorted(result["id"] for result in results) == [0, 1], r
    assert all(result["exit"] == 8 and "could not be checked" in result["error"] for result in results), results


def test_a_config_key_of_many_dotted_parts_is_refused_at_once(server, env, home):
    path = home / ".config" / "gpt-pipe"
    path.mkdir(parents=True)
    (path / "config.toml").write_text("a" + ".a" * 30000 + " = 1\n")
    r, rss = measured(["--version"], env)
    assert r.code == 78 and "dotted parts" in r.err and rss < RSS_BOUND_MIB, (r, rss)


def test_no_stdin_in_the_config_keeps_the_early_look_at_stdin_away(run, server, home):
    path = home / ".config" / "gpt-pipe"
    path.mkdir(parents=True)
    (path / "config.toml").write_text("no_stdin = true\n")
    r = run("--debug", "hi", stdin=b"the loop's next line\n")
    assert r.code == 0 and EARLY in r.err
    assert server.requests[0].json["messages"][-1]["content"] == "hi"


@pytest.mark.parametrize("value", ["1e300", "Infinity", "99999999999999999999999"])
def test_a_retry_after_beyond_any_wait_ends_the_run_with_75(run, server, value):
    server.reply = Reply([b'{"error": {"message": "slow down"}}'], status=429, content_type="application/json",
                         framing="length", headers={"Retry-After": value})
    r = run("--retries", "2", "--max-retry-wait", "86400", "hi")
    assert r.code == 75 and "internal error" not in r.err, r


def test_huge_numbers_in_usage_and_impact_are_not_internal_errors(run, server):
    huge = "9" * 5000  # an integer of 5000 digits, written into the JSON text as it is
    body = ('{"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], '
            f'"usage": {{"prompt_tokens": {huge}, "completion_tokens": {huge}, "total_tokens": {huge}}}, '
            f'"impact": {{"energy": {{"total": {huge}, "unit": "Wms"}}, "emissions": {{"total": {huge}, '
            '"unit": "ugCO2e"}}}')
    server.reply = Reply([event(chunk("ok", role="assistant")), b"data: " + body.encode() + b"\n\n",
                          b"data: [DONE]\n\n"])
    r = run("--usage", "hi")
    assert r.code == 0 and r.out == b"ok\n" and "tokens not reported" in r.err, r
    r = run("--batch", stdin=b'{"prompt": "a"}\n{"prompt": "b"}\n')
    assert r.code == 0 and len(r.out.splitlines()) == 2, r


# Files in shared places -----------------------------------------------------------------------

def state(home):
    path = home / ".local" / "state" / "gpt-pipe"
    path.mkdir(parents=True, mode=0o700, exist_ok=True)
    return path


def test_a_planted_conversation_symlink_is_refused(run, server, home, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text('{"role": "user", "content": "the victim\'s own file"}\n')
    (state(home) / "conversation.jsonl").symlink_to(victim)
    r = run("--continue", "hi")
    assert r.code == 78 and "symbolic link" in r.err and server.requests == []
    assert victim.read_text() == '{"role": "user", "content": "the victim\'s own file"}\n'


def test_a_state_directory_others_can_write_is_refused(run, server, home):
    import os

    os.chmod(state(home), 0o777)
    r = run("--continue", "hi")
    assert r.code == 78 and "others can write it" in r.err and server.requests == []
    assert f"then: chmod go-w {state(home)}" in r.err  # how to mend it, once checked


def test_a_state_path_that_is_a_file_is_a_clear_error(run, server, home):
    (home / ".local" / "state").mkdir(parents=True)
    (home / ".local" / "state" / "gpt-pipe").write_text("not a directory")
    r = run("--continue", "hi")
    assert r.code == 78 and "state directory" in r.err and server.requests == []


def test_new_with_a_prev_that_is_a_directory_is_refused_before_sending(run, server, tmp_path):
    chat = tmp_path / "chat.jsonl"
    chat.write_text('{"role": "user", "content": "before"}\n')
    (tmp_path / "chat.jsonl.prev").mkdir()
    r = run("--conversation", str(chat), "--new", "hi")
    assert r.code == 74 and "chat.jsonl.prev" in r.err and server.requests == []


def test_new_keeps_the_previous_conversation_under_a_random_temporary_name(run, server, tmp_path):
    chat = tmp_path / "chat.jsonl"
    chat.write_text('{"role": "user", "content": "before"}\n')
    victim = tmp_path / "victim.txt"
    victim.write_text("untouched")
    import os

    for pid in range(os.getpid(), os.getpid() + 2000):  # the names the old code would have used
        (tmp_path / f"chat.jsonl.prev.{pid}.tmp").symlink_to(victim)
    r = run("--conversation", str(chat), "--new", "hi")
    assert r.code == 0 and victim.read_text() == "untouched"
    assert (tmp_path / "chat.jsonl.prev").read_text() == '{"role": "user", "content": "before"}\n'


def test_a_conversation_on_dev_null_is_not_an_error(run, server):
    r = run("--conversation", "/dev/null", "hi")
    assert (r.code, r.out) == (0, b"Hello\n"), r


def test_a_planted_models_tmp_symlink_is_never_written_through(run, server, home, tmp_path):
    cache = home / "cache" / "gpt-pipe"
    cache.mkdir(parents=True, mode=0o700)
    victim = tmp_path / "victim.txt"
    victim.write_text("untouched")
    (cache / "models.tmp").symlink_to(victim)
    server.reply = Reply([json.dumps({"data": [{"id": "green-l"}]}).encode()], content_type="application/json",
                         framing="length")
    r = run("--list-models", extra_env={"XDG_CACHE_HOME": str(home / "cache")})
    assert r.code == 0 and victim.read_text() == "untouched" and (cache / "models").read_text() == "green-l\n"


@pytest.mark.parametrize("forged", [
    {"gpt_pipe": {"event": "end", "run": "x", "exit": 0}},
    {"gpt_pipe": {"event": "attempt", "run": "x", "attempt": 2}},
    {"gpt\\u005fpipe": {"event": "run", "run": "y"}},
])
def test_a_server_cannot_write_markers_into_a_tee_log(run, server, tmp_path, forged):
    line = json.dumps(forged).replace("\\\\u005f", "\\u005f").encode()
    server.reply = Reply([event(chunk("real ", role="assistant")), b"data: " + line + b"\n\n", event(chunk("answer")),
                          *sse_chunks([])])
    log = tmp_path / "log.jsonl"
    live = run("--tee", str(log), "hi")
    replayed = run("--replay", str(log))
    assert live.out == replayed.out == b"real answer\n" and replayed.code == live.code == 0, (live, replayed)


@pytest.mark.parametrize("url, hint", [("localhost:9/v1", "did you mean http://localhost:9/v1?"),
                                       ("ftp://127.0.0.1:9/v1", "did you mean http://127.0.0.1:9/v1?"),
                                       ("", "it is empty")])
def test_a_base_url_without_http_is_a_configuration_error_with_a_hint(run, server, url, hint):
    r = run("--base-url", url, "hi")
    assert r.code == 78 and hint in r.err and "internal error" not in r.err, r


def test_a_replay_of_half_a_million_chunks_stays_small(env, tmp_path):
    line = b'{"choices":[{"index":0,"delta":{"content":"x"}}]}\n'
    log = tmp_path / "big.jsonl"
    log.write_bytes(line * 550_000 + b'{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n')
    r, rss = measured(["--replay", str(log), "-n"], env)
    assert r.code == 0 and r.out == b"x" * 550_000 and rss < RSS_BOUND_MIB, (r.err, rss)


def _interim(*statuses: int) -> bytes:
    return b"".join(b"HTTP/1.1 %d Interim\r\nLink: </style.css>; rel=preload\r\n\r\n" % status
                    for status in statuses)


@pytest.mark.parametrize("early", [True, False])
def test_interim_responses_before_the_answer_are_skipped(run, server, early):
    """103 Early Hints and 102 Processing come before the final response: skipped, as curl does."""
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"
    server.reply = Reply([Raw(_interim(103, 102, 103) + head), *sse_chunks(["after ", "hints"])],
                         framing="close", head=False)
    r = run("--debug", "hi", extra_env={} if early else {"GPT_PIPE_EARLY": "0"})
    assert (r.code, r.out) == (0, b"after hints\n"), r
    assert (EARLY in r.err) is early, r.err


def test_endless_interim_responses_are_not_an_answer(run, server):
    server.reply = Reply([Raw(_interim(*[103] * 1000))], framing="close", head=False)
    r = run("hi")
    assert r.code == 76 and "103" in r.err and len(r.err.splitlines()) == 1, r


def test_long_batch_lines_stay_within_a_few_times_one_line(server, env, tmp_path):
    """4 lines of 24 MiB at -P 4 peaked at 632 MiB: every line read ahead, each request body
    kept alive by its cancelled timer (for the 300 s progress bound) and by its worker's
    sender thread, and glibc's arenas keeping the freed copies. Now a long line runs alone."""
    size = 24 * MiB
    batch = tmp_path / "big.jsonl"
    with batch.open("wb") as f:
        for number in range(4):
            f.write(b'{"id": %d, "prompt": "%s"}\n' % (number, b"x" * size))
    server.reply = Reply(sse_chunks(["ok"]))
    try:
        r, rss = measured(["--batch", str(batch), "-P", "4"], env)
        assert r.code == 0 and len(r.out.splitlines()) == 4, r
        assert [len(request.body) > size for request in server.requests] == [True] * 4
    finally:
        server.requests.clear()
    assert rss < 160, rss  # about 4 copies of one line and the interpreter's 30 MiB


def test_cancelled_timers_do_not_pile_up():
    from gpt_pipe.body import _Timers

    timers = _Timers()
    entries = [timers.add(10**9, lambda: None) for _ in range(10_000)]
    for entry in entries:
        timers.cancel(entry)
    assert len(timers._due) <= 64 + 1


def test_a_conversation_of_a_million_messages_is_refused_in_bounded_memory(server, env, tmp_path):
    """1.1 million small messages (31 MiB, under the 32 MiB cap) took 555 MiB as dicts."""
    conversation = tmp_path / "c.jsonl"
    conversation.write_bytes(b'{"role":"user","content":"x"}\n' * 1_100_000)
    r, rss = measured(["--conversation", str(conversation), "hi"], env)
    assert r.code == 65 and "more than 500,000 JSON values" in r.err and "--new" in r.err, r
    assert server.requests == [] and rss < RSS_BOUND_MIB, rss


def test_a_messages_file_of_a_million_messages_is_refused_in_bounded_memory(server, env, tmp_path):
    messages = tmp_path / "m.json"
    messages.write_bytes(b"[" + b",".join([b'{"role":"user","content":"x"}'] * 1_100_000) + b"]")
    r, rss = measured(["--messages", str(messages), "hi"], env)
    assert r.code == 65 and "more than 500,000 JSON values" in r.err, r
    assert server.requests == [] and rss < RSS_BOUND_MIB, rss


def test_a_schema_answer_of_millions_of_values_is_not_parsed(server, env):
    """An array of 7 M strings reached 15-20x the answer cap once parsed for the check."""
    answer = "[" + ",".join(['"ab"'] * 2_000_000) + "]"
    pieces = [answer[i:i + MiB] for i in range(0, len(answer), MiB)]
    server.reply = Reply([event(chunk(piece, role="assistant")) for piece in pieces] + sse_chunks([]))
    r, rss = measured(["--full", "--schema", '{"type": "array", "items": {"type": "string"}}', "hi"], env)
    assert r.code == 8 and "could not be checked" in r.err and "500,000 JSON values" in r.err, r
    assert r.out == b"" and rss < RSS_BOUND_MIB, rss  # --full shows only an answer that passed


def test_values_inside_strings_do_not_count():
    from gpt_pipe.safejson import MAX_VALUES, check_values, loads

    prose = '["' + "a, b: [c] {d}, " * MAX_VALUES + '"]'
    check_values(prose)
    assert len(loads(prose)) == 1
    escaped = '["' + '\\", ' * MAX_VALUES + '"]'
    assert loads(escaped) == ['", ' * MAX_VALUES]
    with pytest.raises(ValueError, match="more than 500,000 JSON values"):
        check_values("[" + "1," * MAX_VALUES + "1]")
    unterminated = '"' + "," * (2 * MAX_VALUES)  # a string to the end: no values
    check_values(unterminated)


@pytest.mark.parametrize("inside", [1, 7, 20, len(KEY) - 1])
def test_an_excerpt_never_cuts_a_key_in_two(run, server, inside):
    """Excerpts were cut (60 or 200 characters) before the scrub, which knows whole keys only:
    a key across the cut showed all but its last characters. Now a cut never ends in a word."""
    shapes = [  # (reply, where the excerpt is cut)
        (lambda pad: Reply([json.dumps({"error": {"message": pad + KEY}}).encode()], status=400,
                           content_type="application/json", framing="length"), 200),
        (lambda pad: Reply([(pad + KEY + "\n").encode()], status=400, content_type="text/plain",
                           framing="length"), 200),
        (lambda pad: Reply([(pad + KEY + "\n").encode()], content_type="text/plain", framing="length"), 60),
        (lambda pad: Reply([b"data: " + (pad + KEY).encode() + b"\n\n"]), 60),
    ]
    for reply, limit in shapes:
        server.reply = reply("x " * ((limit - inside) // 2) + "x" * ((limit - inside) % 2))
        for args in (["hi"], ["--jsonl", "hi"]):
            r = run(*args)
            assert r.code != 0 and KEY[:6] not in r.err and KEY[:6].encode() not in r.out, (limit, r)
