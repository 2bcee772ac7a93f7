"""The speech-to-text contract every engine implements, and what it hands back.

Engines are synchronous (they burn CPU or wait on one HTTP call); the speech service calls
``transcribe`` through ``asyncio.to_thread``. Every engine receives 16 kHz mono 16-bit PCM.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from teachbot.errors import UserError

__all__ = [
    "ANY_LANGUAGE",
    "SpeechToText",
    "Transcript",
    "base_language",
    "check_language",
    "hears",
]

log = logging.getLogger(__name__)

ANY_LANGUAGE: frozenset[str] = frozenset({"*"})
"""Marks an engine that hears (nearly) every language; the remote side decides."""


@dataclass(frozen=True, slots=True)
class Transcript:
    """What was heard: the text, how sure the engine is (if it says), who heard it, how long it took."""

    text: str
    confidence: float | None
    engine: str
    seconds: float

    @property
    def is_empty(self) -> bool:
        return not self.text.strip()


@runtime_checkable
class SpeechToText(Protocol):
    """Turns 16 kHz mono 16-bit PCM into text."""

    name: str
    languages: frozenset[str]

    def transcribe(self, pcm16k: bytes, language: str) -> Transcript:
        """Recognise speech in ``pcm16k`` spoken in ``language`` (an ISO 639-1 code or BCP-47 tag)."""
        ...


def base_language(language: str) -> str:
    """``en-US`` and ``en_us`` become ``en``: engines are chosen by the primary language."""
    return language.replace("_", "-").split("-", 1)[0].strip().lower()


def hears(languages: frozenset[str], language: str) -> bool:
    """Whether an engine with these languages can hear ``language``."""
    return languages is ANY_LANGUAGE or "*" in languages or base_language(language) in languages


def check_language(engine: SpeechToText, language: str) -> None:
    """Refuse a language the engine cannot hear with a message that says what to change."""
    if not hears(engine.languages, language):
        known = ", ".join(sorted(engine.languages))
        raise UserError(
            f"The {engine.name} speech engine can't hear '{language}' (it knows: {known}). "
            "Choose another speech_language or stt_engine (e.g. whisper with a multilingual model)."
        )
