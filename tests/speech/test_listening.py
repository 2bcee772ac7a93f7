"""Cutting live voice into utterances with the Silero VAD: real speech from espeak-ng, 20 ms frames."""

from __future__ import annotations

import numpy as np
import pytest
from fakes.speech_samples import espeak_pcm48, frames_of, silence48

from teachbot.speech.listening import (
    DownmixResampler,
    ListeningConfig,
    Paused,
    SpeechStarted,
    Utterance,
    UtteranceCutter,
)

pytest.importorskip("onnxruntime")
pytest.importorskip("faster_whisper")


def cut(pcm: bytes, config: ListeningConfig | None = None) -> tuple[list[SpeechStarted], list[Utterance]]:
    cutter = UtteranceCutter(7, config)
    events = [e for frame in frames_of(pcm) for e in cutter.feed(frame)]
    last = cutter.finish()
    if last is not None:
        events.append(last)
    return [e for e in events if isinstance(e, SpeechStarted)], [e for e in events if isinstance(e, Utterance)]


def test_two_sentences_separated_by_silence_are_two_utterances() -> None:
    first = espeak_pcm48("What is the capital of France?")
    second = espeak_pcm48("Tell me about the weather tomorrow.")
    stream = silence48(0.5) + first + silence48(1.5) + second + silence48(1.0)
    started, utterances = cut(stream)
    assert len(started) == 2
    assert len(utterances) == 2
    assert all(u.speaker == 7 for u in utterances)
    first_seconds = len(first) / 192_000
    # each utterance holds its sentence and little of the silence around it
    assert first_seconds * 0.7 < utterances[0].seconds < first_seconds + 0.9
    assert 0.2 < utterances[0].start < 0.7
    assert utterances[1].start > utterances[0].end + 0.8


def test_cut_ends_after_the_pause_not_at_end_of_stream() -> None:
    """The utterance is handed over by feed() once the pause is long enough, before any finish()."""
    cutter = UtteranceCutter(1)
    stream = espeak_pcm48("Hello there, teachbot.") + silence48(1.0)
    done: list[tuple[int, Utterance]] = []
    for index, frame in enumerate(frames_of(stream)):
        done += [(index, e) for e in cutter.feed(frame) if isinstance(e, Utterance)]
    assert len(done) == 1
    speech_frames = len(espeak_pcm48("Hello there, teachbot.")) // 3840
    frames_after = done[0][0] - speech_frames
    assert 0 < frames_after * 20 < 1000  # ended within the pause (espeak ends with some quiet of its own)


def test_silence_and_noise_are_not_utterances() -> None:
    rng = np.random.default_rng(3)
    noise = (rng.normal(0, 600, 48_000 * 2 * 2)).astype("<i2").tobytes()  # 2 s of hiss, stereo
    hum = (3000 * np.sin(2 * np.pi * 50 * np.arange(48_000 * 2) / 48_000)).astype("<i2")
    hum_stereo = np.repeat(hum, 2).tobytes()
    for stream in (silence48(2.0), noise, hum_stereo):
        _, utterances = cut(stream)
        assert utterances == []


def test_a_click_shorter_than_min_speech_is_dropped() -> None:
    word = espeak_pcm48("Yes.")
    _, heard = cut(silence48(0.3) + word + silence48(1.0))
    assert len(heard) == 1
    _, dropped = cut(silence48(0.3) + word + silence48(1.0), ListeningConfig(min_speech_ms=5_000))
    assert dropped == []


def test_a_speaker_who_never_pauses_is_cut_at_the_maximum() -> None:
    talk = b"".join(espeak_pcm48(f"This sentence number {n} runs straight into the next one") for n in range(3))
    _, utterances = cut(talk, ListeningConfig(max_seconds=3.0))
    assert len(utterances) >= 2
    assert all(u.seconds <= 3.1 for u in utterances)


def test_resampler_is_continuous_across_frames() -> None:
    """Resampling frame by frame gives the same signal as resampling it whole (no clicks at frame edges)."""
    t = np.arange(48_000) / 48_000
    tone = (8000 * np.sin(2 * np.pi * 440 * t)).astype("<i2")
    stereo = np.repeat(tone, 2).tobytes()
    whole = DownmixResampler()(stereo)
    resample = DownmixResampler()
    pieces = np.concatenate([resample(f) for f in frames_of(stereo)])
    assert len(pieces) == len(whole) == 16_000
    assert np.allclose(pieces, whole, atol=1e-5)


def test_a_pause_offers_a_draft_that_the_utterance_confirms() -> None:
    """Early in a pause the cutter offers what the utterance will be; if nothing more is said, the utterance
    is that same speech and names the draft, so its transcription can start before the pause is over."""
    cutter = UtteranceCutter(5)
    stream = silence48(0.3) + espeak_pcm48("Please turn on the lights.") + silence48(1.0)
    events = [(n, e) for n, frame in enumerate(frames_of(stream)) for e in cutter.feed(frame)]
    drafts = [(n, e) for n, e in events if isinstance(e, Paused)]
    done = [(n, e) for n, e in events if isinstance(e, Utterance)]
    assert len(drafts) == 1 and len(done) == 1
    (drafted_at, draft), (done_at, utterance) = drafts[0], done[0]
    assert utterance.draft == draft.draft and utterance.pcm == draft.utterance.pcm
    assert (done_at - drafted_at) * 20 >= 300  # the draft came most of the pause earlier


def test_speech_after_a_short_pause_makes_the_draft_stale() -> None:
    cutter = UtteranceCutter(5)
    first, second = espeak_pcm48("Please turn on"), espeak_pcm48("the kitchen lights.")
    stream = silence48(0.3) + first + silence48(0.1) + second + silence48(1.0)  # espeak adds quiet of its own
    events = [e for frame in frames_of(stream) for e in cutter.feed(frame)]
    drafts = [e for e in events if isinstance(e, Paused)]
    (utterance,) = [e for e in events if isinstance(e, Utterance)]
    assert len(drafts) == 2  # one in the short pause, one in the final one
    assert utterance.draft == drafts[-1].draft != drafts[0].draft
    assert len(utterance.pcm) > len(drafts[0].utterance.pcm)
