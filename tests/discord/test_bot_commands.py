"""Every teachbot command, as a prefix message and as a slash command, through the fake Discord."""

from __future__ import annotations

import json

import pytest
from fakes.discord_models import Upload
from fakes.discord_server import FakeDiscord
from fakes.talk import Talk

from teachbot.transports.catalogue import COMMANDS, Door, Privilege
from teachbot.transports.discord.bot import TeachBot

MODES = ["prefix", "slash"]
CSV = b"question,answer\nwhat colour is the sky,The sky is blue.\nwhat colour is grass,Grass is green.\n" + b"".join(
    f"what is {n} plus {n},It is {2 * n}.\n".encode() for n in range(1, 21)
)
JSONL = b"".join(
    json.dumps({"prompt": p, "answer": a}).encode() + b"\n"
    for p, a in [("what colour is the sky", "The sky is blue."), ("what colour is grass", "Grass is green.")]
)


async def test_every_command_is_a_slash_command_synced_once(fake_discord: FakeDiscord, teachbot_bot: TeachBot) -> None:
    sync = await fake_discord.command_syncs.take(lambda _: True, timeout=5, description="global sync")
    assert sorted(c["name"] for c in sync["commands"]) == sorted(
        spec.name for spec in COMMANDS if spec.doors & Door.DISCORD
    )
    assert sorted(c.name for c in teachbot_bot.commands) == sorted(
        spec.name for spec in COMMANDS if spec.doors & Door.DISCORD
    )


@pytest.mark.parametrize("mode", MODES)
async def test_everyday_commands(mode: str, fake_discord: FakeDiscord, teachbot_bot: TeachBot, talk: Talk) -> None:
    owner, member = fake_discord.owner, fake_discord.member
    assert (await talk.run(mode, "hi", user=member)).content == "HI!"
    help_for_member = (await talk.run(mode, "help", user=member)).embed_text  # an embed, not a wall of text
    assert "!correct" in help_for_member and "!train" not in help_for_member
    assert "!train" in (await talk.run(mode, "help", user=owner)).embed_text
    assert "How to use teachbot" in (await talk.run(mode, "instruction", user=member)).content

    note = "the answers about maths are old"
    said = await talk.run(mode, "feedback", note, {"text": note}, user=member)
    assert said.content.startswith("Thanks, your feedback F") and said.content.endswith("is stored.")
    assert (await talk.run(mode, "undo", user=member)).content.startswith("Undone")
    assert (await talk.run(mode, "undo", user=member)).content == "You have nothing to undo here."

    assert (await talk.run(mode, "review", user=owner)).content == "Nothing waits for review."
    assert "no review item C99" in (await talk.run(mode, "approve", "C99", {"item_id": "C99"}, user=owner)).content
    assert "no review item F99" in (await talk.run(mode, "reject", "F99", {"item_id": "F99"}, user=owner)).content
    assert (await talk.run(mode, "datasets list", user=owner)).content == "No datasets yet."
    said = await talk.run(mode, "select_dataset", "nosuch", {"name": "nosuch"}, user=owner)
    assert "nosuch" in said.content
    assert (await talk.run(mode, "jobs list", user=owner)).content == "No training runs yet."
    assert "no model version of its own" in (await talk.run(mode, "models list", user=owner)).content
    assert (await talk.run(mode, "join", user=member)).content == "Join a voice channel first, then call me."
    assert (await talk.run(mode, "leave", user=member)).content == "I'm not in a voice channel here."


@pytest.mark.parametrize("mode", MODES)
async def test_training_and_file_commands(
    mode: str, fake_discord: FakeDiscord, teachbot_bot: TeachBot, talk: Talk
) -> None:
    trainer = fake_discord.trainer
    dataset = Upload("colours.csv", CSV)

    said = await talk.run(mode, "validate", attachments=[dataset], options={"file": dataset}, user=trainer)
    assert said.content.startswith("colours.csv: 0 errors")
    assert json.loads(said.files["validation.json"])["ok"] is True

    status = await talk.run(mode, "train", attachments=[dataset], options={"file": dataset}, user=trainer)
    assert status.content.startswith("Training…")
    final = await fake_discord.wait_for_edit(status.message, timeout=20)
    while "Trained" not in (final.payload.get("content") or ""):
        final = await fake_discord.wait_for_edit(status.message, timeout=20)
    assert "Imported" in final.payload["content"] or "colours" in final.payload["content"]
    assert "colours" in (await talk.run(mode, "datasets list", user=trainer)).content
    assert "v" in (await talk.run(mode, "models list", user=trainer)).content
    assert "succeeded" in (await talk.run(mode, "jobs list", user=trainer)).content

    test_set = Upload("check.jsonl", JSONL)
    said = await talk.run(mode, "test", attachments=[test_set], options={"file": test_set}, user=trainer)
    assert "accuracy" in said.content
    [report_name] = [n for n in said.files if n.endswith(".json")]
    [chart_name] = [n for n in said.files if n.endswith(".png")]
    assert json.loads(said.files[report_name])["examples"] == 2
    assert said.files[chart_name].startswith(b"\x89PNG")

    said = await talk.run(mode, "test", '["what colour is grass"]', {"data": '["what colour is grass"]'}, user=trainer)
    assert "what colour is grass →" in said.content

    said = await talk.run(mode, "datasets export", "colours csv", {"name": "colours", "format": "csv"}, user=trainer)
    exported = said.content.split("`")[1]
    said = await talk.run(mode, "getfile", exported, {"name": exported}, user=trainer)
    assert b"The sky is blue." in said.files[exported]

    said = await talk.run(mode, "archive", "datasets", {"what": "datasets"}, user=trainer)
    assert said.content.startswith("Archive written")
    archive = said.content.split("`")[1]
    said = await talk.run(mode, "getfile", archive, {"name": archive}, user=trainer)
    assert said.files[archive].startswith(b"PK")
    said = await talk.run(mode, "getfile", "../teachbot.sqlite3", {"name": "../teachbot.sqlite3"}, user=trainer)
    assert not said.files


