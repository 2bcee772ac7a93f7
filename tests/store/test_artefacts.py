"""Model artefacts in the database: stored once by content, unpacked safely and atomically anywhere."""

from __future__ import annotations

import io
import os
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from teachbot.answering.local_model import LocalModel
from teachbot.store.artefacts import (
    ArtefactError,
    archive_folder,
    folder_sha256,
    materialise,
    put_archive,
    put_archive_file,
    put_folder,
    stamp,
    write_archive,
)
from teachbot.store.db import Database
from teachbot.store.tables import Artefact

PROMPTS = ["hello there", "hi", "what time is it", "tell me the time", "bye now", "see you later"]
ANSWERS = ["Hello!", "Hello!", "Noon.", "Noon.", "Bye!", "Bye!"]


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    database.migrate()
    try:
        yield database
    finally:
        database.close()


def make_folder(root: Path) -> Path:
    """A folder like a model version's: files, a nested folder, an empty one, a non-ASCII name."""
    folder = root / "version"
    (folder / "nested" / "deeper").mkdir(parents=True)
    (folder / "empty").mkdir()
    (folder / "model.json").write_text('{"labels": ["a"]}', encoding="utf-8")
    (folder / "arrays.npz").write_bytes(os.urandom(300_000))
    (folder / "nested" / "deeper" / "ünïcode ✓.txt").write_text("ok", encoding="utf-8")
    (folder / "nested" / "zero").write_bytes(b"")
    return folder


def files_of(folder: Path) -> dict[str, bytes | None]:
    return {
        p.relative_to(folder).as_posix(): (p.read_bytes() if p.is_file() else None) for p in sorted(folder.rglob("*"))
    }


def leftovers(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.iterdir() if p.name.startswith(".")) if cache.exists() else []


def test_a_folder_round_trips_through_the_database(db: Database, tmp_path: Path) -> None:
    folder = make_folder(tmp_path)
    sha = db.call(lambda s: put_folder(s, folder))
    cache = tmp_path / "cache"
    restored = db.call(lambda s: materialise(s, sha, cache))
    assert restored == cache / sha
    assert files_of(restored) == files_of(folder)
    assert folder_sha256(restored) == sha
    assert leftovers(cache) == []


def test_a_trained_model_loads_from_its_materialised_folder(db: Database, tmp_path: Path) -> None:
    model = LocalModel.fit(PROMPTS, ANSWERS)
    folder = tmp_path / "v1"
    model.save(folder)
    sha = db.call(lambda s: put_folder(s, folder))
    elsewhere = db.call(lambda s: materialise(s, sha, tmp_path / "other-process" / "cache"))
    loaded = LocalModel.load(elsewhere)
    questions = [*PROMPTS, "what's the time"]
    assert [p.answer for p in loaded.predict_many(questions)] == [p.answer for p in model.predict_many(questions)]


def test_the_same_files_are_stored_once_whatever_their_times_and_modes(db: Database, tmp_path: Path) -> None:
    folder = make_folder(tmp_path)
    first = db.call(lambda s: put_folder(s, folder))
    (folder / "model.json").chmod(0o600)
    os.utime(folder / "arrays.npz", (1_000_000, 1_000_000))
    assert db.call(lambda s: put_folder(s, folder)) == first
    assert db.call(lambda s: s.scalar(select(func.count()).select_from(Artefact))) == 1
    (folder / "model.json").write_text('{"labels": ["b"]}', encoding="utf-8")
    assert db.call(lambda s: put_folder(s, folder)) != first
    assert db.call(lambda s: s.scalar(select(func.count()).select_from(Artefact))) == 2


def test_corrupt_stored_bytes_are_refused_with_a_clear_error(db: Database, tmp_path: Path) -> None:
    sha = db.call(lambda s: put_folder(s, make_folder(tmp_path)))

    data = db.call(lambda s: s.scalar(select(Artefact.data).where(Artefact.sha256 == sha)))
    assert data is not None
    broken = data[:1000] + bytes([data[1000] ^ 0xFF]) + data[1001:]
    db.call(lambda s: s.execute(update(Artefact).where(Artefact.sha256 == sha).values(data=broken)))
    cache = tmp_path / "cache"
    with pytest.raises(ArtefactError, match=rf"model artefact {sha[:12]} is corrupt"):
        db.call(lambda s: materialise(s, sha, cache))
    assert not (cache / sha).exists()
    assert leftovers(cache) == []


