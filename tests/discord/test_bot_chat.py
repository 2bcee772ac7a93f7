"""Conversation through the fake Discord: who is answered where, voice messages, scopes, typing."""

from __future__ import annotations

import asyncio

import discord
import pytest
from fakes.discord_models import VOICE_MESSAGE_FLAG, Upload
from fakes.discord_server import FakeDiscord
from fakes.talk import MakeTeachbot, Talk

from teachbot.answering.protocols import Answer, Question
from teachbot.transports.discord.bot import TeachBot
from teachbot.transports.discord.cogs import chat as chat_cog
from teachbot.transports.discord.rendering import MAX_MESSAGES, split_message

ZORBLAX = "what is the capital of the planet zorblax"


def espeak_voice_message(text: str) -> bytes:
    """Speech made by espeak-ng, encoded like a Discord voice message (OGG/Opus 48 kHz mono)."""
    from teachbot.speech.audio import encode_ogg_opus
    from teachbot.speech.tts_local import EspeakEngine

    speech = EspeakEngine().synthesize(text, "en", "en-us")
    return encode_ogg_opus(speech.pcm, speech.sample_rate)


async def test_direct_messages_are_answered_in_the_global_scope(
    fake_discord: FakeDiscord, teachbot_bot: TeachBot, talk: Talk
) -> None:
    said = await talk.ask("hello there", user=fake_discord.member, channel=fake_discord.dm)
    assert said.content
    stored = await teachbot_bot.app.chat.find_answer("global", external_id=said.message["id"])
    assert stored is not None and stored.question == "hello there"


async def test_who_is_answered_where(fake_discord: FakeDiscord, teachbot_bot: TeachBot, talk: Talk) -> None:
    member, text = fake_discord.member, fake_discord.text
    # a normal channel: only mentions are answered (the mention is not part of the question)
    await fake_discord.send_message(text, member, "nobody asked you")
    said = await talk.ask(f"{fake_discord.bot.mention} hello there", user=member, channel=text)
    stored = await teachbot_bot.app.chat.find_answer(str(fake_discord.guild.id), external_id=said.message["id"])
    assert stored is not None and stored.question == "hello there"
    # a reply to one of its answers is addressed to it too
    await talk.ask("and what about you?", user=member, channel=text, reference=said.message)
    # a chat channel: every message, but never another bot's
    robot = fake_discord.add_user("otherbot", bot=True)
    await fake_discord.send_message(fake_discord.text2, robot, "hello bots")
    await talk.ask("hello", user=member)
    await talk.ask("how are you", user=fake_discord.trainer)
    assert [m["channel_id"] for m in fake_discord.bot_messages.items].count(str(text.id)) == 2


async def test_typing_is_shown_only_while_a_slow_answer_is_worked_on(
    fake_discord: FakeDiscord, teachbot_bot: TeachBot, talk: Talk, monkeypatch: pytest.MonkeyPatch
) -> None:
    typing = rf"/channels/{fake_discord.text2.id}/typing"
    monkeypatch.setattr(chat_cog, "TYPING_AFTER_SECONDS", 10.0)  # longer than any answer, even on a busy machine
    await talk.ask("hello", user=fake_discord.member)  # answered sooner: no request for an indicator
    assert not [r for r in fake_discord.requests.items if r.method == "POST" and r.path == typing]
    model = teachbot_bot.app.chat.model
    answer = model.answer

    async def slowly(question: Question) -> Answer:
        await asyncio.sleep(1.0)
        return await answer(question)

    monkeypatch.setattr(model, "answer", slowly)
    monkeypatch.setattr(chat_cog, "TYPING_AFTER_SECONDS", 0.2)
    said = await talk.ask("hello again", user=fake_discord.member)
    await fake_discord.wait_for_request("POST", typing, timeout=0.1)  # shown before the answer came
    assert said.content


async def test_voice_message_is_transcribed_and_answered(
    fake_discord: FakeDiscord, teachbot_bot: TeachBot, talk: Talk
) -> None:
    audio = espeak_voice_message("What is your name?")
    voice = Upload.voice_message(audio, duration_secs=2.0)
    said = await talk.ask(  # the first voice message loads the speech model
        "", user=fake_discord.member, attachments=[voice], flags=VOICE_MESSAGE_FLAG, timeout=60
    )
    first, _, answer = said.content.partition("\n")
    assert first.startswith("> 🎤 ") and "your name" in first.lower()
    assert "teachbot" in answer.lower()


@pytest.mark.parametrize(
    ("data", "duration", "words"),
    [
        (b"OggS-not-really-audio", 1.5, "couldn't read that audio"),
        (b"", 1.0, "audio"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, 1.0, "audio"),
        (b"OggS" + b"\x00" * 64, 600.0, "at most"),
    ],
)
async def test_bad_voice_messages_get_a_clear_reply(
    fake_discord: FakeDiscord, teachbot_bot: TeachBot, talk: Talk, data: bytes, duration: float, words: str
) -> None:
    voice = Upload.voice_message(data, duration_secs=duration)
    said = await talk.ask("", user=fake_discord.member, attachments=[voice], flags=VOICE_MESSAGE_FLAG)
    assert words in said.content
    assert "Traceback" not in said.content
    await talk.ask("hello", user=fake_discord.member)  # and the bot keeps answering


