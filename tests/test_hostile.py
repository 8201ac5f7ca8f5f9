"""A hostile or broken server, filesystem and environment: memory and time stay bounded,
files stay whole, credentials go only where meant, and server text reaches a terminal
harmless. Each case sends exactly the bytes that broke an earlier version."""

from __future__ import annotations

import fcntl
import json
import os
import resource
import stat
import subprocess
import threading
from pathlib import Path

import pytest
from conftest import GPT_PIPE, KEY, PROCESS_TIMEOUT, Result, read_terminal
from server import Hang, Pause, Raw, Reply, Server, UntilGone, chunk, event, sse_chunks

MiB = 1024 * 1024
RSS_BOUND_MIB = 100  # the bound for every hostile case with the default caps
ADDRESS_SPACE = 2 << 30  # a run-away child fails inside this instead of taking the machine


def lines_of(text: str) -> list[str]:
    return [line for line in text.splitlines() if line]


# A child forked from pytest reports pytest's own peak as its ru_maxrss (it survives fork and
# exec), so the suite would measure itself once it has grown: gpt-pipe is started by this
# small process instead, which reports the grandchild's peak.
_MEASURE = """
import os, resource, sys
limit, report, command = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
pid = os.fork()
if pid == 0:
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    os.execvp(command[0], command)
_, status, usage = os.wait4(pid, 0)
with open(report, "w") as f:
    f.write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status) % 256)
"""


def measured(args: list[str], env: dict[str, str], stdin: bytes = b"") -> tuple[Result, float]:
    """Run gpt-pipe under an address-space limit; its result and its own peak RSS in MiB."""
    import sys
    import tempfile

    with tempfile.TemporaryFile() as inp, tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile("r") as report:
        inp.write(stdin)
        inp.seek(0)
        proc = subprocess.run([sys.executable, "-c", _MEASURE, str(ADDRESS_SPACE), report.name, *GPT_PIPE, *args],
                              stdin=inp, stdout=out, stderr=err, env=env, timeout=PROCESS_TIMEOUT)
        out.seek(0)
        err.seek(0)
        result = Result(proc.returncode, out.read(), err.read().decode("utf-8", "replace"))
        peak = int(report.read() or 0) / 1024
    return result, peak


def endless(piece: bytes, total: int):
    """``total`` bytes of ``piece`` repeated, produced lazily (the server stops when the client goes)."""
    sent = 0
    while sent < total:
        yield piece
        sent += len(piece)


# Memory and CPU stay bounded ------------------------------------------------------------

@pytest.mark.parametrize("framing", ["close", "chunked"])
def test_a_line_that_never_ends_is_76_in_bounded_memory(env, server, framing):
    server.reply = Reply([b"data: ", *endless(b"x" * 65536, 200 * MiB)], framing=framing)
    r, peak = measured(["hi"], env)
    assert r.code == 76 and r.out == b"" and "larger than 4 MiB" in r.err and "--max-event" in r.err
    assert len(lines_of(r.err)) == 1 and peak < RSS_BOUND_MIB, (r, peak)


def test_an_event_of_many_short_data_lines_is_capped_too(run, server):
    server.reply = Reply([*endless(b"data: x\n" * 8192, 8 * MiB)], framing="close")
    r = run("--max-event", "1M", "hi")
    assert r.code == 76 and "larger than 1 MiB" in r.err


def test_the_cap_can_be_raised(run, server):
    big = "y" * (5 * MiB)
    server.reply = Reply([event(chunk(big)), event(chunk(finish="stop"))], framing="close")
    assert run("--full", "hi").code == 76
    r = run("--full", "--max-event", "8M", "hi")
    assert (r.code, len(r.out)) == (0, len(big) + 1)


