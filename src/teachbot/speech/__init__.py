"""Speech for teachbot: audio in and out, speech-to-text and text-to-speech engines, voice playback.

Offline by default (pocketsphinx and espeak-ng); whisper, Google and OpenAI-compatible engines are
chosen by settings. ``playback`` (discord.py) is imported only by the Discord transport.
"""

from teachbot.speech.factory import build_stt, build_tts, hear, say_to_file, speech_file_bytes, transcribe_file
from teachbot.speech.stt import SpeechToText, Transcript
from teachbot.speech.tts import Speech, TextToSpeech

__all__ = [
    "Speech",
    "SpeechToText",
    "TextToSpeech",
    "Transcript",
    "build_stt",
    "build_tts",
    "hear",
    "say_to_file",
    "speech_file_bytes",
    "transcribe_file",
]
