from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest
from fakes.bounded import within

from teachbot.errors import DiskFull, FileTooLarge, UserError
from teachbot.paths import (
    atomic_write_bytes,
    check_regular_file,
    read_regular_file,
    read_user_file,
    resolve_inside,
    safe_filename,
)


@pytest.mark.parametrize(
    "name",
    [
        "/etc/passwd",
        "../secret.txt",
        "exports/../../x",
        "..\\..\\windows",
        "C:\\boot.ini",
        "",
        "a\x00b",
        "\\\\server\\share",
    ],
)
def test_hostile_names_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(UserError):
        resolve_inside(tmp_path, name)


def test_link_leading_outside_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("x")
    base = tmp_path / "data"
    base.mkdir()
    os.symlink(outside, base / "link")
    with pytest.raises(UserError, match="outside"):
        resolve_inside(base, "link/secret")


def test_plain_names_resolve_inside(tmp_path: Path) -> None:
    assert resolve_inside(tmp_path, "exports/a.csv") == (tmp_path / "exports" / "a.csv").resolve()


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        (".hidden", "starts with a dot"),
        ("..", "starts with a dot"),
        ("", "empty"),
        ("   ", "empty"),
        ("dir/", "empty"),
        ("a\nb.csv", "control or invisible"),
        ("a\x00b.csv", "control or invisible"),
        ("zero\u200bwidth.csv", "control or invisible"),
        ("bad\ud800.csv", "control or invisible"),
        ("x" * 241, "longer than 240 bytes"),
        ("é" * 121, "longer than 240 bytes"),  # 121 characters, 242 bytes of UTF-8
    ],
)
def test_safe_filename_refuses(name: str, reason: str) -> None:
    with pytest.raises(UserError, match=f"not a usable file name: it .*{reason}"):
        safe_filename(name)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("données.jsonl", "données.jsonl"),
        ("my data.jsonl", "my data.jsonl"),
        ("ｏｋ", "ｏｋ"),
        ("global-ｏｋ-openai-chat.jsonl", "global-ｏｋ-openai-chat.jsonl"),
        ("caf\u0065\u0301.csv", "caf\u00e9.csv"),  # normalised to NFC
        ("  padded.csv  ", "padded.csv"),
        ("x" * 240, "x" * 240),
    ],
)
def test_safe_filename_accepts_printable_unicode(name: str, expected: str) -> None:
    assert safe_filename(name) == expected


def test_safe_filename_strips_folders() -> None:
    assert safe_filename("some/dir/report.json") == "report.json"
    assert safe_filename("some\\dir\\report.json") == "report.json"


def test_atomic_write_replaces_whole_file(tmp_path: Path) -> None:
    target = tmp_path / "f.bin"
    atomic_write_bytes(target, b"old")
    atomic_write_bytes(target, b"new content")
    assert target.read_bytes() == b"new content"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]


def test_atomic_write_on_a_full_disk_says_so_and_keeps_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "f.bin"
    atomic_write_bytes(target, b"old")

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(DiskFull, match=r"The disk is full: f\.bin was not saved"):
        atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]


# --- reading files users name: every refusal is a UserError naming the file, and nothing blocks


def _hostile(tmp_path: Path, kind: str) -> str:
    """Make ``kind`` of hostile file inside ``tmp_path``; return the name a user would give."""
    if kind == "missing":
        return "nope.jsonl"
    if kind == "folder":
        (tmp_path / "folder.jsonl").mkdir()
        return "folder.jsonl"
    if kind == "loop":
        os.symlink("loop.jsonl", tmp_path / "loop.jsonl")
        return "loop.jsonl"
    if kind == "loop pair":
        os.symlink("b.jsonl", tmp_path / "a.jsonl")
        os.symlink("a.jsonl", tmp_path / "b.jsonl")
        return "a.jsonl"
    if kind == "dangling link":
        os.symlink("gone.jsonl", tmp_path / "dangling.jsonl")
        return "dangling.jsonl"
    if kind == "long name":
        return "x" * 300 + ".jsonl"
    if kind == "long path":
        return "/".join(["d" * 200] * 30) + "/f.jsonl"
    if kind == "file as folder":
        (tmp_path / "plain").write_text("x")
        return "plain/f.jsonl"
    if kind == "named pipe":
        os.mkfifo(tmp_path / "f.jsonl")
        return "f.jsonl"
    if kind == "too large":
        (tmp_path / "big.jsonl").write_bytes(b"x" * 2000)
        return "big.jsonl"
    raise AssertionError(kind)