@pytest.mark.parametrize("what", ["answer", "models", "error"])
def test_huge_json_bodies_are_capped(env, server, what):
    body = endless(b"x" * 65536, 200 * MiB)
    start = b'{"choices":[{"message":{"content":"' if what != "models" else b'{"data":[{"id":"'
    server.reply = Reply([start, *body], content_type="application/json", framing="close",
                         status=500 if what == "error" else 200)
    r, peak = measured(["--list-models"] if what == "models" else ["hi"], env)
    assert r.code == (69 if what == "error" else 76) and r.out == b"" and peak < RSS_BOUND_MIB, (r, peak)
    assert len(lines_of(r.err)) == 1


@pytest.mark.parametrize("framing", ["close", "chunked"])
def test_a_gzip_bomb_is_decoded_only_as_far_as_the_caps(env, server, framing):
    # About 1 MB on the wire, 1 GiB decoded: sent although gpt-pipe asked for identity.
    server.reply = Reply([b"data: ", *endless(b"a" * MiB, 1024 * MiB)], gzip=True, framing=framing)
    r, peak = measured(["hi"], env)
    assert r.code == 76 and "larger than 4 MiB" in r.err and peak < RSS_BOUND_MIB, (r, peak)


def test_a_body_of_blank_lines_costs_linear_time(run, server):
    # 40 MiB of newlines took 95 s (quadratic sniffing); now a few hundred milliseconds.
    server.reply = Reply([*endless(b"\n" * MiB, 40 * MiB), *sse_chunks(["after the blanks"])],
                         content_type="text/plain", framing="close")
    r = run("hi")
    assert (r.code, r.out) == (0, b"after the blanks\n")


@pytest.mark.parametrize("mode", ["--full", "--json"])
def test_the_kept_answer_is_capped(env, server, mode):
    delta = "z" * 65536
    server.reply = Reply((event(chunk(delta)) for _ in range(800 * 16)), framing="close")  # 800 MiB
    r, peak = measured([mode, "hi"], env)
    assert r.code == 76 and r.out == b"" and "longer than 32 MiB" in r.err and "--max-answer" in r.err
    assert peak < RSS_BOUND_MIB, (r, peak)
    server.reply = Reply(sse_chunks([delta] * 40))  # 2.5 MiB: under a raised or default cap alike
    assert run_plain(env, [mode, "--max-answer", "4M", "hi"]).code == 0
    assert run_plain(env, [mode, "--max-answer", "1M", "hi"]).code == 76


def run_plain(env: dict[str, str], args: list[str], stdin: bytes = b"") -> Result:
    proc = subprocess.run(GPT_PIPE + args, input=stdin, capture_output=True, env=env, timeout=PROCESS_TIMEOUT)
    return Result(proc.returncode, proc.stdout, proc.stderr.decode("utf-8", "replace"))


@pytest.mark.parametrize("args, code", [
    (["--conversation", "/dev/zero", "hi"], 65),
    (["--api-key-file", "/dev/zero", "hi"], 78),
    (["--messages", "/dev/zero", "hi"], 65),
])
def test_files_that_never_end_are_read_with_a_cap(env, server, args, code):
    env = {k: v for k, v in env.items() if not (args[0] == "--api-key-file" and k == "GREENPT_API_KEY")}
    r, peak = measured(args, env)
    assert r.code == code and "larger than" in r.err and server.requests == [] and peak < RSS_BOUND_MIB, (r, peak)


def test_output_dev_full_with_resume_is_a_write_failure(run, server):
    r = run("--batch", "--output", "/dev/full", "--resume", stdin=b'{"id": 1, "prompt": "hi"}\n')
    assert r.code == 74 and "No space left" in r.err


@pytest.mark.parametrize("args, code", [
    (["--conversation", "{fifo}", "hi"], 65),
    (["--tee", "{fifo}", "hi"], 74),
    (["--api-key-file", "{fifo}", "hi"], 78),
    (["--messages", "{fifo}", "hi"], 65),
    (["--replay", "{fifo}"], 65),
    (["--batch", "{fifo}"], 65),
    (["--batch", "--output", "{fifo}"], 74),
])
def test_a_fifo_with_no_other_end_never_blocks(run, server, tmp_path, args, code):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    r = run("--file-wait", "0.3", *[a.replace("{fifo}", str(fifo)) for a in args], stdin=b'{"prompt": "x"}\n',
            drop_env=("GREENPT_API_KEY",) if "--api-key-file" in args else ())
    assert r.code == code and len(lines_of(r.err)) == 1 and str(fifo) in r.err, r


