"""Images (-a/--attach) and named text files (-f/--file), in every mode: the bytes the server
receives are checked (images decoded and compared, files verbatim with their names), and
every refusal comes before anything is sent."""

from __future__ import annotations

import base64
import json
import struct
import zlib

import pytest


def png(width: int = 2, height: int = 2) -> bytes:
    rows = b"".join(b"\x00" + b"\x10\x20\x30" * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) + b"\xff\xd9"
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 " + b"\x00" * 24


def parts(request) -> list:
    return request.json["messages"][-1]["content"]


def decoded(part: dict) -> tuple[str, bytes]:
    head, _, data = part["image_url"]["url"].partition(",")
    return head, base64.b64decode(data)


@pytest.fixture
def files(tmp_path):
    (tmp_path / "shot.png").write_bytes(png())
    (tmp_path / "photo.bin").write_bytes(JPEG)  # a JPEG by its bytes, whatever its name
    (tmp_path / "a.py").write_bytes(b"print('a')\r\n  trailing  \n")
    (tmp_path / "notes.txt").write_bytes("caf\u00e9 \u2014 no newline at the end".encode())
    return tmp_path


def test_images_and_files_reach_the_server_byte_for_byte(run, server, files):
    r = run("-a", str(files / "shot.png"), "--attach", str(files / "photo.bin"), "-f", str(files / "a.py"),
            "--file", str(files / "notes.txt"), "What is in these?", stdin=b"from stdin\n")
    assert r.code == 0, r
    text, first, second = parts(server.requests[0])
    assert decoded(first) == ("data:image/png;base64", png()) and decoded(second) == ("data:image/jpeg;base64", JPEG)
    a, notes = (files / "a.py").read_bytes().decode(), (files / "notes.txt").read_text()
    assert text == {"type": "text", "text": f'What is in these?\n\n<file name="{files / "a.py"}">\n{a}\n</file>\n\n'
                                            f'<file name="{files / "notes.txt"}">\n{notes}\n</file>\n\nfrom stdin\n'}


def test_a_file_without_prompt_words_and_a_webp_image_alone(run, server, files):
    (files / "anim").write_bytes(WEBP)
    assert run("-f", str(files / "a.py")).code == 0
    assert server.requests[0].json["messages"][-1]["content"].startswith(f'<file name="{files / "a.py"}">\n')
    assert run("-a", str(files / "anim")).code == 0
    assert [decoded(part)[0] for part in parts(server.requests[1])] == ["data:image/webp;base64"]


def test_an_image_url_is_passed_on_never_fetched(run, server):
    url = server.url.replace("/v1", "/cat.png")
    assert run("-a", url, "Describe it").code == 0
    assert parts(server.requests[0])[1] == {"type": "image_url", "image_url": {"url": url}}
    assert [request.path for request in server.requests] == ["/v1/chat/completions"]


def test_an_image_from_stdin_with_the_prompt_from_the_words(run, server):
    assert run("-a", "-", "What is this?", stdin=png()).code == 0
    text, image = parts(server.requests[0])
    assert text == {"type": "text", "text": "What is this?"} and decoded(image)[1] == png()


@pytest.mark.parametrize("make, args, says", [
    (lambda d: (d / "x.txt").write_text("hello"), ["-a", "{d}/x.txt"], "is not a PNG, JPEG, GIF or WebP image"),
    (lambda d: (d / "x.bin").write_bytes(b"ab\0cd"), ["-f", "{d}/x.bin"], "is not text (it holds NUL bytes"),
    (lambda d: (d / "x.txt").write_bytes(b"caf\xe9"), ["-f", "{d}/x.txt"], "is not UTF-8 text"),
    (lambda d: None, ["-a", "{d}/missing.png"], "No such file"),
    (lambda d: None, ["-f", "{d}"], "is a directory"),
    (lambda d: (d / "big.png").write_bytes(png() + b"\0" * 2048), ["--max-image", "1K", "-a", "{d}/big.png"],
     "larger than 1 KiB (--max-image)"),
    (lambda d: (d / "x.txt").write_text("hi"), ["-a", "{d}/good.png", "-a", "{d}/x.txt"], "x.txt is not a PNG"),
])
def test_a_bad_attachment_sends_nothing(run, server, tmp_path, make, args, says):
    (tmp_path / "good.png").write_bytes(png())
    make(tmp_path)
    r = run(*[arg.format(d=tmp_path) for arg in args], "hi")
    assert r.code == 65 and says in r.err and server.requests == [] and len(r.err.splitlines()) == 1, r
    assert "\\x00" not in r.err and "hello" not in r.err  # the file's bytes are never shown


