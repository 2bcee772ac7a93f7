"""The speech service the transports use: lazy engines, work off the event loop, clear errors."""

from __future__ import annotations

import sys

import pytest
from fakes.speech_samples import espeak_voice_message, needs_whisper

from teachbot.config import Settings, SttEngine, load_settings
from teachbot.errors import UserError
from teachbot.speech.scoring import normalise_words
from teachbot.speech.service import SpeechService


async def test_hears_a_voice_message_and_speaks_an_answer(speech_settings: Settings) -> None:
    service = SpeechService(speech_settings)
    transcript = await service.hear(espeak_voice_message("two four six eight"))
    assert {"two", "four", "six", "eight"} & set(normalise_words(transcript.text))  # whisper writes "2 4 6 8"
    speech = await service.speak("Hello there.")
    assert speech.seconds > 0.3
    source = await service.audio_source("Hello there.")
    assert len(source.read()) == 3840


@needs_whisper
async def test_describes_the_default_engine(speech_settings: Settings) -> None:
    text = await SpeechService(speech_settings).describe()
    assert text.startswith("I listen with whisper tiny.en (languages: en; set: en) and speak with espeak (en).")
    assert "install" not in text


async def test_without_whisper_it_listens_with_sphinx_and_says_how_to_hear_better(
    speech_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "faster_whisper", None)  # as after a plain `pip install teachbot`
    text = await SpeechService(speech_settings).describe()
    assert text.startswith("I listen with sphinx (languages: en; set: en) and speak with espeak (en).")
    assert "pip install 'teachbot[whisper]'" in text
    chosen = await SpeechService(speech_settings.model_copy(update={"stt_engine": SttEngine.SPHINX})).describe()
    assert "sphinx" in chosen and "install" not in chosen, "no advice when sphinx was chosen on purpose"


async def test_russian_speech_out_works_offline() -> None:
    settings = load_settings(tts_language="ru")
    speech = await SpeechService(settings).speak("Привет, как дела?")
    assert speech.seconds > 0.5


async def test_bad_audio_is_a_user_error(speech_settings: Settings) -> None:
    with pytest.raises(UserError):
        await SpeechService(speech_settings).hear(b"not audio at all")
