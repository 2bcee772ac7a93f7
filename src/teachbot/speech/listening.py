"""Utterances from live voice: per-speaker 20 ms frames of 48 kHz stereo PCM in, whole utterances out.

A voice receive sink hands each speaker's decoded frames over as they arrive. Each speaker has a
``UtteranceCutter``: the frames are downmixed and resampled to 16 kHz mono (a windowed-sinc low-pass
then every third sample), scored 512 samples (32 ms) at a time by the Silero VAD model that
faster-whisper ships (run through onnxruntime, the recurrent state kept per speaker), and cut where
the speaker has been quiet for ``min_silence_ms``. Too short a burst (a cough, a click) is dropped;
a speaker who never pauses is cut at ``max_seconds``. Nothing here touches the event loop, and no
audio is kept once an utterance is handed over.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np

from teachbot.errors import MissingExtra

__all__ = [
    "FRAME_BYTES_48K",
    "DownmixResampler",
    "ListeningConfig",
    "Paused",
    "SileroVad",
    "SpeechStarted",
    "Utterance",
    "UtteranceCutter",
    "silero_model_path",
]

log = logging.getLogger(__name__)

IN_RATE = 48_000
OUT_RATE = 16_000
DECIMATION = IN_RATE // OUT_RATE
FRAME_BYTES_48K = IN_RATE // 50 * 2 * 2
"""One 20 ms frame of 48 kHz stereo 16-bit PCM, what Discord's decoder gives: 3840 bytes."""

WINDOW = 512  # samples at 16 kHz the Silero model scores at once (32 ms)
CONTEXT = 64  # samples of the previous window the model sees before each window
STATE_SHAPE = (1, 1, 128)


@dataclass(frozen=True, slots=True)
class ListeningConfig:
    """Where utterances are cut; the defaults suit conversation (Silero's own defaults are for files)."""

    threshold: float = 0.5  # speech probability that starts (or continues) speech
    min_silence_ms: int = 600  # quiet that ends an utterance
    draft_after_ms: int = 192  # quiet after which what was said so far is offered as a draft (``Paused``)
    min_speech_ms: int = 250  # shorter bursts are not utterances
    max_seconds: float = 20.0  # a speaker who never pauses is cut here
    pad_ms: int = 200  # audio kept before the first and after the last speech window

    @property
    def release(self) -> float:
        """Probability under which a window counts as quiet (hysteresis, as Silero recommends)."""
        return max(self.threshold - 0.15, 0.01)


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    """A speaker began talking (the session stops the bot's own speech: barge-in)."""

    speaker: int


@dataclass(frozen=True, slots=True)
class Utterance:
    """One speaker's words between pauses, as 16 kHz mono 16-bit PCM; times are seconds of that speaker's stream."""

    speaker: int
    pcm: bytes
    start: float
    end: float
    draft: int | None = None  # the ``Paused`` draft whose speech this is, nothing said since (only quiet)

    @property
    def seconds(self) -> float:
        return len(self.pcm) / (2 * OUT_RATE)


@dataclass(frozen=True, slots=True)
class Paused:
    """A speaker has been quiet for ``draft_after_ms``: if nothing more is said, the utterance will be this
    speech (``draft`` is its number). Transcribing it now, rather than when the pause is long enough to end
    the utterance, saves most of ``min_silence_ms`` from the end of speech to the answer."""

    draft: int
    utterance: Utterance


Event = SpeechStarted | Paused | Utterance


def silero_model_path() -> Path:
    """The Silero VAD model file faster-whisper ships (``MissingExtra`` when it is not installed)."""
    try:
        from faster_whisper.utils import get_assets_path
    except ImportError:
        raise MissingExtra("Listening in voice channels", "pip install 'teachbot[whisper]'") from None
    models = sorted(Path(get_assets_path()).glob("silero_vad*.onnx"))
    if not models:
        raise MissingExtra("Listening in voice channels", "reinstall faster-whisper: its Silero VAD model is missing")
    return models[-1]


@cache
def _session() -> object:
    """One onnxruntime session for every speaker (``run`` is thread-safe; the state is passed in)."""
    try:
        import onnxruntime
    except ImportError:
        raise MissingExtra("Listening in voice channels", "pip install onnxruntime") from None
    options = onnxruntime.SessionOptions()
    options.inter_op_num_threads = 1
    options.intra_op_num_threads = 1  # one window is tiny: threads cost more than they save
    options.log_severity_level = 3
    return onnxruntime.InferenceSession(
        str(silero_model_path()), sess_options=options, providers=["CPUExecutionProvider"]
    )


class SileroVad:
    """Speech probability of successive 512-sample windows of one stream (the model's state carried on)."""

    def __init__(self) -> None:
        self._session = _session()
        self.reset()

    def reset(self) -> None:
        self._h = np.zeros(STATE_SHAPE, dtype=np.float32)
        self._c = np.zeros(STATE_SHAPE, dtype=np.float32)
        self._context = np.zeros(CONTEXT, dtype=np.float32)

    def probability(self, window: np.ndarray) -> float:
        """``window``: 512 float32 samples in [-1, 1] at 16 kHz."""
        batch = np.concatenate([self._context, window]).reshape(1, CONTEXT + WINDOW)
        output, self._h, self._c = self._session.run(  # type: ignore[attr-defined]
            None, {"input": batch, "h": self._h, "c": self._c}
        )
        self._context = window[-CONTEXT:].copy()
        return float(np.asarray(output).reshape(-1)[0])


def _lowpass_taps(count: int = 63, cutoff: float = 7_200.0) -> np.ndarray:
    """A Hann-windowed sinc low-pass at 48 kHz, so nothing above 8 kHz folds back when decimating."""
    n = np.arange(count) - (count - 1) / 2
    taps = np.sinc(2 * cutoff / IN_RATE * n) * np.hanning(count)
    return (taps / taps.sum()).astype(np.float32)