@pytest.mark.parametrize("mode", MODES)
async def test_correct_and_forget(mode: str, fake_discord: FakeDiscord, teachbot_bot: TeachBot, talk: Talk) -> None:
    trainer, member = fake_discord.trainer, fake_discord.member
    question = "what is the capital of the planet zorblax"
    first = await talk.ask(question, user=member)
    assert first.content != "Zorbopolis is the capital."

    said = await talk.run(
        mode,
        "correct",
        f"{first.message['id']} Zorbopolis is the capital.",
        {"message_id": str(first.message["id"]), "answer": "Zorbopolis is the capital."},
        user=trainer,
        channel=fake_discord.text2,
    )
    assert said.content.startswith("Learned (C")
    again = await talk.ask(question, user=member)
    assert again.content == "Zorbopolis is the capital."

    stored = await teachbot_bot.app.chat.find_answer(str(fake_discord.guild.id), external_id=again.message["id"])
    assert stored is not None and stored.example_id is not None
    if mode == "prefix":
        said = await talk.prefix("forget", user=trainer, channel=fake_discord.text2, reference=again.message)
    else:
        options = {"example_id": str(stored.example_id)}
        said = await talk.slash("forget", options, user=trainer, channel=fake_discord.text2)
    assert said.content.startswith("Forgotten")
    assert (await talk.ask(question, user=member)).content != "Zorbopolis is the capital."


async def test_correct_as_a_reply_to_an_answer(fake_discord: FakeDiscord, teachbot_bot: TeachBot, talk: Talk) -> None:
    trainer = fake_discord.trainer
    answer = await talk.ask("who painted the zorblax sunrise", user=trainer)
    said = await talk.prefix(
        "correct", "Vel Anor painted it.", user=trainer, channel=fake_discord.text2, reference=answer.message
    )
    assert said.content.startswith("Learned (C")
    assert said.message["message_reference"]["message_id"] is not None
    assert (await talk.ask("who painted the zorblax sunrise", user=trainer)).content == "Vel Anor painted it."
    said = await talk.prefix("correct", "no target here", user=trainer)  # no answer in this channel yet
    assert said.content.startswith("I can't find which answer to correct")
    said = await talk.prefix("correct", "12345 no such message", user=trainer, channel=fake_discord.text2)
    assert said.content.startswith("I can't find which answer to correct")


async def test_slash_correct_without_an_id_corrects_the_last_answer_in_the_channel(
    fake_discord: FakeDiscord, teachbot_bot: TeachBot, talk: Talk
) -> None:
    await talk.ask("who painted the zorblax sunrise", user=fake_discord.member)
    said = await talk.slash(
        "correct", {"answer": "Vel Anor painted it."}, user=fake_discord.trainer, channel=fake_discord.text2
    )
    assert said.content.startswith("Learned (C") and "zorblax sunrise" in said.content


@pytest.mark.parametrize("mode", MODES)
async def test_every_privileged_command_refuses_a_member_as_the_catalogue_says(
    mode: str, fake_discord: FakeDiscord, teachbot_bot: TeachBot, talk: Talk
) -> None:
    for spec in COMMANDS:
        if spec.privilege <= Privilege.MEMBER or not spec.doors & Door.DISCORD:
            continue
        name = f"{spec.name} {spec.default}" if spec.subcommands else spec.name
        said = await talk.run(mode, name, user=fake_discord.member)
        assert said.content == f"`{spec.name}` needs the {spec.privilege.name.lower()} role.", name