def test_a_damaged_cached_folder_is_rebuilt(db: Database, tmp_path: Path) -> None:
    folder = make_folder(tmp_path)
    sha = db.call(lambda s: put_folder(s, folder))
    cache = tmp_path / "cache"
    restored = db.call(lambda s: materialise(s, sha, cache))
    (restored / "model.json").write_text("tampered", encoding="utf-8")
    (restored / "stray").write_text("x", encoding="utf-8")
    again = db.call(lambda s: materialise(s, sha, cache))
    assert again == restored and files_of(again) == files_of(folder)
    assert leftovers(cache) == []


def test_a_verified_folder_is_trusted_by_its_stamp_until_a_rehash(db: Database, tmp_path: Path) -> None:
    """Rot that keeps a file's inode, size and times is invisible to the stamp (simulated here by stamping the
    damaged folder): the folder is trusted without hashing, and ``rehash`` finds and repairs it."""
    folder = make_folder(tmp_path)
    sha = db.call(lambda s: put_folder(s, folder))
    cache = tmp_path / "cache"
    restored = db.call(lambda s: materialise(s, sha, cache))
    assert (cache / f"{sha}.verified").is_file()
    with (restored / "arrays.npz").open("r+b") as handle:  # same size, bytes changed
        handle.write(b"rotten")
    stamp(restored)

    trusted = db.call(lambda s: materialise(s, sha, cache))
    assert (trusted / "arrays.npz").read_bytes().startswith(b"rotten"), "the stamp was not trusted"
    repaired = db.call(lambda s: materialise(s, sha, cache, rehash=True))
    assert repaired == restored and files_of(repaired) == files_of(folder)
    assert leftovers(cache) == []


@pytest.mark.parametrize("change", ["rewrite", "add", "remove", "touch"])
def test_a_change_the_stamp_sees_makes_the_folder_checked_again(db: Database, tmp_path: Path, change: str) -> None:
    folder = make_folder(tmp_path)
    sha = db.call(lambda s: put_folder(s, folder))
    cache = tmp_path / "cache"
    restored = db.call(lambda s: materialise(s, sha, cache))
    target = restored / "model.json"
    if change == "rewrite":
        target.write_text('{"labels": ["z"]}', encoding="utf-8")  # same size
    elif change == "add":
        (restored / "nested" / "stray").write_bytes(b"")
    elif change == "remove":
        (restored / "nested" / "zero").unlink()
    else:
        os.utime(target, ns=(0, 0))
    again = db.call(lambda s: materialise(s, sha, cache))
    assert again == restored and files_of(again) == files_of(folder)
    assert (cache / f"{sha}.verified").is_file()


def test_a_stamp_that_cannot_be_written_leaves_the_folder_serving(db: Database, tmp_path: Path) -> None:
    """As in a read-only cache (tests run as root, so a folder stands where the stamp would go)."""
    folder = make_folder(tmp_path)
    sha = db.call(lambda s: put_folder(s, folder))
    cache = tmp_path / "cache"
    restored = db.call(lambda s: materialise(s, sha, cache))
    (cache / f"{sha}.verified").unlink()
    (cache / f"{sha}.verified").mkdir()
    for _ in range(2):
        assert db.call(lambda s: materialise(s, sha, cache)) == restored
        assert files_of(restored) == files_of(folder)
    assert leftovers(cache) == [] and (cache / f"{sha}.verified").is_dir()