_TAPS = _lowpass_taps()


class DownmixResampler:
    """48 kHz stereo 16-bit frames → 16 kHz mono float32, continuous across frames."""

    def __init__(self) -> None:
        self._tail = np.zeros(len(_TAPS) - 1, dtype=np.float32)
        self._phase = 0  # offset of the next kept sample in the filtered stream

    def __call__(self, frame: bytes) -> np.ndarray:
        samples = np.frombuffer(frame[: len(frame) - len(frame) % 4], dtype="<i2").astype(np.float32)
        mono = (samples[0::2] + samples[1::2]) * (0.5 / 32768.0)
        joined = np.concatenate([self._tail, mono])
        filtered = np.convolve(joined, _TAPS, mode="valid")  # one output per new input sample
        self._tail = joined[len(joined) - (len(_TAPS) - 1) :]
        kept = filtered[self._phase :: DECIMATION]
        self._phase = (self._phase - len(filtered)) % DECIMATION
        return kept.astype(np.float32)


def _to_pcm16(samples: np.ndarray) -> bytes:
    return (np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


@dataclass(slots=True)
class _Speech:
    """The utterance being heard: its windows, and how much of it was speech and trailing quiet."""

    start_window: int
    windows: list[np.ndarray] = field(default_factory=list)
    speech_windows: int = 0
    quiet_windows: int = 0
    draft: int | None = None  # the draft offered during the current pause, if any


class UtteranceCutter:
    """One speaker's stream cut into utterances; feed it frames in order from one thread at a time."""

    def __init__(self, speaker: int, config: ListeningConfig | None = None, vad: SileroVad | None = None) -> None:
        self.speaker = speaker
        self.config = config or ListeningConfig()
        self.vad = vad or SileroVad()
        self._resample = DownmixResampler()
        self._pending = np.zeros(0, dtype=np.float32)
        self._window_index = 0
        self._pad_windows = max(1, round(self.config.pad_ms / 32))
        self._preroll: list[np.ndarray] = []
        self._speech: _Speech | None = None
        self._drafts = 0
        self._lock = threading.Lock()

    @property
    def speaking(self) -> bool:
        return self._speech is not None

    @property
    def pausing(self) -> bool:
        """Speech is under way and its last window was quiet: if the packets stop now, it has ended."""
        speech = self._speech
        return speech is not None and speech.quiet_windows > 0

    def feed(self, frame: bytes) -> list[Event]:
        """Take one 20 ms frame (48 kHz stereo); return what it completed."""
        with self._lock:
            self._pending = np.concatenate([self._pending, self._resample(frame)])
            events: list[Event] = []
            while len(self._pending) >= WINDOW:
                window, self._pending = self._pending[:WINDOW], self._pending[WINDOW:]
                events.extend(self._window(window))
            return events

    def finish(self) -> Utterance | None:
        """The speaker went quiet (no packets come in silence on Discord): end what was being said."""
        with self._lock:
            speech, self._speech = self._speech, None
            self._preroll.clear()
            self.vad.reset()
            return self._utterance(speech, trailing=0) if speech is not None else None

    def _window(self, window: np.ndarray) -> list[Event]:
        config = self.config
        probability = self.vad.probability(window)
        index = self._window_index
        self._window_index += 1
        speech = self._speech
        if speech is None:
            if probability < config.threshold:
                self._preroll = [*self._preroll, window][-self._pad_windows :]
                return []
            speech = self._speech = _Speech(start_window=index - len(self._preroll), windows=self._preroll)
            self._preroll = []
            speech.windows.append(window)
            speech.speech_windows = 1
            return [SpeechStarted(self.speaker)]
        speech.windows.append(window)
        if probability >= config.threshold:
            speech.speech_windows += 1
            speech.quiet_windows = 0
            speech.draft = None
        elif probability < config.release:
            speech.quiet_windows += 1
        else:  # between the two thresholds: neither speech nor the start of a pause
            speech.quiet_windows = 0
            speech.draft = None
        events: list[Event] = []
        quiet_ms = speech.quiet_windows * 32
        if speech.draft is None and config.draft_after_ms <= quiet_ms < config.min_silence_ms:
            draft = self._utterance(speech, trailing=speech.quiet_windows)
            if draft is not None:
                self._drafts += 1
                speech.draft = self._drafts
                events.append(Paused(speech.draft, draft))
        if quiet_ms >= config.min_silence_ms:
            self._speech = None
            self._preroll = speech.windows[-self._pad_windows :]
            done = self._utterance(speech, trailing=speech.quiet_windows)
            if done is not None:
                events.append(done)
        elif len(speech.windows) * WINDOW >= config.max_seconds * OUT_RATE:
            done = self._utterance(speech, trailing=0)
            self._speech = _Speech(start_window=index + 1)  # still talking: the next part goes on
            if done is not None:
                events.append(done)
        return events

    def _utterance(self, speech: _Speech, *, trailing: int) -> Utterance | None:
        """The heard windows less most of the trailing quiet; ``None`` when too little was speech."""
        if speech.speech_windows * 32 < self.config.min_speech_ms:
            log.debug(
                "speaker %s: dropped %d ms of sound too short to be speech", self.speaker, len(speech.windows) * 32
            )
            return None
        keep = len(speech.windows) - max(0, trailing - self._pad_windows)
        samples = np.concatenate(speech.windows[:keep])
        start = speech.start_window * WINDOW / OUT_RATE
        return Utterance(self.speaker, _to_pcm16(samples), start, start + len(samples) / OUT_RATE, speech.draft)
