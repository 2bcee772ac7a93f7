"""Logging, configured in one place: rich on the console, a rotating file in the data folder.

A filter on every handler masks secrets: the configured ones by value and anything shaped like a
Discord token or an API key, so no log line can leak one. When the log file cannot be written (a full
disk), one warning line goes to stderr instead of a traceback per log line.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import logging.handlers
import re
import sys
from collections.abc import Iterable
from pathlib import Path

SECRET_PATTERNS = re.compile(
    r"(?:[MNO][A-Za-z\d_-]{23,27}\.[A-Za-z\d_-]{6}\.[A-Za-z\d_-]{27,40})"  # Discord bot token
    r"|(?:sk-[A-Za-z0-9_-]{16,})"  # OpenAI-style keys
    r"|(?:AKIA[0-9A-Z]{16})"  # AWS access key id
    r"|(?:gh[pousr]_[A-Za-z0-9]{30,})"  # GitHub tokens
    r"|(?:xox[abposr]-[A-Za-z0-9-]{10,})"  # Slack tokens
)
MASK = "********"
LOG_FILE = "teachbot.log"


class SecretFilter(logging.Filter):
    """Replace secrets in the rendered message; never drops a record."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s and len(s) >= 6]

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        return SECRET_PATTERNS.sub(MASK, text)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = self.redact(message)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


class LogFileHandler(logging.handlers.RotatingFileHandler):
    """The rotating log file. If it cannot be written (disk full, folder removed), it says so once on
    stderr and drops lines quietly until a write succeeds again; logging never floods the console."""

    failing = False
    _failed = False

    def emit(self, record: logging.LogRecord) -> None:
        self._failed = False
        super().emit(record)
        if self.failing and not self._failed:
            self.failing = False  # the disk has room again; the next failure is reported again

    def close(self) -> None:
        with contextlib.suppress(OSError):  # the last buffered lines could not be written; already reported
            super().close()

    def handleError(self, record: logging.LogRecord) -> None:
        exc = sys.exc_info()[1]
        if not isinstance(exc, OSError):
            super().handleError(record)  # a bug in a log call: keep logging's usual report
            return
        self._failed = True
        if self.failing:
            return
        self.failing = True
        full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
        reason = "the disk is full" if full else (exc.strerror or type(exc).__name__)
        try:
            sys.stderr.write(
                f"teachbot: cannot write the log file {self.baseFilename} ({reason}); "
                "log lines are dropped until it can be written again.\n"
            )
            sys.stderr.flush()
        except (OSError, ValueError):
            pass


def _console_handler() -> logging.Handler:
    """Rich output for a person at a terminal; plain lines otherwise (rich costs ~4 ms a line)."""
    if sys.stderr.isatty():
        from rich.console import Console  # imported here: a start with no terminal (a service, a pipe) skips it
        from rich.logging import RichHandler

        handler: logging.Handler = RichHandler(console=Console(stderr=True), show_path=False, rich_tracebacks=False)
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    return handler


def configure_logging(level: str, data_dir: Path | None, secrets: Iterable[str] = (), *, console: bool = True) -> None:
    """Install teachbot's handlers on the root logger (idempotent: replaces earlier ones)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_teachbot", False):
            root.removeHandler(handler)
            handler.close()
    secret_filter = SecretFilter(secrets)
    handlers: list[logging.Handler] = []
    if console:
        handlers.append(_console_handler())
    if data_dir is not None:
        logs = data_dir / "logs"
        try:
            logs.mkdir(parents=True, exist_ok=True)
            file_handler = LogFileHandler(logs / LOG_FILE, maxBytes=5_000_000, backupCount=5, encoding="utf-8")
        except OSError as exc:
            reason = "the disk is full" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else exc.strerror
            sys.stderr.write(f"teachbot: cannot open the log file in {logs} ({reason}); logging to the console only.\n")
        else:
            file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
            handlers.append(file_handler)
    for handler in handlers:
        handler.addFilter(secret_filter)
        handler._teachbot = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("discord.gateway", "discord.http", "alembic.runtime.migration", "httpx", "openai"):
        logging.getLogger(noisy).setLevel(max(logging.getLevelName(level), logging.WARNING))
