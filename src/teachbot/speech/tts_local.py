"""Offline speech synthesis by the espeak-ng and flite programs, run without a shell.

espeak-ng is the default: small, fast, and it speaks about a hundred languages. flite sounds
more natural in English and speaks nothing else.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
from pathlib import Path

from teachbot.errors import MissingExtra, UserError
from teachbot.speech.tts import Speech, TextToSpeech, check_code, clean_text, parse_wav

__all__ = ["EspeakEngine", "FliteEngine"]

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 30.0
_ESPEAK_ALIASES = {"en": "en-us", "": "en-us"}


def _program(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise MissingExtra(f"Speech with {name}", f"install {package} (Debian/Ubuntu: apt-get install {package})")
    return path


def _run(command: list[str], *, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(command, input=stdin, capture_output=True, timeout=TIMEOUT_SECONDS, check=False)
    except subprocess.TimeoutExpired:
        log.warning("%s took longer than %.0f s", Path(command[0]).name, TIMEOUT_SECONDS)
        raise UserError("Speaking that took too long; please try a shorter text.") from None


class EspeakEngine(TextToSpeech):
    """espeak-ng: any language it has a voice for (``en``, ``ru``, ``de``, ``pt-br``...)."""

    name = "espeak"

    def __init__(self, *, speed_wpm: int = 165) -> None:
        self._binary = _program("espeak-ng", "espeak-ng")
        self._speed = speed_wpm

    def synthesize(self, text: str, language: str, voice: str = "") -> Speech:
        """A voice name wins over the language; espeak-ng voices are named after languages.

        Plain ``en`` speaks American English (``en-us``), the accent the offline recogniser knows.
        """
        text = clean_text(text)
        chosen = check_code(voice or _ESPEAK_ALIASES.get(language.lower(), language) or "en-us", "voice")
        done = _run(
            [self._binary, "-v", chosen, "-s", str(self._speed), "--stdin", "--stdout"],
            stdin=text.encode("utf-8"),
        )
        if done.returncode != 0 or not done.stdout:
            log.info("espeak-ng failed: %s", done.stderr.decode(errors="replace")[-300:])
            raise UserError(f"I can't speak '{chosen}': espeak-ng has no such voice or language.")
        speech = parse_wav(done.stdout)
        return Speech(speech.pcm, speech.sample_rate, self.name)


class FliteEngine(TextToSpeech):
    """flite: English voices; ``kal16`` (default) speaks ~900× real time, ``slt`` sounds nicer at ~100×."""

    name = "flite"
    default_voice = "kal16"

    def __init__(self) -> None:
        self._binary = _program("flite", "flite")

    def synthesize(self, text: str, language: str, voice: str = "") -> Speech:
        text = clean_text(text)
        if language and not language.lower().startswith("en"):
            raise UserError("flite speaks English only; choose tts_engine espeak for other languages.")
        chosen = check_code(voice or self.default_voice, "voice")
        with tempfile.TemporaryDirectory(prefix="teachbot-flite-") as folder:
            source, target = Path(folder) / "text.txt", Path(folder) / "speech.wav"
            source.write_text(text, encoding="utf-8")
            done = _run([self._binary, "-voice", chosen, "-f", str(source), "-o", str(target)])
            if done.returncode != 0 or not target.is_file():
                log.info("flite failed: %s", done.stderr.decode(errors="replace")[-300:])
                raise UserError(f"flite can't speak with the voice '{chosen}'.")
            speech = parse_wav(target.read_bytes())
        return Speech(speech.pcm, speech.sample_rate, self.name)
