"""Reactions, review buttons, permissions, allow/block lists, cooldowns and errors through the fake Discord."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from fakes.discord_models import Upload
from fakes.discord_server import FakeDiscord
from fakes.talk import MakeTeachbot, Talk
from sqlalchemy import select

from teachbot.store.tables import Feedback
from teachbot.transports.discord.bot import TeachBot
from teachbot.transports.wording import GENERIC_ERROR

ZORBLAX = "what is the capital of the planet zorblax"


async def stored_feedback(bot: TeachBot, count: int) -> list[tuple[str, str, str]]:
    """(kind, status, author) of stored feedback, once ``count`` items are there."""
    for _ in range(200):
        rows = await bot.app.db.run(lambda s: [(f.kind, f.status, f.author) for f in s.scalars(select(Feedback))])
        if len(rows) >= count:
            return rows
        await asyncio.sleep(0.01)
    raise AssertionError(f"expected {count} feedback item(s), have {rows}")


async def test_reactions_on_answers_are_feedback(fake_discord: FakeDiscord, teachbot_bot: TeachBot, talk: Talk) -> None:
    trainer, member = fake_discord.trainer, fake_discord.member
    answer = await talk.ask("hello", user=member)
    assert not answer.content.startswith("I don't know")
    await fake_discord.react(answer.message, "🎉", member)  # not feedback
    await fake_discord.react(answer.message, "👍", member)
    assert await stored_feedback(teachbot_bot, 1) == [("up", "applied", str(member.id))]

    await fake_discord.react(answer.message, "👎", member)  # a member's 👎 waits for review
    assert (await stored_feedback(teachbot_bot, 2))[1] == ("down", "pending", str(member.id))
    review = await talk.prefix("review", user=trainer)
    assert "👎" in review.content

    await fake_discord.react(answer.message, "👎", trainer)  # a trainer's 👎 stops that answer at once
    assert (await stored_feedback(teachbot_bot, 3))[2] == ("down", "applied", str(trainer.id))
    assert (await talk.ask("hello", user=member)).content != answer.content


async def test_review_buttons_approve_a_members_correction(
    fake_discord: FakeDiscord, teachbot_bot: TeachBot, talk: Talk
) -> None:
    trainer, member = fake_discord.trainer, fake_discord.member
    answer = await talk.ask(ZORBLAX, user=member)
    said = await talk.prefix(
        "correct", "Zorbopolis is the capital.", user=member, channel=fake_discord.text2, reference=answer.message
    )
    assert "waits for a trainer's review" in said.content
    item = said.content.split()[3]
    assert (await talk.ask(ZORBLAX, user=member)).content != "Zorbopolis is the capital."

    review = await talk.prefix("review", user=trainer, channel=fake_discord.text2)
    assert item in review.content and review.message["components"]
    refused = await fake_discord.click(review.message, f"review:approve:{item}", member)
    response = await fake_discord.wait_for_interaction_response(refused)
    assert response.ephemeral and response.data["content"] == "Only trainers can review."
    await fake_discord.wait_for_bot_message(fake_discord.text2)
    clicked = await fake_discord.click(review.message, f"review:approve:{item}", trainer)
    response = await fake_discord.wait_for_interaction_response(clicked)
    assert response.data["content"].startswith(f"Learned ({item})")
    await fake_discord.wait_for_bot_message(fake_discord.text2)
    assert (await talk.ask(ZORBLAX, user=member)).content == "Zorbopolis is the capital."


async def test_a_member_is_refused_trainer_commands(
    fake_discord: FakeDiscord, teachbot_bot: TeachBot, talk: Talk
) -> None:
    member = fake_discord.member
    said = await talk.prefix("train", user=member, attachments=[Upload("x.csv", b"question,answer\na,b\n")])
    assert said.content == "`train` needs the trainer role."
    said = await talk.slash("train", user=member)
    assert said.ephemeral and said.content == "`train` needs the trainer role."
    said = await talk.slash("join", user=member, channel=fake_discord.dm)
    assert said.ephemeral and said.content == "This command works only in a server."


async def test_blocked_users_are_ignored(fake_discord: FakeDiscord, make_teachbot: MakeTeachbot, talk: Talk) -> None:
    member = fake_discord.member
    await make_teachbot(blocked_users=[member.id])
    await fake_discord.send_message(fake_discord.text2, member, "hello")
    await fake_discord.send_message(fake_discord.text, member, f"{fake_discord.bot.mention} hello")
    await fake_discord.send_message(fake_discord.text, member, "!hi")
    await fake_discord.send_message(fake_discord.dm, member, "hello")
    await talk.ask("hello", user=fake_discord.trainer)
    assert (await talk.prefix("hi", user=fake_discord.trainer)).content == "HI!"
    assert len(fake_discord.bot_messages.items) == 2
    said = await talk.slash("hi", user=member)  # a slash command must be answered: privately
    assert said.ephemeral and said.content == "You are not allowed to use this bot."


async def test_allowed_channels_limit_where_the_bot_works(
    fake_discord: FakeDiscord, make_teachbot: MakeTeachbot, talk: Talk
) -> None:
    await make_teachbot(allowed_channels=[fake_discord.text2.id])
    await fake_discord.send_message(fake_discord.text, fake_discord.member, "!hi")
    await talk.ask("hello", user=fake_discord.member)
    assert (await talk.prefix("hi", user=fake_discord.member, channel=fake_discord.text2)).content == "HI!"
    assert len(fake_discord.bot_messages.items) == 2


async def test_heavy_commands_have_a_cooldown(
    fake_discord: FakeDiscord, make_teachbot: MakeTeachbot, talk: Talk
) -> None:
    await make_teachbot(heavy_cooldown_seconds=600)
    trainer = fake_discord.trainer
    said = await talk.prefix("archive", user=trainer)
    assert said.content.startswith("Archive written")
    said = await talk.prefix("train", user=trainer)
    assert said.content.startswith("Training…")  # another heavy command has its own cooldown
    while "active" not in (await fake_discord.wait_for_edit(said.message, timeout=20)).payload["content"]:
        pass
    said = await talk.prefix("archive", user=trainer)
    assert said.content.startswith("Slow down: try again in")


async def test_a_failed_reply_is_logged_and_the_bot_keeps_answering(
    fake_discord: FakeDiscord, teachbot_bot: TeachBot, talk: Talk, caplog: pytest.LogCaptureFixture
) -> None:
    fake_discord.fail("POST", rf"/channels/{fake_discord.text2.id}/messages", 403)
    await fake_discord.send_message(fake_discord.text2, fake_discord.member, "hello")
    await fake_discord.wait_for_request("POST", rf"/channels/{fake_discord.text2.id}/messages")
    await talk.ask("hello again", user=fake_discord.member)
    assert "could not reply" in caplog.text


async def test_a_failing_service_gets_a_short_line_and_a_logged_traceback(
    fake_discord: FakeDiscord,
    teachbot_bot: TeachBot,
    talk: Talk,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_ask = teachbot_bot.app.chat.ask
    calls = 0

    async def flaky_ask(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("database on fire at /secret/path")
        return await real_ask(*args, **kwargs)

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("versions table on fire")

    monkeypatch.setattr(teachbot_bot.app.chat, "ask", flaky_ask)
    monkeypatch.setattr(teachbot_bot.app.versions, "in_scope", broken)
    with caplog.at_level(logging.ERROR):
        assert (await talk.ask("hello", user=fake_discord.member)).content == GENERIC_ERROR
        assert (await talk.ask("hello", user=fake_discord.member)).content not in ("", GENERIC_ERROR)
        for mode in ("prefix", "slash"):
            said = await talk.run(mode, "models list", user=fake_discord.owner)
            assert said.content == GENERIC_ERROR and "on fire" not in said.content
        assert (await talk.prefix("hi", user=fake_discord.member)).content == "HI!"
    tracebacks = [r for r in caplog.records if r.exc_info]
    assert any("database on fire" in str(r.exc_info[1]) for r in tracebacks if r.exc_info)
    assert sum("versions table on fire" in str(r.exc_info[1]) for r in tracebacks if r.exc_info) == 2
