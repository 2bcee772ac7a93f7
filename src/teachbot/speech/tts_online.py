"""Speech synthesis by remote services: gTTS (Google Translate's voice) and OpenAI-compatible servers.

Both return compressed audio (MP3, WAV or Opus); ffmpeg turns it into the PCM the rest of
teachbot handles.
"""

from __future__ import annotations

import io
import logging
from typing import Any

from teachbot.errors import ConfigError, MissingExtra, UserError
from teachbot.speech.audio import run_ffmpeg
from teachbot.speech.tts import Speech, TextToSpeech, clean_text, parse_wav

__all__ = ["GttsEngine", "OpenAITtsEngine"]

log = logging.getLogger(__name__)

OUT_RATE = 24_000


def _to_speech(data: bytes, engine: str) -> Speech:
    """Any container ffmpeg reads becomes mono 16-bit PCM at 24 kHz."""
    if data[:4] == b"RIFF":
        try:
            speech = parse_wav(data)
            return Speech(speech.pcm, speech.sample_rate, engine)
        except ValueError:
            pass  # an unusual WAV: let ffmpeg read it
    pcm = run_ffmpeg(
        ["-i", "pipe:0", "-vn", "-ac", "1", "-ar", str(OUT_RATE), "-f", "s16le", "pipe:1"], data, timeout=60.0
    )
    return Speech(pcm, OUT_RATE, engine)


class GttsEngine(TextToSpeech):
    """gTTS (the ``teachbot[online]`` extra): many languages, needs the internet."""

    name = "gtts"

    def __init__(self) -> None:
        try:
            import gtts
        except ImportError:
            raise MissingExtra("Online speech (gTTS)", "pip install 'teachbot[online]' (gTTS)") from None
        self._gtts: Any = gtts

    def synthesize(self, text: str, language: str, voice: str = "") -> Speech:
        """``voice`` is a Google Translate domain accent such as ``co.uk`` (empty: ``com``)."""
        text = clean_text(text)
        out = io.BytesIO()
        try:
            self._gtts.gTTS(text, lang=language or "en", tld=voice or "com").write_to_fp(out)
        except ValueError:
            raise UserError(f"gTTS can't speak the language '{language}'.") from None
        except self._gtts.gTTSError as exc:
            log.warning("gTTS request failed: %s", exc)
            raise UserError("The online speech service didn't answer; please try again later.") from None
        return _to_speech(out.getvalue(), self.name)


class OpenAITtsEngine(TextToSpeech):
    """Any OpenAI-compatible ``/audio/speech`` endpoint; the server picks the language from the text."""

    name = "openai"

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str | None,
        model: str = "tts-1",
        default_voice: str = "alloy",
        timeout: float = 60.0,
    ) -> None:
        if not base_url:
            raise ConfigError("setting 'llm_base_url' is empty: the openai speech engine needs a server")
        from openai import OpenAI

        self._client = OpenAI(base_url=base_url, api_key=api_key or "unused", timeout=timeout, max_retries=1)
        self._model = model
        self._voice = default_voice

    def synthesize(self, text: str, language: str, voice: str = "") -> Speech:
        import openai

        text = clean_text(text)
        try:
            response = self._client.audio.speech.create(
                model=self._model, voice=voice or self._voice, input=text, response_format="wav"
            )
            data = response.read()
        except openai.APIError as exc:
            log.warning("speech request failed: %s", exc.__class__.__name__)
            raise UserError("The speech service didn't answer; please try again later.") from None
        if not data:
            raise UserError("The speech service sent back no audio.")
        try:
            return _to_speech(data, self.name)
        except UserError:
            raise UserError("The speech service sent back audio I can't read.") from None
