"""gpt-pipe's benchmark: start-up, added latency, throughput, memory, imports.

Runs gpt-pipe and two baselines against the project's local test server (127.0.0.1):
  requests  bench/baseline_requests.py: click + requests, iter_lines, a flush per delta
  curl|jq   curl -sN | sed | jq
prints a table of absolute figures and ratios to the requests baseline, and writes
bench/results.json. Standard library plus the project; `make bench` runs it.

    python bench/bench.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from server import Pause, RateWindow, Raw, Reply, Server, chunk, event, refused_once, sse_chunks  # noqa: E402

KEY = "sk-bench-0000000000000000"
GPT_PIPE = [str(Path(sys.executable).with_name("gpt-pipe"))]
BASELINE = [sys.executable, str(ROOT / "bench" / "baseline_requests.py")]
CURL_JQ = ("curl -sN --compressed -H \"Authorization: Bearer $GREENPT_API_KEY\" -H 'Content-Type: application/json'"
           " -d '{\"model\":\"green-l\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"stream\":true}'"
           " \"$GREENPT_BASE_URL/chat/completions\""
           " | sed -un '/^data: \\[DONE\\]/q; s/^data: //p'"
           " | jq --unbuffered -j '.choices[0].delta.content // empty'")


def clients(have_curl_jq: bool) -> dict[str, list[str]]:
    found = {"gpt-pipe": GPT_PIPE + ["hi"], "requests": BASELINE + ["hi"]}
    if have_curl_jq:
        found["curl|jq"] = ["sh", "-c", CURL_JQ]
    return found


def environment(server: Server) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env.update(GREENPT_BASE_URL=server.url, GREENPT_API_KEY=KEY, NO_PROXY="*", GPT_PIPE_RETRIES="0")
    env["XDG_CONFIG_HOME"] = "/nonexistent"  # no user config file in the measurements
    return env


# ru_maxrss survives exec: a child forked from this (large) harness would report the
# harness's own peak. GNU time forks the client from its own tiny process instead.
GNU_TIME = "/usr/bin/time" if os.path.exists("/usr/bin/time") else None


def run_client(cmd: list[str], env: dict[str, str], on_data=None) -> dict:
    """Run one client with stdout a pipe; times of start, first byte and exit; rusage."""
    rss_file = None
    if GNU_TIME:
        fd, rss_file = tempfile.mkstemp(prefix="gpt-pipe-bench-rss-")
        os.close(fd)
        cmd = [GNU_TIME, "-f", "%M", "-o", rss_file, *cmd]
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            env=env)
    fd = proc.stdout.fileno()
    first = None
    size = 0
    while True:
        data = os.read(fd, 1 << 20)
        if not data:
            break
        now = time.monotonic()
        if first is None:
            first = now
        size += len(data)
        if on_data:
            on_data(data, now)
    _, status, usage = os.wait4(proc.pid, 0)
    end = time.monotonic()
    proc.returncode = os.waitstatus_to_exitcode(status)
    proc.stdout.close()
    maxrss = float("nan")
    if rss_file:
        with open(rss_file) as f:
            text = f.read().strip().splitlines()
        os.unlink(rss_file)
        maxrss = int(text[-1]) / 1024 if text and text[-1].isdigit() else maxrss
    return {"start": start, "first": first, "end": end, "bytes": size, "code": proc.returncode,
            "cpu": usage.ru_utime + usage.ru_stime, "maxrss_mib": maxrss}


# 1. start-up: time to the first delta and to exit ---------------------------------------

def bench_startup(runs: int, names: dict[str, list[str]]) -> dict:
    marks: dict[str, float] = {}

    def reply(request):
        def steps():
            yield from sse_chunks(["Hello", "! How", " can I help you today?"])
            marks["last_byte"] = time.monotonic()
        return Reply(steps())

    results: dict[str, dict[str, list[float]]] = {n: {"first": [], "exit": [], "after_last": []} for n in names}
    with Server(reply) as server:
        env = environment(server)
        for _ in range(runs):
            for name, cmd in names.items():  # interleaved, so drift hits every client alike
                r = run_client(cmd, env)
                assert r["code"] == 0, (name, r)
                results[name]["first"].append((r["first"] - r["start"]) * 1000)
                results[name]["exit"].append((r["end"] - r["start"]) * 1000)
                results[name]["after_last"].append((r["end"] - marks["last_byte"]) * 1000)
    return {n: {k: statistics.median(v) for k, v in d.items()} for n, d in results.items()}


# 2. added latency per delta -------------------------------------------------------------

def bench_latency(deltas: int, interval: float, names: dict[str, list[str]]) -> dict:
    width = len(f"{time.monotonic():.6f}")

    def stamps():
        for _ in range(deltas):
            yield event(chunk(f"{time.monotonic():.6f};".rjust(width + 1, "0")))
            yield Pause(interval)
        yield from sse_chunks([])

    sample = len(event(chunk("0" * width + ";")))
    tail = sum(len(p) for p in sse_chunks([]))
    framings = {"chunked": {}, "close": {"framing": "close"}, "length": {"framing": "length"},
                "gzip": {"gzip": True}}
    out: dict = {}
    for framing, extra in framings.items():
        length = deltas * sample + tail if framing == "length" else None
        with Server(lambda request, extra=extra, length=length: Reply(stamps(), length=length, **extra)) as server:
            env = environment(server)
            for name, cmd in names.items():
                lat: list[float] = []
                pending = bytearray()

                def on_data(data: bytes, now: float, lat=lat, pending=pending) -> None:
                    pending.extend(data)
                    *done, rest = bytes(pending).split(b";")
                    pending[:] = rest
                    lat.extend((now - float(s)) * 1000 for s in done if s)

                r = run_client(cmd, env, on_data)
                assert r["code"] == 0 and len(lat) == deltas, (name, framing, r, len(lat))
                out.setdefault(name, {})[framing] = percentiles(lat)
    return out


def percentiles(samples: list[float]) -> dict[str, float]:
    """p50, p99 (the second-worst of 200) and max of latency samples."""
    lat = sorted(samples)
    return {"p50": lat[len(lat) // 2], "p99": lat[min(len(lat) - 1, int(len(lat) * 0.99))], "max": lat[-1]}


TAILS = ("s", "sk", "sk-")


def bench_latency_tails(deltas: int, interval: float, names: dict[str, list[str]]) -> dict:
    """Added latency of deltas that end as the API key starts ("…;s", "…;sk", "…;sk-"): the
    time from a delta's send to the arrival of its last byte, tail included (a client that
    held the tail back until the next delta would show the interval here)."""
    width = len(f"{time.monotonic():.6f}") + 1

    def stamps():
        for k in range(deltas):
            yield event(chunk(f"{time.monotonic():.6f};".rjust(width, "0") + TAILS[k % len(TAILS)]))
            yield Pause(interval)
        yield from sse_chunks([])

    ends = []
    total = 0
    for k in range(deltas):
        total += width + len(TAILS[k % len(TAILS)])
        ends.append(total)
    out: dict = {}
    with Server(lambda request: Reply(stamps())) as server:
        env = environment(server)
        for name, cmd in names.items():
            arrived: list[float] = []
            seen = bytearray()

            def on_data(data: bytes, now: float, arrived=arrived, seen=seen) -> None:
                seen.extend(data)
                while len(arrived) < deltas and len(seen) >= ends[len(arrived)]:
                    arrived.append(now)

            r = run_client(cmd, env, on_data)
            assert r["code"] == 0 and len(arrived) == deltas, (name, r, len(arrived))
            sent = [float(seen[end - len(TAILS[k % len(TAILS)]) - width:end - len(TAILS[k % len(TAILS)]) - 1])
                    for k, end in enumerate(ends)]
            out[name] = percentiles([(a - s) * 1000 for a, s in zip(arrived, sent, strict=True)])
    return out


# 3 and 4. throughput, CPU and memory ----------------------------------------------------

def bulk_reply(n: int, text: str = "tok ") -> Reply:
    one = event(chunk(text))
    batch = 256

    def steps():
        # One HTTP chunk per event, as real servers send them; many per write, so the
        # server is never the bottleneck.
        block = b"".join(b"%x\r\n%s\r\n" % (len(one), one) for _ in range(batch))
        for _ in range(n // batch):
            yield Raw(block)
        for _ in range(n % batch):
            yield one
        yield from sse_chunks([])

    return Reply(steps())


def bench_throughput(n: int, cases: dict[str, list[str]], runs: int = 1) -> dict:
    """Medians of ``runs`` interleaved runs of each case: wall, CPU, chunks/s, peak RSS."""
    samples: dict[str, list[dict]] = {name: [] for name in cases}
    with Server(lambda request: bulk_reply(n)) as server:
        env = environment(server)
        for _ in range(runs):
            for name, cmd in cases.items():
                r = run_client(cmd, env)
                assert r["code"] == 0 and r["bytes"] >= 4 * n, (name, r)
                wall = r["end"] - r["start"]
                samples[name].append({"wall_s": wall, "cpu_s": r["cpu"], "chunks_per_s": n / wall,
                                      "maxrss_mib": r["maxrss_mib"]})
    return {name: {key: statistics.median(s[key] for s in runs_) for key in runs_[0]}
            for name, runs_ in samples.items()}


# 5. hostile servers and files: peak RSS ----------------------------------------------------

MiB = 1 << 20


def _endless(piece: bytes, total: int):
    sent = 0
    while sent < total:
        yield piece
        sent += len(piece)


def hostile_cases() -> dict[str, tuple]:
    """name -> (reply or None for no server use, gpt-pipe arguments, stdin path, the exit code it must give)."""
    x = b"x" * 65536
    return {
        "one 200 MiB line": (Reply([b"data: ", *_endless(x, 200 * MiB)], framing="close"), ["hi"], None, 76),
        "200 MiB JSON answer": (Reply([b'{"choices":[{"message":{"content":"', *_endless(x, 200 * MiB)],
                                      content_type="application/json", framing="close"), ["hi"], None, 76),
        "gzip bomb, 1 GiB decoded": (Reply([b"data: ", *_endless(b"a" * MiB, 1024 * MiB)], gzip=True,
                                           framing="close"), ["hi"], None, 76),
        "40 MiB of blank lines": (Reply([*_endless(b"\n" * MiB, 40 * MiB), *sse_chunks(["ok"])],
                                        content_type="text/plain", framing="close"), ["hi"], None, 0),
        "--full, 800 MiB answer": (Reply((event(chunk("z" * 65536)) for _ in range(800 * 16)), framing="close"),
                                   ["--full", "hi"], None, 76),
        "--json, 800 MiB answer": (Reply((event(chunk("z" * 65536)) for _ in range(800 * 16)), framing="close"),
                                   ["--json", "hi"], None, 76),
        "200 MiB model list": (Reply([b'{"data":[{"id":"', *_endless(x, 200 * MiB)], content_type="application/json",
                                     framing="close"), ["--list-models"], None, 76),
        "--conversation /dev/zero": (Reply(sse_chunks(["ok"])), ["--conversation", "/dev/zero", "hi"], None, 65),
        "302 whose body is a gzip bomb": (_redirect_bomb, ["hi"], None, 0),
        "400 MiB of tool-call arguments": (Reply(_tool_arguments(400 * 16), framing="close"), ["--json", "hi"],
                                           None, 76),
        "1,000,000 tool-call indexes": (Reply(_tool_indexes(1_000_000), framing="close"), ["hi"], None, 76),
        "2 MiB answer before an @ (--json)": (Reply([event(chunk("a" * 65536)) for _ in range(32)]
                                                    + [event(chunk("@")), *sse_chunks([])]), ["--json", "hi"], None, 0),
        "stdin /dev/zero": (Reply(sse_chunks(["ok"])), ["hi"], "/dev/zero", 65),
        "conversation of 1.1 M messages (31 MiB)": (Reply(sse_chunks(["ok"])), ["--conversation", _file(
            "conversation.jsonl", b'{"role":"user","content":"x"}\n' * 1_100_000), "hi"], None, 65),
        "--schema answer of 2 M values (10 MiB)": (Reply(_values_answer(2_000_000)), [
            "--full", "--schema", '{"type": "array", "items": {"type": "string"}}', "hi"], None, 8),
        "-a, an image of 19 MiB": (Reply(sse_chunks(["ok"])), ["-a", _file(
            "big.png", b"\x89PNG\r\n\x1a\n" + b"\0" * (19 * MiB)), "What is it?"], None, 0),
        "--batch, 4 lines of 24 MiB at -P 4": (Reply(sse_chunks(["ok"])), ["--batch", _file("big.jsonl", b"".join(
            b'{"id": %d, "prompt": "%s"}\n' % (n, b"x" * (24 * MiB)) for n in range(4))), "-P", "4"], None, 0),
    }


def _file(name: str, data: bytes) -> str:
    """A file for a case, in a directory removed at exit."""
    global _CASE_DIR
    if _CASE_DIR is None:
        import atexit

        _CASE_DIR = tempfile.mkdtemp(prefix="gpt-pipe-bench-")
        atexit.register(shutil.rmtree, _CASE_DIR, True)
    path = os.path.join(_CASE_DIR, name)
    Path(path).write_bytes(data)
    return path


_CASE_DIR: str | None = None


def _values_answer(count: int) -> list[bytes]:
    answer = "[" + ",".join(['"ab"'] * count) + "]"
    return [event(chunk(answer[i:i + MiB])) for i in range(0, len(answer), MiB)] + sse_chunks([])


def _redirect_bomb(request):
    import gzip

    if request.path == "/v1/chat/completions":
        return Reply([gzip.compress(b"\0" * (256 * MiB)), *_endless(b"\0" * 65536, 1 << 40)], status=302,
                     content_type="text/plain",
                     headers={"Location": "/v2/chat/completions", "Content-Encoding": "gzip"})
    return Reply(sse_chunks(["moved"]))


def _tool_arguments(pieces: int):
    yield event(chunk(role="assistant"))
    call = event({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {
        "arguments": "x" * 65536}}]}}]})
    for _ in range(pieces):
        yield call
    yield from sse_chunks([], "tool_calls")


def _tool_indexes(count: int):
    yield event(chunk(role="assistant"))
    for start in range(0, count, 1000):
        yield event({"choices": [{"index": 0, "delta": {"tool_calls": [
            {"index": i, "function": {"name": "f"}} for i in range(start, start + 1000)]}}]})
    yield from sse_chunks([], "tool_calls")


def bench_hostile() -> dict[str, dict]:
    """Peak RSS and wall time of each hostile case, with the default caps."""
    out = {}
    for name, (reply, args, stdin, code) in hostile_cases().items():
        with Server(reply) as server:
            env = environment(server)
            start = time.monotonic()
            stdin_file = open(stdin, "rb") if stdin else subprocess.DEVNULL
            cmd = GPT_PIPE + args
            rss_file = None
            if GNU_TIME:
                fd, rss_file = tempfile.mkstemp(prefix="gpt-pipe-bench-rss-")
                os.close(fd)
                cmd = [GNU_TIME, "-f", "%M", "-o", rss_file, *cmd]
            proc = subprocess.run(cmd, stdin=stdin_file, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  env=env, timeout=600)
            if stdin:
                stdin_file.close()
            rss = float("nan")
            if rss_file:
                rss = int(Path(rss_file).read_text().split()[-1]) / 1024
                os.unlink(rss_file)
            assert proc.returncode == code, (name, proc.returncode)
            out[name] = {"exit": proc.returncode, "maxrss_mib": rss, "wall_s": time.monotonic() - start}
    return out


# 9. rate limits -------------------------------------------------------------------------

def _lines(n: int) -> bytes:
    return b"".join(json.dumps({"id": i, "prompt": f"q{i}"}).encode() + b"\n" for i in range(n))


def _batch_against(window: RateWindow, n: int, extra: list[str]) -> dict:
    with Server(window) as server:
        window.start = time.monotonic()
        began = time.monotonic()
        proc = subprocess.run(GPT_PIPE + ["--batch", *extra], input=_lines(n), capture_output=True,
                              env=environment(server), timeout=900)
        wall = time.monotonic() - began
    exits = [json.loads(line)["exit"] for line in proc.stdout.splitlines()]
    return {"wall_s": wall, "refused": window.refused, "lines_ok": sum(1 for e in exits if e == 0), "lines": n}


def _fleet_against(window: RateWindow, runs: int, parallel: int) -> dict:
    from concurrent.futures import ThreadPoolExecutor

    with Server(window) as server:
        env = environment(server)
        window.start = time.monotonic()
        began = time.monotonic()

        def one(_: int) -> int:
            return subprocess.run(GPT_PIPE + ["--retries", "3", "hi"], capture_output=True, env=env,
                                  timeout=900).returncode

        with ThreadPoolExecutor(parallel) as pool:
            codes = list(pool.map(one, range(runs)))
        wall = time.monotonic() - began
    return {"wall_s": wall, "refused": window.refused, "runs_ok": codes.count(0), "runs": runs}


def _single_after_reset(header: str) -> dict:
    """A single run whose 429 names only the reset: when its retry goes out."""
    answer, arrivals = refused_once({header: "2s" if header.startswith("x-") else "2"})
    with Server(answer) as server:
        env = environment(server)
        env["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="gpt-pipe-bench-cache-")  # no record from other cases
        code = subprocess.run(GPT_PIPE + ["--retries", "1", "hi"], capture_output=True, env=env,
                              timeout=60).returncode
    gap = arrivals[1] - arrivals[0] if len(arrivals) > 1 else float("nan")
    return {"wall_s": gap, "ideal_s": 2.0, "refused": 1, "runs_ok": int(code == 0), "runs": 1}


def bench_ratelimit(quick: bool) -> dict:
    """The issue's targets, side by side: batches and fleets against a fixed-window server."""
    out: dict = {}
    for style in ("openai", "ietf", "structured", "tokens", "retry-after", "none"):
        r = _batch_against(RateWindow(20, 2.0, style), 60, ["-P", "8", "--retries", "0"])
        r["ideal_s"] = 4.0  # 60 lines at 20 per 2 s: the third window opens at 4 s
        out[f"batch -P 8, 60 lines, 20 per 2 s, {style if style != 'none' else 'bare 429'}"] = r
    if not quick:
        r = _batch_against(RateWindow(5, 10.0, "ietf"), 10, ["-P", "8", "--retries", "0"])
        r["ideal_s"] = 10.0
        out["batch -P 8, 10 lines, 5 per 10 s"] = r
    r = _batch_against(RateWindow(10, 1.0, "none"), 45, ["-P", "8", "--rate", "9/s"])
    r["ideal_s"] = 45 / 9
    out["--rate 9/s, 45 lines, server 10 per s, no headers"] = r
    r = _batch_against(RateWindow(10, 1.0, "none"), 45, ["-P", "8", "--rate", "540/min"])
    r["ideal_s"] = 45 / 9
    out["--rate 540/min, 45 lines, server 10 per s, no headers"] = r
    for header in ("x-ratelimit-reset-requests", "RateLimit-Reset"):
        out[f"single run, a 429 with only {header}: 2"] = _single_after_reset(header)
    r = _fleet_against(RateWindow(10, 2.0, "ietf"), 40, 8)
    r["ideal_s"] = 6.0
    out["fleet: 40 runs, 8 at a time, 10 per 2 s"] = r
    if not quick:
        r = _fleet_against(RateWindow(10, 10.0, "ietf"), 20, 8)
        r["ideal_s"] = 10.0
        out["fleet: 20 runs, 8 at a time, 10 per 10 s"] = r
    return out


