"""-a/--attach and -f/--file: images sent as content parts, text files framed with their
names. Imported only when a run (or a batch line) names one: nothing here costs a run
without them.

An image is recognised by its first bytes, never by its name, and goes out as a data URL
with its exact bytes; an http(s) URL is passed on as it is, never fetched here. A text file
must be UTF-8 without NUL bytes and goes into the prompt byte for byte between lines that
name it. Anything else is refused (exit 65, naming the file, never showing its bytes)
before anything is sent.
"""

from __future__ import annotations

import base64
import os
import re
from typing import Any

from gpt_pipe.exitcodes import ExitCode, GptPipeError

# First bytes -> the image's media type (PNG, JPEG, GIF, WebP: what the chat APIs take).
_SIGNATURES = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"), (b"GIF87a", "image/gif"),
               (b"GIF89a", "image/gif"))


def image_type(data: bytes) -> str | None:
    """The media type of an image by its first bytes, or None."""
    for signature, media in _SIGNATURES:
        if data.startswith(signature):
            return media
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def image_part(source: str, cap: int, wait: float, stdin: bytes | None = None, where: str = "") -> dict[str, Any]:
    """The content part for ``-a SOURCE``: a URL passed on, or a file's (``-``: stdin's,
    given as ``stdin``) image as a data URL. ``where`` prefixes messages ("line 3: ")."""
    if source.lower().startswith(("http://", "https://")):
        return {"type": "image_url", "image_url": {"url": source}}
    if source == "-":
        name = "stdin"
        data = stdin or b""
        if len(data) > cap:
            raise GptPipeError(f"{where}the image on stdin is larger than {_size(cap)} (--max-image); nothing was sent",
                               ExitCode.DATAERR)
    else:
        name = source
        data = _read(source, f"attachment {source}", cap, wait, "--max-image")
    media = image_type(data)
    if media is None:
        raise GptPipeError(f"{where}attachment {name} is not a PNG, JPEG, GIF or WebP image (-f sends a text file); "
                           "nothing was sent", ExitCode.DATAERR)
    return {"type": "image_url", "image_url": {"url": f"data:{media};base64,{base64.b64encode(data).decode('ascii')}"}}


def file_block(path: str, wait: float, where: str = "") -> str:
    """``-f PATH``: the file's text, byte for byte, between lines that name it."""
    from gpt_pipe.files import MAX_INPUT

    data = _read(path, f"file {path}", MAX_INPUT, wait, None)
    if b"\0" in data:
        raise GptPipeError(f"{where}file {path} is not text (it holds NUL bytes; -a sends an image); nothing was sent",
                           ExitCode.DATAERR)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise GptPipeError(f"{where}file {path} is not UTF-8 text (byte {exc.start}); nothing was sent",
                           ExitCode.DATAERR) from None
    shown = path.replace("\\", "\\\\").replace('"', '\\"')
    return f'<file name="{shown}">\n{text}\n</file>'


def _read(path: str, what: str, cap: int, wait: float, flag: str | None) -> bytes:
    from gpt_pipe.files import read_capped

    if os.path.isdir(path):
        raise GptPipeError(f"cannot read {what}: it is a directory", ExitCode.DATAERR)
    try:
        return read_capped(path, what, cap, ExitCode.DATAERR, wait)
    except GptPipeError as exc:
        if flag and "larger than" in exc.message:
            exc.message = exc.message.replace("; nothing was sent", f" ({flag}); nothing was sent")
        raise


def _size(cap: int) -> str:
    from gpt_pipe.options import format_size

    return format_size(cap)


_DATA_URL = re.compile(r"data:(image/[a-z+.-]+);base64,[A-Za-z0-9+/=]{64,}")


def shorten_data_urls(text: str) -> str:
    """Data URLs in ``text`` as their type and size only: stderr and --dry-run never carry an
    image whole."""
    if "data:image/" not in text:
        return text
    def shortened(match: re.Match[str]) -> str:
        encoded = len(match.group(0)) - len(f"data:{match.group(1)};base64,")
        return f"data:{match.group(1)};base64,…({encoded * 3 // 4:,} bytes, shortened)"

    return _DATA_URL.sub(shortened, text)
