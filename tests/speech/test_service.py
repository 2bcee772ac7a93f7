"""The speech service the transports use: lazy engines, work off the event loop, clear errors."""

from __future__ import annotations

import pytest
from fakes.speech_samples import espeak_voice_message

from teachbot.config import Settings, load_settings
from teachbot.errors import UserError
from teachbot.speech.service import SpeechService


async def test_hears_a_voice_message_and_speaks_an_answer(speech_settings: Settings) -> None:
    service = SpeechService(speech_settings)
    transcript = await service.hear(espeak_voice_message("two four six eight"))
    assert {"two", "four", "six", "eight"} & set(transcript.text.split())
    speech = await service.speak("Hello there.")
    assert speech.seconds > 0.3
    source = await service.audio_source("Hello there.")
    assert len(source.read()) == 3840


async def test_describes_what_it_hears_and_speaks(speech_settings: Settings) -> None:
    text = await SpeechService(speech_settings).describe()
    assert "sphinx" in text and "en" in text and "espeak" in text


async def test_russian_speech_out_works_offline() -> None:
    settings = load_settings(tts_language="ru")
    speech = await SpeechService(settings).speak("Привет, как дела?")
    assert speech.seconds > 0.5


async def test_bad_audio_is_a_user_error(speech_settings: Settings) -> None:
    with pytest.raises(UserError):
        await SpeechService(speech_settings).hear(b"not audio at all")
