"""Reading zip archives people upload, refusing path tricks, links and zip bombs before they cost anything.

Sizes declared in zip headers can lie, so limits are checked twice: on the headers before reading,
and on the bytes actually decompressed while reading.
"""

from __future__ import annotations

import io
import re
import stat
import zipfile
import zlib
from pathlib import Path

from teachbot.errors import UserError

__all__ = ["read_zip_members"]

MAX_MEMBERS = 1_000
MAX_RATIO = 100.0
RATIO_FLOOR = 64 * 1024  # small members may compress very well legitimately; the total limit covers them
_CHUNK = 64 * 1024
_DRIVE = re.compile(r"^[A-Za-z]:")


def read_zip_members(
    source: bytes | Path,
    *,
    max_total_bytes: int,
    max_members: int = MAX_MEMBERS,
    max_ratio: float = MAX_RATIO,
) -> dict[str, bytes]:
    """The files in a zip archive by name (folders omitted), or ``UserError`` if it is unsafe."""
    try:
        with zipfile.ZipFile(io.BytesIO(source) if isinstance(source, bytes) else source) as archive:
            infos = archive.infolist()
            _check_headers(infos, max_total_bytes=max_total_bytes, max_members=max_members, max_ratio=max_ratio)
            members: dict[str, bytes] = {}
            budget = max_total_bytes
            for info in infos:
                if info.is_dir():
                    continue
                data = _read_member(archive, info, budget, max_total_bytes, max_ratio)
                budget -= len(data)
                members[info.filename] = data
            return members
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise UserError(f"The zip archive is damaged or not a zip archive ({exc}).") from None
    except NotImplementedError as exc:
        raise UserError(f"The zip archive uses a feature teachbot cannot read ({exc}).") from None


def _check_headers(infos: list[zipfile.ZipInfo], *, max_total_bytes: int, max_members: int, max_ratio: float) -> None:
    """Refuse on what the headers declare, before decompressing anything."""
    if len(infos) > max_members:
        raise UserError(f"The zip archive has {len(infos):,} entries; the limit is {max_members:,}.")
    seen: set[str] = set()
    declared = 0
    for info in infos:
        name = info.filename
        _check_name(name)
        key = name.rstrip("/").casefold()
        if key in seen:
            raise UserError(f"The zip archive holds `{_show(name)}` twice.")
        seen.add(key)
        if stat.S_ISLNK(info.external_attr >> 16):
            raise UserError(f"The zip archive entry `{_show(name)}` is a symbolic link; links are not accepted.")
        if info.flag_bits & 0x1:
            raise UserError(f"The zip archive entry `{_show(name)}` is encrypted; upload it without a password.")
        declared += info.file_size
        if declared > max_total_bytes:
            raise UserError(f"The zip archive unpacks to more than {max_total_bytes:,} bytes, the limit.")
        _check_ratio(name, info.file_size, info.compress_size, max_ratio)


def _check_name(name: str) -> None:
    """Only plain relative paths: no absolute paths, drives, ``..``, backslashes or control characters."""
    shown = _show(name)
    if not name or "\\" in name or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise UserError(f"The zip archive entry `{shown}` has a name with backslashes or control characters.")
    if name.startswith("/") or _DRIVE.match(name):
        raise UserError(f"The zip archive entry `{shown}` has an absolute path.")
    parts = name.rstrip("/").split("/")
    if ".." in parts:
        raise UserError(f"The zip archive entry `{shown}` points outside the archive (`..`).")
    if any(part in ("", ".") for part in parts):
        raise UserError(f"The zip archive entry `{shown}` has an empty or `.` path component.")


def _read_member(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: int, max_total_bytes: int, max_ratio: float
) -> bytes:
    """Decompress one member in chunks, counting real bytes against the limits as they arrive."""
    chunks: list[bytes] = []
    size = 0
    with archive.open(info) as member:
        while chunk := member.read(_CHUNK):
            size += len(chunk)
            if size > budget:
                raise UserError(f"The zip archive unpacks to more than {max_total_bytes:,} bytes, the limit.")
            if size > info.file_size:
                raise UserError(f"The zip archive entry `{_show(info.filename)}` is larger than its header says.")
            _check_ratio(info.filename, size, info.compress_size, max_ratio)
            chunks.append(chunk)
    return b"".join(chunks)


def _check_ratio(name: str, size: int, compressed: int, max_ratio: float) -> None:
    if size > RATIO_FLOOR and size > max_ratio * max(compressed, 1):
        raise UserError(
            f"The zip archive entry `{_show(name)}` expands more than {max_ratio:g} times; it looks like a zip bomb."
        )


def _show(name: str) -> str:
    """A member name safe to echo: control characters replaced, length capped."""
    cleaned = "".join(c if c.isprintable() else "?" for c in name)
    return cleaned if len(cleaned) <= 80 else cleaned[:77] + "..."