HOSTILE = {
    "missing": "no such file",
    "folder": "is a folder, not a file",
    "loop": "symbolic link that loops",
    "loop pair": "symbolic link that loops",
    "dangling link": "no such file",
    "long name": "name is too long",
    "long path": "name is too long",
    "file as folder": "a part of its path is not a folder",
    "named pipe": "not a regular file",
    "too large": "over the limit of 1,000 bytes",
}


@pytest.mark.parametrize("kind", list(HOSTILE))
def test_read_user_file_refuses_clearly(tmp_path: Path, kind: str) -> None:
    name = _hostile(tmp_path, kind)
    error = within(5, lambda: read_user_file(tmp_path, name, max_bytes=1000))
    assert isinstance(error, UserError), repr(error)
    assert HOSTILE[kind] in str(error)
    assert f"`{name[:30]}" in str(error)  # names the file (long names are clipped)
    assert len(str(error)) < 300


@pytest.mark.parametrize("kind", list(HOSTILE))
def test_read_regular_file_refuses_clearly(tmp_path: Path, kind: str) -> None:
    path = tmp_path / _hostile(tmp_path, kind)
    error = within(5, lambda: read_regular_file(path, max_bytes=1000))
    assert isinstance(error, UserError), repr(error)
    assert HOSTILE[kind] in str(error)


@pytest.mark.parametrize("kind", list(HOSTILE))
def test_check_regular_file_refuses_without_opening(tmp_path: Path, kind: str) -> None:
    path = tmp_path / _hostile(tmp_path, kind)
    error = within(5, lambda: check_regular_file(path, max_bytes=1000))
    assert isinstance(error, UserError), repr(error)
    assert HOSTILE[kind] in str(error)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")
def test_unreadable_file_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "secret.jsonl"
    secret.write_text("x")
    secret.chmod(0)
    with pytest.raises(UserError, match=r"secret\.jsonl`: cannot be read \(permission denied\)"):
        read_user_file(tmp_path, "secret.jsonl", max_bytes=None)


def test_reading_a_regular_file(tmp_path: Path) -> None:
    (tmp_path / "données.jsonl").write_bytes(b"abc")
    path, data = read_user_file(tmp_path, "données.jsonl", max_bytes=3)
    assert (path.name, data) == ("données.jsonl", b"abc")
    assert read_regular_file(path, max_bytes=None) == b"abc"
    assert check_regular_file(path, max_bytes=3) == 3
    with pytest.raises(FileTooLarge, match=r"is 3 bytes, over the limit of 2 bytes"):
        read_regular_file(path, max_bytes=2)


@pytest.mark.parametrize("name", ["x" * 300, "loop/x", "bad\ud800name"])
def test_resolve_inside_never_leaks_os_errors(tmp_path: Path, name: str) -> None:
    os.symlink("loop", tmp_path / "loop")
    try:
        resolved = resolve_inside(tmp_path, name)
    except UserError:
        return
    assert tmp_path.resolve() in resolved.parents


def test_atomic_write_gives_the_permissions_of_an_ordinary_write(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        atomic_write_bytes(tmp_path / "chart.png", b"new")
        assert stat.S_IMODE((tmp_path / "chart.png").stat().st_mode) == 0o644  # not mkstemp's 0600
        os.chmod(tmp_path / "chart.png", 0o600)
        atomic_write_bytes(tmp_path / "chart.png", b"newer")
        assert stat.S_IMODE((tmp_path / "chart.png").stat().st_mode) == 0o600  # a replaced file keeps its mode
        os.umask(0o077)
        atomic_write_bytes(tmp_path / "private.csv", b"x")
        assert stat.S_IMODE((tmp_path / "private.csv").stat().st_mode) == 0o600  # the umask is respected
    finally:
        os.umask(old)
