"""What one invocation asked for, once the command line, environment and config file
have been merged: the Settings object that cli builds and run reads."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds that early.py needs before the connection starts
    from typing import Any


class Settings:
    """Every option under its parameter name, and what is derived from them (a plain
    class: dataclasses imports inspect, a cost paid on every start-up)."""

    prompt: tuple[str, ...]
    model: str
    base_url: str
    api_key_file: str | None
    api_key_cmd: str | None
    api_key_env: str | None
    system: str | None
    messages: str | None
    conversation: str | None
    no_stdin: bool
    attach: tuple[str, ...]
    file: tuple[str, ...]
    max_image: int
    extract: bool
    list_models: bool
    connect_timeout: float
    idle_timeout: float
    max_time: float | None
    retries: int
    max_retry_wait: float
    ca_bundle: str | None
    quiet: bool
    usage: bool
    tee: str | None
    replay: str | None
    dry_run: bool
    batch: str | None
    parallel: int
    keep_order: bool
    output: str | None
    resume: bool
    show_reasoning: bool
    debug: bool
    progress_timeout: float
    max_event: int
    max_answer: int
    file_wait: float
    raw_control: bool
    new: bool
    batch_text: bool
    profile: str | None
    schema: str | None
    schema_mode: str
    retries_invalid: int
    rate: float | None

    def __init__(self, opts: dict[str, Any], levels: dict[str, str]) -> None:
        from gpt_pipe.options import BY_DEST
        from gpt_pipe.paths import expand

        self.__dict__.update(opts)
        for dest, value in opts.items():  # file names: ~ expanded here, once
            option = BY_DEST.get(dest)
            if option is not None and option.kind in ("path", "optional"):
                setattr(self, dest, tuple(map(expand, value)) if option.multiple else expand(value))
        self.levels = levels  # where the base URL and the key source were given (keys.key_source)
        self.mode = "full" if opts["full"] or opts["extract"] else "jsonl" if opts["jsonl"] else \
            "json" if opts["json_"] else "text"
        self.newline: bool = not opts["no_newline"]
        self.user_message: dict[str, Any] | None = None  # the new prompt, for --conversation
        self.saved_system: dict[str, Any] | None = None  # a new -s, saved with the exchange
        self.schema_value: dict[str, Any] | None = None  # --schema, once read and checked


def settings_from(values: dict[str, object], named: set[str], layers: Any) -> Settings:
    """Settings from every option's value (``named``: those given on the command line), once
    the rules between options hold; click's command and the quick path both end here."""
    from gpt_pipe.options import check
    from gpt_pipe.urls import api_base

    check(values, named, values["prompt"])  # type: ignore[arg-type]
    config_levels = layers.level if layers is not None else {}
    # Where each setting was given: keys follow their host (keys.key_source); --debug says it.
    levels = {dest: "line" if dest in named else config_levels.get(dest, "default") for dest in values}
    values["base_url"] = api_base(values["base_url"])  # type: ignore[arg-type]
    return Settings(values, levels)