def test_process_substitutions_and_dev_stdout_keep_working(env, server, tmp_path):
    log = tmp_path / "log.jsonl"
    script = (f'"$0" --api-key-file <(printf %s {KEY}) --tee >(cat > {log}) hi && '
              f'GREENPT_API_KEY={KEY} "$0" --tee /dev/stdout --no-newline hi')
    proc = subprocess.run(["bash", "-c", script, *GPT_PIPE], capture_output=True, env=dict(env, GREENPT_API_KEY=""),
                          timeout=PROCESS_TIMEOUT)
    assert proc.returncode == 0 and proc.stdout.startswith(b"Hello\n") and proc.stderr == b""
    assert proc.stdout.count(b'"chat.completion.chunk"') == 2 and proc.stdout.count(b"Hello") == 3
    for _ in range(100):  # the substituted process may finish a moment after gpt-pipe
        if log.exists() and log.read_bytes().count(b"\n") == 4:
            break
        threading.Event().wait(0.05)
    assert log.read_bytes().count(b"\n") == 4  # two chunks, and the run's start and end markers


# Hostile JSON ---------------------------------------------------------------------------

DEEP = b"[" * 100_000


def test_deeply_nested_json_from_the_server_is_76_with_the_jsonl_error_line(run, server):
    server.reply = Reply([event(chunk("Hi")), b"data: " + DEEP + b"\n\n"])
    r = run("--jsonl", "hi")
    last = json.loads(r.out.splitlines()[-1])
    assert r.code == 76 and last["error"]["exit"] == 76 and "not valid JSON" in r.err


def test_deeply_nested_json_from_the_user_is_65(run, server, tmp_path):
    deep = tmp_path / "deep.json"
    deep.write_bytes(DEEP)
    assert run("--messages", str(deep), "hi").code == 65
    assert run("--replay", str(deep)).code == 65
    deep.write_bytes(DEEP + b"\n")  # a whole line (a torn last one is skipped instead)
    assert run("--conversation", str(deep), "hi").code == 65
    assert server.requests == []


def test_resume_sends_again_an_id_whose_result_line_is_nested_too_deep(run, server, tmp_path):
    out = tmp_path / "out.jsonl"
    out.write_bytes(b'{"id": 1, "exit": 0, "x": ' + DEEP + b"\n")
    r = run("--batch", "--output", str(out), "--resume", stdin=b'{"id": 1, "prompt": "hi"}\n')
    assert r.code == 0 and len(server.requests) == 1


def test_lone_surrogates_from_the_user_are_65(run, server, tmp_path):
    surrogate = '"\\ud800"'
    messages = tmp_path / "m.json"
    messages.write_text(f'[{{"role": "user", "content": {surrogate}}}]')
    conversation = tmp_path / "c.jsonl"
    conversation.write_text(f'{{"role": "user", "content": {surrogate}}}\n')
    for args in (["--messages", str(messages)], ["--conversation", str(conversation), "hi"],
                 ["-o", f"user={surrogate}", "hi"], ["--dry-run", "--messages", str(messages)]):
        r = run(*args)
        assert r.code == 65 and "lone surrogate" in r.err and len(lines_of(r.err)) == 1, (args, r)
    r = run("--batch", stdin=f'{{"id": 1, "prompt": {surrogate}}}\n'.encode())
    assert r.code == 65 and json.loads(r.out)["exit"] == 65
    assert server.requests == []


