"""Confine every path a user names to the bot's data folder."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from teachbot.errors import UserError

_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def resolve_inside(base: Path, name: str) -> Path:
    """Resolve ``name`` under ``base``; refuse absolute paths, ``..`` and links that lead outside."""
    if not name or "\x00" in name:
        raise UserError("Give a file name.")
    candidate = Path(name)
    if candidate.is_absolute() or name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        raise UserError(f"`{name}` is an absolute path; name a file inside the data folder.")
    if any(part == ".." for part in re.split(r"[\\/]", name)):
        raise UserError(f"`{name}` leaves the data folder; name a file inside it.")
    root = base.resolve()
    resolved = (root / candidate).resolve()
    if resolved != root and root not in resolved.parents:
        raise UserError(f"`{name}` leads outside the data folder.")
    return resolved


def safe_filename(name: str) -> str:
    """A plain file name (no folders) made from user input, or a refusal."""
    cleaned = os.path.basename(name.replace("\\", "/")).strip()
    if not _SAFE_NAME.match(cleaned):
        raise UserError(f"`{name[:80]}` is not a usable file name (letters, digits, '.', '_', '-').")
    return cleaned


def atomic_write(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Write through a temporary file in the same folder, flushed to disk, then renamed over ``path``:
    readers see the old file or the whole new one, never half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """``atomic_write`` of a bytes value."""
    atomic_write(path, lambda handle: handle.write(data))
