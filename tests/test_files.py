"""Archives and file downloads stay inside the data folder."""

from __future__ import annotations

import os
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from teachbot.errors import UserError
from teachbot.files import FileService


@pytest.fixture
def files(tmp_path: Path) -> FileService:
    data = tmp_path / "data"
    for folder in ("exports", "logs", "datasets"):
        (data / folder).mkdir(parents=True)
    (data / "exports" / "faq.jsonl").write_text('{"prompt": "a", "answer": "b"}\n')
    (data / "logs" / "teachbot.log").write_text("log line\n")
    (data / "teachbot.sqlite3").write_text("db")
    return FileService(data, max_send_bytes=1000)


def test_archive_zips_the_chosen_parts_only(files: FileService) -> None:
    path = files.archive("exports", author="t")
    assert path.parent.name == "archives" and path.suffix == ".zip"
    with zipfile.ZipFile(path) as archive:
        assert archive.namelist() == ["exports/faq.jsonl"]
    everything = files.archive("all", author="t")
    with zipfile.ZipFile(everything) as archive:
        assert {"exports/faq.jsonl", "logs/teachbot.log"} <= set(archive.namelist())
        assert "teachbot.sqlite3" not in archive.namelist()
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]


def test_archive_refuses_unknown_parts(files: FileService) -> None:
    with pytest.raises(UserError, match="one of"):
        files.archive("../../etc", author="t")


def test_getfile_sends_from_exports_and_archives(files: FileService) -> None:
    assert files.file_to_send("faq.jsonl").name == "faq.jsonl"
    assert files.file_to_send("exports/faq.jsonl").name == "faq.jsonl"
    archive = files.archive("logs", author="t")
    assert files.file_to_send(archive.name) == archive.resolve()


@pytest.mark.parametrize(
    "name",
    [
        "teachbot.sqlite3",
        "logs/teachbot.log",
        "../data/teachbot.sqlite3",
        "/etc/passwd",
        "exports/../teachbot.sqlite3",
        "",
    ],
)
def test_getfile_refuses_everything_else(files: FileService, name: str) -> None:
    with pytest.raises(UserError):
        files.file_to_send(name)


def test_getfile_refuses_links_leading_outside(files: FileService, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("secret")
    os.symlink(secret, files.data_dir / "exports" / "innocent.txt")
    with pytest.raises(UserError):
        files.file_to_send("innocent.txt")


def test_getfile_refuses_files_over_the_limit(files: FileService) -> None:
    (files.data_dir / "exports" / "big.bin").write_bytes(b"x" * 2000)
    with pytest.raises(UserError, match="at most"):
        files.file_to_send("big.bin")


@pytest.mark.parametrize(
    ("make", "name", "message"),
    [
        (lambda exports: os.mkfifo(exports / "pipe.zip"), "pipe.zip", "not a regular file"),
        (lambda exports: (exports / "dir.zip").mkdir(), "dir.zip", "is a folder"),
        (lambda exports: os.symlink("loop.zip", exports / "loop.zip"), "loop.zip", "loops"),
        (lambda exports: None, "x" * 300 + ".zip", "There is no file|too long"),
        (lambda exports: None, "exports/" + "x" * 300, "too long"),
    ],
)
def test_getfile_refuses_what_cannot_be_sent(
    files: FileService, make: Callable[[Path], object], name: str, message: str
) -> None:
    make(files.data_dir / "exports")
    with pytest.raises(UserError, match=message):
        files.file_to_send(name)
    with pytest.raises(UserError, match=message):
        files.read_to_send(name)


def test_read_to_send_gives_name_and_bytes(files: FileService) -> None:
    assert files.read_to_send("faq.jsonl") == ("faq.jsonl", b'{"prompt": "a", "answer": "b"}\n')
    (files.data_dir / "exports" / "big.bin").write_bytes(b"x" * 2000)
    with pytest.raises(UserError, match="the most I send"):
        files.read_to_send("big.bin")
