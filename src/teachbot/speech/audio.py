"""Audio in and out through an ffmpeg subprocess: whatever people send becomes 16 kHz mono PCM.

Every engine hears the same format (16 kHz, mono, signed 16-bit little-endian) so that limits,
silence detection and resampling live in one place. ffmpeg runs without a shell, fed through
pipes, under a timeout; its stderr never reaches a user.
"""

from __future__ import annotations

import io
import logging
import shutil
import subprocess
import wave
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from teachbot.errors import MissingExtra, UserError

if TYPE_CHECKING:
    from teachbot.config import Settings

__all__ = [
    "STT_RATE",
    "AudioLimits",
    "check_not_silent",
    "decode_to_pcm16k",
    "encode_ogg_opus",
    "encode_wav",
    "pcm_duration",
    "pcm_rms",
    "resample_pcm",
    "run_ffmpeg",
]

log = logging.getLogger(__name__)

STT_RATE = 16_000
"""Sample rate every speech-to-text engine receives."""

SAMPLE_WIDTH = 2
SILENCE_RMS_FLOOR = 30.0
"""Root mean square (of 32768) below which a clip is silence: about -60 dBFS."""

FFMPEG_HINT = "install ffmpeg (Debian/Ubuntu: apt-get install ffmpeg)"


@dataclass(frozen=True, slots=True)
class AudioLimits:
    """How much audio teachbot accepts: bytes are checked before decoding, seconds after."""

    max_bytes: int = 20_000_000
    max_seconds: float = 120.0
    timeout_seconds: float = 60.0

    @classmethod
    def from_settings(cls, settings: Settings) -> AudioLimits:
        return cls(max_bytes=settings.max_upload_bytes, max_seconds=settings.max_audio_seconds)


def _ffmpeg() -> str:
    path = shutil.which("ffmpeg")
    if path is None:
        raise MissingExtra("Audio decoding", FFMPEG_HINT)
    return path


def run_ffmpeg(args: list[str], data: bytes, *, timeout: float) -> bytes:
    """Run ffmpeg with ``data`` on stdin and return stdout; a failure raises ``UserError``."""
    command = [_ffmpeg(), "-nostdin", "-hide_banner", "-loglevel", "error", *args]
    try:
        done = subprocess.run(command, input=data, capture_output=True, timeout=timeout, check=False)
    except FileNotFoundError:
        raise MissingExtra("Audio decoding", FFMPEG_HINT) from None
    except subprocess.TimeoutExpired:
        log.warning("ffmpeg took longer than %.0f s", timeout)
        raise UserError("That audio took too long to process; please send a shorter clip.") from None
    if done.returncode != 0:
        log.info("ffmpeg failed (%s): %s", done.returncode, done.stderr.decode(errors="replace")[-500:])
        raise UserError("I couldn't read that audio: the file is damaged or not a sound format I know.")
    return done.stdout


def decode_to_pcm16k(data: bytes, limits: AudioLimits | None = None, *, raw_rate: int | None = None) -> bytes:
    """Decode any audio ffmpeg can read to 16 kHz mono 16-bit PCM, within the limits.

    ``raw_rate`` reads headerless mono s16le input at that rate (ffmpeg cannot guess it).
    """
    limits = limits or AudioLimits()
    if not data:
        raise UserError("That audio file is empty.")
    if len(data) > limits.max_bytes:
        raise UserError(
            f"That audio is too large ({len(data) / 1e6:.1f} MB); the limit is {limits.max_bytes / 1e6:.1f} MB."
        )
    source = ["-f", "s16le", "-ar", str(raw_rate), "-ac", "1"] if raw_rate else []
    # Decode a little past the limit, never the whole of an endless stream.
    cap = f"{limits.max_seconds + 0.5:.3f}"
    pcm = run_ffmpeg(
        [*source, "-i", "pipe:0", "-t", cap, "-vn", "-ac", "1", "-ar", str(STT_RATE), "-f", "s16le", "pipe:1"],
        data,
        timeout=limits.timeout_seconds,
    )
    if len(pcm) < SAMPLE_WIDTH * STT_RATE // 100:  # under 10 ms: nothing a person said
        raise UserError("I couldn't read that audio: it holds no sound I can decode.")
    seconds = pcm_duration(pcm)
    if seconds > limits.max_seconds:
        raise UserError(f"That audio is too long; the limit is {limits.max_seconds:.0f} seconds.")
    return pcm[: len(pcm) - len(pcm) % SAMPLE_WIDTH]


def pcm_duration(pcm: bytes, sample_rate: int = STT_RATE) -> float:
    """Seconds of mono 16-bit PCM."""
    return len(pcm) / (SAMPLE_WIDTH * sample_rate)


def pcm_rms(pcm: bytes) -> float:
    """Root mean square level of mono 16-bit PCM (0 to 32768)."""
    samples = np.frombuffer(pcm[: len(pcm) - len(pcm) % SAMPLE_WIDTH], dtype="<i2")
    if samples.size == 0:
        return 0.0
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))


def check_not_silent(pcm: bytes, floor: float = SILENCE_RMS_FLOOR) -> None:
    """Refuse a clip with no voice in it, so nobody gets an answer to a guess."""
    if pcm_rms(pcm) < floor:
        raise UserError("I heard only silence in that audio.")


def resample_pcm(pcm: bytes, src_rate: int, dst_rate: int, *, channels: int = 1, timeout: float = 60.0) -> bytes:
    """Resample mono 16-bit PCM to ``dst_rate`` with ``channels`` output channels."""
    if src_rate == dst_rate and channels == 1:
        return pcm
    return run_ffmpeg(
        [
            "-f", "s16le", "-ar", str(src_rate), "-ac", "1", "-i", "pipe:0",
            "-ar", str(dst_rate), "-ac", str(channels), "-f", "s16le", "pipe:1",
        ],
        pcm,
        timeout=timeout,
    )  # fmt: skip


def encode_wav(pcm: bytes, sample_rate: int) -> bytes:
    """Wrap mono 16-bit PCM in a WAV header (the standard library is enough)."""
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(SAMPLE_WIDTH)
        wav.setframerate(sample_rate)
        wav.writeframes(pcm)
    return out.getvalue()


def encode_ogg_opus(pcm: bytes, sample_rate: int, *, bitrate: str = "32k", timeout: float = 60.0) -> bytes:
    """Encode mono 16-bit PCM as OGG/Opus at 48 kHz, the shape of a Discord voice message."""
    if not pcm:
        raise UserError("There is no audio to encode.")
    return run_ffmpeg(
        [
            "-f", "s16le", "-ar", str(sample_rate), "-ac", "1", "-i", "pipe:0",
            "-ar", "48000", "-ac", "1", "-c:a", "libopus", "-b:a", bitrate, "-application", "voip",
            "-f", "ogg", "pipe:1",
        ],
        pcm,
        timeout=timeout,
    )  # fmt: skip
