"""Decoding and encoding through the real ffmpeg, including hostile input."""

from __future__ import annotations

import json
import subprocess

import pytest
from fakes.speech_samples import ffmpeg_bytes

from teachbot.errors import MissingExtra, UserError
from teachbot.speech.audio import (
    STT_RATE,
    AudioLimits,
    check_not_silent,
    decode_to_pcm16k,
    encode_ogg_opus,
    encode_wav,
    pcm_duration,
    pcm_rms,
)

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d49444154789c6360000002"
    "0001e221bc330000000049454e44ae426082"
)


def _probe(data: bytes) -> dict:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-of", "json", "-i", "pipe:0"],
        input=data, capture_output=True, check=True, timeout=30,
    )  # fmt: skip
    return json.loads(out.stdout)["streams"][0]


def test_voice_message_is_opus_48k_mono_and_decodes_to_16k(hello_message: bytes) -> None:
    stream = _probe(hello_message)
    assert (stream["codec_name"], stream["sample_rate"], stream["channels"]) == ("opus", "48000", 1)
    pcm = decode_to_pcm16k(hello_message)
    assert 1.0 < pcm_duration(pcm) < 5.0
    assert len(pcm) % 2 == 0
    assert pcm_rms(pcm) > 300
    check_not_silent(pcm)


def test_wav_round_trip() -> None:
    tone = ffmpeg_bytes("-f", "lavfi", "-i", "sine=frequency=300:duration=1", "-ar", "22050", "-ac", "1", "-f", "s16le")
    wav = encode_wav(tone, 22050)
    assert wav[:4] == b"RIFF"
    pcm = decode_to_pcm16k(wav)
    assert abs(pcm_duration(pcm) - 1.0) < 0.01
    assert _probe(encode_ogg_opus(pcm, STT_RATE))["codec_name"] == "opus"


def test_raw_pcm_needs_its_rate() -> None:
    tone = "sine=frequency=440:duration=0.5"
    raw = ffmpeg_bytes("-f", "lavfi", "-i", tone, "-ar", "16000", "-ac", "1", "-f", "s16le")
    assert abs(pcm_duration(decode_to_pcm16k(raw, raw_rate=16000)) - 0.5) < 0.01


def test_empty_bytes_are_refused() -> None:
    with pytest.raises(UserError, match="empty"):
        decode_to_pcm16k(b"")


def test_truncated_ogg_is_refused(hello_message: bytes) -> None:
    with pytest.raises(UserError, match="couldn't read"):
        decode_to_pcm16k(hello_message[:60])


def test_png_is_refused() -> None:
    with pytest.raises(UserError, match="couldn't read"):
        decode_to_pcm16k(PNG)


def test_random_bytes_are_refused() -> None:
    with pytest.raises(UserError, match="couldn't read"):
        decode_to_pcm16k(bytes(range(256)) * 40)


def test_huge_input_is_refused_before_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")  # were ffmpeg run, this would be MissingExtra
    with pytest.raises(UserError, match="too large"):
        decode_to_pcm16k(b"\0" * 1001, AudioLimits(max_bytes=1000))


def test_too_long_audio_is_refused() -> None:
    tone = ffmpeg_bytes("-f", "lavfi", "-i", "sine=frequency=300:duration=5", "-c:a", "libopus", "-f", "ogg")
    with pytest.raises(UserError, match="too long"):
        decode_to_pcm16k(tone, AudioLimits(max_seconds=2))


def test_long_silence_is_refused() -> None:
    silence = ffmpeg_bytes("-f", "lavfi", "-i", "anullsrc=r=48000:cl=mono", "-t", "20", "-c:a", "libopus", "-f", "ogg")
    pcm = decode_to_pcm16k(silence)
    assert pcm_duration(pcm) == pytest.approx(20, abs=0.1)
    with pytest.raises(UserError, match="only silence"):
        check_not_silent(pcm)


def test_missing_ffmpeg_names_the_package(monkeypatch: pytest.MonkeyPatch, hello_message: bytes) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(MissingExtra, match="apt-get install ffmpeg"):
        decode_to_pcm16k(hello_message)
