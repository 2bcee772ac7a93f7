"""Build speech engines from ``Settings``, and the few pipelines every door needs.

The composition root calls ``build_stt`` and ``build_tts`` once; the CLI's ``transcribe`` and
``say`` commands use ``transcribe_file`` and ``say_to_file``. Engines are picked by the settings
enums through a dict, and their modules are imported only when chosen.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from teachbot.config import Settings, SttEngine, TtsEngine
from teachbot.errors import UserError
from teachbot.paths import read_regular_file
from teachbot.speech.audio import AudioLimits, check_not_silent, decode_to_pcm16k, encode_ogg_opus, encode_wav
from teachbot.speech.stt import SpeechToText, Transcript
from teachbot.speech.tts import Speech, TextToSpeech

__all__ = [
    "build_stt",
    "build_tts",
    "choose_stt_engine",
    "engine_label",
    "hear",
    "say_to_file",
    "speech_file_bytes",
    "transcribe_file",
]

log = logging.getLogger(__name__)


def _server(settings: Settings) -> tuple[str, str | None]:
    """The OpenAI-compatible speech server and its key: the speech settings, else the LLM's."""
    key = settings.speech_api_key or settings.llm_api_key
    return settings.speech_base_url or settings.llm_base_url, key.get_secret_value() if key else None


def _sphinx(settings: Settings) -> SpeechToText:
    from teachbot.speech.stt_sphinx import SphinxEngine

    return SphinxEngine()


def _whisper(settings: Settings) -> SpeechToText:
    from teachbot.speech.stt_whisper import WhisperEngine, bundled_model

    bundled = bundled_model()
    model = settings.whisper_model or (str(bundled) if bundled is not None else "")
    return WhisperEngine(model)


def _google(settings: Settings) -> SpeechToText:
    from teachbot.speech.stt_online import GoogleEngine

    return GoogleEngine()


def _openai_stt(settings: Settings) -> SpeechToText:
    from teachbot.speech.stt_online import OpenAIEngine

    base_url, key = _server(settings)
    return OpenAIEngine(base_url=base_url, api_key=key, model=settings.stt_model)


_STT: dict[SttEngine, Callable[[Settings], SpeechToText]] = {
    SttEngine.SPHINX: _sphinx,
    SttEngine.WHISPER: _whisper,
    SttEngine.GOOGLE: _google,
    SttEngine.OPENAI: _openai_stt,
}


def choose_stt_engine(settings: Settings) -> SttEngine:
    """The explicit setting wins; otherwise whisper when faster-whisper is installed and has a model
    (``whisper_model``, else the bundled tiny.en), else sphinx (a plain ``pip install teachbot``)."""
    if settings.stt_engine is not None:
        return settings.stt_engine
    from teachbot.speech.stt_whisper import bundled_model, whisper_installed

    if whisper_installed() and (settings.whisper_model or bundled_model() is not None):
        return SttEngine.WHISPER
    return SttEngine.SPHINX


def build_stt(settings: Settings) -> SpeechToText:
    """The speech-to-text engine the settings ask for (loads its model: call once, off the event loop)."""
    choice = choose_stt_engine(settings)
    engine = _STT[choice](settings)
    log.info("speech recognition: %s", engine_label(engine))
    return engine


def engine_label(engine: SpeechToText) -> str:
    """The engine's name, with its model when it has one (``whisper tiny.en``)."""
    model = getattr(engine, "model_label", "")
    return f"{engine.name} {model}" if model else engine.name


def _espeak(settings: Settings) -> TextToSpeech:
    from teachbot.speech.tts_local import EspeakEngine

    return EspeakEngine()


def _flite(settings: Settings) -> TextToSpeech:
    from teachbot.speech.tts_local import FliteEngine

    return FliteEngine()


def _gtts(settings: Settings) -> TextToSpeech:
    from teachbot.speech.tts_online import GttsEngine

    return GttsEngine()


def _openai_tts(settings: Settings) -> TextToSpeech:
    from teachbot.speech.tts_online import OpenAITtsEngine

    base_url, key = _server(settings)
    return OpenAITtsEngine(base_url=base_url, api_key=key, model=settings.tts_model)


_TTS: dict[TtsEngine, Callable[[Settings], TextToSpeech]] = {
    TtsEngine.ESPEAK: _espeak,
    TtsEngine.FLITE: _flite,
    TtsEngine.GTTS: _gtts,
    TtsEngine.OPENAI: _openai_tts,
}


def build_tts(settings: Settings) -> TextToSpeech:
    """The text-to-speech engine the settings ask for."""
    engine = _TTS[settings.tts_engine](settings)
    log.info("speech synthesis: %s", settings.tts_engine.value)
    return engine


def hear(
    data: bytes,
    stt: SpeechToText,
    settings: Settings,
    *,
    language: str | None = None,
    raw_rate: int | None = None,
) -> Transcript:
    """Decode an attachment, refuse silence, transcribe (blocking: run it in a thread).

    ``language`` overrides ``settings.speech_language``. An empty transcript becomes a
    ``UserError`` so nobody is answered for noise.
    """
    pcm = decode_to_pcm16k(data, AudioLimits.from_settings(settings), raw_rate=raw_rate)
    check_not_silent(pcm)
    transcript = stt.transcribe(pcm, language or settings.speech_language)
    if transcript.is_empty:
        raise UserError("I couldn't make out any words in that audio.")
    return transcript


def transcribe_file(path: Path | str, settings: Settings, stt: SpeechToText | None = None) -> Transcript:
    """``teachbot transcribe FILE``: any audio file (``.raw``: 16 kHz mono s16le) to text."""
    source = Path(path)
    data = read_regular_file(source, max_bytes=settings.max_upload_bytes)
    raw_rate = 16_000 if source.suffix.lower() == ".raw" else None
    return hear(data, stt or build_stt(settings), settings, raw_rate=raw_rate)


def speech_file_bytes(speech: Speech, suffix: str) -> bytes:
    """Speech as the bytes of a ``.wav`` (16-bit PCM) or ``.ogg``/``.opus`` (Opus 48 kHz) file."""
    kind = suffix.lower().lstrip(".")
    if kind == "wav":
        return encode_wav(speech.pcm, speech.sample_rate)
    if kind in {"ogg", "opus"}:
        return encode_ogg_opus(speech.pcm, speech.sample_rate)
    raise UserError(f"I can write .wav or .ogg files, not .{kind or '(none)'}.")


def say_to_file(text: str, path: Path | str, settings: Settings, tts: TextToSpeech | None = None) -> Speech:
    """``teachbot say TEXT -o FILE``: synthesize and write by the file's extension."""
    target = Path(path)
    if target.suffix.lower() not in {".wav", ".ogg", ".opus"}:
        raise UserError(f"I can write .wav or .ogg files, not {target.suffix or 'a file without extension'}.")
    engine = tts or build_tts(settings)
    speech = engine.synthesize(text, settings.tts_language, settings.tts_voice)
    target.write_bytes(speech_file_bytes(speech, target.suffix))
    return speech