def test_an_integer_of_more_than_4300_digits_keeps_the_text(run, server):
    big = b'data: {"id":"x","created":' + b"9" * 5000 + b',"choices":[{"index":0,"delta":{"content":"Big"}}]}\n\n'
    server.reply = Reply([big, event(chunk(finish="stop")), b"data: [DONE]\n\n"])
    r = run("hi")
    assert (r.code, r.out) == (0, b"Big\n")
    assert run("--json", "hi").code == 0


# Heartbeats -----------------------------------------------------------------------------

# A named event whose data is not JSON (or not an object) is a keep-alive; one whose data is
# a JSON object is a chunk, whatever its name (tests/test_conformance.py).
KEEPALIVES = [b"data:\n\n", b"data: \n\n", b"data\n\n", b": ping\n\n", b"event: ping\ndata: ping\n\n",
              b"event: ping\ndata: 1\n\n"]


@pytest.mark.parametrize("mode", [[], ["--full"], ["--jsonl"], ["--json"]])
def test_empty_events_and_other_event_types_are_keepalives(run, server, mode):
    body = [*KEEPALIVES, event(chunk("Hel", role="assistant")), *KEEPALIVES, event(chunk("lo")),
            event(chunk(finish="stop")), *KEEPALIVES, b"data: [DONE]\n\n"]
    server.reply = Reply(body)
    r = run(*mode, "hi")
    assert r.code == 0 and r.err == "", r
    if mode == ["--jsonl"]:
        assert len(r.out.splitlines()) == 3  # the three chunks, no keep-alive
        assert run("--replay", "-", stdin=r.out).out == b"Hello\n"
    elif mode == ["--json"]:
        assert json.loads(r.out)["choices"][0]["message"]["content"] == "Hello"
    else:
        assert r.out == b"Hello\n"


# Nothing hangs forever ------------------------------------------------------------------

def test_endless_pings_before_any_answer_end_with_75(run, server):
    server.reply = Reply([UntilGone()])
    r = run("--progress-timeout", "0.5", "hi")
    assert (r.code, r.out) == (75, b"") and len(lines_of(r.err)) == 1


def test_endless_empty_events_after_some_text_end_with_7_partial_kept(run, server):
    server.reply = Reply([event(chunk("partial")), *endless(b"data:\n\n", 64 * MiB)], framing="close")
    r = run("--progress-timeout", "0.5", "hi")
    assert (r.code, r.out) == (7, b"partial") and "--progress-timeout" in r.err


def test_a_status_line_dripped_byte_by_byte_is_bounded(run, server):
    def drip():
        for _ in range(400):
            yield Raw(b"H")
            yield Pause(0.05)

    server.reply = Reply(drip(), head=False)
    r = run("--progress-timeout", "0.5", "hi")
    assert (r.code, r.out) == (75, b"") and "no complete response head" in r.err


def test_trailers_dripped_byte_by_byte_are_bounded(run, server):
    def drip():
        yield from sse_chunks(["Hi"], finish=None, done=False)
        yield Raw(b"0\r\n")
        for _ in range(400):
            yield Raw(b"X")
            yield Pause(0.05)

    server.reply = Reply(drip())
    r = run("--progress-timeout", "0.5", "hi")
    assert (r.code, r.out) == (7, b"Hi")


def test_batch_max_time_bounds_each_line(run, server):
    def answer(request):
        if request.json["messages"][-1]["content"] == "stuck":
            return Reply([Hang()])
        return Reply(sse_chunks(["ok"]))

    server.reply = answer
    r = run("--batch", "--max-time", "0.5", "-P", "2", "--keep-order",
            stdin=b'{"id": 1, "prompt": "stuck"}\n{"id": 2, "prompt": "fine"}\n')
    got = [json.loads(line) for line in r.out.splitlines()]
    assert [g["exit"] for g in got] == [75, 0] and "--max-time" in got[0]["error"] and r.code == 75


