"""Playback: frames for discord.py, the per-guild queue, and discord.py's real player thread."""

from __future__ import annotations

import asyncio
import struct
import threading
from collections.abc import Callable
from typing import Any

import discord
import nacl.secret
import nacl.utils
import numpy as np
import pytest
from fakes.voice import RecordingVoiceClient

from teachbot.speech.playback import FRAME_BYTES, VoicePlayer, speech_to_audio_source
from teachbot.speech.tts import Speech
from teachbot.speech.tts_local import EspeakEngine


def _tone(seconds: float, rate: int = 22050, hz: float = 440.0) -> Speech:
    t = np.arange(int(seconds * rate)) / rate
    samples = (np.sin(2 * np.pi * hz * t) * 12000).astype("<i2")
    return Speech(samples.tobytes(), rate, "test")


def test_audio_source_gives_whole_20ms_stereo_frames() -> None:
    speech = EspeakEngine().synthesize("Hello there.", "en")
    source = speech_to_audio_source(speech)
    assert not source.is_opus()
    frames = []
    while frame := source.read():
        frames.append(frame)
    assert all(len(frame) == FRAME_BYTES == 3840 for frame in frames)
    assert len(frames) == pytest.approx(speech.seconds * 50, abs=2)
    stereo = np.frombuffer(b"".join(frames), dtype="<i2").reshape(-1, 2)
    assert np.array_equal(stereo[:, 0], stereo[:, 1]) and np.abs(stereo).max() > 1000


class FakeVoice:
    """A VoiceClient stand-in whose player 'plays' on a thread, like discord.py's."""

    def __init__(self, *, fail_on: int | None = None) -> None:
        self.played: list[Any] = []
        self.connected = True
        self.disconnects = 0
        self.threads: list[threading.Thread] = []
        self._playing = False
        self._fail_on = fail_on

    def play(self, source: Any, *, after: Callable[[Exception | None], Any] | None = None) -> None:
        if self._playing:
            raise discord.ClientException("Already playing audio.")
        self.played.append(source)
        if len(self.played) == self._fail_on:
            raise discord.ClientException("boom")
        self._playing = True

        def run() -> None:
            while source.read():
                pass
            self._playing = False
            assert after is not None
            after(RuntimeError("decoder broke") if source is self.played[0] and self._fail_on == -1 else None)

        thread = threading.Thread(target=run)
        self.threads.append(thread)
        thread.start()

    def is_playing(self) -> bool:
        return self._playing

    def is_connected(self) -> bool:
        return self.connected

    async def disconnect(self, *, force: bool = False) -> None:
        self.connected = False
        self.disconnects += 1


async def test_queue_plays_in_order_without_overlap() -> None:
    voice = FakeVoice()
    player = VoicePlayer(voice, idle_seconds=60)
    sources = [speech_to_audio_source(_tone(0.1, hz=300 + 100 * i)) for i in range(3)]
    for source in sources:
        player.enqueue(source)
    assert player.pending == 2
    await asyncio.wait_for(player.wait_idle(), 5)
    assert voice.played == sources
    await player.close()
    assert voice.disconnects == 1
    for thread in voice.threads:
        thread.join(1)


async def test_playback_errors_are_logged_and_the_queue_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    for fail_on in (-1, 1):  # -1: the player thread reports an error; 1: play() itself raises
        voice = FakeVoice(fail_on=fail_on)
        player = VoicePlayer(voice, idle_seconds=60)
        player.enqueue(speech_to_audio_source(_tone(0.05)))
        player.enqueue(speech_to_audio_source(_tone(0.05)))
        await asyncio.wait_for(player.wait_idle(), 5)
        assert len(voice.played) == 2
        await player.close()
        for thread in voice.threads:
            thread.join(1)
    assert "voice playback failed" in caplog.text
    assert "could not start" in caplog.text


async def test_idle_timer_leaves_the_channel_and_is_reset_by_playing() -> None:
    voice = FakeVoice()
    left = asyncio.Event()
    player = VoicePlayer(voice, idle_seconds=0.3, on_disconnect=left.set)
    await asyncio.sleep(0.2)
    player.enqueue(speech_to_audio_source(_tone(0.05)))  # re-arms the timer after it ends
    await player.wait_idle()
    await asyncio.sleep(0.15)
    assert voice.disconnects == 0
    await asyncio.wait_for(left.wait(), 2)
    assert voice.disconnects == 1 and player.closed
    player.enqueue(speech_to_audio_source(_tone(0.05)))  # dropped quietly after closing
    assert len(voice.played) == 1
    for thread in voice.threads:
        thread.join(1)


# -- discord.py's own AudioPlayer, Opus encoder and transport encryption ---------------------------


class _Channel:
    id = 2
    guild = None


def _decrypt(packet: bytes, key: bytes) -> tuple[bytes, bytes]:
    """Undo aead_xchacha20_poly1305_rtpsize: 12-byte RTP header, ciphertext, 4-byte nonce suffix."""
    header, ciphertext, suffix = packet[:12], packet[12:-4], packet[-4:]
    opus = nacl.secret.Aead(key).decrypt(ciphertext, header, suffix + bytes(20))
    return header, opus


async def test_discord_player_encodes_encrypts_and_sends_our_frames() -> None:
    client = discord.Client(intents=discord.Intents.none())
    await client._async_setup_hook()  # binds the client to this loop, as login() would
    voice = RecordingVoiceClient(client, _Channel())  # type: ignore[arg-type]
    await voice.connect()
    player = VoicePlayer(voice, idle_seconds=60)
    speech = _tone(0.4, rate=22050, hz=440.0)
    player.enqueue(speech_to_audio_source(speech))
    await asyncio.wait_for(player.wait_idle(), 10)

    frames = len(speech_to_audio_source(speech).stream.getvalue()) // FRAME_BYTES  # type: ignore[attr-defined]
    assert len(voice.packets) == frames + 5  # our frames, then five Opus silence frames
    key = bytes(voice._connection.secret_key)
    decoder = discord.opus.Decoder()
    sequences = []
    for index, packet in enumerate(voice.packets[:frames]):
        header, opus = _decrypt(packet, key)
        version, payload_type, sequence, timestamp, ssrc = struct.unpack(">BBHII", header)
        assert (version, payload_type, ssrc) == (0x80, 0x78, 0x5EED)
        assert timestamp == index * 960
        sequences.append(sequence)
        pcm = decoder.decode(opus)
        assert len(pcm) == FRAME_BYTES
    assert sequences == list(range(1, frames + 1))

    # The tone survives the trip: the loudest frequency of a middle frame is 440 Hz.
    _, opus = _decrypt(voice.packets[frames // 2], key)
    left = np.frombuffer(discord.opus.Decoder().decode(opus), dtype="<i2")[::2].astype(float)
    spectrum = np.abs(np.fft.rfft(left * np.hanning(left.size)))
    assert abs(np.argmax(spectrum) * 48000 / left.size - 440) <= 50
    assert voice.ws.speaking  # the player announced it was speaking  # type: ignore[attr-defined]

    await player.close()
    assert not voice.is_connected()
