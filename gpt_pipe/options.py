"""The option table: every option of the command declared once, and the readers of argv,
the environment and the config file that work from it.

Standard library only, and cheap to import: the early connection (early.py) reads argv
with ``scan`` before click is imported. From this one table come the click options
(cli.py), the help headings (helptext.py), the config file's checks and conversions
(config.py), the pre-scan, and the exclusive, batch-only and --list-models rules.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds that early.py needs before the connection starts
    from typing import Any

DEFAULT_BASE_URL = "https://api.greenpt.ai/v1"
DEFAULT_MODEL = "green-l"

# The default bound on waiting for a file: a FIFO's other end, data from a process
# substitution, a lock another gpt-pipe holds on a conversation file.
FILE_WAIT = 30.0

KEY_VARIABLE = "GREENPT_API_KEY"
PROFILE_VARIABLE = "GPT_PIPE_PROFILE"

_SIZE_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


class Option:
    """One option. ``kind``: flag, text, path (a file name: ``~`` expanded once, in
    Settings), number, seconds (a number > 0), integer, size, rate (N/s, N/min), choice,
    keyvalue, or optional (a flag that takes a value when one follows)."""

    __slots__ = ("answer", "batch", "choices", "config", "decls", "default", "dest", "env", "group", "help",
                 "high", "kind", "low", "metavar", "multiple", "one_of", "request", "show_default")

    def __init__(self, decls: tuple[str, ...], dest: str, kind: str, group: str, help: str, *,
                 default: Any = None, metavar: str | None = None, env: str | None = None, config: bool = True,
                 request: bool = True, one_of: str | None = None, batch: str | None = None, answer: bool = False,
                 multiple: bool = False, low: float | None = None, high: float | None = None,
                 choices: tuple[str, ...] = (), show_default: bool = False) -> None:
        self.decls = decls  # as typed: ("-m", "--model")
        self.dest = dest  # the Settings attribute and click parameter name
        self.kind = kind
        self.group = group  # its heading in --help and gpt-pipe(1)
        self.help = help
        self.default = default
        self.metavar = metavar
        self.env = env  # an environment variable that sets it (below the profile, above the file)
        self.config = config  # whether config.toml may set it
        self.request = request  # False: a run given this option sends no chat request
        self.one_of = one_of  # the exclusive group it belongs to
        # None: fine with or without --batch; "only": only with --batch; other text: refused
        # with --batch, the text saying what to use instead ("" for nothing to say).
        self.batch = batch
        self.answer = answer  # about an answer: --list-models refuses it
        self.multiple = multiple
        self.low, self.high = low, high
        self.choices = choices
        self.show_default = show_default

    @property
    def flag(self) -> bool:
        return self.kind == "flag"

    @property
    def name(self) -> str:
        """The long name, as messages write it: --json (not json_)."""
        return next(decl for decl in self.decls if decl.startswith("--"))

    @property
    def key(self) -> str:
        """Its key in config.toml: json (not json_)."""
        return self.dest.rstrip("_")

    def convert(self, value: Any, from_text: bool = True) -> Any:
        """``value`` as this option takes it, or ValueError with what it should be and, for a
        value of the right type that this option does not take, why: ("out of range", why).

        ``from_text``: the value was written on a command line or in an environment variable;
        else it is a TOML value, which must also have the right type.
        """
        kind = self.kind
        if kind == "flag":
            if not isinstance(value, bool):
                raise ValueError("not true or false")
            return value
        if isinstance(value, bool):
            raise ValueError(_WANTED.get(kind, "not a string"))
        if kind in ("text", "path", "optional", "keyvalue", "choice"):
            if not isinstance(value, str):
                raise ValueError("not a string")
            if kind == "keyvalue":
                key, sep, _ = value.partition("=")
                if not sep or not key.strip():
                    raise ValueError(f"not KEY=VALUE: {value!r}")
                if key.strip() in ("messages", "stream"):
                    raise ValueError(f"cannot set {key.strip()!r}: gpt-pipe builds it")
            if kind == "choice" and value not in self.choices:
                raise ValueError(f"not one of {', '.join(self.choices)}")
            return value
        if kind == "size":
            return parse_size(value)
        if kind == "rate":
            return parse_rate(value)
        if kind == "integer":
            if isinstance(value, float) or (not from_text and not isinstance(value, int)):
                raise ValueError("not a whole number")
            try:
                number: Any = int(value.strip()) if isinstance(value, str) else value
            except ValueError:
                raise ValueError("not a whole number") from None
        else:  # number, seconds
            if not from_text and not isinstance(value, (int, float)):
                raise ValueError("not a number")
            try:
                number = float(value)
            except (ValueError, OverflowError):
                raise ValueError("not a number") from None
            if number != number or number in (float("inf"), float("-inf")):
                raise ValueError("not a number")
        low, high = self.low, self.high
        if (low is not None and (number < low or (kind == "seconds" and number == low))) or \
                (high is not None and number > high):
            raise ValueError("out of range", self.range())
        return number

    def bounds(self) -> str:
        """The bounds of a number, as click writes them: x>=1, 1<=x<=256, x>0; '' for none."""
        low, high = self.low, self.high
        if low is None and high is None:
            return ""
        show = (lambda n: f"{n:g}") if self.kind != "integer" else (lambda n: str(int(n)))
        if low is not None and high is not None:
            return f"{show(low)}<=x<={show(high)}"
        if low is not None:
            return f"x>{show(low)}" if self.kind == "seconds" else f"x>={show(low)}"
        return f"x<={show(high)}"

    def range(self) -> str:
        """The values it takes, in words: 'more than 0', '1 to 256', 'at least 0'."""
        low, high = self.low, self.high
        show = (lambda n: f"{n:g}") if self.kind != "integer" else (lambda n: str(int(n)))
        if low is not None and high is not None:
            return f"{show(low)} to {show(high)}"
        if low is not None:
            return f"more than {show(low)}" if self.kind == "seconds" else f"at least {show(low)}"
        return f"at most {show(high)}" if high is not None else "any"


_WANTED = {"number": "not a number", "seconds": "not a number", "integer": "not a whole number",
           "size": "not a size (like 4M or 512K)", "rate": "not a rate (like 9/s or 540/min)"}


def parse_size(value: Any) -> int:
    """A size in bytes from 4194304, 512K, 4M, 1G, 4MiB (binary units); at least 1K."""
    if isinstance(value, int) and not isinstance(value, bool):
        size = value
    elif isinstance(value, str):
        text = value.strip().lower().removesuffix("ib").removesuffix("b")
        unit = text[-1:] if text[-1:] in _SIZE_UNITS else ""
        try:
            number = float(text[: len(text) - len(unit)])
        except ValueError:
            raise ValueError("not a size (like 4M or 512K)") from None
        if number != number or number in (float("inf"), float("-inf")):
            raise ValueError("not a size (like 4M or 512K)")
        size = int(number * _SIZE_UNITS[unit])
    else:
        raise ValueError("not a size (like 4M or 512K)")
    if size < 1024:
        raise ValueError("out of range", "at least 1K")
    return size


_PER = {"s": 1.0, "sec": 1.0, "second": 1.0, "m": 60.0, "min": 60.0, "minute": 60.0, "h": 3600.0, "hour": 3600.0}


def parse_rate(value: Any) -> float:
    """Requests per second from ``9/s``, ``540/min``, ``2000/h``."""
    if not isinstance(value, str):
        raise ValueError("not a rate (like 9/s or 540/min)")
    number, sep, unit = value.strip().lower().partition("/")
    try:
        count = float(number)
    except ValueError:
        raise ValueError("not a rate (like 9/s or 540/min)") from None
    if not sep or unit.strip() not in _PER or not count == count or count in (float("inf"), float("-inf")):
        raise ValueError("not a rate (like 9/s or 540/min)")
    if count <= 0:
        raise ValueError("out of range", "more than 0")
    return count / _PER[unit.strip()]


def format_size(size: int) -> str:
    """``4 MiB``, ``512 KiB``, ``100 bytes``: a size as a user wrote it."""
    for unit, factor in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= factor and size % factor == 0:
            return f"{size // factor} {unit}"
    return f"{size} bytes"


_O = Option
INPUT, OUTPUT, REQUEST, CONVERSATION = "Input", "Output", "Request", "Conversation and logs"
BATCH, NETWORK, KEYS, DIAGNOSTICS = "Batch", "Network and retries", "Keys and config", "Diagnostics"
_JSONL_ALREADY = "results are JSON Lines already"
_LINE_MESSAGES = 'give each line its "messages"'

# In the order --help lists them under each heading (gpt-pipe(1) follows the same order).
OPTIONS: tuple[Option, ...] = (
    _O(("-s", "--system"), "system", "text", INPUT, "Add a system message first.", metavar="TEXT", answer=True),
    _O(("--messages",), "messages", "path", INPUT,
       "JSON array of {role, content} messages to send before the prompt ('-' for stdin).", metavar="FILE",
       batch=_LINE_MESSAGES, answer=True),
    _O(("-a", "--attach"), "attach", "path", INPUT,
       "Send an image (PNG, JPEG, GIF, WebP; '-' for stdin) or an image URL with the prompt; repeatable.",
       metavar="PATH|URL", multiple=True, config=False, batch='give each line its "attachments"', answer=True),
    _O(("-f", "--file"), "file", "path", INPUT,
       "Add a UTF-8 text file to the prompt, framed with its name; repeatable.", metavar="PATH", multiple=True,
       config=False, batch='give each line its "files"', answer=True),
    _O(("--no-stdin",), "no_stdin", "flag", INPUT, "Never read stdin (for 'while read' loops)."),
    _O(("--text",), "text", "flag", OUTPUT, "Write each delta's text as it arrives (the default).", one_of="mode",
       batch="results are JSON Lines", answer=True),
    _O(("--full",), "full", "flag", OUTPUT, "Write nothing until the answer is complete, then all of it.",
       one_of="mode", batch=_JSONL_ALREADY, answer=True),
    _O(("-x", "--extract"), "extract", "flag", OUTPUT,
       "As --full, but only the first fenced code block of the answer (all of it if it has none).",
       one_of="mode", batch=_JSONL_ALREADY, answer=True),
    _O(("--jsonl",), "jsonl", "flag", OUTPUT, "Write each chunk as one line of JSON.", one_of="mode",
       batch=_JSONL_ALREADY, answer=True),
    _O(("--json",), "json_", "flag", OUTPUT,
       "Write one chat.completion JSON object at the end (content, finish_reason, usage, impact).", one_of="mode",
       batch=f"{_JSONL_ALREADY}; pick fields with jq", answer=True),
    _O(("-n", "--no-newline"), "no_newline", "flag", OUTPUT, "Do not add a final newline."),
    _O(("--show-reasoning",), "show_reasoning", "flag", OUTPUT,
       "Write a reasoning model's reasoning to stderr as it arrives."),
    _O(("--usage",), "usage", "flag", OUTPUT,
       "After the answer, one stderr line: tokens, timings, energy, emissions, credits.", answer=True),
    _O(("--raw-control",), "raw_control", "flag", OUTPUT,
       "On a terminal, write the answer's control characters as they are (default: escaped)."),
    _O(("-m", "--model"), "model", "text", REQUEST, "Model ID [env GREENPT_MODEL].", default=DEFAULT_MODEL,
       env="GREENPT_MODEL", show_default=True),
    _O(("--temperature",), "temperature", "number", REQUEST, "Sampling temperature."),
    _O(("--max-tokens",), "max_tokens", "integer", REQUEST, "Most tokens to generate.", low=1),
    _O(("--top-p",), "top_p", "number", REQUEST, "Nucleus sampling probability mass."),
    _O(("--stop",), "stop", "text", REQUEST, "Stop sequence (repeatable).", metavar="TEXT", multiple=True),
    _O(("--seed",), "seed", "integer", REQUEST, "Seed for deterministic sampling."),
    _O(("--reasoning-effort",), "reasoning_effort", "text", REQUEST,
       "Send reasoning_effort (e.g. low, medium, high).", metavar="VALUE"),
    _O(("-o", "--option"), "option", "keyvalue", REQUEST,
       "Any other request field; VALUE is JSON if it parses, else a string; @FILE: a file's content (repeatable).",
       metavar="KEY=VALUE", multiple=True),
    _O(("--schema",), "schema", "text", REQUEST,
       "Ask for JSON and check it: a JSON Schema, @FILE, or fields like 'name, total number, paid bool, tags "
       "array' (a closed object, every field required; types: string, number, integer, bool, array of strings, "
       "object). Exit 8 if the answer does not match.", metavar="SCHEMA"),
    _O(("--schema-mode",), "schema_mode", "choice", REQUEST,
       "How the schema is asked for: response_format, or in the system message.", default="response_format",
       choices=("response_format", "prompt"), show_default=True),
    _O(("-c", "--continue"), "continue_", "flag", CONVERSATION,
       "Continue the default conversation ($XDG_STATE_HOME/gpt-pipe/conversation.jsonl).", config=False,
       batch=_LINE_MESSAGES, answer=True),
    _O(("--conversation",), "conversation", "path", CONVERSATION,
       "Continue the conversation kept in FILE (JSON Lines of messages); the exchange is appended when it "
       "completes.", metavar="FILE", batch=_LINE_MESSAGES, answer=True),
    _O(("--new",), "new", "flag", CONVERSATION, "With -c or --conversation: start that conversation afresh.",
       config=False),
    _O(("--tee",), "tee", "path", CONVERSATION, "Also append every chunk to FILE as JSON Lines (an audit log).",
       metavar="FILE", batch="use --output FILE", answer=True),
    _O(("--replay",), "replay", "path", CONVERSATION,
       "Render a JSON Lines chunk log (from --jsonl or --tee; '-' for stdin) instead of asking the API.",
       metavar="FILE", config=False, request=False, batch="", answer=True),
    _O(("--batch",), "batch", "optional", BATCH,
       "One request per JSON line of FILE (stdin without FILE); results as JSON Lines.", metavar="[FILE]",
       config=False, request=False, answer=True),
    _O(("--batch-text",), "batch_text", "flag", BATCH, "With --batch: each line is a prompt as plain text.",
       request=False, batch="only"),
    _O(("-P", "--parallel"), "parallel", "integer", BATCH, "With --batch: requests at once.", default=4,
       metavar="N", low=1, high=256, show_default=True, request=False),
    _O(("--keep-order",), "keep_order", "flag", BATCH, "With --batch: write results in input order.",
       request=False, batch="only"),
    _O(("--output",), "output", "path", BATCH, "With --batch: append results to FILE instead of stdout.",
       metavar="FILE", request=False, batch="only"),
    _O(("--resume",), "resume", "flag", BATCH, "With --batch --output: skip ids that already have a final result.",
       config=False, request=False, batch="only"),
    _O(("--base-url",), "base_url", "text", NETWORK, "API base URL [env GREENPT_BASE_URL].",
       default=DEFAULT_BASE_URL, metavar="URL", env="GREENPT_BASE_URL", show_default=True),
    _O(("--connect-timeout",), "connect_timeout", "seconds", NETWORK, "Longest wait to connect.", default=10.0,
       metavar="SECONDS", low=0, show_default=True),
    _O(("--idle-timeout",), "idle_timeout", "seconds", NETWORK, "Longest silence from the server.",
       default=120.0, metavar="SECONDS", low=0, show_default=True),
    _O(("--progress-timeout",), "progress_timeout", "seconds", NETWORK,
       "Longest time with none of the answer: keep-alives and dripped bytes do not count.", default=300.0,
       metavar="SECONDS", low=0, show_default=True),
    _O(("--max-time",), "max_time", "seconds", NETWORK,
       "Longest time for the whole run, retries included (with --batch: for each line).", metavar="SECONDS",
       low=0),
    _O(("--retries",), "retries", "integer", NETWORK,
       "Retries of a request that got no answer (a cut answer: once at most) [env GPT_PIPE_RETRIES].",
       default=3, metavar="N", low=0,
       env="GPT_PIPE_RETRIES", show_default=True),
    _O(("--retries-invalid",), "retries_invalid", "integer", NETWORK,
       "Ask again when the answer does not match --schema (--full, --json, --batch).", default=0, metavar="N",
       low=0, show_default=True),
    _O(("--max-retry-wait",), "max_retry_wait", "number", NETWORK,
       "Longest wait before a retry; a longer Retry-After ends the run (75).", default=60.0, metavar="SECONDS",
       low=0, high=86400, show_default=True),
    _O(("--rate",), "rate", "rate", NETWORK,
       "Start at most N requests per second or minute (N/s, N/min), across all --batch workers; the server's "
       "own rate-limit headers are followed anyway (a batch's last line says how long it waited).", metavar="N/s"),
    _O(("--ca-bundle",), "ca_bundle", "path", NETWORK, "Trust the CA certificates in FILE (PEM) for TLS.",
       metavar="FILE"),
    _O(("--max-event",), "max_event", "size", NETWORK,
       "Largest line, event or chunk, and largest non-streamed answer, the server may send.", default="4M",
       metavar="SIZE", show_default=True),
    _O(("--max-image",), "max_image", "size", NETWORK, "Largest image -a sends (default 20M).", default="20M",
       metavar="SIZE"),
    _O(("--max-answer",), "max_answer", "size", NETWORK,
       "Largest answer kept for the end (--full, --json, conversations, --batch), in characters.",
       default="32M", metavar="SIZE", show_default=True),
    _O(("--file-wait",), "file_wait", "seconds", NETWORK,
       "Longest wait for any file: a FIFO's other end, a lock on the conversation file.", default=FILE_WAIT,
       metavar="SECONDS", low=0, show_default=True),
    _O(("--api-key-file",), "api_key_file", "path", KEYS, f"Read the API key from FILE (else env {KEY_VARIABLE}, "
       "for GreenPT only).", metavar="FILE", one_of="key"),
    _O(("--api-key-cmd",), "api_key_cmd", "text", KEYS,
       "Run CMD (a shell command) and use its output as the API key.", metavar="CMD", one_of="key"),
    _O(("--api-key-env",), "api_key_env", "text", KEYS,
       "Read the API key from the environment variable VAR (for a server other than GreenPT, even "
       f"{KEY_VARIABLE}).", metavar="VAR", one_of="key"),
    _O(("--profile",), "profile", "text", KEYS, "Use [profile.NAME] of the config file [env GPT_PIPE_PROFILE].",
       metavar="NAME", config=False),
    _O(("--list-models",), "list_models", "flag", DIAGNOSTICS, "List the model IDs the API offers, one per line.",
       config=False, request=False, batch=""),
    _O(("--dry-run",), "dry_run", "flag", DIAGNOSTICS,
       "Print the request as a curl command line instead of sending it.", config=False, request=False, batch=""),
    _O(("-q", "--quiet"), "quiet", "flag", DIAGNOSTICS,
       "No retry notes and no warnings on stderr (errors still show)."),
    _O(("--debug",), "debug", "flag", DIAGNOSTICS, "Diagnostics on stderr (the key redacted)."),
    _O(("-V", "--version"), "version", "flag", DIAGNOSTICS, "Show the version and exit.", config=False,
       request=False),
    _O(("-h", "--help"), "help", "flag", DIAGNOSTICS, "Show this message and exit.", config=False, request=False),
)
del _O

BY_DEST = {option.dest: option for option in OPTIONS}
BY_DECL = {decl: option for option in OPTIONS for decl in option.decls}
# The options that are not settings: click handles them itself (eager, then exit).
EAGER = ("version", "help")


def groups() -> dict[str, tuple[str, ...]]:
    """Each heading of --help with its options' destinations, in order."""
    result: dict[str, list[str]] = {}
    for option in OPTIONS:
        result.setdefault(option.group, []).append(option.dest)
    return {heading: tuple(dests) for heading, dests in result.items()}


