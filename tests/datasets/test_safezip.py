"""Hostile zip archives are refused with a clear message; ordinary ones are read."""

from __future__ import annotations

import io
import os
import stat
import zipfile
from pathlib import Path

import pytest

from teachbot.datasets.names import check_dataset_name
from teachbot.datasets.safezip import dataset_members, read_zip_members
from teachbot.errors import UserError

LIMITS = {"max_total_bytes": 1_000_000, "max_members": 10, "max_ratio": 50.0}


def build(*members: tuple[str | zipfile.ZipInfo, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for name, data in members:
            archive.writestr(name, data)
    return buffer.getvalue()


def test_ordinary_archive_is_read(tmp_path: Path) -> None:
    data = build(("data/a.csv", b"prompt,answer\nhi,hello\n"), ("data/", b""), ("b.jsonl", b"{}\n"))
    members = read_zip_members(data, **LIMITS)
    assert members == {"data/a.csv": b"prompt,answer\nhi,hello\n", "b.jsonl": b"{}\n"}
    path = tmp_path / "upload.zip"
    path.write_bytes(data)
    assert read_zip_members(path, **LIMITS) == members


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("/etc/passwd", "absolute path"),
        ("C:/Windows/win.ini", "absolute path"),
        ("../escape.txt", r"outside the archive \(`\.\.`\)"),
        ("data/../../escape.txt", r"outside the archive"),
        ("data\\..\\escape.txt", "backslashes"),
        ("bad\x1b[31mname.txt", "control characters"),
        ("data//double.txt", "empty or `.` path component"),
    ],
)
def test_dangerous_names_are_refused(name: str, message: str) -> None:
    with pytest.raises(UserError, match=message):
        read_zip_members(build((name, b"x")), **LIMITS)


def test_symlink_entry_is_refused() -> None:
    info = zipfile.ZipInfo("link.csv")
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    with pytest.raises(UserError, match="symbolic link"):
        read_zip_members(build((info, b"/etc/passwd")), **LIMITS)


def test_duplicate_names_are_refused() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive, pytest.warns(UserWarning, match="Duplicate name"):
        archive.writestr("a.csv", b"one")
        archive.writestr("a.csv", b"two")
    with pytest.raises(UserError, match=r"holds `a\.csv` twice"):
        read_zip_members(buffer.getvalue(), **LIMITS)
    with pytest.raises(UserError, match="twice"):
        read_zip_members(build(("A.csv", b"1"), ("a.csv", b"2")), **LIMITS)


def test_too_many_members() -> None:
    data = build(*((f"f{i}.txt", b"x") for i in range(11)))
    with pytest.raises(UserError, match="11 entries; the limit is 10"):
        read_zip_members(data, **LIMITS)


def test_declared_total_over_limit() -> None:
    data = build(("a.txt", b"a" * 600_000), ("b.txt", b"b" * 600_000), compression=zipfile.ZIP_STORED)
    with pytest.raises(UserError, match="more than 1,000,000 bytes"):
        read_zip_members(data, **LIMITS)


def test_zip_bomb_ratio() -> None:
    data = build(("zeros.txt", b"\0" * 900_000))
    with pytest.raises(UserError, match="zip bomb"):
        read_zip_members(data, **LIMITS)


def test_small_well_compressed_member_is_fine() -> None:
    assert read_zip_members(build(("a.txt", b"\0" * 10_000)), **LIMITS) == {"a.txt": b"\0" * 10_000}


def test_headers_that_lie_about_size_are_caught() -> None:
    """A header declaring 10 bytes for a 200,000-byte member: real bytes are counted while reading."""
    payload = bytes(range(256)) * 800
    data = bytearray(build(("a.bin", payload)))
    true_size = len(payload).to_bytes(4, "little")
    fake_size = (10).to_bytes(4, "little")
    assert data.count(true_size) == 2  # the local header and the central directory both declare it
    data = data.replace(true_size, fake_size)
    with pytest.raises(UserError, match=r"larger than its header says|damaged"):
        read_zip_members(bytes(data), **LIMITS)


def test_lying_header_cannot_exceed_total(tmp_path: Path) -> None:
    payload = bytes(range(256)) * 8_000  # 2 MB, incompressible enough to pass the ratio check
    data = bytearray(build(("a.bin", payload)))
    data = data.replace(len(payload).to_bytes(4, "little"), (1000).to_bytes(4, "little"))
    with pytest.raises(UserError):
        read_zip_members(bytes(data), **LIMITS)


def test_not_a_zip() -> None:
    with pytest.raises(UserError, match="not a zip archive"):
        read_zip_members(b"prompt,answer\nhi,hello\n", **LIMITS)


def test_encrypted_member_is_refused() -> None:
    data = bytearray(build(("a.txt", b"secret")))
    # set the "encrypted" flag bit in both the local header (offset 6) and the central directory entry
    data[6] |= 1
    central = data.find(b"PK\x01\x02")
    data[central + 8] |= 1
    with pytest.raises(UserError, match="encrypted"):
        read_zip_members(bytes(data), **LIMITS)


# --- zip members become datasets that keep apart


@pytest.mark.parametrize(
    ("paths", "names"),
    [
        (["faq.jsonl", "more/intents.csv"], ["faq", "intents"]),
        (["x/data.jsonl", "y/data.jsonl"], ["x-data", "y-data"]),
        (["x/data.jsonl", "y/data.jsonl", "other.csv"], ["other", "x-data", "y-data"]),
        (["a/b/data.jsonl", "a/c/data.jsonl"], ["a-b-data", "a-c-data"]),
        (["données/faq.jsonl", "my data/faq.jsonl"], ["données-faq", "my-data-faq"]),
        (["data.jsonl", "sub/data.csv"], ["data", "sub-data"]),
        (["faq.jsonl", "__MACOSX/._faq.jsonl", ".DS_Store", "x/.hidden.csv"], ["faq"]),
    ],
)
def test_members_become_distinct_datasets(paths: list[str], names: list[str]) -> None:
    members = read_zip_members(build(*((p, f"{p}\n".encode()) for p in paths)), **LIMITS)
    found = dataset_members(members)
    assert sorted(m.name for m in found) == names
    for member in found:
        assert member.data == f"{member.filename}\n".encode()
        assert check_dataset_name(member.name) == member.name


@pytest.mark.parametrize(
    "paths",
    [
        ["x/data.jsonl", "x/data.csv"],  # both would be x-data
        ["x/data.jsonl", "y/data.jsonl", "x-data.csv"],
    ],
)
def test_names_that_still_clash_are_refused(paths: list[str]) -> None:
    members = read_zip_members(build(*((p, b"x") for p in paths)), **LIMITS)
    with pytest.raises(UserError, match=r"which would both become dataset `x-data`; rename one of them"):
        dataset_members(members)


def test_a_name_flagged_utf8_that_is_not_is_refused() -> None:
    info = zipfile.ZipInfo("caf\u00e9.csv")
    data = bytearray(build((info, b"x")))
    data = data.replace("café".encode(), b"caf\xff\xfe")  # the UTF-8 flag stays set on broken bytes
    with pytest.raises(UserError, match="damaged"):
        read_zip_members(bytes(data), **LIMITS)


@pytest.mark.parametrize("kind", ["pipe", "folder", "loop"])
def test_zip_paths_that_are_not_files_are_refused(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "upload.zip"
    {"pipe": os.mkfifo, "folder": Path.mkdir, "loop": lambda p: os.symlink(p.name, p)}[kind](path)
    with pytest.raises(UserError, match=r"not a regular file|folder|loops"):
        read_zip_members(path, **LIMITS)
