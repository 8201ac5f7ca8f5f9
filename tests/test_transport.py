"""TLS, proxies and the API key's sources: all on 127.0.0.1, no name is ever looked up.

Hosts like api.example.invalid only ever reach a local proxy, which never resolves them.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from conftest import KEY
from server import Reply, Server, sse_chunks

HOST = "api.example.invalid"


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1 and HOST, made with the openssl command."""
    if not shutil.which("openssl"):
        pytest.skip("the openssl command is needed to make a test certificate")
    d = tmp_path_factory.mktemp("tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test",
                    "-addext", f"subjectAltName=IP:127.0.0.1,DNS:{HOST}",
                    "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem")],
                   check=True, capture_output=True)
    return str(d / "cert.pem"), str(d / "key.pem")


@pytest.fixture
def tls_server(cert):
    with Server(Reply(sse_chunks(["secure"])), tls=cert) as s:
        yield s


def https_url(server: Server, host: str = "127.0.0.1") -> str:
    return f"https://{host}:{server.port}/v1"


def test_tls_certificates_are_verified(run, tls_server):
    r = run("--base-url", https_url(tls_server), "hi")
    assert (r.code, r.out) == (69, b"") and "TLS failure" in r.err and "certificate verify failed" in r.err
    assert len(r.err.splitlines()) == 1


def test_ca_bundle_option_and_environment(run, tls_server, cert):
    r = run("--base-url", https_url(tls_server), "--ca-bundle", cert[0], "hi")
    assert (r.code, r.out, r.err) == (0, b"secure\n", "")
    r = run("--base-url", https_url(tls_server), "hi", extra_env={"REQUESTS_CA_BUNDLE": cert[0]})
    assert (r.code, r.out, r.err) == (0, b"secure\n", "")
    assert run("--ca-bundle", "/nonexistent/ca.pem", "hi").code == 78


def test_http_proxy_is_honoured_and_plain_http_to_a_remote_host_warns(run, server):
    r = run("--base-url", f"http://{HOST}/v1", "hi",
            extra_env={"HTTP_PROXY": f"http://127.0.0.1:{server.port}", "NO_PROXY": ""})
    assert (r.code, r.out) == (0, b"Hello\n")
    assert server.requests[0].path == f"http://{HOST}/v1/chat/completions"  # absolute form: via the proxy
    assert r.err.splitlines() == [f"gpt-pipe: warning: sending the API key over plain http:// to {HOST}; "
                                  "anyone on the way can read it"]


def test_no_proxy_is_honoured(run, server):
    r = run("hi", extra_env={"HTTP_PROXY": "http://127.0.0.1:9", "NO_PROXY": "127.0.0.1"})
    assert (r.code, r.out, r.err) == (0, b"Hello\n", "")


def test_https_proxy_tunnels_and_still_verifies(run, tls_server, cert):
    with Server(tunnel_to=tls_server.port) as proxy:
        env = {"HTTPS_PROXY": f"http://127.0.0.1:{proxy.port}", "NO_PROXY": ""}
        # Another server than GreenPT's: GREENPT_API_KEY goes there only when a setting says so.
        r = run("--base-url", f"https://{HOST}/v1", "--api-key-env", "GREENPT_API_KEY", "--ca-bundle", cert[0], "hi",
                extra_env=env)
        assert (r.code, r.out, r.err) == (0, b"secure\n", "")
        assert (proxy.requests[0].method, proxy.requests[0].path) == ("CONNECT", f"{HOST}:443")
        assert tls_server.requests[0].headers["authorization"] == f"Bearer {KEY}"
        r = run("--base-url", f"https://{HOST}/v1", "hi", extra_env=env)
        assert r.code == 69 and "certificate verify failed" in r.err


@pytest.mark.parametrize("mode,warns", [(0o600, False), (0o400, False), (0o640, True), (0o644, True)])
def test_key_file_readable_by_others_warns(run, server, tmp_path, mode, warns):
    path = tmp_path / "key"
    path.write_text("sk-file-key-0123456789\n")
    path.chmod(mode)
    r = run("--api-key-file", str(path), "hi")
    assert (r.code, r.out) == (0, b"Hello\n")
    if warns:
        assert r.err == f"gpt-pipe: warning: API key file {path} is readable by other users; " \
                        f"fix with: chmod 600 {path}\n"
    else:
        assert r.err == ""
    assert "sk-file-key-0123456789" not in r.err


def test_api_key_cmd(run, server, home):
    r = run("--api-key-cmd", "printf 'sk-from-cmd-123456\\nsecond line is a note\\n'", "hi")
    assert r.code == 0 and server.requests[-1].headers["authorization"] == "Bearer sk-from-cmd-123456"
    r = run("--api-key-cmd", "echo 'vault is locked' >&2; echo more >&2; exit 3", "hi")
    assert (r.code, r.out) == (78, b"") and r.err == "gpt-pipe: --api-key-cmd failed: vault is locked\n"
    assert run("--api-key-cmd", "true", "hi").code == 78
    config = home / ".config" / "gpt-pipe"
    config.mkdir(parents=True)
    (config / "config.toml").write_text("api_key_cmd = \"echo sk-config-cmd-0000\"\n")
    run("hi", drop_env=("GREENPT_API_KEY",))
    run("hi")
    run("--api-key-cmd", "echo sk-flag-cmd-00000", "hi")
    assert [r.headers["authorization"] for r in server.requests[-3:]] == [
        "Bearer sk-config-cmd-0000", f"Bearer {KEY}", "Bearer sk-flag-cmd-00000"]


def test_two_key_sources_on_the_command_line_is_a_usage_error(run, server, tmp_path):
    path = tmp_path / "key"
    path.write_text("sk-x")
    assert run("--api-key-file", str(path), "--api-key-cmd", "echo k", "hi").code == 2


def test_the_key_is_not_in_the_process_arguments(run, server):
    # There is no option that takes the key itself.
    r = run("--api-key", "sk-secret", "hi")
    assert r.code == 2 and "No such option" in r.err


def test_loopback_http_does_not_warn(run, server):
    for host in ("127.0.0.1", "localhost"):
        r = run("--base-url", f"http://{host}:{server.port}/v1", "hi")
        assert (r.code, r.err) == (0, "")


def test_key_from_env_file_and_cmd_never_printed_in_debug(run, server, tmp_path):
    r = run("--debug", "hi")
    assert KEY not in r.err and "Bearer sk-…WXYZ" in r.err
    path = tmp_path / "key"
    path.write_text("sk-file-debug-key-9876")
    os.chmod(path, 0o600)
    r = run("--debug", "--api-key-file", str(path), "hi")
    assert "sk-file-debug-key-9876" not in r.err and "sk-…9876" in r.err
