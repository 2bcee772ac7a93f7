"""Offline English speech recognition with pocketsphinx, the engine that is always installed.

It uses the US English model SpeechRecognition's wheel ships for ``recognize_sphinx`` (the same
acoustic model as the ``pocketsphinx`` wheel, with a language model that halves the word error
rate on our benchmark), falling back to the ``pocketsphinx`` wheel's own model. One decoder is
loaded per engine (loading takes over a second) and its feature state (cepstral mean) is reset
before every clip, so one clip never colours the next. The decoding settings below were tuned on
the benchmark in ``bench/speech.py``.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from teachbot.errors import MissingExtra
from teachbot.speech.audio import STT_RATE
from teachbot.speech.stt import SpeechToText, Transcript, check_language

__all__ = ["SPHINX_TUNING", "SphinxEngine", "bundled_model", "trim_silence"]

log = logging.getLogger(__name__)

SPHINX_TUNING: Mapping[str, Any] = {
    # A lower language weight than the default 6.5 trusts the acoustics more: short, unusual
    # sentences (card names, commands) are recognised better at little cost on read speech.
    "lw": 5.0,
    # Vocal tract length normalisation with a fixed 1.1 warp: the bundled model fits the
    # benchmark voices (and Opus-coded voice messages) better with its spectrum slightly warped.
    "warp_type": "inverse_linear",
    "warp_params": "1.1",
}
"""Decoder settings tuned on the speech benchmark (see bench/speech.py)."""


def bundled_model() -> dict[str, str]:
    """Paths of SpeechRecognition's en-US model if it is installed; empty: pocketsphinx's default."""
    spec = importlib.util.find_spec("speech_recognition")  # found without importing it
    if spec is None or spec.origin is None:
        return {}
    folder = Path(spec.origin).parent / "pocketsphinx-data" / "en-US"
    model = {
        "hmm": folder / "acoustic-model",
        "lm": folder / "language-model.lm.bin",
        "dict": folder / "pronounciation-dictionary.dict",  # sic: the file's real name
    }
    if not all(path.exists() for path in model.values()):
        log.info("SpeechRecognition's sphinx model is missing; using pocketsphinx's own")
        return {}
    return {key: str(path) for key, path in model.items()}


TRIM_FLOOR = 0.02
"""Frames quieter than this share of the loudest frame count as leading or trailing silence."""
TRIM_PAD_SECONDS = 0.25


def trim_silence(pcm: bytes, *, floor: float = TRIM_FLOOR, pad: float = TRIM_PAD_SECONDS) -> bytes:
    """Drop long quiet edges so the utterance-wide cepstral mean describes the speech, not the room."""
    samples = np.frombuffer(pcm, dtype="<i2")
    frame = STT_RATE // 100  # 10 ms
    count = samples.size // frame
    if count < 10:
        return pcm
    energy = np.sqrt(np.mean(samples[: count * frame].astype(np.float64).reshape(count, frame) ** 2, axis=1))
    loud = np.flatnonzero(energy >= floor * float(energy.max()))
    if loud.size == 0:
        return pcm
    margin = int(pad * 100)
    start = max(int(loud[0]) - margin, 0) * frame
    end = min(int(loud[-1]) + 1 + margin, count) * frame
    return samples[start:end].tobytes()


class SphinxEngine(SpeechToText):
    """pocketsphinx with its bundled US English model; English only, fully offline."""

    name = "sphinx"
    languages: frozenset[str] = frozenset({"en"})

    def __init__(self, tuning: Mapping[str, Any] | None = None, *, trim: bool = True) -> None:
        try:
            import pocketsphinx
        except ImportError:  # pragma: no cover - a core dependency
            raise MissingExtra("Offline speech recognition", "pip install pocketsphinx") from None
        options = {"loglevel": "FATAL", **bundled_model(), **SPHINX_TUNING, **(tuning or {})}
        self._decoder = pocketsphinx.Decoder(pocketsphinx.Config(**options))
        self._lock = threading.Lock()
        self._trim = trim

    def transcribe(self, pcm16k: bytes, language: str) -> Transcript:
        """Decode one whole clip (batch mode: the clip is complete before we start).

        pocketsphinx's posterior is not a usable confidence for whole utterances, so none is given.
        """
        check_language(self, language)
        started = time.perf_counter()
        pcm = trim_silence(pcm16k) if self._trim else pcm16k
        with self._lock:
            decoder = self._decoder
            decoder.reinit_feat()  # forget the previous clip's cepstral mean
            decoder.start_utt()
            decoder.process_raw(pcm, full_utt=True)
            decoder.end_utt()
            hyp = decoder.hyp()
        text = hyp.hypstr.strip() if hyp is not None else ""
        seconds = time.perf_counter() - started
        log.debug("sphinx heard %r in %.2f s", text, seconds)
        return Transcript(text=text, confidence=None, engine=self.name, seconds=seconds)