def test_a_locked_conversation_is_waited_for_a_bounded_time_before_sending(run, server, tmp_path):
    chat = tmp_path / "chat.jsonl"
    chat.write_text('{"role": "user", "content": "earlier"}\n')
    with open(chat, "rb") as holder:
        fcntl.flock(holder.fileno(), fcntl.LOCK_EX)
        r = run("--file-wait", "0.3", "--conversation", str(chat), "hi")
    assert r.code == 75 and "locked" in r.err and server.requests == []


def test_a_lock_taken_while_the_answer_streams_saves_the_exchange_elsewhere(run, server, tmp_path):
    chat = tmp_path / "chat.jsonl"
    chat.write_text('{"role": "user", "content": "earlier"}\n')
    holder = open(chat, "rb")

    def answer(request):
        fcntl.flock(holder.fileno(), fcntl.LOCK_EX)  # another process takes the file mid-run
        return Reply(sse_chunks(["paid for"]))

    server.reply = answer
    try:
        r = run("--file-wait", "0.3", "--conversation", str(chat), "hi")
    finally:
        holder.close()
    assert (r.code, r.out) == (75, b"paid for\n") and "saved to" in r.err
    spare = Path(r.err.split("saved to ")[1].split(" ")[0])
    assert [json.loads(line)["content"] for line in spare.read_text().splitlines()] == ["hi", "paid for"]
    assert chat.read_text() == '{"role": "user", "content": "earlier"}\n'


def test_a_key_command_that_leaves_a_child_holding_stdout(run, server):
    r = run("--api-key-cmd", f"echo {KEY}; sleep 30 &", "hi", drop_env=("GREENPT_API_KEY",))
    assert (r.code, r.out) == (0, b"Hello\n") and r.seconds < 15


# Files are never corrupted --------------------------------------------------------------

def test_a_torn_conversation_tail_is_tolerated_and_cut_off(run, server, tmp_path):
    chat = tmp_path / "chat.jsonl"
    chat.write_bytes(b'{"role": "user", "content": "earlier"}\n{"role": "assistant", "cont')
    r = run("--conversation", str(chat), "hi")
    assert (r.code, r.out) == (0, b"Hello\n") and "torn" in r.err
    assert server.requests[0].json["messages"][0]["content"] == "earlier"
    got = [json.loads(line) for line in chat.read_text().splitlines()]
    assert [m["content"] for m in got] == ["earlier", "hi", "Hello"]
    assert run("--conversation", str(chat), "again").err == ""


def test_an_append_that_fails_half_way_leaves_the_file_untouched(env, server, tmp_path):
    chat = tmp_path / "chat.jsonl"
    before = b'{"role": "user", "content": "earlier"}\n'
    chat.write_bytes(before)
    server.reply = Reply(sse_chunks(["x" * 4000]))

    def small_files() -> None:  # the append hits the file size limit half way
        resource.setrlimit(resource.RLIMIT_FSIZE, (len(before) + 100, len(before) + 100))

    proc = subprocess.run(GPT_PIPE + ["--conversation", str(chat), "hi"], capture_output=True, env=env,
                          preexec_fn=small_files, timeout=PROCESS_TIMEOUT)
    assert proc.returncode == 74 and proc.stdout == b"x" * 4000 + b"\n"
    assert b"unchanged" in proc.stderr and chat.read_bytes() == before


def test_logs_and_results_are_private(run, server, tmp_path):
    tee, out = tmp_path / "tee.jsonl", tmp_path / "out.jsonl"
    assert run("--tee", str(tee), "hi").code == 0
    assert run("--batch", "--output", str(out), stdin=b'{"prompt": "hi"}\n').code == 0
    for path in (tee, out):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


# Credentials go where the user meant ----------------------------------------------------

def test_netrc_is_never_used(run, server, home):
    (home / ".netrc").write_text("machine 127.0.0.1 login alice password netrc-secret-password\n")
    os.chmod(home / ".netrc", 0o600)
    r = run("--debug", "hi")
    assert r.code == 0 and server.requests[0].headers["authorization"] == f"Bearer {KEY}"
    assert "Basic" not in r.err


