"""Model version folders kept in the database by content, so any process can load a version trained elsewhere.

A folder becomes one deterministic tar: entries sorted by path, no timestamps or owners, fixed modes.
The same files give the same bytes, hence the same sha256, which names the archive and is stored once.
``materialise`` unpacks an archive into ``cache_dir/<sha256>`` through a temporary folder and a rename,
after checking the hash, and accepts only plain files and folders inside the archive's root. The cache
is disposable: a missing or damaged folder is rebuilt from the database.

Hashing a cached folder at every start cost 42-72 ms of a chat's first answer on CLINC150. So, as git does
for its index, a folder once verified gets a stamp beside it (``<sha256>.verified``) listing each entry's
inode, size, mtime and ctime; while those are unchanged the folder is trusted without hashing. A change the
stamp cannot see (bits rotting in place) shows as a version that fails to load, and the caller then asks for
``materialise(..., rehash=True)``, which hashes and rebuilds.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import shutil
import stat
import tarfile
import tempfile
import threading
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from sqlalchemy import func, insert, select, text
from sqlalchemy.orm import Session

from teachbot.errors import TeachbotError
from teachbot.store.tables import Artefact

__all__ = [
    "ArtefactError",
    "archive_folder",
    "folder_sha256",
    "materialise",
    "put_archive",
    "put_archive_file",
    "put_folder",
    "stamp",
    "verified",
    "write_archive",
]

_COPY_CHUNK = 1 << 20
_STAMP_SUFFIX = ".verified"


class ArtefactError(TeachbotError):
    """A model artefact is missing, damaged, or not something we would have written."""


def archive_folder(folder: Path) -> bytes:
    """The deterministic tar of ``folder``: plain files and folders only, in path order, no metadata."""
    buffer = io.BytesIO()
    write_archive(folder, buffer)
    return buffer.getvalue()


class _Hashing(io.RawIOBase):
    """A writable file that passes what it is given on to ``file`` and hashes it."""

    def __init__(self, file: BinaryIO) -> None:
        self.file, self.sha, self.written = file, hashlib.sha256(), 0

    def writable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.written

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.sha.update(data)
        self.written += len(data)
        return self.file.write(data)


def write_archive(folder: Path, file: BinaryIO) -> str:
    """Write the archive ``archive_folder`` makes into ``file``, a piece at a time; its sha256. A version's
    archive goes to disk this way, not into memory (CLINC150: 28 MB, and storing it copied it twice more)."""
    if not folder.is_dir():
        raise ArtefactError(f"{folder} is not a folder")
    out = _Hashing(file)
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for relative in _walk(folder):
            path = folder / relative
            info = tarfile.TarInfo(relative)
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            if path.is_dir():
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                info.mode, info.size = 0o644, path.stat().st_size
                with path.open("rb") as handle:
                    tar.addfile(info, handle)
    return out.sha.hexdigest()


def _walk(folder: Path) -> list[str]:
    """Relative POSIX paths of everything under ``folder``, sorted by their parts; links are refused."""
    found: list[str] = []
    for root, dirs, files in os.walk(folder):
        for name in [*dirs, *files]:
            path = Path(root, name)
            mode = path.lstat().st_mode
            if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
                raise ArtefactError(f"{path} is not a plain file or folder; a model artefact holds only those")
            found.append(path.relative_to(folder).as_posix())
    return sorted(found, key=lambda p: p.split("/"))


def folder_sha256(folder: Path) -> str:
    """The sha256 ``put_folder`` would store ``folder`` under."""
    return hashlib.sha256(archive_folder(folder)).hexdigest()


def put_folder(session: Session, folder: Path) -> str:
    """Store ``folder`` (unless the same files are already stored) and return its sha256."""
    return put_archive(session, archive_folder(folder))


def put_archive_file(session: Session, path: Path, sha256: str) -> str:
    """Store the archive ``write_archive`` wrote to ``path`` (hash ``sha256``) once; return the hash. Into SQLite
    it goes a megabyte at a time, through an incremental blob; other databases are given it whole."""
    if session.scalar(select(Artefact.sha256).where(Artefact.sha256 == sha256)) is not None:
        return sha256
    if session.get_bind().dialect.name != "sqlite":
        return put_archive(session, path.read_bytes())
    size = path.stat().st_size
    session.execute(insert(Artefact).values(sha256=sha256, size=size, data=func.zeroblob(size)))
    rowid = session.execute(text("SELECT rowid FROM artefacts WHERE sha256 = :sha"), {"sha": sha256}).scalar_one()
    raw = session.connection().connection.driver_connection  # the sqlite3 connection, in this transaction
    with path.open("rb") as source, raw.blobopen("artefacts", "data", rowid) as blob:  # type: ignore[union-attr]
        while chunk := source.read(_COPY_CHUNK):
            blob.write(chunk)
    return sha256


def put_archive(session: Session, data: bytes) -> str:
    """Store an archive made by ``archive_folder`` (built off the database thread) once; return its sha256."""
    sha = hashlib.sha256(data).hexdigest()
    if session.scalar(select(Artefact.sha256).where(Artefact.sha256 == sha)) is not None:
        return sha
    values = {"sha256": sha, "size": len(data), "data": data}
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":  # another process may store the same files at the same moment
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        session.execute(pg_insert(Artefact).values(values).on_conflict_do_nothing(index_elements=["sha256"]))
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        session.execute(sqlite_insert(Artefact).values(values).on_conflict_do_nothing(index_elements=["sha256"]))
    else:
        session.execute(insert(Artefact).values(values))
    return sha


def materialise(session: Session, sha256: str, cache_dir: Path, *, rehash: bool = False) -> Path:
    """The folder of artefact ``sha256`` under ``cache_dir``, unpacked from the database unless already there.

    An existing folder is reused when it is ``verified`` (its stamp still matches, or, with ``rehash`` or
    without a matching stamp, its files hash to ``sha256``); a damaged one is replaced.
    """
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise ArtefactError(f"{sha256[:80]!r} is not a sha256")
    final = cache_dir / sha256
    if final.is_dir():
        if verified(final, sha256, rehash=rehash):
            return final
        _discard(final)
    data = session.scalar(select(Artefact.data).where(Artefact.sha256 == sha256))
    if data is None:
        raise ArtefactError(f"model artefact {sha256[:12]} is not in the database")
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha256:
        raise ArtefactError(f"model artefact {sha256[:12]} is corrupt: its stored bytes hash to {actual[:12]}")
    cache_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{sha256[:16]}.", dir=cache_dir))
    try:
        _unpack(data, staging, sha256)
        if folder_sha256(staging) != sha256:
            raise ArtefactError(f"model artefact {sha256[:12]} does not unpack to the files it was made from")
        try:
            staging.rename(final)
        except OSError:  # another thread or process put it there first
            if not verified(final, sha256):
                raise
        else:
            stamp(final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final


def verified(folder: Path, sha256: str, *, rehash: bool = False) -> bool:
    """Whether ``folder`` holds the files archived as ``sha256``: its stamp says so (unless ``rehash``), or
    hashing them does, and then it is stamped for next time."""
    if not rehash:
        recorded = _read_stamp(folder)
        if recorded is not None and recorded == _listing(folder):
            return True
    try:
        if folder_sha256(folder) != sha256:
            return False
    except (OSError, ArtefactError):
        return False
    stamp(folder)
    return True


def stamp(folder: Path) -> None:
    """Record ``folder``'s entries as they are now, for a folder just verified or written from verified
    files. Best effort: without a stamp (a read-only cache) the folder is hashed each time instead."""
    listing = _listing(folder)
    if listing is None:
        return
    path = _stamp_path(folder)
    partial = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.partial")
    try:
        partial.write_text(listing, encoding="utf-8")
        os.replace(partial, path)
    except OSError:
        partial.unlink(missing_ok=True)


def _stamp_path(folder: Path) -> Path:
    return folder.with_name(folder.name + _STAMP_SUFFIX)


def _read_stamp(folder: Path) -> str | None:
    try:
        return _stamp_path(folder).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def _listing(folder: Path) -> str | None:
    """One line per entry under ``folder`` (the folder included): path, inode, size, mtime and ctime in ns.
    Rewriting, replacing, adding or removing a file changes it; None when the folder cannot be read."""
    try:
        lines = []
        for relative in ["", *_walk(folder)]:
            info = (folder / relative).lstat()
            lines.append(f"{relative!r} {info.st_ino} {info.st_size} {info.st_mtime_ns} {info.st_ctime_ns}")
    except (OSError, ArtefactError):
        return None
    return "\n".join(lines) + "\n"


def _unpack(data: bytes, dest: Path, sha256: str) -> None:
    """Extract plain files and folders into ``dest``; refuse absolute paths, ``..``, links and devices."""
    label = f"model artefact {sha256[:12]}"
    seen: set[str] = set()
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            for member in tar:
                parts = PurePosixPath(member.name).parts
                if (
                    not parts
                    or member.name.startswith("/")
                    or "\\" in member.name
                    or "\x00" in member.name
                    or any(p in (".", "..") for p in parts)
                ):
                    raise ArtefactError(f"{label} holds an unsafe path: {member.name[:120]!r}")
                if member.name in seen:
                    raise ArtefactError(f"{label} holds {member.name[:120]!r} twice")
                seen.add(member.name)
                target = dest.joinpath(*parts)
                if member.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                elif member.isfile():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    source = tar.extractfile(member)
                    assert source is not None
                    with source, target.open("xb") as out:
                        shutil.copyfileobj(source, out, _COPY_CHUNK)
                else:
                    raise ArtefactError(f"{label} holds {member.name[:120]!r}, which is not a plain file or folder")
    except tarfile.TarError as exc:
        raise ArtefactError(f"{label} is not a readable archive ({exc})") from None
    except (FileExistsError, IsADirectoryError, NotADirectoryError) as exc:
        raise ArtefactError(f"{label} holds a file and a folder at the same path ({exc.filename})") from None


def _discard(folder: Path) -> None:
    """Move a damaged folder aside (one rename, so readers never see it half deleted), then delete it."""
    aside = folder.with_name(f".{folder.name}.damaged.{os.getpid()}.{id(folder)}")
    try:
        folder.rename(aside)
    except OSError:
        return  # someone else moved or replaced it
    with contextlib.suppress(OSError):
        _stamp_path(folder).unlink(missing_ok=True)
    shutil.rmtree(aside, ignore_errors=True)
