"""The connection set up during start-up: it carries the request, it is exactly as strict
about certificates as the normal path, and runs that send nothing open no connection."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from conftest import KEY
from server import Reply, Server, sse_chunks

EARLY = "the request went out on the connection set up during start-up"


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A private CA, a certificate it signed for 127.0.0.1, an expired one, and another CA."""
    if not shutil.which("openssl"):
        pytest.skip("the openssl command is needed to make test certificates")
    d = tmp_path_factory.mktemp("pki")

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=d)

    for ca in ("ca", "other-ca"):
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN=gpt-pipe test {ca}",
                "-keyout", f"{ca}.key", "-out", f"{ca}.pem")
    (d / "ext").write_text("subjectAltName=IP:127.0.0.1\n")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "leaf.key", "-out",
            "leaf.csr")
    for name, days in (("leaf", "2"), ("expired", "-1")):
        openssl("x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-set_serial", "7",
                "-days", days, "-extfile", "ext", "-out", f"{name}.pem")
    return d


def tls_server(pki, cert: str = "leaf") -> Server:
    return Server(Reply(sse_chunks(["secure"])), tls=(str(pki / f"{cert}.pem"), str(pki / "leaf.key")))


@pytest.mark.parametrize("early", [True, False])
def test_the_request_goes_out_on_the_early_connection(run, pki, early):
    with tls_server(pki) as server:
        r = run("--debug", "--base-url", f"https://127.0.0.1:{server.port}/v1", "--ca-bundle", str(pki / "ca.pem"),
                "hi", extra_env={} if early else {"GPT_PIPE_EARLY": "0"})
        assert (r.code, r.out) == (0, b"secure\n")
        assert (EARLY in r.err) is early
        assert (server.connections, server.handshakes, len(server.requests)) == (1, 1, 1)


@pytest.mark.parametrize("early", [True, False])
@pytest.mark.parametrize("case", ["wrong CA", "wrong hostname", "expired"])
def test_certificates_are_checked_through_both_paths(run, pki, case, early):
    with tls_server(pki, "expired" if case == "expired" else "leaf") as server:
        host = "localhost" if case == "wrong hostname" else "127.0.0.1"
        ca = pki / ("other-ca.pem" if case == "wrong CA" else "ca.pem")
        r = run("--debug", "--base-url", f"https://{host}:{server.port}/v1", "--ca-bundle", str(ca), "hi",
                extra_env={} if early else {"GPT_PIPE_EARLY": "0"})
        assert (r.code, r.out) == (69, b"") and "TLS failure" in r.err, r
        why = {"wrong CA": "certificate verify failed", "wrong hostname": "mismatch", "expired": "expired"}[case]
        assert why in r.err and EARLY not in r.err
        assert server.requests == []  # nothing ever went out over an unverified connection


def test_the_ca_bundle_comes_from_the_environment_too(run, pki):
    with tls_server(pki) as server:
        r = run("--debug", "--base-url", f"https://127.0.0.1:{server.port}/v1", "hi",
                extra_env={"REQUESTS_CA_BUNDLE": str(pki / "ca.pem")})
        assert r.code == 0 and EARLY in r.err and server.handshakes == 1
        r = run("--debug", "--base-url", f"https://127.0.0.1:{server.port}/v1", "hi")  # certifi's: refused
        assert r.code == 69 and "certificate verify failed" in r.err


@pytest.mark.parametrize("args, stdin", [
    (["--help"], b""), (["--version"], b""), (["--dry-run", "hi"], b""), (["--replay", "-"], b"{}\n"),
    (["--bogus", "hi"], b""), (["--temperature", "hot", "hi"], b""), (["--full", "--jsonl", "hi"], b""),
    (["--retries", "-1", "hi"], b""), (["-o", "novalue", "hi"], b""), ([], b""), ([], b"  \n "),
    (["   "], b""), (["--list-models"], b""), (["--batch"], b'{"prompt": "x"}\n'),
])
def test_runs_that_send_no_chat_request_open_no_early_connection(run, server, args, stdin):
    r = run("--debug", *args, stdin=stdin)
    assert EARLY not in r.err
    if "--list-models" not in args and "--batch" not in args:
        assert server.connections == 0, r


def test_a_prompt_on_stdin_is_read_whole_after_the_start_up_looked_at_it(run, server):
    text = "x" * 200_000 + "\nthe end"  # more than the start-up takes from the pipe
    r = run("--debug", stdin=text.encode())
    assert r.code == 0 and EARLY in r.err
    assert server.requests[0].json["messages"][-1]["content"] == text


def test_a_base_url_from_the_config_file(run, server, home):
    (home / ".config" / "gpt-pipe").mkdir(parents=True)
    (home / ".config" / "gpt-pipe" / "config.toml").write_text(f'base_url = "{server.url}"\n')
    r = run("--debug", "hi", drop_env=("GREENPT_BASE_URL",))
    assert r.code == 0 and EARLY in r.err and server.connections == 1


def test_a_proxy_means_the_normal_path(run, server):
    r = run("--debug", "--base-url", "http://api.example.invalid/v1", "hi",
            extra_env={"HTTP_PROXY": f"http://127.0.0.1:{server.port}", "NO_PROXY": ""})
    assert r.code == 0 and EARLY not in r.err
    assert server.requests[0].path == "http://api.example.invalid/v1/chat/completions"


def test_a_server_that_closed_the_early_connection_gets_a_new_one(run):
    import socket
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    port = listener.getsockname()[1]
    with Server(Reply(sse_chunks(["fresh"]))) as upstream:
        def first_closes_then_relay() -> None:
            early_conn, _ = listener.accept()
            early_conn.close()  # gone before gpt-pipe sends anything
            conn, _ = listener.accept()
            back = socket.create_connection(("127.0.0.1", upstream.port))
            conn.settimeout(20)
            back.sendall(conn.recv(65536))
            back.settimeout(20)
            while data := back.recv(65536):
                conn.sendall(data)
            conn.close()

        relay = threading.Thread(target=first_closes_then_relay, daemon=True)
        relay.start()
        r = run("--base-url", f"http://127.0.0.1:{port}/v1", "hi")
        relay.join(20)
    listener.close()
    assert (r.code, r.out) == (0, b"fresh\n")


def test_key_never_in_the_early_path_debug_output(run, server):
    r = run("--debug", "hi")
    assert KEY not in r.err and EARLY in r.err