# 6. batch ------------------------------------------------------------------------------

def bench_batch(requests_: int, parallel: int, latency: float, lines: tuple[int, ...]) -> dict:
    """Wall time of a batch against a server that takes ``latency`` per answer, next to the
    ideal (requests / parallel * latency); peak RSS for inputs of ``lines`` lines."""
    import tempfile as tf

    out: dict = {}
    with Server(lambda request: Reply([Pause(latency), *sse_chunks(["ok"])])) as server:
        env = environment(server)
        with tf.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
            f.writelines(f'{{"id": {i}, "prompt": "q{i}"}}\n' for i in range(requests_))
        r = run_client(GPT_PIPE + ["--batch", f.name, "-P", str(parallel)], env)
        os.unlink(f.name)
        assert r["code"] == 0 and r["bytes"], r
        ideal = requests_ / parallel * latency
        out["latency"] = {"requests": requests_, "parallel": parallel, "server_latency_s": latency,
                          "wall_s": r["end"] - r["start"], "ideal_s": ideal,
                          "vs_ideal": (r["end"] - r["start"]) / ideal}
        out["rss_mib"] = {}
        for n in lines:  # lines with no prompt: every one is read, run through the pool and answered
            with tf.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
                f.writelines(f'{{"id": {i}}}\n' for i in range(n))
            r = run_client(GPT_PIPE + ["--batch", f.name, "-P", "8"], env)
            os.unlink(f.name)
            assert r["code"] == 65, r
            out["rss_mib"][n] = r["maxrss_mib"]
    return out


