"""--batch: many prompts from JSON Lines, in parallel, ordered or not, resumable."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time

import pytest
from conftest import GPT_PIPE, read_terminal
from server import Gate, Hang, Reply, sse_chunks

BOUND = 30.0


def lines(*objs) -> bytes:
    return b"".join((o if isinstance(o, bytes) else json.dumps(o).encode()) + b"\n" for o in objs)


def results(out: bytes) -> list[dict]:
    return [json.loads(line) for line in out.splitlines()]


def echo(request):
    body = request.json
    return Reply(sse_chunks([f"{body['model']}:{body['messages'][-1]['content']}"]))


def test_mixed_good_and_bad_lines_and_ids(run, server):
    server.reply = echo
    r = run("--batch", "-P", "3", "--keep-order", stdin=lines(
        {"id": "a", "prompt": "one"}, b"not json", {"prompt": "no id"}, b"", {"id": 9, "messages": [
            {"role": "user", "content": "via messages"}]}, {"id": "empty"}, [1, 2], {"id": "bad", "messages": "x"}))
    got = results(r.out)
    assert [g["id"] for g in got] == ["a", 2, 3, 9, "empty", 7, "bad"]
    assert [g["exit"] for g in got] == [0, 65, 0, 0, 65, 65, 65]
    assert got[0] == {"id": "a", "content": "green-l:one", "finish_reason": "stop", "exit": 0, "usage": None,
                      "impact": None, "error": None}
    assert got[1]["error"] == "the line is not valid JSON (for plain text lines: --batch-text)"
    assert got[1]["content"] is None
    assert r.code == 65 and r.err.splitlines() == [r.err.strip()] and r.err.startswith("gpt-pipe: batch: 7 lines")


def test_per_line_overrides(run, server):
    server.reply = echo
    r = run("--batch", "-m", "base-model", "-s", "default system", "--temperature", "0.5", stdin=lines(
        {"id": 1, "prompt": "p1"},
        {"id": 2, "prompt": "p2", "model": "other", "system": "own system", "temperature": 0.1, "max_tokens": 7}))
    assert r.code == 0
    bodies = {req.json["messages"][-1]["content"]: req.json for req in server.requests}
    assert bodies["p1"]["model"] == "base-model" and bodies["p1"]["temperature"] == 0.5
    assert bodies["p1"]["messages"][0] == {"role": "system", "content": "default system"}
    assert (bodies["p2"]["model"], bodies["p2"]["temperature"], bodies["p2"]["max_tokens"]) == ("other", 0.1, 7)
    assert bodies["p2"]["messages"][0] == {"role": "system", "content": "own system"}
    assert all(b["stream"] is True for b in bodies.values())


def test_results_are_written_as_they_complete(server, env):
    slow = Gate()

    def reply(request):
        prompt = request.json["messages"][-1]["content"]
        return Reply(([slow] if prompt == "slow" else []) + sse_chunks([prompt]))

    server.reply = reply
    proc = subprocess.Popen([*GPT_PIPE, "--batch", "-P", "4"], env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    proc.stdin.write(lines(*({"id": i, "prompt": p} for i, p in enumerate(["slow", "b", "c", "d"]))))
    proc.stdin.close()
    proc.stdin = None
    first = [json.loads(proc.stdout.readline())["id"] for _ in range(3)]  # while "slow" is still held
    slow.open()
    assert sorted(first) == [1, 2, 3] and json.loads(proc.stdout.readline())["id"] == 0
    assert proc.wait(BOUND) == 0


def test_keep_order_writes_in_input_order(run, server):
    slow = Gate()
    sent = []

    def reply(request):
        prompt = request.json["messages"][-1]["content"]
        if prompt == "slow":  # the first line is answered last: once the three others are sent
            return Reply([slow] + sse_chunks([prompt]))
        return Reply(sse_chunks([prompt]), on_sent=lambda: (sent.append(1), len(sent) == 3 and slow.open()))

    server.reply = reply
    data = lines(*({"id": i, "prompt": p} for i, p in enumerate(["slow", "b", "c", "d"])))
    assert [g["id"] for g in results(run("--batch", "-P", "4", "--keep-order", stdin=data).out)] == [0, 1, 2, 3]


def test_exit_code_is_the_most_severe_outcome(run, server):
    def reply(request):
        prompt = request.json["messages"][-1]["content"]
        if prompt == "long":
            return Reply(sse_chunks(["cut"], finish="length"))
        if prompt == "reject":
            return Reply([b'{"error": "no"}'], status=400, framing="length")
        return Reply(sse_chunks(["ok"]))

    server.reply = reply
    assert run("--batch", stdin=lines({"prompt": "fine"})).code == 0
    assert run("--batch", stdin=lines({"prompt": "fine"}, {"prompt": "long"})).code == 3
    assert run("--batch", stdin=lines({"prompt": "long"}, {"prompt": "reject"})).code == 65


def test_a_429_holds_every_worker_and_costs_no_retry(server, env):
    """A 429 seen by one worker holds back every worker's next request for its Retry-After,
    and waiting it out uses up none of --retries (--retries 0 here)."""
    b_may_finish = threading.Event()
    arrivals: list[tuple[float, str]] = []
    refused_at: list[float] = []

    def reply(request):
        prompt = request.json["messages"][-1]["content"]
        arrivals.append((time.monotonic(), prompt))
        if prompt == "a" and sum(1 for _, p in arrivals if p == "a") == 1:
            def sent() -> None:
                refused_at.append(time.monotonic())
                b_may_finish.set()  # b's worker asks for its next line only after the 429 went out
            return Reply([b'{"error": "slow down"}'], status=429, framing="length", headers={"Retry-After": "1"},
                         on_sent=sent)
        if prompt == "b":
            b_may_finish.wait(BOUND)
        return Reply(sse_chunks([prompt]))

    server.reply = reply
    proc = subprocess.run([*GPT_PIPE, "--batch", "-P", "2", "--retries", "0"], env=env, capture_output=True,
                          input=lines(*({"id": p, "prompt": p} for p in "abcd")), timeout=BOUND)
    assert proc.returncode == 0 and sorted(g["id"] for g in results(proc.stdout)) == ["a", "b", "c", "d"]
    assert "1 response 429" in proc.stderr.decode()
    later = [t for t, p in arrivals if t > refused_at[0] and p != "b"]  # c, d and a again
    assert len(later) == 3 and min(later) >= refused_at[0] + 0.9, (refused_at, arrivals)


def test_kill_and_resume_gives_every_id_exactly_once(server, env, tmp_path):
    answered = []

    def reply(request):
        answered.append(request)
        if len(answered) > 4:
            return Reply([Hang()])  # the rest stall until the batch is killed
        return Reply(sse_chunks([request.json["messages"][-1]["content"]]))

    server.reply = reply
    data = lines(*({"id": f"t{i}", "prompt": f"p{i}"} for i in range(12)))
    out = tmp_path / "results.jsonl"
    proc = subprocess.Popen([*GPT_PIPE, "--batch", "--output", str(out), "-P", "2"], env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    proc.stdin.write(data)
    proc.stdin.close()
    proc.stdin = None
    deadline = time.monotonic() + BOUND
    while not out.exists() or out.read_bytes().count(b"\n") < 4:
        assert time.monotonic() < deadline, "the first results never came"
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait(BOUND)
    first = results(out.read_bytes())
    assert len(first) == 4
    server.reply = echo
    resumed = subprocess.run([*GPT_PIPE, "--batch", "--output", str(out), "--resume"], env=env, input=data,
                             capture_output=True, timeout=BOUND)
    assert resumed.returncode == 0 and b"4 skipped" in resumed.stderr
    ids = [g["id"] for g in results(out.read_bytes())]
    assert sorted(ids) == sorted(f"t{i}" for i in range(12)) and len(ids) == len(set(ids))


def test_resume_after_a_torn_last_line_and_temporary_failures(run, server, tmp_path):
    server.reply = echo
    out = tmp_path / "results.jsonl"
    out.write_bytes(lines({"id": "done", "content": "x", "exit": 0}, {"id": "later", "exit": 75}) + b'{"id": "torn')
    r = run("--batch", "--output", str(out), "--resume", stdin=lines(
        {"id": "done", "prompt": "1"}, {"id": "later", "prompt": "2"}, {"id": "torn", "prompt": "3"}))
    assert r.code == 0
    text = out.read_bytes()
    assert text.startswith(lines({"id": "done", "content": "x", "exit": 0}, {"id": "later", "exit": 75})
                           + b'{"id": "torn\n')
    assert sorted(g["id"] for g in results(text.split(b"\n", 3)[3])) == ["later", "torn"]


def test_progress_only_on_a_terminal(server, env, tmp_path):
    import pty

    server.reply = echo
    data = tmp_path / "in.jsonl"
    data.write_bytes(lines(*({"prompt": str(i)} for i in range(5))))
    master, slave = pty.openpty()
    proc = subprocess.run([*GPT_PIPE, "--batch", str(data)], env=env, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=slave, timeout=BOUND)
    os.close(slave)
    seen = read_terminal(master)
    assert proc.returncode == 0 and b"/5" in seen and b"gpt-pipe: batch: 5 lines, 5 ok" in seen
    assert b"tokens n/a" in seen and b"0 tokens" not in seen  # the echo server reports no usage


@pytest.mark.parametrize("args", [("--batch", "-", "prompt"), ("--batch", "--jsonl"), ("--resume", "--batch"),
                                  ("--output", "x", "hi"), ("--keep-order", "hi")])
def test_usage_errors(run, server, args):
    assert run(*args, stdin=b"").code == 2 and server.requests == []


def test_gnu_parallel_recipe_on_one_machine(server, env, tmp_path):
    """The README's multi-host recipe, with every job on this machine: parallel --pipe."""
    import shutil

    if not shutil.which("parallel"):
        pytest.skip("GNU parallel is not installed (apt-get install parallel; .ci/run installs it)")
    server.reply = echo
    src = tmp_path / "in.jsonl"
    src.write_bytes(lines(*({"id": i, "prompt": f"q{i}"} for i in range(40))))
    recipe = (f"parallel --will-cite --pipe -N 10 -j 4 {' '.join(GPT_PIPE)} --batch -P 2 "
              f"< {src} > {tmp_path / 'out.jsonl'}")
    done = subprocess.run(["sh", "-c", recipe], env=env, capture_output=True, timeout=BOUND)
    assert done.returncode == 0, done.stderr
    got = results((tmp_path / "out.jsonl").read_bytes())
    assert sorted(g["id"] for g in got) == list(range(40))
    assert all(g["content"] == f"green-l:q{g['id']}" and g["exit"] == 0 for g in got)