def test_bounded_reads_for_attachments(run, server):
    r = run("-a", "/dev/zero", "--max-image", "64K", "hi")
    assert r.code == 65 and "larger than 64 KiB" in r.err and server.requests == []


@pytest.mark.parametrize("mode", ["--full", "--jsonl", "--json", "-x"])
def test_every_output_mode_takes_attachments(run, server, files, mode):
    r = run(mode, "-a", str(files / "shot.png"), "-f", str(files / "a.py"), "hi")
    assert r.code == 0 and r.out, r
    assert decoded(parts(server.requests[0])[1])[1] == png()


def test_dry_run_and_debug_never_show_an_image_whole(run, server, files):
    encoded = base64.b64encode(JPEG).decode()
    r = run("--dry-run", "-a", str(files / "photo.bin"), "hi")
    assert r.code == 0 and encoded not in r.out.decode() and "data:image/jpeg;base64,…(" in r.out.decode()
    assert "shortened" in r.err
    r = run("--debug", "-a", str(files / "photo.bin"), "hi")
    assert r.code == 0 and encoded[:80] not in r.err and "data:image/jpeg;base64,…(" in r.err, r.err


def test_a_conversation_keeps_the_image_for_the_next_turn(run, server, files):
    chat = files / "chat.jsonl"
    assert run("--conversation", str(chat), "-a", str(files / "shot.png"), "What is it?").code == 0
    assert run("--conversation", str(chat), "And its colour?").code == 0
    history = server.requests[1].json["messages"]
    assert decoded(history[0]["content"][1])[1] == png() and history[-1]["content"] == "And its colour?"


def test_batch_lines_carry_attachments_and_files_and_a_bad_one_fails_alone(run, server, files):
    lines = [{"id": 1, "prompt": "one", "attachments": [str(files / "shot.png")], "files": [str(files / "a.py")]},
             {"id": 2, "prompt": "two", "attachments": [str(files / "a.py")]},
             {"id": 3, "prompt": "three"}]
    r = run("--batch", "--keep-order", stdin="".join(json.dumps(line) + "\n" for line in lines).encode())
    results = [json.loads(line) for line in r.out.splitlines()]
    assert [result["exit"] for result in results] == [0, 65, 0] and "a.py is not a PNG" in results[1]["error"]
    sent = {request.json["messages"][-1]["content"] if isinstance(request.json["messages"][-1]["content"], str)
            else request.json["messages"][-1]["content"][0]["text"] for request in server.requests}
    assert sent == {f'one\n\n<file name="{files / "a.py"}">\n' + (files / "a.py").read_bytes().decode() + "\n</file>",
                    "three"}


def test_attach_and_file_with_batch_say_where_they_go(run, server):
    r = run("--batch", "-a", "x.png", stdin=b'{"prompt": "hi"}\n')
    assert r.code == 2 and '"attachments"' in r.err


def test_a_run_without_attachments_never_imports_their_code(server, env):
    import subprocess

    from conftest import GPT_PIPE

    proc = subprocess.run([*GPT_PIPE, "hi"], env=dict(env, PYTHONPROFILEIMPORTTIME="1"), capture_output=True,
                          stdin=subprocess.DEVNULL, timeout=60)
    assert proc.returncode == 0 and b"gpt_pipe.request" in proc.stderr and b"gpt_pipe.attach" not in proc.stderr


@pytest.mark.parametrize("option", ["-a", "--file", "--conversation"])
def test_options_that_take_a_file_complete_file_names(run, option):
    words = f"gpt-pipe {option} sh"
    r = run(extra_env={"_GPT_PIPE_COMPLETE": "bash_complete", "COMP_WORDS": words, "COMP_CWORD": "2"})
    assert r.code == 0 and r.out.decode().split() == ["file,sh"], r


def test_a_fifo_nobody_writes_is_refused_after_file_wait(run, server, tmp_path):
    import os

    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    for option in ("-a", "-f"):
        r = run("--file-wait", "0.2", option, str(fifo), "hi")
        assert r.code == 65 and "nothing to read after 0.2 s" in r.err and server.requests == [], r