async def test_a_server_correction_stays_in_that_server(
    fake_discord: FakeDiscord, teachbot_bot: TeachBot, talk: Talk
) -> None:
    trainer, member = fake_discord.trainer, fake_discord.member
    answer = await talk.ask(ZORBLAX, user=trainer)
    said = await talk.prefix(
        "correct", "Zorbopolis is the capital.", user=trainer, channel=fake_discord.text2, reference=answer.message
    )
    assert said.content.startswith("Learned")
    assert (await talk.ask(ZORBLAX, user=member)).content == "Zorbopolis is the capital."
    assert (await talk.ask(ZORBLAX, user=member, channel=fake_discord.dm)).content != "Zorbopolis is the capital."


async def test_chat_cooldown_skips_a_second_message(
    fake_discord: FakeDiscord, make_teachbot: MakeTeachbot, talk: Talk
) -> None:
    await make_teachbot(chat_cooldown_seconds=600)
    await talk.ask("hello", user=fake_discord.member)
    await fake_discord.send_message(fake_discord.text2, fake_discord.member, "hello again")
    await talk.ask("hello", user=fake_discord.trainer)  # the next reply is the trainer's: the member was skipped


async def test_long_replies_are_split_outside_code_blocks_or_attached(
    fake_discord: FakeDiscord, make_teachbot: MakeTeachbot, talk: Talk, tmp_path
) -> None:
    code = "\n".join(f"print({n})  # a line of code that is long enough to matter" for n in range(40))
    prose = "\n".join(f"Paragraph {n}: " + "words " * 40 for n in range(3))
    guide = tmp_path / "guide.md"
    guide.write_text(f"{prose}\n```python\n{code}\n```\n{prose}", encoding="utf-8")
    count = len(split_message(guide.read_text(encoding="utf-8")))
    assert 2 <= count <= MAX_MESSAGES
    await make_teachbot(instruction_file=guide)
    await fake_discord.send_message(fake_discord.text, fake_discord.member, "!instruction")
    parts = [(await fake_discord.wait_for_bot_message(fake_discord.text))["content"] for _ in range(count)]
    assert all(len(p) <= 2000 for p in parts)
    assert all(p.count("```") % 2 == 0 for p in parts), "a message ends inside a code block"
    assert "".join(parts).count("print(") == 40

    guide.write_text(prose * 10, encoding="utf-8")
    said = await talk.prefix("instruction", user=fake_discord.member)
    assert len(said.content) <= 2000 and "attached" in said.content
    assert said.files["reply.txt"].decode().strip() == (prose * 10).strip()


async def test_answer_is_spoken_to_a_member_in_the_bots_voice_channel(
    fake_discord: FakeDiscord, teachbot_bot: TeachBot, talk: Talk
) -> None:
    import asyncio

    from fakes.voice import RecordingVoiceClient

    channel = teachbot_bot.get_channel(fake_discord.voice.id)
    assert isinstance(channel, discord.VoiceChannel)
    voice = await channel.connect(cls=RecordingVoiceClient)
    await fake_discord.join_voice(fake_discord.member, fake_discord.voice)
    said = await talk.ask("who are you?", user=fake_discord.member)
    assert "teachbot" in said.content.lower()
    guild = channel.guild
    for _ in range(200):  # the reply is sent first; speech is synthesised and queued right after
        player = teachbot_bot.voice.players.get(guild.id)
        if player is not None and voice.packets:
            break
        await asyncio.sleep(0.05)
    assert player is not None
    await asyncio.wait_for(player.wait_idle(), 20)
    assert len(voice.packets) > 50  # over a second of 20 ms Opus frames
    await fake_discord.send_message(fake_discord.text2, fake_discord.member, "!leave")
    left = await fake_discord.wait_for_bot_message(fake_discord.text2)
    assert left["content"] == "Left the voice channel."
    assert guild.voice_client is None


async def test_answer_is_not_spoken_to_members_elsewhere(
    fake_discord: FakeDiscord, teachbot_bot: TeachBot, talk: Talk
) -> None:
    from fakes.voice import RecordingVoiceClient

    channel = teachbot_bot.get_channel(fake_discord.voice.id)
    assert isinstance(channel, discord.VoiceChannel)
    voice = await channel.connect(cls=RecordingVoiceClient)
    await talk.ask("who are you?", user=fake_discord.member)  # the member is in no voice channel
    assert teachbot_bot.voice.players.get(channel.guild.id) is None
    assert voice.packets == []
    await voice.disconnect()
