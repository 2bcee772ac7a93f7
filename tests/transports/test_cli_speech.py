"""`teachbot say` and `teachbot transcribe` as a user runs them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from fakes.env import child_env

pytestmark = pytest.mark.slow  # each test starts teachbot as a process


def teachbot(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = child_env()
    env["TEACHBOT_DATA_DIR"] = str(tmp_path / "data")
    return subprocess.run(
        [sys.executable, "-m", "teachbot", *args], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120
    )


def test_say_then_transcribe_round_trip(tmp_path: Path) -> None:
    said = teachbot(tmp_path, "say", "good morning, how are you today", "-o", str(tmp_path / "hello.ogg"))
    assert said.returncode == 0, said.stderr
    assert (tmp_path / "hello.ogg").read_bytes()[:4] == b"OggS"
    heard = teachbot(tmp_path, "transcribe", str(tmp_path / "hello.ogg"))
    assert heard.returncode == 0, heard.stderr
    assert "morning" in heard.stdout.lower() and "today" in heard.stdout.lower()


def test_say_writes_wav_and_refuses_other_formats(tmp_path: Path) -> None:
    assert teachbot(tmp_path, "say", "one two three", "-o", str(tmp_path / "a.wav")).returncode == 0
    assert (tmp_path / "a.wav").read_bytes()[:4] == b"RIFF"
    refused = teachbot(tmp_path, "say", "hi", "-o", str(tmp_path / "a.mp3"))
    assert refused.returncode == 2 and ".mp3" in refused.stderr


def test_transcribe_bad_input_is_one_clear_line(tmp_path: Path) -> None:
    (tmp_path / "empty.ogg").write_bytes(b"")
    (tmp_path / "image.ogg").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 100)
    for name in ("empty.ogg", "image.ogg", "missing.ogg"):
        result = teachbot(tmp_path, "transcribe", str(tmp_path / name))
        assert result.returncode == 2, name
        assert "Traceback" not in result.stderr and result.stderr.startswith("error:"), result.stderr
