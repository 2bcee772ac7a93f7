"""Reading zip archives people upload, refusing path tricks, links and zip bombs before they cost anything.

Sizes declared in zip headers can lie, so limits are checked twice: on the headers before reading,
and on the bytes actually decompressed while reading.
"""

from __future__ import annotations

import io
import lzma
import re
import stat
import struct
import zipfile
import zlib
from collections.abc import Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import BinaryIO, NamedTuple

from teachbot.datasets.names import clean_dataset_name, dataset_name_for
from teachbot.errors import UserError
from teachbot.paths import open_regular_file

__all__ = ["DatasetMember", "dataset_members", "read_zip_members"]

MAX_MEMBERS = 1_000
MAX_RATIO = 100.0
RATIO_FLOOR = 64 * 1024  # small members may compress very well legitimately; the total limit covers them
_CHUNK = 64 * 1024
_DRIVE = re.compile(r"^[A-Za-z]:")
# What a damaged archive raises: a name flagged UTF-8 that is not raises UnicodeDecodeError (a ValueError),
# bad bz2 data an OSError, truncated headers struct.error or EOFError.
_DAMAGED = (zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError, struct.error, ValueError, OverflowError, OSError)


def read_zip_members(
    source: bytes | Path,
    *,
    max_total_bytes: int,
    max_members: int = MAX_MEMBERS,
    max_ratio: float = MAX_RATIO,
) -> dict[str, bytes]:
    """The files in a zip archive by name (folders omitted), or ``UserError`` if it is unsafe."""
    try:
        with ExitStack() as stack:
            handle: BinaryIO = (
                io.BytesIO(source)
                if isinstance(source, bytes)
                else stack.enter_context(open_regular_file(source, max_bytes=None))
            )
            archive = stack.enter_context(zipfile.ZipFile(handle))
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
    except _DAMAGED as exc:
        raise UserError(f"The zip archive is damaged or not a zip archive ({_reason(exc)}).") from None
    except NotImplementedError as exc:
        raise UserError(f"The zip archive uses a feature teachbot cannot read ({_reason(exc)}).") from None


class DatasetMember(NamedTuple):
    """One dataset file found in a zip archive: the dataset it becomes, its path in the archive, its bytes."""

    name: str
    filename: str
    data: bytes


def dataset_members(members: Mapping[str, bytes]) -> list[DatasetMember]:
    """The dataset files among ``read_zip_members``' result, each with its own dataset name.

    A file is named after its base name (``x/data.jsonl`` → ``data``); when two files would share a
    name, each of them is named after its whole path (``x-data``, ``y-data``), so no file silently
    becomes a new version of another. Names that still clash are refused. macOS metadata
    (``__MACOSX/``) and hidden files (``.DS_Store``) are skipped.
    """
    files = sorted((path, data) for path, data in members.items() if not path.endswith("/") and not _is_metadata(path))
    short = [dataset_name_for(path) for path, _ in files]
    counts: dict[str, int] = {}
    for name in short:
        counts[name] = counts.get(name, 0) + 1
    chosen: dict[str, str] = {}
    result = []
    for (path, data), name in zip(files, short, strict=True):
        if counts[name] > 1:
            stem = path.rsplit(".", 1)[0] if "." in path.rsplit("/", 1)[-1] else path
            name = clean_dataset_name(stem.replace("/", "-"))
        if name in chosen:
            raise UserError(
                f"The zip archive holds `{_show(chosen[name])}` and `{_show(path)}`, which would both become "
                f"dataset `{name}`; rename one of them."
            )
        chosen[name] = path
        result.append(DatasetMember(name, path, data))
    return result


def _is_metadata(path: str) -> bool:
    parts = path.split("/")
    return parts[0] == "__MACOSX" or any(part.startswith(".") for part in parts)


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


def _reason(exc: BaseException) -> str:
    """An exception's text, short and printable, for a message about a damaged archive."""
    return _show(str(exc) or type(exc).__name__)


def _show(name: str) -> str:
    """A member name safe to echo: control characters replaced, length capped."""
    cleaned = "".join(c if c.isprintable() else "?" for c in name)
    return cleaned if len(cleaned) <= 80 else cleaned[:77] + "..."
