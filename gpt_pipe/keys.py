"""The API key: where it comes from (environment, file, command), the checks it must pass
before it goes into a header, and how it (and a base URL's password) is kept out of every
output: redacted where a request is shown, scrubbed from everything else."""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable

from gpt_pipe.exitcodes import ExitCode, GptPipeError
from gpt_pipe.options import KEY_VARIABLE

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from gpt_pipe.settings import Settings

# A "key" this short is a placeholder for a local server (sk-x, dummy, EMPTY, ollama as
# Ollama's docs have it): scrubbing it would mangle ordinary words ("What is ollama?"), and
# it guards nothing. Seven characters still cover the fake keys of test suites and of
# proxies' examples (sk-test, sk-1234).
MIN_SECRET = 7


# Characters a key can be made of (and URL-safe base64): an excerpt never ends among them.
_WORD = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~+/=")


def excerpt(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters and "…", never inside a word: the scrub
    that follows knows whole keys only, so half a key cut here would be shown. A word that
    reaches the cut is left out whole."""
    if len(text) <= limit:
        return text
    end = limit
    while end > 0 and text[end] in _WORD and text[end - 1] in _WORD:
        end -= 1
    return text[:end] + "…"


def redact(key: str) -> str:
    """How a key is shown where a request must be shown: ``sk-…last4``."""
    prefix = shown_prefix(key)
    return f"{prefix}…{key[-4:]}" if len(key) >= 12 else f"{prefix}…"


def shown_prefix(key: str) -> str:
    """The first characters of ``key`` that its redaction shows: ``sk-`` or nothing."""
    return "sk-" if key.startswith("sk-") else ""


# The settings that name a key source, and what each names.
KEY_SOURCES = (("api_key_env", "env"), ("api_key_file", "file"), ("api_key_cmd", "cmd"))


def is_greenpt(base_url: str, environ: Mapping[str, str] = os.environ) -> bool:
    """Whether ``base_url`` is GreenPT's endpoint: the default one, or GREENPT_BASE_URL's."""
    from gpt_pipe.options import BY_DEST, DEFAULT_BASE_URL
    from gpt_pipe.urls import api_base, netloc, origin

    def where(url: str) -> tuple[str, str, int] | None:
        url = api_base(url)
        location = netloc(url)
        return origin(url.replace(location, location.rpartition("@")[2], 1) if "@" in location else url)

    here = where(base_url)
    named = environ.get(BY_DEST["base_url"].env or "", "").strip()
    return here is not None and (here == where(DEFAULT_BASE_URL) or (bool(named) and here == where(named)))


def key_source(values: Mapping[str, Any], level: Callable[[str], str],
               environ: Mapping[str, str] = os.environ) -> tuple[str, str] | None:
    """Where the run's key comes from: ("env", VARIABLE), ("file", PATH) or ("cmd", CMD);
    None to send no key. ``level(dest)`` says where a setting was given: "line", "profile",
    "env", "file" (the config file's top level) or "default".

    Keys follow their host. GreenPT's endpoint takes a key source named on the command line
    or in the chosen profile, else GREENPT_API_KEY, else the config file's own; without any,
    exit 78. Any other base URL takes only a key source given with it (on the command line,
    in the chosen profile, or at the config level that names that URL): GREENPT_API_KEY is
    never sent there unless ``api_key_env`` says so, and without a source no key is sent
    (a local server needs none).
    """
    given = next(((kind, values[dest], level(dest)) for dest, kind in KEY_SOURCES if values.get(dest)), None)
    if is_greenpt(values["base_url"], environ):
        if given is not None and given[2] in ("line", "profile"):
            return given[0], given[1]
        if environ.get(KEY_VARIABLE, "").strip():
            return "env", KEY_VARIABLE
        if given is not None:
            return given[0], given[1]
        hint = ""
        if environ.get("OPENAI_API_KEY", "").strip():
            # Never taken silently: an OpenAI key sent to GreenPT (or the other way round) is
            # a key handed to another provider.
            hint = ('; OPENAI_API_KEY is set but not used: if it is the key for this server, '
                    f'export {KEY_VARIABLE}="$OPENAI_API_KEY"')
        raise GptPipeError(
            f"no API key: set {KEY_VARIABLE} (or use --api-key-file FILE or --api-key-cmd CMD){hint}",
            ExitCode.CONFIG,
        )
    if given is not None and given[2] in ("line", "profile", level("base_url")):
        return given[0], given[1]
    return None


def settings_key_source(settings: Settings) -> tuple[str, str] | None:
    """key_source for a run's Settings (their ``levels`` say where each setting was given)."""
    return key_source(vars(settings), lambda dest: settings.levels.get(dest, "default"))


def api_key(settings: Settings, warn: Callable[[str], None]) -> str:
    """The key, from where key_source says; "" to send none."""
    source = settings_key_source(settings)
    if source is None:
        return ""
    kind, where = source
    if kind == "env":
        key = os.environ.get(where, "").strip()
        if not key:
            raise GptPipeError(f"no API key: api_key_env names {where}, which is not set", ExitCode.CONFIG)
    elif kind == "cmd":
        key = key_from_command(where)
    else:
        key = key_from_file(where, warn, settings.file_wait)
    if any(ch.isspace() or not ch.isprintable() or ord(ch) > 126 for ch in key):
        # requests would reject it with the key itself in the message.
        raise GptPipeError("the API key holds spaces or characters a header cannot carry", ExitCode.CONFIG)
    return key


def key_from_file(path: str, warn: Callable[[str], None], wait: float) -> str:
    from gpt_pipe.files import MAX_KEY_FILE, read_capped

    what = f"API key file {path}"
    key = read_capped(path, what, MAX_KEY_FILE, ExitCode.CONFIG, wait).decode("utf-8", "replace").strip()
    try:
        mode = os.stat(path).st_mode
    except OSError:
        mode = 0
    if mode & 0o044 and stat.S_ISREG(mode):
        warn(f"API key file {path} is readable by other users; fix with: chmod 600 {path}")
    if not key:
        raise GptPipeError(f"API key file {path} is empty", ExitCode.CONFIG)
    return key


# A password manager may have to ask for a passphrase first.
KEY_COMMAND_WAIT = 120.0


def key_from_command(command: str, wait: float = KEY_COMMAND_WAIT) -> str:
    """The first line CMD prints, taken as soon as it arrives: a background child left
    holding stdout (an agent the command started) must not hold gpt-pipe too."""
    import subprocess
    import tempfile

    from gpt_pipe.clock import Deadline
    from gpt_pipe.files import MAX_KEY_FILE

    try:
        errors = tempfile.TemporaryFile()
    except OSError:
        errors = None
    try:
        proc = subprocess.Popen(command, shell=True, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=errors if errors is not None else subprocess.DEVNULL)
    except OSError as exc:
        raise GptPipeError(f"--api-key-cmd could not run: {exc.strerror}", ExitCode.CONFIG) from None
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    os.set_blocking(fd, False)
    deadline = Deadline(wait)
    out = b""
    ended = False
    import select

    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLHUP)
    while b"\n" not in out.lstrip(b"\r\n") and len(out) <= MAX_KEY_FILE:
        left = deadline.left() or 0
        if left <= 0:
            proc.kill()
            raise GptPipeError(f"--api-key-cmd printed no key within {wait:g} s", ExitCode.CONFIG)
        poller.poll(max(1, int(min(left, 0.5) * 1000)))
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            continue
        if not data:
            ended = True
            break
        out += data
    status = proc.poll()
    if ended and status is None:
        try:
            status = proc.wait(max(0.0, deadline.left() or 0))
        except subprocess.TimeoutExpired:
            status = None
    proc.stdout.close()
    if status not in (0, None):
        why = f"exit status {status}"
        if errors is not None:
            errors.seek(0)
            lines = errors.read(4096).decode("utf-8", "replace").strip().splitlines()
            why = lines[0] if lines else why
        raise GptPipeError(f"--api-key-cmd failed: {why}", ExitCode.CONFIG)
    # Password managers print the secret on the first line (pass show puts notes after it).
    lines = out.decode("utf-8", "replace").strip().splitlines()
    if not lines or not lines[0].strip():
        raise GptPipeError("--api-key-cmd printed no key", ExitCode.CONFIG)
    return lines[0].strip()


# A URL's user:password@, compiled when a text has an @. A match starts only where a run of
# scheme characters starts (the lookbehind), so a long run without "://" is scanned once,
# not once per character: linear in the text, whatever a server sends.
_URL_PASSWORD = r"(?<![A-Za-z0-9+.-])([0-9+.-]*[A-Za-z][A-Za-z0-9+.-]*://[^/?#@\s:]*:)[^/?#@\s]*@"


def redact_url(text: str) -> str:
    """``text`` with the password of every URL in it shown as ``***``."""
    return re.sub(_URL_PASSWORD, r"\1***@", text) if "@" in text else text


def url_password(url: str) -> str:
    """The password of a URL's user:password@, or ""."""
    match = re.match(_URL_PASSWORD, url) if "@" in url else None
    return match.group(0)[len(match.group(1)):-1] if match else ""


class Secrets:
    """What must never be shown: the API key (shown as ``sk-…last4``) and a base URL's
    password (``***``). Strings shorter than MIN_SECRET are placeholders, not secrets."""

    def __init__(self) -> None:
        self._shown: dict[str, str] = {}
        self.key = ""  # the API key once known (StreamScrubber and JSON lines watch for it)

    def set_key(self, key: str) -> None:
        if len(key) >= MIN_SECRET:
            self.key = key
            self._shown[key] = redact(key)

    def hide(self, secret: str) -> None:
        if len(secret) >= MIN_SECRET:
            self._shown.setdefault(secret, "***")

    def scrub(self, text: str) -> str:
        for secret, shown in self._shown.items():
            if secret in text:
                text = text.replace(secret, shown)
        return redact_url(text)

    def scrub_json_line(self, raw: bytes) -> bytes:
        """A JSON line with the key replaced, however the server escaped it (``\\/``, ``\\u0073``)."""
        key = self.key
        if not key:
            return raw
        secret = key.encode()
        if secret in raw:
            return raw.replace(secret, redact(key).encode())
        if b"\\" not in raw or (b"\\u" not in raw and secret not in raw.replace(b"\\/", b"/")):
            return raw
        from gpt_pipe.safejson import dumps_line, loads

        try:
            text = dumps_line(loads(raw)).decode("utf-8", "surrogatepass")
        except ValueError:
            return raw
        return text.replace(key, redact(key)).encode("utf-8", "surrogatepass") if key in text else raw


class StreamScrubber:
    """Scrubs the key from text that arrives in pieces, the key split between two pieces
    included, without making ordinary text wait.

    The redaction shows the key's first characters (``sk-`` of ``sk-…last4``): a tail that
    matches no more of the key than that is written at once, and only a tail that matches
    more (``sk-0``: text that looks like this very key) is held back until the next piece
    shows whether it is the key (or ``release`` ends the text). When the key does come,
    split anywhere, the output reads exactly ``redact(key)``: the characters already
    written are its own first ones, the rest follows.
    """

    __slots__ = ("_held", "_key", "_open", "_prefix", "_shown")

    def __init__(self, key: str) -> None:
        self._key = key
        self._shown = redact(key) if key else ""
        self._prefix = len(shown_prefix(key))
        self._held = ""  # not written yet: it matches more of the key than the redaction shows
        self._open = ""  # written already, and the start of the key: the key may go on from it

    @property
    def pending(self) -> bool:
        """Whether text is held back."""
        return bool(self._held)

    def feed(self, text: str) -> str:
        """The text to write now."""
        key = self._key
        if not key:
            return text
        written = len(self._open)
        text = self._open + self._held + text
        self._open = self._held = ""
        out: list[str] = []
        at = written  # text before ``at`` is written already
        found = text.find(key)
        while found >= 0:
            out.append(text[at:found] if found > at else "")
            out.append(self._shown[max(0, at - found):])  # the key's first chars may be out already
            at = found + len(key)
            found = text.find(key, at)
        # The longest tail that could be the start of the key (never inside a replaced key).
        first = key[0]
        start = text.find(first, max(at if at > written else 0, len(text) - len(key) + 1))
        while start >= 0 and not key.startswith(text[start:]):
            start = text.find(first, start + 1)
        if start < 0:
            out.append(text[at:])
        elif len(text) - start <= self._prefix:
            out.append(text[at:])
            self._open = text[start:]
        else:
            cut = max(at, start)
            out.append(text[at:cut])
            self._held = text[cut:]
            self._open = text[start:cut]
        return "".join(out)

    def release(self) -> str:
        """The text held back: it did not turn into the key."""
        held, self._held, self._open = self._held, "", ""
        return held

    def clear(self) -> None:
        self._held = self._open = ""