# 8. a realistic network: TLS, 40 and 120 ms away ---------------------------------------------

def make_pki(directory: Path) -> tuple[str, str, str]:
    """A private CA and a certificate it signed for 127.0.0.1: (ca, cert, key)."""
    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=directory)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=gpt-pipe bench CA",
            "-keyout", "ca.key", "-out", "ca.pem")
    (directory / "ext").write_text("subjectAltName=IP:127.0.0.1\n")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "leaf.key", "-out",
            "leaf.csr")
    openssl("x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-set_serial", "1", "-days",
            "2", "-extfile", "ext", "-out", "leaf.pem")
    return str(directory / "ca.pem"), str(directory / "leaf.pem"), str(directory / "leaf.key")


def bench_network(rtts: tuple[float, ...], runs: int, prompts: int, parallels: tuple[int, ...],
                  have_curl_jq: bool) -> dict:
    """Over TLS 1.3 through a delay relay: first delta of single runs, and --batch wall
    time and TLS handshakes next to the keep-alive reference client."""
    import tempfile as tf

    from netsim import KEEPALIVE_CLIENT, DelayRelay

    out: dict = {}
    with tf.TemporaryDirectory() as tmp:
        ca, cert, key = make_pki(Path(tmp))
        prompts_file = Path(tmp) / "prompts.jsonl"
        prompts_file.write_text("".join(f'{{"id": {i}, "prompt": "q{i}"}}\n' for i in range(prompts)))
        client_file = Path(tmp) / "keepalive_client.py"
        client_file.write_text(KEEPALIVE_CLIENT)
        reply = Reply(sse_chunks(["Hello", "! How", " can I help you today?"]))
        with Server(reply, tls=(cert, key), keep_alive=True) as server:
            for rtt in rtts:
                with DelayRelay(server.port, rtt) as relay:
                    env = dict(environment(server), GREENPT_BASE_URL=f"https://127.0.0.1:{relay.port}/v1",
                               REQUESTS_CA_BUNDLE=ca, CURL_CA_BUNDLE=ca)
                    singles = {"gpt-pipe": GPT_PIPE + ["hi"], "requests": BASELINE + ["hi"]}
                    if have_curl_jq:
                        singles["curl|jq"] = ["sh", "-c", CURL_JQ]
                    firsts: dict[str, list[float]] = {name: [] for name in singles}
                    for _ in range(runs):
                        for name, cmd in singles.items():
                            r = run_client(cmd, env)
                            assert r["code"] == 0 and r["first"], (name, rtt, r)
                            firsts[name].append((r["first"] - r["start"]) * 1000)
                    row: dict = {"first_ms": {name: statistics.median(v) for name, v in firsts.items()},
                                 "prompts": prompts, "batch": {}}
                    for parallel in parallels:
                        batch: dict = {}
                        for name, cmd in (("gpt-pipe", GPT_PIPE + ["--batch", str(prompts_file), "-P", str(parallel)]),
                                          ("keep-alive client", [sys.executable, str(client_file), str(prompts_file),
                                                                 str(parallel)])):
                            before = server.handshakes
                            r = run_client(cmd, env)
                            assert r["code"] == 0 and r["bytes"], (name, rtt, parallel, r)
                            batch[name] = {"wall_s": r["end"] - r["start"], "handshakes": server.handshakes - before}
                        row["batch"][parallel] = batch
                    out[f"{rtt * 1000:.0f}"] = row
    return out