# Kept connections ----------------------------------------------------------------------

@pytest.fixture
def kept_server():
    from server import Server

    with Server(echo, keep_alive=True) as s:
        yield s


@pytest.mark.parametrize("framing", ["chunked", "length"])
def test_each_worker_keeps_one_connection(run, kept_server, framing):
    def answer(request):
        reply = echo(request)
        reply.framing = framing
        return reply

    kept_server.reply = answer
    r = run("--batch", "-P", "2", "--base-url", kept_server.url,
            stdin=lines(*({"id": i, "prompt": f"q{i}"} for i in range(20))))
    assert r.code == 0 and sorted(g["id"] for g in results(r.out)) == list(range(20))
    assert len(kept_server.requests) == 20 and kept_server.connections <= 2


def test_a_kept_connection_found_closed_is_replaced_once_without_a_retry(run, kept_server):
    def answer(request):
        if len(kept_server.requests) == 2:
            raise OSError("the server let the idle connection go as the request arrived")
        return echo(request)

    kept_server.reply = answer
    r = run("--batch", "-P", "1", "--keep-order", "--base-url", kept_server.url,
            stdin=lines({"id": 1, "prompt": "a"}, {"id": 2, "prompt": "b"}))
    assert [g["exit"] for g in results(r.out)] == [0, 0] and r.code == 0
    assert len(kept_server.requests) == 3 and kept_server.connections == 2
    assert "retrying" not in r.err  # not a retry (GPT_PIPE_RETRIES=0 here): a reconnection


