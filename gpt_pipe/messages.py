"""The messages array: prompt words, stdin, system prompt, a messages file and a
conversation's lines, each checked and turned into messages."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from gpt_pipe.exitcodes import ExitCode, GptPipeError
from gpt_pipe.safejson import check_values, loads


def read_stdin() -> bytes | None:
    """stdin's bytes, or None when there is no stdin to read (a terminal, closed)."""
    stdin = sys.stdin
    if stdin is None:
        return None
    try:
        from gpt_pipe.terminal import is_terminal

        if is_terminal(0):
            return None
        from gpt_pipe.early import stdin_head
        from gpt_pipe.files import MAX_INPUT, read_stream

        head = stdin_head()  # what the start-up's look at stdin took from a pipe
        return head + read_stream(stdin.buffer, "stdin", MAX_INPUT - len(head), ExitCode.DATAERR)
    except (OSError, ValueError):
        return None  # fd 0 closed or unusable: the same as no stdin


def decode_input(data: bytes, what: str) -> str:
    """``data`` as text; exit 65 (with the byte offset) for binary or non-UTF-8 input."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        hint = "; to drop what is not UTF-8: iconv -c -f utf-8 -t utf-8" if what == "stdin" else ""
        raise GptPipeError(
            f"{what} is not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start}); nothing was sent{hint}",
            ExitCode.DATAERR,
        ) from None
    nul = data.find(b"\0")
    if nul >= 0:
        raise GptPipeError(
            f"{what} holds binary data (NUL byte at offset {nul}); nothing was sent", ExitCode.DATAERR
        )
    return text


def check_text(text: str, what: str) -> str:
    """Command-line text whose bytes were not UTF-8 arrives with surrogate escapes."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise GptPipeError(f"{what} is not valid UTF-8; nothing was sent", ExitCode.DATAERR) from None
    return text


def user_prompt(words: tuple[str, ...], stdin_text: str | None) -> str:
    """The PROMPT words joined by spaces, then a blank line and stdin's text verbatim."""
    prompt = check_text(" ".join(words), "the PROMPT argument")
    if not stdin_text:
        return prompt
    if not words:
        return stdin_text
    return f"{prompt}\n\n{stdin_text}"


def load_messages(data: bytes, name: str) -> list[dict[str, Any]]:
    """Parse a messages file: a JSON array of ``{"role": ..., "content": ...}`` objects."""
    what = f"messages file {name}"
    text = decode_input(data, what)
    try:
        messages = loads(text)
    except ValueError as exc:
        hint = ""
        first = text.lstrip()[:4096].split("\n", 1)[0]
        try:
            if isinstance(loads(first), dict) and "\n" in text.strip():
                hint = f"; it looks like JSON Lines, a message per line: a conversation, --conversation {name}"
        except ValueError:
            pass
        raise GptPipeError(f"{what} is not valid JSON: {exc}{hint}", ExitCode.DATAERR) from None
    if not isinstance(messages, list):
        raise GptPipeError(f"{what} must hold a JSON array of messages", ExitCode.DATAERR)
    return check_messages(messages, what)


def load_conversation(data: bytes, name: str, warn: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """Parse a conversation file: JSON Lines, one message per line. A last line with no
    newline that is not JSON was torn by an interrupted write: skipped with a warning."""
    import re

    what = f"conversation file {name}"
    text = decode_input(data, what)
    try:
        check_values(text)  # the whole file: lines of a few values each add up too
    except ValueError as exc:
        raise GptPipeError(f"{what} is too long to send: {exc} (--new starts a new one)", ExitCode.DATAERR) from None
    messages = []
    # Lines found one by one (a list of every line would cost more than the file).
    for match in re.finditer(r"[^\n]+", text):
        line = match.group()
        if line.isspace():
            continue
        try:
            messages.append(loads(line))
        except ValueError as exc:
            if match.end() == len(text) and warn is not None:
                warn(f"{what}: the last line is torn (an interrupted write?); it is ignored")
                break
            number = text.count("\n", 0, match.start()) + 1
            raise GptPipeError(f"{what} line {number} is not valid JSON: {exc}", ExitCode.DATAERR) from None
    return check_messages(messages, what)


def check_messages(messages: list[Any], what: str) -> list[dict[str, Any]]:
    """``messages`` itself, once each is an object with a role and a content; else exit 65."""
    for number, message in enumerate(messages, 1):
        if not isinstance(message, dict):
            raise GptPipeError(f"{what}: message {number} is not a JSON object", ExitCode.DATAERR)
        if not isinstance(message.get("role"), str) or not message["role"]:
            raise GptPipeError(f"{what}: message {number} has no \"role\" string", ExitCode.DATAERR)
        content = message.get("content", ...)
        if content is ... or not (content is None or isinstance(content, (str, list))):
            raise GptPipeError(
                f"{what}: message {number} needs \"content\" (a string, an array of parts or null)",
                ExitCode.DATAERR,
            )
    return messages
