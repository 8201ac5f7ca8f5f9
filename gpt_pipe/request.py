"""The request plan: what every request of a run is made of, worked out once from the
Settings (model, sampling fields and -o, the usage request, --schema's fields and
checker, the system text with its checks), then asked for the body of a single run or
of one --batch line. No click and no requests here: start-up code may use it too.
"""

from __future__ import annotations

from gpt_pipe.exitcodes import ExitCode, GptPipeError
from gpt_pipe.messages import check_messages, check_text

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from gpt_pipe.schema import Checker
    from gpt_pipe.settings import Settings

# Request fields the command line sets directly, in the order they join the body.
SAMPLING = ("temperature", "max_tokens", "top_p", "seed", "reasoning_effort")

# What a --batch line may set besides its messages.
LINE_OVERRIDES = ("model", "temperature", "max_tokens")


class RequestPlan:
    """The parts of every request of one invocation. ``batch``: the usage request is
    always made (results carry usage)."""

    def __init__(self, settings: Settings, batch: bool = False) -> None:
        from gpt_pipe.files import read_value_file

        def read(path: str) -> str:
            return read_value_file(path, settings.file_wait)

        self.model = settings.model
        self.file_wait = settings.file_wait
        self.max_image = settings.max_image
        self.system = None if settings.system is None else check_text(settings.system, "the --system text")
        self.usage: dict[str, Any] = {}
        if batch or settings.usage or settings.mode == "json":
            from gpt_pipe.usage import usage_request

            self.usage = usage_request(settings.base_url)
        self.schema: dict[str, Any] | None = None
        self.schema_mode = settings.schema_mode
        self.schema_fields: dict[str, Any] = {}
        if settings.schema:
            from gpt_pipe import schema as schemas

            self.schema = schemas.load(settings.schema, read)
            self.schema_fields = schemas.request_fields(self.schema, settings.schema_mode)
        self.fields: dict[str, Any] = {name: getattr(settings, name) for name in SAMPLING
                                       if getattr(settings, name) is not None}
        if settings.stop:
            self.fields["stop"] = list(settings.stop)
        self.fields.update(option_fields(settings.option, read))

    def system_for(self, system: str | None) -> str | None:
        """The system message's text: ``system``, with the schema after it in prompt mode."""
        if self.schema is not None and self.schema_mode == "prompt":
            from gpt_pipe.schema import system_text

            return system_text(self.schema, system)
        return system

    def body(self, messages: list[dict[str, Any]], model: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"model": model or self.model, "messages": messages, "stream": True}
        body.update(self.usage)
        body.update(self.schema_fields)
        body.update(self.fields)
        return body

    def single(self, history: list[dict[str, Any]], prompt: str,
               images: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """A single run's body: the system message, the history, then the prompt (when it
        is not blank) with the images (-a) after it."""
        messages: list[dict[str, Any]] = []
        system = self.system_for(self.system)
        if system is not None:
            messages.append({"role": "system", "content": system})
        messages.extend(history)
        user = user_message(prompt, images or [])
        if user is not None:
            messages.append(user)
        if not messages:
            raise GptPipeError("nothing to send: the messages file is empty and there is no prompt", ExitCode.USAGE)
        return self.body(messages)

    def for_line(self, line: dict[str, Any]) -> dict[str, Any]:
        """One --batch line's body: its "system" (else -s), "messages" and "prompt"; its
        "model", "temperature" and "max_tokens" replace the command line's."""
        system = line.get("system", self.system)
        if system is not None and not isinstance(system, str):
            raise GptPipeError('"system" must be a string', ExitCode.DATAERR)
        system = self.system_for(system)
        messages: list[dict[str, Any]] = []
        if system is not None:
            messages.append({"role": "system", "content": system})
        if "messages" in line:
            if not isinstance(line["messages"], list):
                raise GptPipeError('"messages" must be an array of messages', ExitCode.DATAERR)
            messages.extend(check_messages(line["messages"], "the line"))
        prompt = line.get("prompt")
        if prompt is not None and not isinstance(prompt, str):
            raise GptPipeError('"prompt" must be a string', ExitCode.DATAERR)
        images, files = _line_list(line, "attachments"), _line_list(line, "files")
        if images or files:
            from gpt_pipe.attach import file_block, image_part

            blocks = [file_block(path, self.file_wait, "") for path in files]
            prompt = "\n\n".join([*([prompt] if prompt else []), *blocks])
            images = [image_part(source, self.max_image, self.file_wait) for source in images]
        user = user_message(prompt or "", images)
        if user is not None:
            messages.append(user)
        if not any(m.get("role") != "system" for m in messages):
            raise GptPipeError('the line has no "prompt" and no "messages"', ExitCode.DATAERR)
        body = self.body(messages)
        for key in LINE_OVERRIDES:
            if key in line:
                body[key] = line[key]
        return body

    def checker(self) -> Checker | None:
        """The --schema checker, or None without --schema."""
        if self.schema is None:
            return None
        from gpt_pipe.schema import Checker

        return Checker(self.schema)


def user_message(prompt: str, images: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The user message: the prompt's text (when not blank; strip() would copy a 32 MiB
    prompt), as a string, or as a list of parts when images (-a) go with it."""
    text = bool(prompt) and not prompt.isspace()
    if not images:
        return {"role": "user", "content": prompt} if text else None
    return {"role": "user", "content": [*([{"type": "text", "text": prompt}] if text else []), *images]}


def _line_list(line: dict[str, Any], key: str) -> list[str]:
    value = line.get(key, [])
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise GptPipeError(f'"{key}" must be an array of paths', ExitCode.DATAERR)
    return value


def option_fields(values: tuple[str, ...] | list[str], read_file: Any) -> dict[str, Any]:
    """-o KEY=VALUE: VALUE as JSON when it parses, else as text; @FILE for a file's content
    (JSON when it parses, else text), @@ for a value that starts with '@'. (The option
    table has checked each is KEY=VALUE with a KEY gpt-pipe does not build itself.)"""
    import json

    body: dict[str, Any] = {}
    for item in values:
        key, _, raw = item.partition("=")
        if raw.startswith("@@"):
            raw = raw[1:]
        elif raw.startswith("@"):
            raw = read_file(raw[1:])
        try:
            body[key.strip()] = json.loads(raw)
        except ValueError:
            body[key.strip()] = raw
    return body