def test_a_stream_abandoned_early_closes_its_connection(run, kept_server):
    from server import chunk, event

    def answer(request):
        if request.json["messages"][-1]["content"] == "bad":
            return Reply([event(chunk("part")), event({"error": {"message": "model crashed"}}),
                          *sse_chunks(["never read"])])
        return echo(request)

    kept_server.reply = answer
    r = run("--batch", "-P", "1", "--keep-order", "--base-url", kept_server.url,
            stdin=lines({"id": 1, "prompt": "bad"}, {"id": 2, "prompt": "good"}, {"id": 3, "prompt": "good"}))
    assert [g["exit"] for g in results(r.out)] == [69, 0, 0]
    assert kept_server.connections == 2  # the abandoned one, then one kept for the other two


def test_plain_text_lines_with_batch_text(run, server):
    server.reply = echo
    r = run("--batch", "--batch-text", "--keep-order", stdin=b"first question\n\nsecond, with {braces}\n")
    got = results(r.out)
    assert r.code == 0 and [(g["id"], g["content"]) for g in got] == [
        (1, "green-l:first question"), (3, "green-l:second, with {braces}")]


def test_retry_notes_name_the_line(run, server):
    from server import replies

    server.reply = replies(Reply([b"busy"], status=503, content_type="text/plain", framing="length"),
                           Reply(sse_chunks(["ok"])))
    r = run("--batch", "--retries", "1", "--max-retry-wait", "0", stdin=lines({"id": "a", "prompt": "x"}))
    assert r.code == 0 and "gpt-pipe: line 1: 503 Service Unavailable, retrying in" in r.err


def test_resume_sends_again_a_line_whose_result_was_a_server_failure(run, server, tmp_path):
    out = tmp_path / "out.jsonl"
    out.write_text('{"id": 1, "exit": 69, "error": "HTTP 503"}\n{"id": 2, "exit": 0, "content": "done"}\n')
    server.reply = echo
    r = run("--batch", "--output", str(out), "--resume",
            stdin=lines({"id": 1, "prompt": "a"}, {"id": 2, "prompt": "b"}))
    assert r.code == 0 and len(server.requests) == 1 and server.requests[0].json["messages"][-1]["content"] == "a"
