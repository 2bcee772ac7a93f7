from __future__ import annotations

import os
from pathlib import Path

import pytest

from teachbot.errors import UserError
from teachbot.paths import atomic_write_bytes, resolve_inside, safe_filename


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


@pytest.mark.parametrize("name", [".hidden", "a b", "", "x" * 200])
def test_safe_filename_refuses(name: str) -> None:
    with pytest.raises(UserError):
        safe_filename(name)


def test_safe_filename_strips_folders() -> None:
    assert safe_filename("some/dir/report.json") == "report.json"


def test_atomic_write_replaces_whole_file(tmp_path: Path) -> None:
    target = tmp_path / "f.bin"
    atomic_write_bytes(target, b"old")
    atomic_write_bytes(target, b"new content")
    assert target.read_bytes() == b"new content"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]
