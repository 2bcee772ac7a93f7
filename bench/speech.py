"""How well and how fast teachbot hears and speaks: WER, real-time factors and reply latency.

Usage: python bench/speech.py [--data DIR] [--whisper-model PATH] [--quick]
Reads DIR/manifest.json (default: ../shared/data/speech beside the repository). For every
speech-to-text engine available offline (sphinx; whisper when faster-whisper and a model are
there) it measures word error rate and real-time factor on clean recordings (orig/) and on
Discord-style voice messages (opus48k/, OGG/Opus 48 kHz). Then TTS speed per installed offline
engine, a TTS → Opus → STT round trip, and a 5-second voice message answered end to end.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from teachbot.config import Settings, load_settings
from teachbot.errors import TeachbotError
from teachbot.speech.audio import AudioLimits, decode_to_pcm16k, encode_ogg_opus, pcm_duration
from teachbot.speech.factory import hear, speech_file_bytes
from teachbot.speech.scoring import word_errors
from teachbot.speech.stt import SpeechToText
from teachbot.speech.tts import TextToSpeech

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO.parent / "shared" / "data" / "speech"

TTS_SENTENCES = [
    "Hello, I am teachbot. Ask me anything, and correct me when I am wrong.",
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "Please remember that the meeting starts at ten in the morning on Monday.",
]
ROUND_TRIP = ["hello world", "one two three four five", "go forward ten meters", "open the door please"]


Clips = dict[str, list[tuple[dict, bytes]]]


@dataclass
class SttRow:
    engine: str
    audio: str
    errors: int = 0
    words: int = 0
    seconds: float = 0.0
    audio_seconds: float = 0.0

    @property
    def wer(self) -> float:
        return self.errors / self.words if self.words else 0.0

    @property
    def rtf(self) -> float:
        return self.seconds / self.audio_seconds if self.audio_seconds else 0.0


def find_whisper_model(explicit: str | None) -> str | None:
    """A model given on the command line or in TEACHBOT_WHISPER_MODEL, else the bundled tiny.en."""
    from teachbot.speech.stt_whisper import bundled_model, whisper_installed

    if not whisper_installed():
        return None
    if explicit or os.environ.get("TEACHBOT_WHISPER_MODEL"):
        return explicit or os.environ["TEACHBOT_WHISPER_MODEL"]
    bundled = bundled_model()
    return str(bundled) if bundled is not None else None


def stt_engines(whisper_model: str | None) -> dict[str, SpeechToText]:
    from teachbot.speech.stt_sphinx import SphinxEngine

    engines: dict[str, SpeechToText] = {"sphinx": SphinxEngine()}
    if whisper_model:
        from teachbot.speech.stt_whisper import WhisperEngine

        engines["whisper"] = WhisperEngine(whisper_model)
    return engines


def tts_engines() -> dict[str, TextToSpeech]:
    from teachbot.speech.tts_local import EspeakEngine, FliteEngine

    engines: dict[str, TextToSpeech] = {}
    for name, factory in (("espeak", EspeakEngine), ("flite", FliteEngine)):
        try:
            engines[name] = factory()
        except TeachbotError as exc:
            print(f"  ({name} skipped: {exc})")
    return engines


def load_clips(data: Path, manifest: list[dict]) -> Clips:
    """Decoded 16 kHz PCM per clip, for the clean and the voice-message versions."""
    limits = AudioLimits(max_bytes=100_000_000, max_seconds=600)
    clips: Clips = {"clean": [], "voice msg": []}
    for entry in manifest:
        original = data / entry["file"]
        raw_rate = 16_000 if original.suffix == ".raw" else None
        clips["clean"].append((entry, decode_to_pcm16k(original.read_bytes(), limits, raw_rate=raw_rate)))
        clips["voice msg"].append((entry, decode_to_pcm16k((data / entry["voice_message"]).read_bytes(), limits)))
    return clips


def bench_stt(engines: dict[str, SpeechToText], clips: Clips, verbose: bool) -> list[SttRow]:
    rows = []
    for name, engine in engines.items():
        engine.transcribe(clips["clean"][0][1], "en")  # warm up (first-call allocations)
        for audio, items in clips.items():
            row = SttRow(name, audio)
            for entry, pcm in items:
                transcript = engine.transcribe(pcm, "en")
                errors, words = word_errors(entry["transcript"], transcript.text)
                row.errors += errors
                row.words += words
                row.seconds += transcript.seconds
                row.audio_seconds += pcm_duration(pcm)
                if verbose and errors:
                    print(f"    {name:8} {audio:9} {entry['id']:18} {errors}/{words}: {transcript.text!r}")
            rows.append(row)
    return rows


def bench_tts(engines: dict[str, TextToSpeech]) -> list[tuple[str, float, float]]:
    rows = []
    for name, engine in engines.items():
        engine.synthesize("warm up", "en")
        spoken = took = 0.0
        for sentence in TTS_SENTENCES:
            started = time.perf_counter()
            speech = engine.synthesize(sentence, "en")
            took += time.perf_counter() - started
            spoken += speech.seconds
        rows.append((name, spoken, spoken / took))
    return rows


def bench_round_trip(stt: dict[str, SpeechToText], settings: Settings, verbose: bool) -> list[tuple[str, float]]:
    from teachbot.speech.tts_local import EspeakEngine

    espeak = EspeakEngine()
    messages = []
    for sentence in ROUND_TRIP:
        speech = espeak.synthesize(sentence, "en", "en-us")
        messages.append((sentence, encode_ogg_opus(speech.pcm, speech.sample_rate)))
    rows = []
    for name, engine in stt.items():
        errors = words = 0
        for sentence, message in messages:
            heard = hear(message, engine, settings).text
            e, w = word_errors(sentence, heard)
            errors, words = errors + e, words + w
            if verbose and e:
                print(f"    {name:8} {sentence!r} → {heard!r}")
        rows.append((name, errors / words))
    return rows


def answer(question: str) -> str:
    """The trivial answer function of the end-to-end measure: the brain is measured elsewhere."""
    return f"You said: {question}"


def bench_reply(
    stt: dict[str, SpeechToText], tts: TextToSpeech, message: bytes, settings: Settings, runs: int = 3
) -> list[tuple[str, float, float]]:
    """Voice message in → decode → STT → answer → TTS → OGG/Opus voice message out."""
    rows = []
    for name, engine in stt.items():
        timings = []
        for _ in range(runs):
            started = time.perf_counter()
            heard = hear(message, engine, settings)
            speech = tts.synthesize(answer(heard.text), settings.tts_language, settings.tts_voice)
            reply = speech_file_bytes(speech, ".ogg")
            timings.append(time.perf_counter() - started)
            assert reply[:4] == b"OggS"
        rows.append((name, statistics.median(timings), min(timings)))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--whisper-model", default=None)
    parser.add_argument("--verbose", action="store_true", help="print every misrecognised clip")
    args = parser.parse_args(argv)

    manifest_path = args.data / "manifest.json"
    if not manifest_path.is_file():
        print(f"speech bench: no data at {manifest_path}; nothing to measure.")
        return 0
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    settings = load_settings(data_dir=Path("/nonexistent-teachbot-bench"), max_audio_seconds=600)
    print(f"speech bench: {len(manifest)} clips from {args.data}, {os.cpu_count()} CPUs")

    whisper_model = find_whisper_model(args.whisper_model)
    if whisper_model is None:
        print("  (whisper skipped: faster-whisper or a model is not installed)")
    stt = stt_engines(whisper_model)
    clips = load_clips(args.data, manifest)

    print("\nspeech to text (RTF: recognition seconds per audio second)")
    print(f"  {'engine':8} {'audio':10} {'clips':>5} {'words':>5} {'WER':>7} {'RTF':>6}")
    for row in bench_stt(stt, clips, args.verbose):
        print(f"  {row.engine:8} {row.audio:10} {len(manifest):5d} {row.words:5d} {row.wer:7.1%} {row.rtf:6.3f}")

    tts = tts_engines()
    print("\ntext to speech (offline engines)")
    print(f"  {'engine':8} {'audio s':>8} {'× real time':>12}")
    for name, spoken, speed in bench_tts(tts):
        print(f"  {name:8} {spoken:8.1f} {speed:12.0f}")

    print("\nround trip: espeak-ng → OGG/Opus 48 kHz → speech to text")
    for name, wer in bench_round_trip(stt, settings, args.verbose):
        print(f"  {name:8} WER {wer:6.1%}  over {len(ROUND_TRIP)} sentences")

    five = min(manifest, key=lambda entry: abs(entry["duration_s"] - 5.0))
    message = (args.data / five["voice_message"]).read_bytes()
    print(f"\n{five['duration_s']:.1f}-second voice message ({five['id']}) answered end to end (espeak reply)")
    print(f"  {'engine':8} {'median s':>9} {'best s':>7}")
    for name, median, best in bench_reply(stt, tts["espeak"], message, settings):
        print(f"  {name:8} {median:9.2f} {best:7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