# 5. imports -----------------------------------------------------------------------------

def bench_imports(runs: int) -> dict:
    """The ten costliest imports of `gpt-pipe hi`, and the time gpt-pipe's own modules take
    (the sum of their self times, median of ``runs``; issue 16's target is this number)."""
    rows: list[tuple[str, float]] = []
    own: list[float] = []
    with Server() as server:
        env = dict(environment(server), PYTHONPROFILEIMPORTTIME="1")
        for _ in range(runs):
            proc = subprocess.run(GPT_PIPE + ["hi"], env=env, capture_output=True, stdin=subprocess.DEVNULL)
            rows, total, count = [], 0.0, 0
            for line in proc.stderr.decode().splitlines():
                if line.startswith("import time:") and "|" in line and "cumulative" not in line:
                    head, cumulative, name = line.split("|")
                    depth = (len(name) - len(name.lstrip()) - 1) // 2
                    if name.strip().startswith("gpt_pipe"):
                        total += int(head.split(":")[1]) / 1000
                        count += 1
                    else:  # our own modules only wrap the others; what they pull in is what costs
                        rows.append(("  " * min(depth, 3) + name.strip(), int(cumulative) / 1000))
            own.append(total)
    return {"costliest": sorted(rows, key=lambda row: -row[1])[:10], "own_ms": statistics.median(own),
            "modules": count, "empty_module_ms": empty_module_ms(runs)}


