"""Synthesis with the real espeak-ng and flite programs, and files for `teachbot say`."""

from __future__ import annotations

from pathlib import Path

import pytest

from teachbot.config import Settings, load_settings
from teachbot.errors import UserError
from teachbot.speech.audio import decode_to_pcm16k, pcm_rms
from teachbot.speech.factory import build_tts, say_to_file, speech_file_bytes
from teachbot.speech.stt_sphinx import SphinxEngine
from teachbot.speech.tts import MAX_TTS_CHARS, Speech, clean_text, parse_wav
from teachbot.speech.tts_local import EspeakEngine, FliteEngine


def test_espeak_speaks_english_and_russian() -> None:
    engine = EspeakEngine()
    english = engine.synthesize("Hello there.", "en")
    russian = engine.synthesize("Привет, как дела?", "ru")
    for speech in (english, russian):
        assert speech.sample_rate == 22050 and speech.engine == "espeak"
        assert 0.5 < speech.seconds < 5 and pcm_rms(speech.pcm) > 500


def test_espeak_refuses_unknown_and_hostile_voices() -> None:
    engine = EspeakEngine()
    with pytest.raises(UserError, match="no such voice"):
        engine.synthesize("hi", "xx-nope")
    with pytest.raises(UserError, match="not a valid voice"):
        engine.synthesize("hi", "--stdout")


def test_text_starting_with_a_dash_is_spoken_not_parsed() -> None:
    assert EspeakEngine().synthesize("--version", "en").seconds > 0.3


def test_flite_speaks_english_only() -> None:
    speech = FliteEngine().synthesize("Hello there.", "en")
    assert speech.sample_rate == 16000 and speech.seconds > 0.4
    with pytest.raises(UserError, match="English only"):
        FliteEngine().synthesize("Привет", "ru")


def test_text_is_cleaned_and_capped() -> None:
    assert clean_text("  hello\n\tworld\x00 ") == "hello world"
    capped = clean_text("word " * 1000)
    assert len(capped) <= MAX_TTS_CHARS and capped.endswith("word")
    with pytest.raises(UserError, match="nothing to say"):
        clean_text(" \n ")


def test_parse_wav_tolerates_streaming_sizes() -> None:
    speech = EspeakEngine().synthesize("one", "en")
    assert parse_wav(speech_file_bytes(speech, ".wav")).pcm == speech.pcm
    with pytest.raises(ValueError):
        parse_wav(b"not a wav file at all")


@pytest.mark.parametrize("suffix", [".wav", ".ogg"])
def test_say_to_file_round_trips_through_sphinx(tmp_path: Path, suffix: str, sphinx: SphinxEngine) -> None:
    settings = load_settings(data_dir=tmp_path, tts_voice="en-us")
    target = tmp_path / f"said{suffix}"
    say_to_file("one two three", target, settings)
    pcm = decode_to_pcm16k(target.read_bytes())
    heard = set(sphinx.transcribe(pcm, "en").text.split())
    assert len(heard & {"one", "two", "three"}) >= 2, heard


def test_say_to_file_refuses_other_formats(tmp_path: Path, speech_settings: Settings) -> None:
    with pytest.raises(UserError, match=r"\.wav or \.ogg"):
        say_to_file("hi", tmp_path / "said.mp3", speech_settings)
    with pytest.raises(UserError, match=r"\.wav or \.ogg"):
        speech_file_bytes(Speech(b"\0\0", 16000), ".flac")


def test_build_tts_by_setting(tmp_path: Path) -> None:
    assert build_tts(load_settings(data_dir=tmp_path)).name == "espeak"
    assert build_tts(load_settings(data_dir=tmp_path, tts_engine="flite")).name == "flite"
