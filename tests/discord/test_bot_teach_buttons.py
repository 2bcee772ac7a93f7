"""Teaching buttons through the fake Discord: the likeliest answers under an unsure answer, for trainers."""

from __future__ import annotations

import pytest
from fakes.discord_server import FakeDiscord
from fakes.talk import MakeTeachbot, Talk

from teachbot.transports.discord import teach_buttons

UNSURE = "can you learn"  # the starter model: how to teach it (about 50 %), its skills next (about 13 %)
TEACH = "Reply to one of my answers with `!correct"
ABOUT = "I answer questions, learn from"


def labels(message: dict) -> list[str]:
    return [c["label"] for row in message.get("components") or [] for c in row["components"]]


async def test_a_trainers_click_teaches_the_answer_and_edits_it(
    fake_discord: FakeDiscord, make_teachbot: MakeTeachbot, talk: Talk
) -> None:
    await make_teachbot(confidence_threshold=0.6)  # so the starter model is unsure of UNSURE
    trainer, member = fake_discord.trainer, fake_discord.member
    answer = await talk.ask(UNSURE, user=member)
    assert answer.content.startswith("I don't know")
    shown = labels(answer.message)
    assert len(shown) == 2 and all(len(label) <= 80 for label in shown)
    assert TEACH[:20] in shown[0]
    assert shown[1].split(" · ")[0].endswith("%") and shown[1].split(" · ")[1].startswith(ABOUT)

    refused = await fake_discord.click(answer.message, "teach:1", member)
    response = await fake_discord.wait_for_interaction_response(refused)
    assert response.ephemeral and response.data["content"] == "Only trainers can teach with these buttons."
    await fake_discord.wait_for_bot_message(fake_discord.text2)  # the private reply

    clicked = await fake_discord.click(answer.message, "teach:1", trainer)
    response = await fake_discord.wait_for_interaction_response(clicked)
    assert response.type == 7  # the answer itself is edited
    edited = await fake_discord.wait_for_edit(answer.message)
    assert edited.message["content"].startswith(ABOUT)
    assert "✔ Taught by " in edited.message["content"]
    assert not edited.message.get("components")  # the buttons are gone

    again = await talk.ask(UNSURE, user=member)  # at once, for everyone
    assert again.content.startswith(ABOUT) and not again.message.get("components")


async def test_sure_answers_have_no_buttons_and_unsure_ones_expire(
    fake_discord: FakeDiscord, make_teachbot: MakeTeachbot, talk: Talk, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(teach_buttons, "TIMEOUT_SECONDS", 0.5)
    await make_teachbot(confidence_threshold=0.6)
    member = fake_discord.member
    sure = await talk.ask("hello", user=member)
    assert not sure.message.get("components")
    nothing_likely = await talk.ask("what is the capital of the planet zorblax", user=member)
    assert nothing_likely.content.startswith("I don't know") and not nothing_likely.message.get("components")
    unsure = await talk.ask(UNSURE, user=member)
    assert labels(unsure.message)
    expired = await fake_discord.wait_for_edit(unsure.message, timeout=5)
    assert not expired.message.get("components") and expired.message["content"] == unsure.content


async def test_under_load_the_buttons_are_shed_first(
    fake_discord: FakeDiscord, make_teachbot: MakeTeachbot, talk: Talk, monkeypatch: pytest.MonkeyPatch
) -> None:
    from teachbot.transports.discord.cogs import chat

    await make_teachbot(confidence_threshold=0.6)
    monkeypatch.setattr(chat, "SHED_EXTRAS_AFTER", 0)  # as if many answers were in flight
    answer = await talk.ask(UNSURE, user=fake_discord.member)
    assert answer.content.startswith("I don't know") and not answer.message.get("components")
    monkeypatch.setattr(chat, "SHED_EXTRAS_AFTER", 4)
    assert labels((await talk.ask(UNSURE, user=fake_discord.member)).message)
