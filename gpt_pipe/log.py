"""stderr: one-line messages, retry notes, warnings and debug lines, with the key scrubbed
and control characters shown escaped (server text reaches stderr through here only)."""

from __future__ import annotations

import sys

from gpt_pipe.keys import Secrets


class Log:
    """Everything gpt-pipe says on stderr goes through here, so nothing can leak the key."""

    def __init__(self, debug: bool = False, quiet: bool = False) -> None:
        self.debugging = debug
        self.quiet = quiet  # -q: no retry notes and no warnings; errors still show
        self.secrets = Secrets()
        self._open_line = False  # streamed text has left a line open on stderr

    def set_secret(self, key: str) -> None:
        self.secrets.set_key(key)

    def scrub(self, text: str) -> str:
        return self.secrets.scrub(text)

    def error(self, message: str) -> None:
        self._line(message)

    def warn(self, message: str) -> None:
        if not self.quiet:
            self._line(f"warning: {message}")

    def note(self, message: str) -> None:
        if not self.quiet:
            self._line(message)

    def debug(self, message: str) -> None:
        if self.debugging:
            for line in message.splitlines() or [""]:
                self._write(f"gpt-pipe: debug: {line}\n")

    def stream(self, text: str) -> None:
        """Text as it arrives (--show-reasoning), unprefixed; end_stream closes its line."""
        if text:
            self._open_line = not text.endswith("\n")
            self._write(text)

    def end_stream(self) -> None:
        if self._open_line:
            self._open_line = False
            self._write("\n")

    def traceback(self, text: str) -> None:
        self._write(text if text.endswith("\n") else text + "\n")

    def _line(self, message: str) -> None:
        self.end_stream()
        # One line, whatever the server put in its message.
        message = " ".join(message.split()) if ("\n" in message or "\r" in message) else message
        self._write(f"gpt-pipe: {message}\n")

    def _write(self, text: str) -> None:
        try:
            from gpt_pipe.terminal import neutralize  # on the first line said: most runs say none

            sys.stderr.write(neutralize(self.secrets.scrub(text)))
            sys.stderr.flush()
        except (OSError, ValueError, AttributeError):
            pass  # stderr closed or gone: nowhere left to say it
