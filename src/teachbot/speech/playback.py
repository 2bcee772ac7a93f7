"""Speak in a Discord voice channel: speech becomes an ``AudioSource``, and a queue plays it in turn.

discord.py's player thread reads 20 ms frames of 48 kHz stereo 16-bit PCM (3840 bytes) and calls
``after`` from that thread when a source ends; the queue hops back onto the event loop with
``call_soon_threadsafe`` and starts the next item. No polling: an idle timer handle leaves the
channel after a quiet spell. A failure in playback is logged and never reaches the caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import discord

from teachbot.speech.audio import resample_pcm
from teachbot.speech.tts import Speech

__all__ = ["FRAME_BYTES", "VoiceClientLike", "VoicePlayer", "speech_to_audio_source", "speech_to_discord_pcm"]

log = logging.getLogger(__name__)

DISCORD_RATE = 48_000
FRAME_BYTES = DISCORD_RATE // 50 * 2 * 2
"""One 20 ms frame of 48 kHz stereo 16-bit PCM: 3840 bytes."""


class VoiceClientLike(Protocol):
    """The part of ``discord.VoiceClient`` the player uses (a fake in tests)."""

    def play(self, source: discord.AudioSource, *, after: Callable[[Exception | None], Any] | None = None) -> None: ...

    def is_playing(self) -> bool: ...

    def is_connected(self) -> bool: ...

    async def disconnect(self, *, force: bool = False) -> None: ...


def speech_to_discord_pcm(speech: Speech) -> bytes:
    """Resample to 48 kHz stereo and pad with silence to whole 20 ms frames."""
    pcm = resample_pcm(speech.pcm, speech.sample_rate, DISCORD_RATE, channels=2)
    remainder = len(pcm) % FRAME_BYTES
    if remainder:
        pcm += b"\x00" * (FRAME_BYTES - remainder)
    return pcm


def speech_to_audio_source(speech: Speech) -> discord.AudioSource:
    """An in-memory ``PCMAudio`` source (no ffmpeg process lives while it plays).

    Resampling runs ffmpeg and blocks: call it through ``asyncio.to_thread``.
    """
    return discord.PCMAudio(io.BytesIO(speech_to_discord_pcm(speech)))


class VoicePlayer:
    """One guild's playback queue over its voice client; everything runs on the event loop."""

    def __init__(
        self,
        voice: VoiceClientLike,
        *,
        idle_seconds: float = 300.0,
        on_disconnect: Callable[[], Awaitable[None] | None] | None = None,
    ) -> None:
        self.voice = voice
        self.idle_seconds = idle_seconds
        self._loop = asyncio.get_running_loop()
        self._queue: deque[discord.AudioSource] = deque()
        self._current: discord.AudioSource | None = None
        self._idle_timer: asyncio.TimerHandle | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self._closed = False
        self._on_disconnect = on_disconnect
        self._tasks: set[asyncio.Task[None]] = set()
        self._arm_idle_timer()

    @property
    def pending(self) -> int:
        """Items waiting, not counting the one playing."""
        return len(self._queue)

    @property
    def closed(self) -> bool:
        return self._closed

    def enqueue(self, source: discord.AudioSource) -> None:
        """Queue a source; it starts at once when nothing is playing."""
        if self._closed:
            log.info("voice player closed; dropping a queued source")
            source.cleanup()
            return
        self._queue.append(source)
        self._idle.clear()
        self._cancel_idle_timer()
        if self._current is None:
            self._start_next()

    def interrupt(self) -> None:
        """Drop what is queued and stop what plays (someone started talking over it)."""
        while self._queue:
            self._queue.popleft().cleanup()
        stop = getattr(self.voice, "stop_playing", None) or getattr(self.voice, "stop", None)
        if callable(stop) and self._current is not None:
            stop()

    @property
    def playing(self) -> bool:
        return self._current is not None

    async def wait_idle(self) -> None:
        """Until the queue is empty and nothing plays."""
        await self._idle.wait()

    def _start_next(self) -> None:
        while self._queue and not self._closed:
            source = self._queue.popleft()
            try:
                if not self.voice.is_connected():
                    raise ConnectionError("voice client is not connected")
                self._current = source
                self.voice.play(source, after=self._after_from_thread)
                return
            except Exception:
                log.exception("voice playback could not start; skipping one item")
                self._current = None
                source.cleanup()
        self._current = None
        self._idle.set()
        self._arm_idle_timer()

    def _after_from_thread(self, error: Exception | None) -> None:
        """Called by discord.py's player thread when a source ends."""
        with contextlib.suppress(RuntimeError):  # a closed loop: the bot is shutting down
            self._loop.call_soon_threadsafe(self._finished, error)

    def _finished(self, error: Exception | None) -> None:
        if error is not None:
            log.error("voice playback failed", exc_info=(type(error), error, error.__traceback__))
        self._current = None
        self._start_next()

    def _arm_idle_timer(self) -> None:
        self._cancel_idle_timer()
        if not self._closed and self.idle_seconds > 0:
            self._idle_timer = self._loop.call_later(self.idle_seconds, self._on_idle_timeout)

    def _cancel_idle_timer(self) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None

    def _on_idle_timeout(self) -> None:
        self._idle_timer = None
        if self._current is None and not self._queue and not self._closed:
            log.info("leaving the voice channel after %.0f s idle", self.idle_seconds)
            task = self._loop.create_task(self.close())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Drop the queue, stop playing and leave the channel; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self._cancel_idle_timer()
        while self._queue:
            self._queue.popleft().cleanup()
        stop = getattr(self.voice, "stop", None)
        try:
            if callable(stop):
                stop()
            if self.voice.is_connected():
                await self.voice.disconnect(force=False)
        except Exception:
            log.exception("leaving the voice channel failed")
        self._current = None
        self._idle.set()
        if self._on_disconnect is not None:
            try:
                result = self._on_disconnect()
                if result is not None:
                    await result
            except Exception:
                log.exception("voice disconnect callback failed")
