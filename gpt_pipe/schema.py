"""--schema: the schema in its three forms (inline JSON, @FILE, a concise field list), what
it adds to the request, and the check of the answer against it (Draft 2020-12, with the
jsonschema library, imported only when --schema is given)."""

from __future__ import annotations

import json
from typing import Any

from gpt_pipe.exitcodes import ExitCode, GptPipeError
from gpt_pipe.output import KeepText, Sink

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from gpt_pipe.pipeline import RunInfo

# The concise form's types: `name` alone is a string.
TYPES: dict[str, dict[str, Any]] = {
    "string": {"type": "string"},
    "number": {"type": "number"},
    "integer": {"type": "integer"},
    "bool": {"type": "boolean"},
    "boolean": {"type": "boolean"},
    "array": {"type": "array", "items": {"type": "string"}},
    "object": {"type": "object"},
}
# llm's names (and Python's) for the same types.
ALIASES = {"str": "string", "int": "integer", "float": "number", "dict": "object", "list": "array"}

PROMPT = "Answer with one JSON value and nothing else (no prose, no code fence), valid against this JSON Schema:\n"


class SchemaMismatch(GptPipeError):
    """The answer is not JSON, or not valid against --schema: exit 8."""

    invalid = True


def load(spec: str, read_file: Any) -> dict[str, Any]:
    """The JSON Schema that --schema SPEC names; exit 65 for one that is not a schema."""
    text = spec.strip()
    where = "--schema"
    code = ExitCode.USAGE  # a bad value on the command line, as click says of the others
    if text.startswith("@"):
        where = f"--schema file {text[1:]}"
        text = read_file(text[1:]).strip()
        code = ExitCode.DATAERR  # a bad file
    if text.startswith("{"):
        from gpt_pipe.safejson import loads

        try:
            schema = loads(text)
        except ValueError as exc:
            raise GptPipeError(f"{where} is not valid JSON: {exc}", code) from None
    else:
        schema = concise(text, where, code)
    if not isinstance(schema, dict):
        raise GptPipeError(f"{where} must be a JSON object (a JSON Schema)", code)
    from jsonschema import Draft202012Validator, SchemaError

    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise GptPipeError(f"{where} is not a valid JSON Schema: {exc.message[:200]}", code) from None
    except RecursionError:
        raise GptPipeError(f"{where} is nested too deeply", code) from None
    return schema


def concise(spec: str, where: str = "--schema", code: int = ExitCode.USAGE) -> dict[str, Any]:
    """'invoice, total number, paid bool, items array' as a closed object of required fields;
    llm's form too: 'age int, bio: a short bio' (str, int, float; a description after a colon)."""
    properties: dict[str, Any] = {}
    for field in spec.split(","):
        head, colon, description = field.partition(":")
        words = head.split()
        if not words:
            if colon:
                raise GptPipeError(f"{where}: {field.strip()!r} has no field name before its ':'", code)
            continue
        kind = words[1].lower() if len(words) == 2 else "string"
        kind = ALIASES.get(kind, kind)
        if len(words) > 2 or kind not in TYPES:
            kinds = ", ".join([*TYPES, *ALIASES])
            raise GptPipeError(f"{where}: {head.strip()!r} is not NAME or NAME TYPE (types: {kinds}; a description "
                               "follows a colon: 'bio: a short bio')", code)
        properties[words[0]] = dict(TYPES[kind])
        if description.strip():
            properties[words[0]]["description"] = description.strip()
    if not properties:
        raise GptPipeError(f"{where} names no field", code)
    return {"type": "object", "properties": properties, "required": list(properties),
            "additionalProperties": False}


def request_fields(schema: dict[str, Any], mode: str) -> dict[str, Any]:
    """What --schema adds to the request body in the standard mode."""
    if mode != "response_format":
        return {}
    title = schema.get("title") if isinstance(schema.get("title"), str) else "answer"
    name = "".join(ch if ch.isalnum() or ch in "_-" else "_" for ch in title)[:64] or "answer"
    return {"response_format": {"type": "json_schema",
                                "json_schema": {"name": name, "schema": schema, "strict": True}}}


def system_text(schema: dict[str, Any], system: str | None) -> str:
    """--schema-mode prompt: the schema, as JSON, in the system message (after -s's text)."""
    instruction = PROMPT + json.dumps(schema, ensure_ascii=False)
    return f"{system}\n\n{instruction}" if system else instruction


# The longest a check of one answer may take.
CHECK_SECONDS = 30.0


class _TooLong(BaseException):
    """The check's time ran out (a BaseException: no library's except Exception eats it)."""


def _refuse(uri: str) -> Any:
    from referencing.exceptions import NoSuchResource

    raise NoSuchResource(ref=uri)


