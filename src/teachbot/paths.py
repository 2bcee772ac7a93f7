"""Confine every path a user names to the bot's data folder, read the files users name, and the one rule
for names that become file names.

Every read of a file a user named goes through ``open_regular_file``: it refuses folders, pipes,
devices, link loops, over-long names, unreadable and over-large files with a sentence naming the
file, and never blocks on a named pipe (it checks the file type before opening, opens without
blocking, and checks again on the opened descriptor).
"""

from __future__ import annotations

import errno
import os
import re
import stat
import tempfile
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from teachbot.errors import FileTooLarge, UserError, disk_full_guard, file_error, show_name

__all__ = [
    "FILE_NAME_MAX_BYTES",
    "atomic_write",
    "atomic_write_bytes",
    "check_regular_file",
    "name_problem",
    "open_regular_file",
    "read_regular_file",
    "read_user_file",
    "resolve_inside",
    "safe_filename",
]

# ext4, XFS and btrfs allow 255 bytes per name; atomic_write's temporary name adds 14 more.
FILE_NAME_MAX_BYTES = 240
_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOCTTY", 0)


def resolve_inside(base: Path, name: str) -> Path:
    """Resolve ``name`` under ``base``; refuse absolute paths, ``..``, links that lead outside or loop, and
    names the file system cannot hold."""
    shown = f"`{show_name(name)}`"
    if not name or "\x00" in name:
        raise UserError("Give a file name.")
    if not _encodable(name):
        raise UserError(f"{shown} is not a usable file name (it holds characters no file name can).")
    candidate = Path(name)
    if candidate.is_absolute() or name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        raise UserError(f"{shown} is an absolute path; name a file inside the data folder.")
    if any(part == ".." for part in re.split(r"[\\/]", name)):
        raise UserError(f"{shown} leaves the data folder; name a file inside it.")
    try:
        root = base.resolve()
        resolved = (root / candidate).resolve()
    except RuntimeError:  # Python < 3.13 reports a link loop this way
        raise file_error(OSError(errno.ELOOP, "link loop"), shown) from None
    except OSError as exc:
        raise file_error(exc, shown) from None
    if resolved != root and root not in resolved.parents:
        raise UserError(f"{shown} leads outside the data folder.")
    return resolved


def open_regular_file(path: Path, *, max_bytes: int | None, shown: str | None = None) -> BinaryIO:
    """An open binary handle on ``path`` if it is a readable regular file within ``max_bytes``, else a
    ``UserError`` naming it (as ``shown``, by default the file's name)."""
    shown = shown or show_name(path.name or str(path))
    before = _stat(path, shown)
    _check_regular(before, shown, max_bytes)
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as exc:
        raise file_error(exc, shown) from None
    try:
        after = os.fstat(fd)
        _check_regular(after, shown, max_bytes)  # swapped for a pipe, or grown, since the check above
        if (after.st_dev, after.st_ino) != (before.st_dev, before.st_ino):
            raise UserError(f"{shown}: changed while it was being opened; try again.")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular_file(path: Path, *, max_bytes: int | None, shown: str | None = None) -> bytes:
    """The bytes of a file a user named, with every refusal of ``open_regular_file``; a file that grows
    past ``max_bytes`` while it is read is refused too."""
    shown = shown or show_name(path.name or str(path))
    with open_regular_file(path, max_bytes=max_bytes, shown=shown) as handle:
        try:
            data = handle.read() if max_bytes is None else handle.read(max_bytes + 1)
        except OSError as exc:
            raise file_error(exc, shown) from None
    if max_bytes is not None and len(data) > max_bytes:
        raise FileTooLarge(shown, None, max_bytes)
    return data


def check_regular_file(path: Path, *, max_bytes: int | None, shown: str | None = None) -> int:
    """The size of ``path`` if it is a regular file within ``max_bytes`` (checked without opening it)."""
    shown = shown or show_name(path.name or str(path))
    info = _stat(path, shown)
    _check_regular(info, shown, max_bytes)
    return info.st_size


def read_user_file(base: Path, name: str, *, max_bytes: int | None) -> tuple[Path, bytes]:
    """A file a user named inside ``base`` (the data folder): its resolved path and its bytes."""
    path = resolve_inside(base, name)
    return path, read_regular_file(path, max_bytes=max_bytes, shown=f"`{show_name(name)}`")


def name_problem(name: str, *, max_chars: int | None = None, max_bytes: int = FILE_NAME_MAX_BYTES) -> str | None:
    """Why ``name`` cannot be a file (or dataset) name, or None: it must be non-empty printable text
    without ``/`` or ``\\``, not start with a dot, and fit ``max_chars`` characters and ``max_bytes``
    bytes of UTF-8. The caller normalises it (NFC) first."""
    if not name:
        return "it is empty"
    if name.startswith("."):
        return "it starts with a dot"
    if "/" in name or "\\" in name:
        return "it holds a / or \\"
    if not name.isprintable():
        return "it holds control or invisible characters"
    if max_chars is not None and len(name) > max_chars:
        return f"it is longer than {max_chars} characters"
    if len(name.encode("utf-8")) > max_bytes:
        return f"it is longer than {max_bytes} bytes in UTF-8"
    return None


def safe_filename(name: str) -> str:
    """A plain file name (no folders) made from user input, normalised to NFC, or a refusal. Any
    printable Unicode is accepted, so every dataset name makes a usable export file name."""
    cleaned = unicodedata.normalize("NFC", os.path.basename(name.replace("\\", "/")).strip())
    problem = name_problem(cleaned)
    if problem:
        raise UserError(f"`{show_name(name)}` is not a usable file name: {problem}.")
    return cleaned


def atomic_write(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Write through a temporary file in the same folder, flushed to disk, then renamed over ``path``:
    readers see the old file or the whole new one, never half of it. The file gets the permissions a
    plain ``open(path, "w")`` would give it (those of the file it replaces, else 0666 less the umask,
    usually 0644), not the owner-only 0600 of a temporary file. A full disk becomes ``DiskFull``, other
    operating-system errors a ``UserError`` naming the file."""
    try:
        with disk_full_guard(path.name):
            _atomic_write(path, write)
    except OSError as exc:
        if exc.errno is None:
            raise
        raise file_error(exc, show_name(path.name), writing=True) from exc


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """``atomic_write`` of a bytes value."""
    atomic_write(path, lambda handle: handle.write(data))


def _atomic_write(path: Path, write: Callable[[BinaryIO], object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = _file_mode(path)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def _file_mode(path: Path) -> int:
    """The permission bits ``path`` keeps (if it exists) or gets (0666 less the umask)."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return 0o666 & ~_umask()


def _umask() -> int:
    """The process umask, read without changing it where Linux allows (``os.umask`` sets it to read it)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _stat(path: Path, shown: str) -> os.stat_result:
    try:
        return os.stat(path)
    except OSError as exc:
        raise file_error(exc, shown) from None
    except (ValueError, UnicodeError):  # a NUL byte, or text no file name can hold
        raise UserError(f"{shown}: is not a usable file name.") from None


def _check_regular(info: os.stat_result, shown: str, max_bytes: int | None) -> None:
    if stat.S_ISDIR(info.st_mode):
        raise UserError(f"{shown}: is a folder, not a file.")
    if not stat.S_ISREG(info.st_mode):
        raise UserError(f"{shown}: is not a regular file (it is a pipe, socket or device).")
    if max_bytes is not None and info.st_size > max_bytes:
        raise FileTooLarge(shown, info.st_size, max_bytes)


def _encodable(name: str) -> bool:
    try:
        os.fsencode(name)
    except UnicodeError:
        return False
    return True
