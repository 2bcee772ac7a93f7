"""A voice conversation: what members say in a voice channel is heard, answered, posted and spoken.

The transport hands over each member's decoded 20 ms frames (from its receive thread) and implements
``VoiceRoom``: who a user is and whether they may be heard, how many people are in the channel, the
linked text channel, and the bot's voice. The session cuts each member's frames into utterances
(``speech.listening``), transcribes them off the event loop, applies the address rule, answers like
a text message from that member (stored as an exchange, so ``!correct`` by reply and 👍/👎 work on
the posted answer) and speaks the answer. A member who starts talking while the bot speaks stops it
(barge-in). Audio is dropped once transcribed unless ``voice_store_audio`` says to keep it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from teachbot.answering.chat import ChatService, Origin
from teachbot.answering.protocols import Answer
from teachbot.config import Settings
from teachbot.errors import UserError
from teachbot.speech.audio import encode_wav
from teachbot.speech.listening import ListeningConfig, Paused, SpeechStarted, Utterance, UtteranceCutter
from teachbot.speech.service import SpeechService
from teachbot.speech.stt import Transcript
from teachbot.transports import wording

__all__ = ["ListeningSession", "Speaker", "TurnTiming", "VoiceRoom", "addressed_text"]

log = logging.getLogger(__name__)

GREETINGS = frozenset({"hey", "hi", "hello", "ok", "okay", "oh", "so"})
TICK_SECONDS = 0.1  # how often a speaker whose packets stopped is checked for the end of an utterance


@dataclass(frozen=True, slots=True)
class Speaker:
    """A member who may be heard, and where their words are answered (scope, linked text channel)."""

    user_id: int
    name: str
    origin: Origin


class VoiceRoom(Protocol):
    """What a session needs from the transport's voice channel."""

    @property
    def names(self) -> Sequence[str]:
        """The bot's names people say to address it (its user name, its nickname)."""
        ...

    def speaker(self, user_id: int) -> Speaker | None:
        """The member behind ``user_id``, or None when they must not be heard (refused, opted out, a bot)."""
        ...

    def people(self) -> int:
        """How many people (not bots) are in the voice channel."""
        ...

    async def post_transcript(self, speaker: Speaker, text: str) -> str | None:
        """Post what was heard in the linked text channel; the message id, or None if it could not be sent."""
        ...

    async def post_answer(self, transcript_id: str | None, text: str) -> str | None:
        """Post the answer (as a reply to the transcript); the message id."""
        ...

    async def speak(self, text: str) -> None:
        """Queue ``text`` to be spoken in the voice channel."""
        ...

    def stop_speaking(self) -> None:
        """Stop what the bot is saying and drop what is queued (barge-in)."""
        ...

    def is_speaking(self) -> bool: ...


def _normal(word: str) -> str:
    return re.sub(r"[^\w]", "", word.lower())


def addressed_text(text: str, names: Sequence[str]) -> str | None:
    """``text`` without a leading address (``"Hey teachbot, what is…"``), or None when it does not start
    with one of ``names``. Names compare without case, spaces and punctuation, so "Teach bot" and
    "teachbot." both match the name teachbot."""
    wanted = {_normal(n) for n in names if _normal(n)}
    words = list(re.finditer(r"[\w']+", text))
    start = 1 if words and words[0].group().lower() in GREETINGS else 0
    for count in range(1, 5):
        heard = words[start : start + count]
        if len(heard) < count:
            break
        if "".join(_normal(w.group()) for w in heard) in wanted:
            return text[heard[-1].end() :].lstrip(" ,.!?:;-").strip()
    return None


@dataclass(slots=True)
class TurnTiming:
    """When a turn's steps ended (``time.perf_counter``), for the benchmark and the logs."""

    utterance_end: float
    transcribed: float = 0.0
    answered: float = 0.0
    spoken: float = 0.0


