"""Speech fixtures: voice messages made here with espeak-ng (OGG/Opus 48 kHz mono, like Discord's)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakes.speech_samples import espeak_voice_message

from teachbot.config import Settings, load_settings
from teachbot.speech.stt_sphinx import SphinxEngine


@pytest.fixture(scope="session")
def hello_message() -> bytes:
    return espeak_voice_message("Hello world. One two three.")


@pytest.fixture
def speech_settings(tmp_path: Path) -> Settings:
    return load_settings(data_dir=tmp_path / "data", max_upload_bytes=2_000_000, max_audio_seconds=30)


@pytest.fixture(scope="session")
def sphinx() -> SphinxEngine:
    """One decoder for the session: loading the model takes over a second."""
    return SphinxEngine()