def materialise_together(dbs: list[Database], sha: str, cache: Path) -> list[Path | BaseException]:
    """Call ``materialise`` from one thread per database, released at the same moment."""
    start = threading.Barrier(len(dbs))
    results: list[Path | BaseException] = []

    def run(db: Database) -> None:
        try:
            start.wait()
            results.append(db.call(lambda s: materialise(s, sha, cache)))
        except BaseException as exc:
            results.append(exc)

    threads = [threading.Thread(target=run, args=(db,)) for db in dbs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


def test_concurrent_materialise_of_one_hash_ends_with_one_good_folder(database_url: str, tmp_path: Path) -> None:
    dbs = [Database(database_url) for _ in range(2)]
    dbs[0].migrate()
    try:
        folder = make_folder(tmp_path)
        sha = dbs[0].call(lambda s: put_folder(s, folder))
        for attempt in range(5):
            cache = tmp_path / f"cache{attempt}"
            assert materialise_together(dbs, sha, cache) == [cache / sha, cache / sha]
            assert sorted(p.name for p in cache.iterdir()) == [sha, f"{sha}.verified"]
            assert files_of(cache / sha) == files_of(folder)
    finally:
        for db in dbs:
            db.close()


def tar_of(*members: tuple[tarfile.TarInfo, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            info.size = len(data) if info.isfile() else 0
            tar.addfile(info, io.BytesIO(data) if info.isfile() else None)
    return buffer.getvalue()


def member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    return info


TRICKS = {
    "parent": (tar_of((member("../escaped"), b"x")), "unsafe path"),
    "deep parent": (tar_of((member("a/../../escaped"), b"x")), "unsafe path"),
    "absolute": (tar_of((member("/tmp/escaped"), b"x")), "unsafe path"),
    "symlink": (tar_of((member("link", tarfile.SYMTYPE, "/etc"), b"")), "not a plain file"),
    "hard link": (tar_of((member("f"), b"x"), (member("link", tarfile.LNKTYPE, "f"), b"")), "not a plain file"),
    "device": (tar_of((member("dev", tarfile.CHRTYPE), b"")), "not a plain file"),
    "twice": (tar_of((member("f"), b"x"), (member("f"), b"y")), "twice"),
    "file then folder": (tar_of((member("f"), b"x"), (member("f/g"), b"y")), "file and a folder"),
    "not a tar": (b"PK\x03\x04 this is no tar archive" * 40, "not a readable archive"),
}


@pytest.mark.parametrize("trick", TRICKS)
def test_path_tricks_in_an_archive_are_refused(db: Database, tmp_path: Path, trick: str) -> None:
    data, message = TRICKS[trick]
    sha = db.call(lambda s: put_archive(s, data))
    cache = tmp_path / "deep" / "cache"
    with pytest.raises(ArtefactError, match=message):
        db.call(lambda s: materialise(s, sha, cache))
    assert not (cache / sha).exists()
    assert leftovers(cache) == []
    assert not (tmp_path / "deep" / "escaped").exists() and not (tmp_path / "escaped").exists()


def test_a_folder_with_a_link_is_not_stored(db: Database, tmp_path: Path) -> None:
    folder = make_folder(tmp_path)
    (folder / "link").symlink_to(folder / "model.json")
    with pytest.raises(ArtefactError, match="not a plain file or folder"):
        db.call(lambda s: put_folder(s, folder))


def test_unknown_and_malformed_hashes_are_refused(db: Database, tmp_path: Path) -> None:
    with pytest.raises(ArtefactError, match="is not in the database"):
        db.call(lambda s: materialise(s, "0" * 64, tmp_path))
    with pytest.raises(ArtefactError, match="is not a sha256"):
        db.call(lambda s: materialise(s, "../" + "0" * 61, tmp_path))


def test_archives_are_deterministic(tmp_path: Path) -> None:
    folder = make_folder(tmp_path)
    assert archive_folder(folder) == archive_folder(folder)
    copy = tmp_path / "copy"
    restored = copy / "version"
    restored.mkdir(parents=True)
    for relative, data in files_of(folder).items():
        target = restored / relative
        if data is None:
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
    assert archive_folder(restored) == archive_folder(folder)


def test_an_archive_written_to_a_file_is_stored_from_it_piece_by_piece(db: Database, tmp_path: Path) -> None:
    folder = make_folder(tmp_path)
    (folder / "big.bin").write_bytes(bytes(range(256)) * 20_000)  # 5 MB: several of the copy's pieces
    archive = tmp_path / "v.tar"
    with archive.open("wb") as file:
        sha = write_archive(folder, file)
    assert archive.read_bytes() == archive_folder(folder) and sha == folder_sha256(folder)
    assert db.call(lambda s: put_archive_file(s, archive, sha)) == sha
    assert db.call(lambda s: put_archive_file(s, archive, sha)) == sha  # the same files: stored once
    assert db.call(lambda s: s.scalar(select(func.count()).select_from(Artefact))) == 1
    restored = db.call(lambda s: materialise(s, sha, tmp_path / "cache"))
    assert files_of(restored) == files_of(folder)