class ListeningSession:
    """One voice channel being listened to; create it on the event loop, feed it from any thread."""

    def __init__(
        self,
        room: VoiceRoom,
        speech: SpeechService,
        chat: ChatService,
        settings: Settings,
        *,
        config: ListeningConfig | None = None,
        audio_dir: Path | None = None,
    ) -> None:
        self.room = room
        self.speech = speech
        self.chat = chat
        self.settings = settings
        self.config = config or ListeningConfig(
            min_silence_ms=settings.voice_silence_ms, max_seconds=settings.voice_max_utterance_seconds
        )
        self.audio_dir = audio_dir if settings.voice_store_audio else None
        self.timings: list[TurnTiming] = []
        self._loop = asyncio.get_running_loop()
        self._cutters: dict[int, UtteranceCutter] = {}
        self._speakers: dict[int, Speaker] = {}
        self._last_frame: dict[int, float] = {}
        self._turns: asyncio.Queue[tuple[Speaker, Utterance, TurnTiming]] = asyncio.Queue()
        self._drafts: dict[int, tuple[int, asyncio.Task[Transcript]]] = {}  # speaker → draft number, transcription
        self._idle = asyncio.Event()
        self._idle.set()
        self._pending = 0
        self._closed = False
        self._worker = self._loop.create_task(self._answer_turns())
        self._ticker = self._loop.create_task(self._end_quiet_speakers())

    # -- from the receive thread
    def feed(self, user_id: int, frame: bytes) -> None:
        """One decoded 20 ms frame (48 kHz stereo) of ``user_id``; call from the receive thread."""
        if self._closed:
            return
        speaker = self.room.speaker(user_id)
        if speaker is None:  # refused or opted out: their audio is not even looked at
            return
        cutter = self._cutters.get(user_id)
        if cutter is None:
            cutter = self._cutters.setdefault(user_id, UtteranceCutter(user_id, self.config))
        self._speakers[user_id] = speaker
        self._last_frame[user_id] = time.monotonic()
        events = cutter.feed(frame)
        if events:
            with contextlib.suppress(RuntimeError):  # the loop closed: the bot is stopping
                self._loop.call_soon_threadsafe(self._handle, speaker, events)

    def packets_stopped(self, user_id: int) -> None:
        """The transport got no packets from ``user_id`` for a moment. Clients stop sending in silence,
        so when the speech was already going quiet that is its end; a gap in the middle of a word (the
        network, a busy machine) is not, and the utterance ends after the usual pause instead."""
        cutter = self._cutters.get(user_id)
        if cutter is not None and cutter.pausing:
            self.speaker_stopped(user_id)

    def speaker_stopped(self, user_id: int) -> None:
        """The transport saw ``user_id`` stop speaking: what they said so far is an utterance."""
        cutter = self._cutters.get(user_id)
        speaker = self._speakers.get(user_id)
        if cutter is None or speaker is None:
            return
        done = cutter.finish()
        if done is not None:
            events: list[SpeechStarted | Paused | Utterance] = [done]
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._handle, speaker, events)

    # -- on the event loop
    def _handle(self, speaker: Speaker, events: Sequence[SpeechStarted | Paused | Utterance]) -> None:
        for event in events:
            if isinstance(event, SpeechStarted):
                if self.room.is_speaking():
                    log.info("barge-in: %s started talking; stopping playback", speaker.user_id)
                    self.room.stop_speaking()
                continue
            if isinstance(event, Paused):  # transcribe while the pause may still turn out not to be the end
                self._drop_draft(speaker.user_id)
                task = self._loop.create_task(self.speech.transcribe_pcm(event.utterance.pcm))
                self._drafts[speaker.user_id] = (event.draft, task)
                continue
            self._pending += 1
            self._idle.clear()
            self._turns.put_nowait((speaker, event, TurnTiming(time.perf_counter())))

    async def wait_idle(self) -> None:
        """Until every utterance handed over so far has been answered (tests, the benchmark)."""
        await self._idle.wait()

    async def _end_quiet_speakers(self) -> None:
        """Discord sends no packets in silence: a speaker quiet for the pause length has finished."""
        pause = self.config.min_silence_ms / 1000
        while True:
            await asyncio.sleep(TICK_SECONDS)
            now = time.monotonic()
            for user_id, last in list(self._last_frame.items()):
                cutter = self._cutters.get(user_id)
                if cutter is not None and cutter.speaking and now - last >= pause:
                    self.speaker_stopped(user_id)

    async def _answer_turns(self) -> None:
        while True:
            speaker, utterance, timing = await self._turns.get()
            try:
                await self._turn(speaker, utterance, timing)
            except Exception:
                log.exception("a voice turn of %s failed", speaker.user_id)
            finally:
                self._pending -= 1
                if self._pending == 0:
                    self._idle.set()

    async def _turn(self, speaker: Speaker, utterance: Utterance, timing: TurnTiming) -> None:
        if self.audio_dir is not None:
            await asyncio.to_thread(self._store, speaker, utterance)
        try:
            transcript = await self._transcript(speaker.user_id, utterance)
        except UserError:
            log.debug("nothing understood in %.1f s from %s", utterance.seconds, speaker.user_id)
            return
        timing.transcribed = time.perf_counter()
        heard = transcript.text.strip()
        question = self._question(heard)
        if not question:
            log.debug("not addressed: %r", heard)
            return
        transcript_id = await self.room.post_transcript(speaker, heard)
        spoken: list[str] = []

        async def deliver(answer: Answer) -> str | None:
            text = answer.text
            if answer.is_fallback:
                text = f"{text} {wording.teach_hint(self.settings.command_prefix, terminal=False)}"
            spoken.append(answer.text)
            return await self.room.post_answer(transcript_id, text)

        try:
            await self.chat.ask(question, speaker.origin, external_id=transcript_id, deliver=deliver)
        except UserError as exc:
            await self.room.post_answer(transcript_id, wording.user_error(exc, self.settings.command_prefix))
            return
        timing.answered = time.perf_counter()
        if spoken:
            await self.room.speak(spoken[0])
            timing.spoken = time.perf_counter()
        self.timings.append(timing)

    def _question(self, heard: str) -> str | None:
        """What to answer: everything when alone with the bot (or the setting says so), else only what
        starts with the bot's name or a wake word (without it)."""
        if not heard:
            return None
        if self.settings.voice_answer_everyone or self.room.people() <= 1:
            stripped = addressed_text(heard, self._names())
            return stripped if stripped else heard
        return addressed_text(heard, self._names()) or None

    def _names(self) -> list[str]:
        return [*self.room.names, *self.settings.voice_wake_words]

    def _store(self, speaker: Speaker, utterance: Utterance) -> None:
        assert self.audio_dir is not None
        self.audio_dir.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        (self.audio_dir / f"{stamp}-{speaker.user_id}.wav").write_bytes(encode_wav(utterance.pcm, 16_000))

    async def _transcript(self, user_id: int, utterance: Utterance) -> Transcript:
        """The words of ``utterance``: its draft's transcription when it is that same speech, else a new one."""
        draft = self._drafts.get(user_id)
        if draft is not None and utterance.draft is not None and draft[0] == utterance.draft:
            del self._drafts[user_id]
            return await draft[1]
        if draft is not None and (utterance.draft is None or utterance.draft > draft[0]):
            self._drop_draft(user_id)  # a draft of speech that went on: this utterance replaces it
        return await self.speech.transcribe_pcm(utterance.pcm)

    def _drop_draft(self, user_id: int) -> None:
        """Forget a speaker's draft (they spoke on); a transcription under way finishes unread."""
        draft = self._drafts.pop(user_id, None)
        if draft is not None:
            draft[1].add_done_callback(_ignore_outcome)

    async def close(self) -> None:
        """Stop listening; utterances not yet answered are dropped. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        for user_id in list(self._drafts):
            self._drop_draft(user_id)
        for task in (self._ticker, self._worker):
            task.cancel()
        for task in (self._ticker, self._worker):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._cutters.clear()
        self._idle.set()


def _ignore_outcome(task: asyncio.Task[Transcript]) -> None:
    """Read a dropped draft's outcome, so a failure (silence, an engine error) is not reported as unread."""
    if not task.cancelled():
        task.exception()
