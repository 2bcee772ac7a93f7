"""A listening session over a fake voice room: espeak-ng speech in 20 ms frames from several members,
heard by whisper tiny.en, answered by the trained starter model, posted, stored and spoken."""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fakes.speech_samples import espeak_pcm48, frames_of, needs_whisper, silence48, tiny_en_model

from teachbot.answering.chat import Origin
from teachbot.app import App
from teachbot.config import load_settings
from teachbot.transports.voice_session import ListeningSession, Speaker, addressed_text

pytestmark = [needs_whisper, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

ALICE, BOB, OPTED_OUT = 101, 202, 303


@dataclass
class FakeRoom:
    """A voice channel with a linked text channel, recording what the session does."""

    present: int = 1
    speaking: bool = False
    names: Sequence[str] = ("teachbot",)
    posts: list[tuple[str, str | None, str]] = field(default_factory=list)  # (kind, reply_to, text)
    spoken: list[str] = field(default_factory=list)
    stops: int = 0

    def speaker(self, user_id: int) -> Speaker | None:
        if user_id == OPTED_OUT:
            return None
        name = {ALICE: "alice", BOB: "bob"}[user_id]
        return Speaker(user_id, name, Origin("guild:1", "500", str(user_id), name))

    def people(self) -> int:
        return self.present

    async def post_transcript(self, speaker: Speaker, text: str) -> str | None:
        self.posts.append(("heard", None, f"{speaker.name}: {text}"))
        return f"m{len(self.posts)}"

    async def post_answer(self, transcript_id: str | None, text: str) -> str | None:
        self.posts.append(("answer", transcript_id, text))
        return f"m{len(self.posts)}"

    async def speak(self, text: str) -> None:
        self.spoken.append(text)

    def stop_speaking(self) -> None:
        self.stops += 1
        self.speaking = False

    def is_speaking(self) -> bool:
        return self.speaking


@pytest.fixture
async def whisper_app(tmp_path: Path, trained_data_dir: Path) -> AsyncIterator[App]:
    shutil.copytree(trained_data_dir, tmp_path / "data")
    settings = load_settings(
        data_dir=tmp_path / "data",
        stt_engine="whisper",
        whisper_model=str(tiny_en_model()),
        voice_wake_words=["computer"],
        voice_store_audio=False,
    )
    application = await App.start(settings)
    try:
        yield application
    finally:
        await application.close()


async def say(session: ListeningSession, user_id: int, text: str) -> None:
    """Feed ``text`` as the member's frames from another thread, as a receive thread would."""
    pcm = silence48(0.3) + espeak_pcm48(text) + silence48(1.0)

    def run() -> None:
        for frame in frames_of(pcm):
            session.feed(user_id, frame)

    await asyncio.to_thread(run)
    await asyncio.wait_for(session.wait_idle(), 60)


def session_for(app: App, room: Any) -> ListeningSession:
    return ListeningSession(room, app.speech, app.chat, app.settings)


async def test_alone_with_the_bot_everything_is_answered_posted_stored_and_spoken(whisper_app: App) -> None:
    room = FakeRoom(present=1)
    session = session_for(whisper_app, room)
    try:
        await say(session, ALICE, "What is your name?")
    finally:
        await session.close()
    assert [p[0] for p in room.posts] == ["heard", "answer"]
    assert "name" in room.posts[0][2].lower() and room.posts[0][2].startswith("alice: ")
    assert room.posts[1][1] == "m1"  # the answer replies to the transcript
    assert len(room.spoken) == 1 and room.spoken[0] in room.posts[1][2]
    stored = await whisper_app.chat.find_answer("guild:1", external_id="m2")
    assert stored is not None and "name" in stored.question.lower()
    assert stored.answer == room.spoken[0]


async def test_with_several_people_only_what_addresses_the_bot_is_answered(whisper_app: App) -> None:
    room = FakeRoom(present=3)
    session = session_for(whisper_app, room)
    try:
        await say(session, ALICE, "What is your name?")
        assert room.posts == [] and room.spoken == []
        await say(session, BOB, "Computer, what is your name?")
    finally:
        await session.close()
    assert [p[0] for p in room.posts] == ["heard", "answer"]
    assert room.posts[0][2].startswith("bob: ")
    stored = await whisper_app.chat.find_answer("guild:1", external_id="m2")
    assert stored is not None
    assert "computer" not in stored.question.lower() and "name" in stored.question.lower()


async def test_an_opted_out_member_is_not_heard(whisper_app: App) -> None:
    room = FakeRoom(present=1)
    session = session_for(whisper_app, room)
    try:
        await say(session, OPTED_OUT, "What is your name?")
    finally:
        await session.close()
    assert room.posts == [] and room.spoken == []


async def test_a_member_talking_while_the_bot_speaks_stops_it(whisper_app: App) -> None:
    room = FakeRoom(present=3, speaking=True)
    session = session_for(whisper_app, room)
    try:
        await say(session, ALICE, "Wait, stop please.")
    finally:
        await session.close()
    assert room.stops == 1 and not room.speaking
    assert room.posts == []  # not addressed: stopped, but not answered


async def test_a_member_whose_packets_stop_mid_sentence_is_answered_after_the_pause(whisper_app: App) -> None:
    """Discord sends nothing in silence: the session ends the utterance by itself."""
    room = FakeRoom(present=1)
    session = session_for(whisper_app, room)
    pcm = espeak_pcm48("What is your name?")
    try:
        await asyncio.to_thread(lambda: [session.feed(ALICE, f) for f in frames_of(pcm)])
        for _ in range(100):
            await asyncio.sleep(0.1)
            if len(room.posts) == 2:
                break
        await asyncio.wait_for(session.wait_idle(), 60)
    finally:
        await session.close()
    assert [p[0] for p in room.posts] == ["heard", "answer"]


def test_address_rule_reads_the_name_however_it_was_heard() -> None:
    names = ["teachbot", "computer"]
    assert addressed_text("Teachbot, what is your name?", names) == "what is your name?"
    assert addressed_text("Hey teach bot. What time is it", names) == "What time is it"
    assert addressed_text("OK Computer! Play music.", names) == "Play music."
    assert addressed_text("What is teachbot?", names) is None
    assert addressed_text("", names) is None


def loud_run_end(frames: list[bytes], start: int, run: int = 8) -> int:
    """The index after the first ``run`` loud frames in a row from ``start`` on: mid-word, not in a gap."""
    import numpy as np

    loud = 0
    for index in range(start, len(frames)):
        loud = loud + 1 if np.abs(np.frombuffer(frames[index], dtype="<i2")).max() > 3000 else 0
        if loud >= run:
            return index + 1
    raise AssertionError("no loud run found")


async def test_a_gap_in_the_packets_mid_word_does_not_cut_the_utterance(whisper_app: App) -> None:
    """The transport says the packets stopped (it guesses after 0.2 s); in the middle of a word that is
    a stall, not the end: the sentence stays one utterance."""
    room = FakeRoom(present=1)
    session = session_for(whisper_app, room)
    frames = frames_of(silence48(0.3) + espeak_pcm48("What is your name?") + silence48(1.0))
    middle = loud_run_end(frames, len(frames) // 3)
    try:
        await asyncio.to_thread(lambda: [session.feed(ALICE, f) for f in frames[:middle]])
        session.packets_stopped(ALICE)
        await asyncio.to_thread(lambda: [session.feed(ALICE, f) for f in frames[middle:]])
        await asyncio.wait_for(session.wait_idle(), 60)
    finally:
        await session.close()
    assert [p[0] for p in room.posts] == ["heard", "answer"]
    assert "name" in room.posts[0][2].lower()


async def test_packets_that_stop_as_the_speech_goes_quiet_end_the_utterance_at_once(whisper_app: App) -> None:
    room = FakeRoom(present=1)
    session = session_for(whisper_app, room)
    frames = frames_of(silence48(0.3) + espeak_pcm48("What is your name?") + silence48(0.25))
    try:
        await asyncio.to_thread(lambda: [session.feed(ALICE, f) for f in frames])
        session.packets_stopped(ALICE)  # well before the 600 ms pause that would end it otherwise
        await asyncio.sleep(0)
        await asyncio.wait_for(session.wait_idle(), 60)
        assert [p[0] for p in room.posts] == ["heard", "answer"]
    finally:
        await session.close()


async def test_the_transcription_of_a_draft_is_used_when_the_pause_ends_the_utterance(
    whisper_app: App, caplog: pytest.LogCaptureFixture
) -> None:
    room = FakeRoom(present=1)
    session = session_for(whisper_app, room)
    try:
        with caplog.at_level(logging.INFO, logger="teachbot.speech.service"):
            await say(session, ALICE, "What is your name?")
    finally:
        await session.close()
    assert [p[0] for p in room.posts] == ["heard", "answer"]
    transcribed = [r for r in caplog.records if r.getMessage().startswith("transcribed ")]
    assert len(transcribed) == 1  # the draft's, started in the pause; the utterance did not need another