def empty_module_ms(runs: int, count: int = 30) -> float:
    """What importing one module costs here before any of its code runs: ``count`` empty
    modules of a package imported under -X importtime (median of ``runs``), per module.
    Issue 16's import target is weighed against this floor."""
    times: list[float] = []
    with tempfile.TemporaryDirectory() as scratch:
        package = Path(scratch) / "emptypkg"
        package.mkdir()
        (package / "__init__.py").write_text("")
        for number in range(count):
            (package / f"m{number}.py").write_text("x = 1\n")
        script = "".join(f"import emptypkg.m{number}\n" for number in range(count))
        subprocess.run([sys.executable, "-c", script], cwd=scratch, check=True)  # writes the .pyc files
        for _ in range(runs):
            err = subprocess.run([sys.executable, "-X", "importtime", "-c", script], cwd=scratch,
                                 capture_output=True, check=True).stderr.decode()
            times.append(sum(int(line.split("|")[0].split(":")[1]) for line in err.splitlines()
                             if "emptypkg.m" in line) / 1000 / count)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description="gpt-pipe benchmark")
    parser.add_argument("--quick", action="store_true", help="fewer runs and smaller streams (a smoke test)")
    parser.add_argument("--table", action="store_true", help="print bench/results.json as the README's table")
    args = parser.parse_args()
    if args.table:
        print(readme_table(json.loads((ROOT / "bench" / "results.json").read_text())))
        return 0
    have_curl_jq = bool(shutil.which("curl") and shutil.which("jq"))
    names = clients(have_curl_jq)
    runs, deltas, big, huge = (3, 40, 20_000, 50_000) if args.quick else (11, 200, 100_000, 1_000_000)
    results: dict = {"machine": machine(), "when": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
    print(f"gpt-pipe benchmark on {results['machine']}\n", flush=True)
    if not GNU_TIME:
        print("(no /usr/bin/time: peak RSS shows as nan; `apt-get install time` measures it)\n")

    s = results["startup"] = bench_startup(runs, names)
    base = s["requests"]
    print(f"1. start-up (median of {runs} interleaved runs, GreenPT example)")
    print(f"   {'client':10} {'first delta':>12} {'exit':>10} {'exit - last byte':>17} {'first/requests':>15}")
    for name, v in s.items():
        print(f"   {name:10} {v['first']:9.1f} ms {v['exit']:7.1f} ms {v['after_last']:14.1f} ms"
              f" {v['first'] / base['first']:14.2f}x")

    lat = results["latency"] = bench_latency(deltas, 0.01, names)
    print(f"\n2. added latency per delta, stdout a pipe ({deltas} deltas, 10 ms apart): p50 / p99 / max, ms")
    print(f"   {'client':10}" + "".join(f" {f:>22}" for f in ("chunked", "close", "length", "gzip")))
    for name, by in lat.items():
        print(f"   {name:10}" + "".join(f" {v['p50']:6.2f}/{v['p99']:6.2f}/{v['max']:7.2f}" for v in by.values()))

    tails = results["latency_tails"] = bench_latency_tails(deltas, 0.01, names)
    print(f"\n2b. the same, deltas ending in {', '.join(repr(t) for t in TAILS)} (how the key starts), chunked:"
          " p50 / p99 / max, ms")
    for name, v in tails.items():
        print(f"   {name:10} {v['p50']:6.2f}/{v['p99']:6.2f}/{v['max']:7.2f}")

    cases = {"gpt-pipe": GPT_PIPE + ["hi"], "gpt-pipe --full": GPT_PIPE + ["--full", "hi"],
             "gpt-pipe --jsonl": GPT_PIPE + ["--jsonl", "hi"], "requests": BASELINE + ["hi"]}
    if have_curl_jq:
        cases["curl|jq"] = ["sh", "-c", CURL_JQ]
    t = results["throughput"] = bench_throughput(big, cases, 3 if args.quick else 5)
    print(f"\n3. a {big:,}-delta stream (one HTTP chunk per event; medians of interleaved runs)")
    print(f"   {'client':18} {'wall':>8} {'cpu':>8} {'chunks/s':>10} {'vs requests':>12} {'peak RSS':>10}")
    for name, v in t.items():
        print(f"   {name:18} {v['wall_s']:6.2f} s {v['cpu_s']:6.2f} s {v['chunks_per_s']:10,.0f}"
              f" {v['chunks_per_s'] / t['requests']['chunks_per_s']:11.2f}x {v['maxrss_mib']:7.1f} MiB")

    m = results["memory"] = {}
    print("\n4. peak RSS (MiB) by stream length")
    for mode in ("", "--jsonl", "--full"):
        label = f"gpt-pipe {mode}".strip()
        m[label] = {}
        for n in (big, huge):
            args_ = GPT_PIPE + ([mode] if mode else []) + ["hi"]
            m[label][n] = bench_throughput(n, {label: args_})[label]["maxrss_mib"]
        print(f"   {label:18} " + "  ".join(f"{n:>9,}: {v:5.1f}" for n, v in m[label].items()))

    h = results["hostile"] = bench_hostile()
    print("\n5. hostile servers and files, default caps: exit, peak RSS, wall")
    for name, v in h.items():
        print(f"   {name:28} exit {v['exit']:3}  {v['maxrss_mib']:6.1f} MiB  {v['wall_s']:6.2f} s")

    b = results["batch"] = bench_batch(200 if args.quick else 1000, 32, 0.2,
                                       (10_000, 100_000) if args.quick else (100_000, 1_000_000))
    lat_ = b["latency"]
    print(f"\n6. --batch: {lat_['requests']:,} requests, server latency {lat_['server_latency_s'] * 1000:.0f} ms, "
          f"-P {lat_['parallel']}: {lat_['wall_s']:.2f} s against an ideal of {lat_['ideal_s']:.2f} s "
          f"({lat_['vs_ideal']:.2f}x)")
    print("   peak RSS by input length: " + ", ".join(f"{n:,} lines: {v:.1f} MiB" for n, v in b["rss_mib"].items()))

    if shutil.which("openssl"):
        parallels = (8, 32)
        net = results["network"] = bench_network((0.04, 0.12), 3 if args.quick else 9, 50 if args.quick else 200,
                                                 parallels, have_curl_jq)
        print("\n8. TLS 1.3 with a private CA through a delay relay (RTT 40 / 120 ms; medians)")
        for rtt, row in net.items():
            f = row["first_ms"]
            base = f["requests"]
            print(f"   RTT {rtt} ms, first delta: " + ", ".join(
                f"{name} {ms:.1f} ms ({ms / base:.2f}x)" for name, ms in f.items())
                + (f"; gpt-pipe / curl|jq {f['gpt-pipe'] / f['curl|jq']:.2f}x" if "curl|jq" in f else ""))
            for parallel, b in row["batch"].items():
                g, k = b["gpt-pipe"], b["keep-alive client"]
                print(f"   RTT {rtt} ms, --batch -P {parallel}: gpt-pipe {g['wall_s']:.2f} s, {g['handshakes']} "
                      f"handshakes; keep-alive client {k['wall_s']:.2f} s, {k['handshakes']} handshakes; "
                      f"{g['wall_s'] / k['wall_s']:.2f}x")
    else:
        print("\n8. (no openssl command: the realistic-network section is skipped)")

    rl = results["ratelimit"] = bench_ratelimit(args.quick)
    print("\n9. rate limits: a local server with a fixed window, in each header style")
    for name, v in rl.items():
        done = (f"{v['lines_ok']}/{v['lines']} lines exit 0" if "lines" in v
                else f"{v['runs_ok']}/{v['runs']} runs exit 0")
        print(f"   {name:52} {done}, {v['refused']:3} x 429, {v['wall_s']:5.1f} s "
              f"({v['wall_s'] / v['ideal_s']:.2f}x the ideal {v['ideal_s']:.1f} s)")

    imports = results["imports"] = bench_imports(runs)
    print("\n7. python -X importtime of `gpt-pipe hi`: the ten costliest imports (cumulative; indent = depth)")
    for name, ms in imports["costliest"]:
        print(f"   {ms:7.1f} ms  {name}")
    print(f"   gpt-pipe's own modules: {imports['own_ms']:.1f} ms (their self times added up, median of {runs} runs)")
    floor = imports["modules"] * imports["empty_module_ms"]
    print(f"   of which {floor:.1f} ms is the floor of importing {imports['modules']} modules "
          f"({imports['empty_module_ms'] * 1000:.0f} us for an empty one here), "
          f"{imports['own_ms'] - floor:.1f} ms their code")

    path = ROOT / "bench" / "results.json"
    path.write_text(json.dumps(results, indent=1) + "\n")
    print(f"\nwrote {path.relative_to(ROOT)}")
    return 0


def readme_table(r: dict) -> str:
    """The README's summary of a results.json."""
    s, lat, t, m = r["startup"], r["latency"], r["throughput"], r["memory"]
    g, q, c = s["gpt-pipe"], s["requests"], s.get("curl|jq")
    ratio = t["requests"]["chunks_per_s"]

    def lt(name: str, framing: str) -> str:
        v = lat.get(name, {}).get(framing)
        return f"{v['p50']:.2f} / {v['p99']:.2f} ms" if v else ""

    def cps(name: str) -> str:
        return f"{t[name]['chunks_per_s']:,.0f}"

    big, huge = sorted(m["gpt-pipe"], key=int)
    rows = [
        ("first delta (median of interleaved runs)", f"{g['first']:.1f} ms ({g['first'] / q['first']:.2f}×)",
         f"{q['first']:.1f} ms", f"{c['first']:.1f} ms" if c else ""),
        ("exit after the last byte", f"{g['after_last']:.1f} ms", f"{q['after_last']:.1f} ms",
         f"{c['after_last']:.1f} ms" if c else ""),
    ]
    for framing, label in (("chunked", "chunked"), ("close", "close-delimited"), ("length", "Content-Length"),
                           ("gzip", "gzip")):
        rows.append((f"added latency p50 / p99, {label} body", lt("gpt-pipe", framing), lt("requests", framing),
                     lt("curl|jq", framing)))
    tails = r.get("latency_tails", {})

    def tl(name: str) -> str:
        v = tails.get(name)
        return f"{v['p50']:.2f} / {v['p99']:.2f} ms" if v else ""

    if tails:
        rows.append(("added latency p50 / p99, deltas ending in `s`, `sk`, `sk-`", tl("gpt-pipe"), tl("requests"),
                     tl("curl|jq")))
    rows.append(("100,000 deltas, chunks/s (raw)",
                 f"{cps('gpt-pipe')} ({t['gpt-pipe']['chunks_per_s'] / ratio:.2f}×)", cps("requests"),
                 cps("curl|jq") if "curl|jq" in t else ""))
    rows.append(("100,000 deltas, chunks/s (`--full` / `--jsonl`)",
                 f"{cps('gpt-pipe --full')} ({t['gpt-pipe --full']['chunks_per_s'] / ratio:.2f}×) / "
                 f"{cps('gpt-pipe --jsonl')} ({t['gpt-pipe --jsonl']['chunks_per_s'] / ratio:.2f}×)", "", ""))
    rows.append((f"peak RSS, {int(big):,} / {int(huge):,} deltas (raw)",
                 f"{m['gpt-pipe'][big]:.1f} / {m['gpt-pipe'][huge]:.1f} MiB",
                 f"{t['requests']['maxrss_mib']:.1f} MiB", f"{t['curl|jq']['maxrss_mib']:.1f} MiB" if "curl|jq" in t
                 else ""))
    rows.append((f"peak RSS, {int(big):,} / {int(huge):,} deltas (`--jsonl`; `--full`)",
                 f"{m['gpt-pipe --jsonl'][big]:.1f} / {m['gpt-pipe --jsonl'][huge]:.1f} MiB; "
                 f"{m['gpt-pipe --full'][big]:.1f} / {m['gpt-pipe --full'][huge]:.1f} MiB", "", ""))
    if "batch" in r:
        b = r["batch"]
        lat_ = b["latency"]
        rows.append((f"`--batch`: {lat_['requests']:,} requests of {lat_['server_latency_s'] * 1000:.0f} ms at "
                     f"-P {lat_['parallel']}", f"{lat_['wall_s']:.2f} s ({lat_['vs_ideal']:.2f}× the ideal "
                     f"{lat_['ideal_s']:.2f} s)", "", ""))
        sizes = sorted(b["rss_mib"], key=int)
        rows.append(("`--batch` peak RSS, " + " / ".join(f"{int(n):,}" for n in sizes) + " input lines",
                     " / ".join(f"{b['rss_mib'][n]:.1f}" for n in sizes) + " MiB", "", ""))
    lines = ["| | gpt-pipe | requests + iter_lines | curl \\| sed \\| jq |", "|---|---|---|---|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    if "hostile" in r:
        lines += ["", "| hostile case, default caps | exit | peak RSS |", "|---|---|---|"]
        lines += [f"| {name} | {v['exit']} | {v['maxrss_mib']:.1f} MiB |" for name, v in r["hostile"].items()]
    if "network" in r:
        lines += ["", network_table(r["network"])]
    return "\n".join(lines)


def network_table(net: dict) -> str:
    """The README's table of section 8: TLS 1.3 through the delay relay."""
    rows = ["| TLS 1.3, private CA, delay relay | " + " | ".join(f"RTT {rtt} ms" for rtt in net) + " |",
            "|---|" + "---|" * len(net)]
    firsts = [row["first_ms"] for row in net.values()]
    rows.append("| single run, first delta: gpt-pipe (vs requests floor; vs curl \\| sed \\| jq) | " + " | ".join(
        f"{f['gpt-pipe']:.0f} ms ({f['gpt-pipe'] / f['requests']:.2f}×"
        + (f"; {f['gpt-pipe'] / f['curl|jq']:.2f}×)" if "curl|jq" in f else ")") for f in firsts) + " |")
    rows.append("| single run, first delta: requests floor / curl \\| sed \\| jq | " + " | ".join(
        f"{f['requests']:.0f} / {f['curl|jq']:.0f} ms" if "curl|jq" in f else f"{f['requests']:.0f} ms"
        for f in firsts) + " |")
    for parallel in next(iter(net.values()))["batch"]:
        cells = []
        for row in net.values():
            b = row["batch"][parallel]
            g, k = b["gpt-pipe"], b["keep-alive client"]
            cells.append(f"{g['wall_s']:.2f} s vs {k['wall_s']:.2f} s ({g['wall_s'] / k['wall_s']:.2f}×); "
                         f"{g['handshakes']} / {k['handshakes']} handshakes")
        prompts = next(iter(net.values())).get("prompts", 200)
        label = f"`--batch`, {prompts} prompts at -P {parallel}: gpt-pipe vs keep-alive client"
        rows.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}"


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # `make bench | head`: end quietly, as a filter would
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(141)
