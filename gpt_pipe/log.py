"""stderr: one-line messages, retry notes, warnings and debug lines, with the key scrubbed
and control characters shown escaped (server text reaches stderr through here only)."""

from __future__ import annotations

import sys
import threading
from typing import Any

from gpt_pipe.keys import Secrets
from gpt_pipe.terminal import can_redraw


class Log:
    """Everything gpt-pipe says on stderr goes through here, so nothing can leak the key."""

    def __init__(self, debug: bool = False, quiet: bool = False) -> None:
        self.debugging = debug
        self.quiet = quiet  # -q: no retry notes and no warnings; errors still show
        self.secrets = Secrets()
        self._open_line = False  # streamed text has left a line open on stderr
        self.stdout_open = False  # the answer has left a line open on the same terminal
        self._waiting: Any = None  # the "waiting for the answer" indicator, while it runs
        self.rate_until = 0.0  # a wait for the rate limit lasts until then (Log.rate_wait)
        self.rate_notes = True  # False in --batch: its progress line says it

    def start_waiting(self) -> None:
        """On a terminal, show that the request is out and no text has come yet; erased by
        the first answer text or by anything else said on stderr."""
        if not self.quiet and not self.debugging and sys.stderr is not None and can_redraw(2):
            self._waiting = _Waiting(self._emit)

    def answer_arriving(self, received: Any) -> Any:
        """For --full, -x and --json, which show nothing until the end: the first text keeps
        the indicator, which counts what has arrived (``received()``, in characters)."""
        def started() -> None:
            if self._waiting is not None:
                self._waiting.received = received

        return started

    def answer_started(self) -> None:
        """The first text of the answer: the indicator goes, a reasoning line is ended."""
        self.stop_waiting()
        self.end_stream()

    def stop_waiting(self) -> None:
        if self._waiting is not None:
            waiting, self._waiting = self._waiting, None
            waiting.stop()

    def watch_stdout(self, ended_line: bool) -> None:
        """Sink.line_watch: stdout (a terminal, like stderr) got text that did or did not end its line."""
        self.stdout_open = not ended_line

    def status(self, text: str) -> None:
        """A line of gpt-pipe's own that the next one replaces (--batch progress on a
        terminal); ``status("")`` erases it."""
        self.end_stream()
        self._emit(f"\r\033[K{'gpt-pipe: ' + text if text else ''}")

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

    def rate_wait(self, seconds: float) -> None:
        """A request waits ``seconds`` for the server's rate limit (or --rate): said once per
        wait of a second or more (--batch shows it on its progress line instead)."""
        import time

        now = time.monotonic()
        if now < self.rate_until:
            return
        self.rate_until = now + seconds
        if seconds >= 1 and self.rate_notes:
            self.note(f"waiting {seconds:.1f} s for the server's rate limit")

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
        if self.stdout_open:  # "Hello! How" then our line: start it on a line of its own
            self.stdout_open = False
            self._write("\n")
        # One line, whatever the server put in its message.
        message = " ".join(message.split()) if ("\n" in message or "\r" in message) else message
        self._write(f"gpt-pipe: {message}\n")

    def _write(self, text: str) -> None:
        self.stop_waiting()
        self._raw(text)

    def _raw(self, text: str) -> None:
        from gpt_pipe.terminal import neutralize

        self._emit(neutralize(self.secrets.scrub(text)))

    @staticmethod
    def _emit(text: str) -> None:
        """To stderr as it is: only for gpt-pipe's own text (the indicator's control codes)."""
        try:
            sys.stderr.write(text)
            sys.stderr.flush()
        except (OSError, ValueError, AttributeError):
            pass  # stderr closed or gone: nowhere left to say it


class _Waiting:
    """A spinner on stderr ("| waiting for the answer"), drawn from 0.3 s on, every 0.1 s."""

    FRAMES = "|/-\\"

    def __init__(self, write: Any) -> None:
        self._write = write
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._drawn = False
        self.received: Any = None  # set once the answer arrives and is kept for the end (--full, --json)
        threading.Thread(target=self._run, daemon=True, name="gpt-pipe-waiting").start()

    def _run(self) -> None:
        if self._stop.wait(0.3):
            return
        frame = 0
        while True:
            with self._lock:
                if self._stop.is_set():
                    return
                received = self.received
                what = "waiting for the answer" if received is None else \
                    f"receiving the answer: {received():,} characters"
                self._write(f"\r\033[K{self.FRAMES[frame % 4]} {what}")
                self._drawn = True
            frame += 1
            if self._stop.wait(0.1):
                return

    def stop(self) -> None:
        with self._lock:
            self._stop.set()
            if self._drawn:
                self._write("\r\033[K")  # the line as it was
