"""One exception tree: ``UserError`` text is shown as is; anything else is logged and hidden.

This is also the one place that turns operating-system errors about a file into a sentence a user
can act on (``file_error``), and a full disk into ``DiskFull`` (``disk_full_guard``).
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = [
    "ConfigError",
    "DataFormatError",
    "DiskFull",
    "FileTooLarge",
    "MissingExtra",
    "TeachbotError",
    "UserError",
    "disk_full_guard",
    "file_error",
    "format_size",
    "is_disk_full",
    "show_name",
]


class TeachbotError(Exception):
    """Base of every error teachbot raises on purpose."""


class UserError(TeachbotError):
    """A problem the user can fix; its message is safe to show verbatim.

    ``see`` names a command (without the prefix) that helps; the edge adds it with the configured prefix,
    so services never write a prefix themselves.
    """

    def __init__(self, message: str, *, see: str | None = None) -> None:
        super().__init__(message)
        self.see = see


class ConfigError(TeachbotError):
    """A setting is missing or wrong; the message names the setting."""


class DataFormatError(UserError):
    """A dataset file is malformed; the message names the file and line."""

    def __init__(self, message: str, *, source: str = "", line: int | None = None) -> None:
        where = source + (f":{line}" if line is not None else "")
        super().__init__(f"{where}: {message}" if where else message)
        self.source = source
        self.line = line


class MissingExtra(UserError):
    """A feature needs an optional package or system tool that is not installed."""

    def __init__(self, feature: str, hint: str) -> None:
        super().__init__(f"{feature} is not available: {hint}")
        self.feature = feature
        self.hint = hint


class FileTooLarge(UserError):
    """A file is over a size limit; ``detail`` is the message without the file name."""

    def __init__(self, shown: str, size: int | None, limit: int) -> None:
        measured = f"is {format_size(size)}, over" if size is not None else "is over"
        self.detail = f"{measured} the limit of {format_size(limit)}"
        super().__init__(f"{shown}: {self.detail}.")
        self.shown, self.size, self.limit = shown, size, limit


class DiskFull(UserError):
    """The disk (or the user's quota, or the database's size limit) is full: nothing was saved."""

    def __init__(self, what: str = "") -> None:
        saved = f"{what} was not saved" if what else "nothing was saved"
        super().__init__(f"The disk is full: {saved}. Free some space on the bot's server and try again.")


_FULL = {errno.ENOSPC, errno.EDQUOT}
_SQLITE_FULL = 13  # SQLITE_FULL: "database or disk is full" (also PRAGMA max_page_count reached)
_POSTGRES_DISK_FULL = "53100"
_REASONS = {
    errno.ENOENT: "no such file",
    errno.ENOTDIR: "no such file (a part of its path is not a folder)",
    errno.EISDIR: "is a folder, not a file",
    errno.ELOOP: "is a symbolic link that loops (or leads through too many links)",
    errno.ENAMETOOLONG: "the name is too long for the file system",
    errno.ENXIO: "is not a regular file",
    errno.ENODEV: "is not a regular file",
    errno.ETXTBSY: "is busy",
}


def file_error(exc: OSError, shown: str, *, writing: bool = False) -> UserError:
    """The sentence for an operating-system error about the file the user called ``shown``."""
    code = exc.errno
    if code in _FULL:
        return DiskFull(shown)
    if code in _REASONS:
        return UserError(f"{shown}: {_REASONS[code]}.")
    verb = "written" if writing else "read"
    if code in (errno.EACCES, errno.EPERM):
        reason = "permission denied"
    elif code == errno.EROFS:
        reason = "the file system is read-only"
    elif code in (errno.EMFILE, errno.ENFILE):
        reason = "too many files are open; try again in a moment"
    elif code == errno.EIO:
        reason = "input/output error; the disk may be failing"
    else:
        reason = exc.strerror or type(exc).__name__
    return UserError(f"{shown}: cannot be {verb} ({reason}).")


def is_disk_full(exc: BaseException) -> bool:
    """True for ENOSPC/EDQUOT, SQLite's "database or disk is full" and PostgreSQL's disk_full, also when a
    database library wraps them (SQLAlchemy keeps the driver's exception in ``orig``)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in _FULL:
            return True
        if getattr(current, "sqlite_errorcode", None) == _SQLITE_FULL:
            return True
        if getattr(current, "pgcode", None) == _POSTGRES_DISK_FULL:
            return True
        orig = getattr(current, "orig", None)
        current = orig if isinstance(orig, BaseException) else current.__cause__
    return False


@contextmanager
def disk_full_guard(what: str = "") -> Iterator[None]:
    """Run a write; a full disk becomes ``DiskFull`` (clear, shown to users), anything else passes through."""
    try:
        yield
    except DiskFull:
        raise
    except Exception as exc:
        if is_disk_full(exc):
            raise DiskFull(what) from exc
        raise


def show_name(name: str, limit: int = 80) -> str:
    """A name safe to echo in a message: invisible and control characters (and lone surrogates, which no
    terminal can print) become ``?``, and a long name is clipped in the middle."""
    cleaned = "".join(c if c.isprintable() else "?" for c in name)
    if len(cleaned) <= limit:
        return cleaned
    half = (limit - 1) // 2
    return cleaned[:half] + "…" + cleaned[-half:]


def format_size(n: int) -> str:
    """A byte count for people: bytes below 1 KiB, then KiB or MiB with one decimal."""
    if n < 1024:
        return f"{n:,} bytes"
    return f"{n / 1024:.1f} KiB" if n < 1024 * 1024 else f"{n / 1024 / 1024:.1f} MiB"
