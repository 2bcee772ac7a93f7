"""The text-to-speech contract, what it hands back, and the WAV parsing the engines share."""

from __future__ import annotations

import logging
import re
import struct
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from teachbot.errors import UserError

__all__ = [
    "MAX_TTS_CHARS",
    "Speech",
    "TextToSpeech",
    "check_code",
    "clean_text",
    "parse_wav",
]

log = logging.getLogger(__name__)

MAX_TTS_CHARS = 1000
"""Longest text spoken at once: about a minute of speech, and a bound on engine work."""

_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_+\-]{0,39}$")


@dataclass(frozen=True, slots=True)
class Speech:
    """Mono signed 16-bit little-endian PCM at ``sample_rate``."""

    pcm: bytes
    sample_rate: int
    engine: str = ""

    @property
    def seconds(self) -> float:
        return len(self.pcm) / (2 * self.sample_rate) if self.sample_rate else 0.0


@runtime_checkable
class TextToSpeech(Protocol):
    """Turns text into speech in a language, optionally with a named voice."""

    name: str

    def synthesize(self, text: str, language: str, voice: str = "") -> Speech:
        """Speak ``text`` in ``language``; ``voice`` picks an engine voice (engine default if empty)."""
        ...


def clean_text(text: str, limit: int = MAX_TTS_CHARS) -> str:
    """Collapse whitespace, drop control characters and cap the length at a word boundary."""
    text = "".join(ch if ch.isprintable() else " " for ch in text)
    text = " ".join(text.split())
    if not text:
        raise UserError("There is nothing to say.")
    if len(text) > limit:
        cut = text[:limit]
        text = cut.rsplit(" ", 1)[0] if " " in cut else cut
        log.info("speech text capped at %d characters", limit)
    return text


def check_code(value: str, what: str) -> str:
    """Language and voice names reach subprocess arguments: allow only plain codes."""
    if not _CODE.match(value):
        raise UserError(f"'{value[:40]}' is not a valid {what} name.")
    return value


def parse_wav(data: bytes) -> Speech:
    """Read mono 16-bit PCM WAV, tolerating the bogus sizes streaming writers (espeak-ng) put in headers."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError("not a WAV file")
    offset = 12
    rate = channels = bits = 0
    while offset + 8 <= len(data):
        chunk, size = data[offset : offset + 4], struct.unpack_from("<I", data, offset + 4)[0]
        body = offset + 8
        if chunk == b"fmt ":
            _fmt, channels, rate, _byte_rate, _align, bits = struct.unpack_from("<HHIIHH", data, body)
        elif chunk == b"data":
            if bits != 16 or channels != 1:
                raise ValueError(f"unsupported WAV: {channels} channels, {bits} bits")
            pcm = data[body : min(body + size, len(data))]
            return Speech(pcm[: len(pcm) - len(pcm) % 2], rate)
        offset = body + size + (size & 1)
    raise ValueError("WAV without a data chunk")
