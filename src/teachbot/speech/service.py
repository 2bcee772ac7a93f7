"""Speech for the transports: engines built once, lazily, and every blocking step off the event loop."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from teachbot.config import Settings, SttEngine
from teachbot.errors import TeachbotError
from teachbot.speech.audio import check_not_silent
from teachbot.speech.factory import build_stt, build_tts, choose_stt_engine, engine_label, hear
from teachbot.speech.stt import SpeechToText, Transcript
from teachbot.speech.tts import Speech, TextToSpeech

if TYPE_CHECKING:
    import discord

log = logging.getLogger(__name__)

MAX_SPOKEN_CHARS = 600  # a spoken answer longer than this is cut: nobody listens to a page


class SpeechService:
    """Hears audio attachments and speaks answers with the configured engines."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._stt: SpeechToText | None = None
        self._tts: TextToSpeech | None = None
        self._lock = asyncio.Lock()

    async def _recognizer(self) -> SpeechToText:
        async with self._lock:
            if self._stt is None:
                self._stt = await asyncio.to_thread(build_stt, self.settings)  # may load a model
            return self._stt

    @property
    def recognizer_loaded(self) -> bool:
        return self._stt is not None

    async def prepare_to_listen(self) -> None:
        """Load the speech-to-text model now, so the first utterance in a voice channel does not wait the
        seconds a whisper model takes to load; a problem is logged here and told at the first utterance."""
        try:
            await self._recognizer()
        except TeachbotError as exc:
            log.warning("speech recognition is not ready: %s", exc)

    async def _synthesizer(self) -> TextToSpeech:
        async with self._lock:
            if self._tts is None:
                self._tts = await asyncio.to_thread(build_tts, self.settings)
            return self._tts

    async def hear(self, data: bytes) -> Transcript:
        """Decode, check and transcribe an audio file's bytes (``UserError`` for bad or silent audio)."""
        recognizer = await self._recognizer()
        transcript = await asyncio.to_thread(hear, data, recognizer, self.settings)
        log.info("transcribed with %s in %.2f s", transcript.engine, transcript.seconds)
        return transcript

    async def transcribe_pcm(self, pcm16k: bytes) -> Transcript:
        """Transcribe live speech already cut and decoded (16 kHz mono); silence raises ``UserError``."""
        recognizer = await self._recognizer()

        def run() -> Transcript:
            check_not_silent(pcm16k)
            return recognizer.transcribe(pcm16k, self.settings.speech_language)

        transcript = await asyncio.to_thread(run)
        log.info(
            "transcribed %.1f s of voice with %s in %.2f s", len(pcm16k) / 32_000, transcript.engine, transcript.seconds
        )
        return transcript

    async def speak(self, text: str) -> Speech:
        synthesizer = await self._synthesizer()
        text = text[:MAX_SPOKEN_CHARS]
        return await asyncio.to_thread(
            synthesizer.synthesize, text, self.settings.tts_language, self.settings.tts_voice
        )

    async def audio_source(self, text: str) -> discord.AudioSource:
        """The spoken ``text`` as a Discord audio source (48 kHz stereo frames)."""
        from teachbot.speech.playback import speech_to_audio_source

        return await asyncio.to_thread(speech_to_audio_source, await self.speak(text))

    async def describe(self) -> str:
        """One line saying which engines run and which languages the recognizer hears; on the sphinx
        fallback (faster-whisper not installed) also how to hear better."""
        recognizer = await self._recognizer()
        heard = "most languages" if "*" in recognizer.languages else ", ".join(sorted(recognizer.languages))
        text = (
            f"I listen with {engine_label(recognizer)} (languages: {heard}; set: {self.settings.speech_language}) "
            f"and speak with {self.settings.tts_engine.value} ({self.settings.tts_language})."
        )
        if self.settings.stt_engine is None and choose_stt_engine(self.settings) is SttEngine.SPHINX:
            from teachbot.speech.stt_whisper import WHISPER_HINT

            text += f" To hear far better, install whisper: {WHISPER_HINT}."
        return text