def test_netrc_is_not_used_after_a_redirect_to_another_host_either(run, server, home):
    with Server(Reply(sse_chunks(["moved"]))) as other:
        (home / ".netrc").write_text("machine localhost login alice password netrc-secret-password\n")
        os.chmod(home / ".netrc", 0o600)
        server.reply = Reply([b""], status=307, content_type=None, framing="length",
                             headers={"Location": f"http://localhost:{other.port}/v1/chat/completions"})
        r = run("hi")
        assert (r.code, r.out) == (0, b"moved\n") and "authorization" not in other.requests[0].headers


def test_a_base_url_password_is_never_shown(run, server, env):
    url = server.url.replace("http://", "http://alice:url-secret-password@")
    server.reply = Reply([b'{"error": {"message": "boom"}}'], status=500, content_type="application/json",
                         framing="length")
    outputs = [run("--base-url", url, *args, stdin=stdin) for args, stdin in (
        (["--debug", "hi"], b""), (["--dry-run", "hi"], b""), (["--jsonl", "hi"], b""),
        (["--batch"], b'{"prompt": "hi"}\n'))]
    for r in outputs:
        assert "url-secret-password" not in r.err and b"url-secret-password" not in r.out, r
    assert server.requests[0].headers["authorization"] == f"Bearer {KEY}"
    closed = Server()
    closed.close()
    r = run("--base-url", f"http://bob:url-secret-password@127.0.0.1:{closed.port}/v1", "hi")
    assert r.code == 69 and "url-secret-password" not in r.err


SLASH_KEY = "sk-test/0123456789abcdef+/WXYZ"


def test_a_key_echoed_json_escaped_or_split_is_scrubbed_everywhere(run, server, tmp_path):
    escaped = json.dumps(SLASH_KEY).strip('"').replace("/", "\\/").encode()
    line = b'{"choices":[{"index":0,"delta":{"content":"k=' + escaped + b'"},"finish_reason":null}]}'
    half = len(SLASH_KEY) // 2
    server.reply = Reply([b"data: " + line + b"\n\n", event(chunk(" split " + SLASH_KEY[:half])),
                          event(chunk(SLASH_KEY[half:] + " end")), event(chunk(finish="stop"))])
    key_env = {"GREENPT_API_KEY": SLASH_KEY}
    chat = tmp_path / "chat.jsonl"
    for args in (["hi"], ["--full", "hi"], ["--json", "hi"], ["--jsonl", "hi"], ["--conversation", str(chat), "hi"],
                 ["--tee", str(tmp_path / "tee.jsonl"), "hi"]):
        r = run(*args, extra_env=key_env)
        assert r.code == 0 and SLASH_KEY.encode() not in r.out and escaped not in r.out, (args, r)
        assert SLASH_KEY not in r.err
        if args == ["hi"]:
            assert r.out == b"k=sk-\xe2\x80\xa6WXYZ split sk-\xe2\x80\xa6WXYZ end\n"
    for path in (chat, tmp_path / "tee.jsonl"):
        data = path.read_bytes()
        assert SLASH_KEY.encode() not in data and escaped not in data
    r = run("--batch", stdin=b'{"prompt": "hi"}\n', extra_env=key_env)
    assert SLASH_KEY.encode() not in r.out and escaped not in r.out and json.loads(r.out)["exit"] == 0


def test_model_ids_that_are_not_plain_tokens_are_not_completed(run, server, home):
    body = json.dumps({"data": [{"id": "green-l"}, {"id": "xx;touch${IFS}pwned"}, {"id": "Qwen/Qwen2.5-7B"}]})
    server.reply = Reply([body.encode()], content_type="application/json", framing="length")
    assert run("--list-models").code == 0
    proc = subprocess.run(GPT_PIPE, capture_output=True, timeout=PROCESS_TIMEOUT,
                          env={"PATH": os.environ["PATH"], "HOME": str(home), "_GPT_PIPE_COMPLETE": "bash_complete",
                               "COMP_WORDS": "gpt-pipe --model ", "COMP_CWORD": "2"})
    assert b"green-l" in proc.stdout and b"Qwen/Qwen2.5-7B" in proc.stdout and b"touch" not in proc.stdout