class Checker:
    """Checks a whole answer: its parsed value, or SchemaMismatch naming one violation."""

    def __init__(self, schema: dict[str, Any]) -> None:
        from jsonschema import Draft202012Validator
        from jsonschema_specifications import REGISTRY
        from referencing import Registry

        # $ref is resolved within the schema only: jsonschema would otherwise fetch a remote
        # (or file:) URI, with no timeout, when the answer reaches it.
        self._validator = Draft202012Validator(schema, registry=REGISTRY.combine(Registry(retrieve=_refuse)))
        # --batch: runs a job in the main thread for a worker (job, seconds) -> its value
        self.in_main_thread: Callable[[Callable[[], Any], float], Any] | None = None

    def check(self, text: str, seconds: float = CHECK_SECONDS) -> Any:
        """The answer's value, checked within ``seconds`` (a pattern that backtracks, or
        uniqueItems over a long mixed array, is the server's to trigger).

        Only in the main thread can a timer signal end the check (the regular expression
        engine holds the GIL, but checks for signals there): a --batch worker hands it to the
        main thread (``in_main_thread``). Elsewhere it checks in a thread it waits for at
        most ``seconds``, which a pattern holding the GIL can outlast.
        """
        import threading

        if threading.current_thread() is threading.main_thread():
            return self._check_with_alarm(text, seconds)
        if self.in_main_thread is not None:
            try:
                return self.in_main_thread(lambda: self._check_with_alarm(text, seconds), seconds)
            except TimeoutError:
                raise SchemaMismatch(f"the answer could not be checked against --schema within {seconds:g} s",
                                     ExitCode.SCHEMA) from None
        outcome: list[Any] = []

        def work() -> None:
            try:
                outcome.append((True, self._check(text)))
            except BaseException as exc:  # handed to the caller as it is
                outcome.append((False, exc))

        worker = threading.Thread(target=work, daemon=True, name="gpt-pipe-schema")
        worker.start()
        worker.join(seconds)
        if not outcome:
            raise SchemaMismatch(f"the answer could not be checked against --schema within {seconds:g} s",
                                 ExitCode.SCHEMA)
        ok, value = outcome[0]
        if not ok:
            raise value
        return value

    def _check_with_alarm(self, text: str, seconds: float) -> Any:
        import signal

        def expire(signum: int, frame: Any) -> None:
            raise _TooLong

        previous = signal.signal(signal.SIGALRM, expire)
        signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.001))
        try:
            return self._check(text)
        except _TooLong:
            raise SchemaMismatch(f"the answer could not be checked against --schema within {seconds:g} s",
                                 ExitCode.SCHEMA) from None
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)

    def _check(self, text: str) -> Any:
        from gpt_pipe.safejson import loads

        try:
            value = loads(text)
        except ValueError as exc:
            if str(exc).startswith("more than"):  # valid or not, too large to hold parsed
                raise SchemaMismatch(f"the answer could not be checked against --schema: it holds {exc}",
                                     ExitCode.SCHEMA) from None
            from gpt_pipe.keys import excerpt

            shown = excerpt(text[:200].strip(), 60)
            raise SchemaMismatch(f"the answer does not match --schema: it is not JSON ({exc}): {shown!r}",
                                 ExitCode.SCHEMA) from None
        from jsonschema.exceptions import best_match
        from referencing.exceptions import Unresolvable

        try:
            error = best_match(self._validator.iter_errors(value))
        except Unresolvable as exc:
            raise GptPipeError(f"--schema: a $ref cannot be resolved ({str(exc)[:200]}); only references within the "
                               "schema are followed", ExitCode.DATAERR) from None
        except RecursionError:
            raise GptPipeError("--schema: the schema's references, or the answer, nest too deeply to check",
                               ExitCode.DATAERR) from None
        if error is not None:
            from gpt_pipe.keys import excerpt

            message = excerpt(error.message, 200)
            raise SchemaMismatch(f"the answer does not match --schema: {error.json_path}: {message}",
                                 ExitCode.SCHEMA)
        return value


class SchemaCheck(KeepText):
    """In front of the output sinks: keeps the answer's text (as KeepText does, for -c and
    --batch too) and, when the answer finished with stop, checks it before anything further
    is completed (so --full and --json write nothing for an answer that does not match).
    The parsed value goes to ``info.parsed``."""

    def __init__(self, main: Sink, checker: Checker, info: RunInfo, limit: int) -> None:
        super().__init__(main, limit)
        self._checker = checker
        self._info = info

    def complete(self) -> None:
        decoder = self._info.decoder
        if decoder is not None and decoder.finish_reason in ("stop", None):  # another reason keeps its code
            spare = self._info.max_time.spare if self._info.max_time is not None else None
            seconds = CHECK_SECONDS if spare is None else max(0.0, min(CHECK_SECONDS, spare))  # within --max-time
            self._info.parsed = self._checker.check(self.text.text(), seconds)
        self._main.complete()
