"""Speech recognition by remote services: Google's free web API and OpenAI-compatible servers.

Both send the clip off the machine, so neither is ever chosen unless the settings name it.
"""

from __future__ import annotations

import logging
import time
import warnings
from typing import Any

from teachbot.errors import ConfigError, MissingExtra, UserError
from teachbot.speech.audio import STT_RATE, encode_wav
from teachbot.speech.stt import ANY_LANGUAGE, SpeechToText, Transcript, base_language, check_language

__all__ = ["GOOGLE_ENDPOINT", "GoogleEngine", "OpenAIEngine"]

log = logging.getLogger(__name__)

GOOGLE_ENDPOINT = "http://www.google.com/speech-api/v2/recognize"


class GoogleEngine(SpeechToText):
    """Google's web speech API through SpeechRecognition (online; many languages)."""

    name = "google"
    languages = ANY_LANGUAGE

    def __init__(self, *, endpoint: str = GOOGLE_ENDPOINT, key: str | None = None, timeout: float = 30.0) -> None:
        try:
            with warnings.catch_warnings():  # it imports aifc/audioop, deprecated in Python 3.11+
                warnings.simplefilter("ignore", DeprecationWarning)
                import speech_recognition
        except ImportError:  # pragma: no cover - a core dependency
            raise MissingExtra("Google speech recognition", "pip install SpeechRecognition") from None
        self._sr: Any = speech_recognition
        self._endpoint = endpoint
        self._key = key
        self._timeout = timeout

    def transcribe(self, pcm16k: bytes, language: str) -> Transcript:
        check_language(self, language)
        sr = self._sr
        started = time.perf_counter()
        recognizer = sr.Recognizer()
        recognizer.operation_timeout = self._timeout
        audio = sr.AudioData(pcm16k, STT_RATE, 2)
        text, confidence = "", None
        try:
            result = recognizer.recognize_google(
                audio, key=self._key, language=language, with_confidence=True, endpoint=self._endpoint
            )
            text, confidence = result[0], float(result[1])
        except sr.UnknownValueError:
            pass  # nothing intelligible: an empty transcript
        except sr.RequestError as exc:
            log.warning("google speech request failed: %s", exc)
            raise UserError("The speech recognition service didn't answer; please try again later.") from None
        return Transcript(text.strip(), confidence, self.name, time.perf_counter() - started)


class OpenAIEngine(SpeechToText):
    """Any OpenAI-compatible ``/audio/transcriptions`` endpoint (OpenAI, a local whisper server...)."""

    name = "openai"
    languages = ANY_LANGUAGE

    def __init__(self, *, base_url: str, api_key: str | None, model: str = "whisper-1", timeout: float = 60.0) -> None:
        if not base_url:
            raise ConfigError("setting 'llm_base_url' is empty: the openai speech engine needs a server")
        from openai import OpenAI

        # A local server may need no key, but the SDK insists on one.
        self._client = OpenAI(base_url=base_url, api_key=api_key or "unused", timeout=timeout, max_retries=1)
        self._model = model

    def transcribe(self, pcm16k: bytes, language: str) -> Transcript:
        import openai

        check_language(self, language)
        started = time.perf_counter()
        try:
            result = self._client.audio.transcriptions.create(
                model=self._model,
                file=("speech.wav", encode_wav(pcm16k, STT_RATE), "audio/wav"),
                language=base_language(language),
                response_format="json",
            )
        except openai.APIError as exc:
            log.warning("transcription request failed: %s", exc.__class__.__name__)
            raise UserError("The speech recognition service didn't answer; please try again later.") from None
        text = getattr(result, "text", "") or ""
        return Transcript(text.strip(), None, self.name, time.perf_counter() - started)