# Terminal safety ------------------------------------------------------------------------

EVIL = "\x1b]52;c;ZXZpbA==\x07\x1b]8;;http://evil\x07link\x1b]8;;\x07\x1b[2J\u202eabc\x9b31m"


def run_on_terminal(env: dict[str, str], args: list[str]) -> tuple[int, bytes, bytes]:
    """gpt-pipe with stdout a pseudo-terminal; (exit code, what the terminal got, stderr)."""
    import pty

    master, slave = pty.openpty()
    proc = subprocess.Popen(GPT_PIPE + args, stdin=subprocess.DEVNULL, stdout=slave, stderr=subprocess.PIPE,
                            env=env)
    os.close(slave)
    seen = read_terminal(master)
    err = proc.stderr.read()
    proc.wait(PROCESS_TIMEOUT)
    return proc.returncode, seen, err


def test_control_characters_reach_a_terminal_escaped(env, server):
    server.reply = Reply(sse_chunks([EVIL]))
    code, seen, _ = run_on_terminal(env, ["hi"])
    assert code == 0 and b"\x1b" not in seen and b"\xe2\x80\xae" not in seen and b"\xc2\x9b" not in seen
    assert b"\\x1b]52;c;ZXZpbA==\\x07" in seen and b"\\u202e" in seen and b"\\x9b" in seen
    for mode in (["--jsonl"], ["--json"], ["--full"]):
        code, seen, _ = run_on_terminal(env, [*mode, "hi"])
        assert code == 0 and b"\xe2\x80\xae" not in seen and b"\xc2\x9b" not in seen and b"\x1b]" not in seen, mode
    code, seen, _ = run_on_terminal(env, ["--raw-control", "hi"])
    assert EVIL.encode() in seen


def test_control_characters_pass_unchanged_into_a_pipe_and_never_reach_stderr(run, server):
    server.reply = Reply(sse_chunks([EVIL]))
    assert run("hi").out == EVIL.encode() + b"\n"
    server.reply = Reply([json.dumps({"error": {"message": EVIL}}).encode()], status=400,
                         content_type="application/json", framing="length",
                         headers={"X-Evil": "a\x1b]0;title\x07b"})
    r = run("--debug", "hi")
    assert r.code == 65 and "\x1b" not in r.err and "\u202e" not in r.err and "\x9b" not in r.err
    assert "\\x1b]52" in r.err and "\\u202e" in r.err


def test_reasoning_on_stderr_is_escaped(run, server):
    thought = {"choices": [{"index": 0, "delta": {"reasoning_content": EVIL}, "finish_reason": None}]}
    server.reply = Reply([event(thought), *sse_chunks(["ok"])])
    r = run("--show-reasoning", "hi")
    assert r.code == 0 and "\x1b" not in r.err and "\\x1b]52" in r.err


# Retries and redirects tell the truth ---------------------------------------------------

@pytest.mark.parametrize("location", ["ftp://files.example.invalid/x", "file:///etc/passwd", "http://[::1"])
def test_a_redirect_to_an_unsupported_or_malformed_url_is_76(run, server, location):
    server.reply = Reply([b""], status=302, content_type=None, framing="length", headers={"Location": location})
    r = run("hi")
    assert r.code == 76 and "redirected to" in r.err and location[:10] in r.err and "base URL" not in r.err
    assert len(server.requests) == 1


@pytest.mark.parametrize("body", [b'{"detail":"Not Found"}', b"{}"])
def test_a_200_json_object_without_choices_is_76(run, server, body):
    server.reply = Reply([body], content_type="application/json", framing="length")
    r = run("hi")
    assert (r.code, r.out) == (76, b"") and "no choices" in r.err
