"""--batch results: each a whole JSON line, scrubbed, written with one write (Output), and
read back by --resume to skip the lines already done (done_ids)."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from gpt_pipe.exitcodes import ExitCode, GptPipeError
from gpt_pipe.terminal import is_terminal

TYPE_CHECKING = False
if TYPE_CHECKING:
    from gpt_pipe.keys import Secrets

# Results with these codes are not final: --resume sends their lines again.
# A server failure (69) is not the line's fault either.
RETRY_ON_RESUME = frozenset({ExitCode.UNAVAILABLE, ExitCode.TEMPFAIL, ExitCode.SIGINT, ExitCode.SIGTERM})


def result_id(line: dict[str, Any] | None, number: int) -> Any:
    return line["id"] if isinstance(line, dict) and line.get("id") is not None else number


def id_key(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def done_ids(path: str) -> set[str]:
    """Ids with a final result in an earlier run's output (a torn or bad line counts as none).
    Only a regular file holds results: a FIFO or a device (/dev/full) has none to resume."""
    from gpt_pipe.files import is_regular, read_lines
    from gpt_pipe.safejson import loads

    done: set[str] = set()
    if not is_regular(path):
        return done
    try:
        with open(path, "rb") as f:
            for _, raw in read_lines(f):
                try:
                    result = loads(raw) if raw is not None else None
                except ValueError:
                    continue
                if isinstance(result, dict) and "id" in result and result.get("exit") not in RETRY_ON_RESUME:
                    try:
                        done.add(id_key(result["id"]))
                    except (ValueError, RecursionError):  # an id no JSON line can carry
                        continue
    except OSError as exc:
        raise GptPipeError(f"cannot read --output file {path}: {exc.strerror}", ExitCode.IOERR) from None
    return done


class Output:
    """Result lines to stdout or an O_APPEND file, each in one write(). Every line is
    scrubbed whole (the key may come back in any field: usage, impact, tool calls), and on
    a terminal its control characters are escaped (the same JSON)."""

    def __init__(self, path: str | None, wait: float, secrets: Secrets | None = None) -> None:
        self.path = path
        self._secrets = secrets
        self._safe = path is None and is_terminal(1)
        if path is None:
            self._fd = sys.stdout.fileno()
        else:
            from gpt_pipe.files import is_regular, open_append

            self._fd = open_append(path, f"--output file {path}", wait)  # created 0600
            try:
                if is_regular(path) and os.fstat(self._fd).st_size and not _ends_with_newline(path):
                    os.write(self._fd, b"\n")  # a line torn by a crash stays alone on its line
            except OSError as exc:
                raise GptPipeError(f"cannot write --output file {path}: {exc.strerror}", ExitCode.IOERR) from None

    def write(self, result: dict[str, Any]) -> None:
        text = _json_line(result)
        if self._secrets is not None:
            text = self._secrets.scrub(text)
        data = text.encode("utf-8", "replace")
        if self._secrets is not None:
            data = self._secrets.scrub_json_line(data)
        if self._safe:
            from gpt_pipe.terminal import neutralize_json

            data = neutralize_json(data)
        data += b"\n"
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._fd, view):]
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise GptPipeError(f"cannot write to {self.path or 'stdout'}: {exc.strerror}", ExitCode.IOERR) from None


def _json_line(result: dict[str, Any]) -> str:
    """``result`` as one line of valid JSON: an id, or a server's value, that JSON cannot
    carry (nested too deep, NaN, Infinity) is dropped rather than written as no JSON."""
    for attempt in (result, {**result, "id": None}):
        try:
            return json.dumps(attempt, ensure_ascii=False, allow_nan=False)
        except (ValueError, RecursionError):
            continue
    kept = {key: result.get(key) for key in ("content", "finish_reason", "exit", "error")}
    try:
        return json.dumps({"id": None, **kept}, ensure_ascii=False, allow_nan=False)
    except (ValueError, RecursionError):
        return json.dumps({"id": None, "exit": int(result.get("exit") or ExitCode.SOFTWARE),
                           "error": "the result holds values JSON cannot carry"})


def _ends_with_newline(path: str) -> bool:
    with open(path, "rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1) == b"\n"