def exclusive() -> dict[str, tuple[str, ...]]:
    """Each exclusive group: the output modes, the key sources."""
    result: dict[str, list[str]] = {}
    for option in OPTIONS:
        if option.one_of:
            result.setdefault(option.one_of, []).append(option.dest)
    return {name: tuple(dests) for name, dests in result.items()}


def defaults() -> dict[str, Any]:
    """Every setting's value when nothing sets it."""
    values: dict[str, Any] = {}
    for option in OPTIONS:
        if option.dest in EAGER:
            continue
        if option.multiple:
            values[option.dest] = ()
        elif option.flag:
            values[option.dest] = False
        else:
            values[option.dest] = None if option.default is None else option.convert(option.default)
    return values


def check(values: dict[str, Any], named: set[str], words: tuple[str, ...] | list[str]) -> None:
    """The rules between options, for the merged ``values`` (dest -> value) of which
    ``named`` came from the command line: raises GptPipeError (usage, or config when
    only the config file is to blame). One option of an exclusive group named on the
    command line replaces one from the config file (``values`` is changed to say so);
    ``--continue`` sets the conversation to the default one."""
    from gpt_pipe.exitcodes import ExitCode, GptPipeError

    def usage(message: str) -> GptPipeError:
        return GptPipeError(message, ExitCode.USAGE)

    for group in exclusive().values():
        given = [dest for dest in group if values.get(dest)]
        on_line = [dest for dest in given if dest in named]
        flags = " and ".join(BY_DEST[dest].name for dest in group)
        if len(on_line) > 1:
            raise usage(f"choose one of {flags}")
        if on_line:
            for dest in given:
                if dest not in on_line:
                    values[dest] = False if BY_DEST[dest].flag else None
        elif len(given) > 1:
            raise GptPipeError(f"config file: choose one of {flags}", ExitCode.CONFIG)
    from gpt_pipe.paths import check_conversation_name, names_a_conversation, state_dir

    if values.get("conversation") and "conversation" in named:
        check_conversation_name(values["conversation"])
    if values.get("continue_"):
        if values.get("conversation") and "conversation" in named:
            raise usage("choose one of -c/--continue (the default conversation) and --conversation FILE")
        if words and names_a_conversation(words[0]):
            raise usage(f"-c is short for --continue (the default conversation) and takes no file; to continue "
                        f"the conversation in {words[0]}, write: --conversation {words[0]}")
        import os

        values["conversation"] = os.path.join(state_dir(), "conversation.jsonl")
    if values.get("new") and not values.get("conversation"):
        raise usage("--new starts a conversation afresh: give -c (the default one) or --conversation FILE")
    if values.get("retries_invalid") and "retries_invalid" in named:
        if not values.get("schema"):
            raise usage("--retries-invalid asks again when the answer does not match --schema: give --schema")
        if not any(values.get(dest) for dest in ("full", "json_", "extract", "batch")):
            raise usage("--retries-invalid needs --full, --json or --batch: streamed text cannot be taken back")
    if values.get("list_models"):
        ignored = [BY_DEST[dest].name for dest in BY_DEST if BY_DEST[dest].answer and values.get(dest)
                   and dest in named]
        if words:
            ignored.insert(0, "PROMPT")
        if ignored:
            raise usage(f"--list-models prints the model IDs only; it takes no {', '.join(ignored)}")
    if values.get("replay") is not None and words:
        raise usage("--replay renders a log; it takes no PROMPT words")
    if values.get("batch") is not None:
        for option in OPTIONS:
            if option.batch not in (None, "only") and values.get(option.dest) and option.dest in named:
                raise usage(f"--batch does not go with {option.name}" + (f" ({option.batch})" if option.batch else ""))
        if words:
            where = (f" (a FILE goes right after --batch: --batch {words[0]})"
                     if values.get("batch") == "-" and len(words) == 1 else " (one prompt per line: --batch-text)")
            raise usage(f"--batch takes its prompts from its input, not as PROMPT words{where}")
        if values.get("resume") and not values.get("output"):
            raise usage("--resume needs --output FILE (the results it resumes)")
    else:
        only = [option.name for option in OPTIONS if option.batch == "only" and values.get(option.dest)
                and option.dest in named]
        if only:
            raise usage(f"{', '.join(only)} {'goes' if len(only) == 1 else 'go'} with --batch")
