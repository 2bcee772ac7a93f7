"""Tests of the fake Discord harness, driving a minimal real ``commands.Bot`` end to end."""

from __future__ import annotations

import asyncio
import io

import discord
import pytest
from discord.ext import commands
from discord.http import Route
from fakes.discord_models import EPHEMERAL_FLAG, VOICE_MESSAGE_FLAG, ChannelType, Upload
from fakes.discord_server import FakeDiscord, StartBot


class ConfirmView(discord.ui.View):
    """One button that rewrites its message when clicked."""

    @discord.ui.button(label="Yes", custom_id="confirm-yes", style=discord.ButtonStyle.success)
    async def yes(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        await interaction.response.edit_message(content=f"confirmed by {interaction.user.name}", view=None)


class NoteModal(discord.ui.Modal, title="Teach me"):
    """A modal with one text input."""

    answer: discord.ui.TextInput = discord.ui.TextInput(label="Answer", custom_id="answer")

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(f"learned: {self.answer.value}", ephemeral=True)


@discord.app_commands.command()
async def teach(interaction: discord.Interaction) -> None:
    """Open the teaching modal."""
    await interaction.response.send_modal(NoteModal())


class HarnessBot(commands.Bot):
    """A small bot exercising the routes and events the fake must support."""

    def __init__(self) -> None:
        intents = discord.Intents.default()
        intents.message_content = True
        intents.members = True
        super().__init__(command_prefix="!", intents=intents, help_command=None)
        self.raw_reactions: asyncio.Queue[discord.RawReactionActionEvent] = asyncio.Queue()
        self.voice_updates: asyncio.Queue[tuple[discord.Member, discord.VoiceState]] = asyncio.Queue()
        self.command_errors: asyncio.Queue[Exception] = asyncio.Queue()
        self.mentioned: asyncio.Queue[tuple[discord.Message, object]] = asyncio.Queue()

    async def setup_hook(self) -> None:
        for command in (ping, upload, stream, readfile, buttons, join, dmme):
            self.add_command(command)
        for hybrid in (hello, slow, export):
            self.add_command(hybrid)
        self.add_command(quote)
        self.tree.add_command(teach)

    async def on_message(self, message: discord.Message) -> None:
        if self.user in message.mentions:
            resolved = message.reference.resolved if message.reference else None
            await self.mentioned.put((message, resolved))
        await self.process_commands(message)

    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        await self.raw_reactions.put(payload)

    async def on_voice_state_update(
        self, member: discord.Member, before: discord.VoiceState, after: discord.VoiceState
    ) -> None:
        await self.voice_updates.put((member, after))

    async def on_command_error(self, ctx: commands.Context, error: Exception) -> None:  # type: ignore[override]
        await self.command_errors.put(error)


@commands.command()
async def ping(ctx: commands.Context) -> None:
    await ctx.reply("pong")


@commands.hybrid_command()
async def hello(ctx: commands.Context, secret: bool = False) -> None:
    """Say hello (ephemeral when secret)."""
    await ctx.send(f"hello {ctx.author.name}", ephemeral=secret)


@commands.hybrid_command()
async def slow(ctx: commands.Context) -> None:
    """Defer, then answer."""
    await ctx.defer()
    await ctx.send("slow answer")


@commands.hybrid_command()
async def export(ctx: commands.Context) -> None:
    """Send two files: the response and a followup."""
    await ctx.send(file=discord.File(io.BytesIO(b"a,b\n1,2\n"), filename="data.csv"))
    await ctx.send("and the log", file=discord.File(io.BytesIO(b"log line"), filename="run.log"), ephemeral=True)


@commands.command()
async def quote(ctx: commands.Context) -> None:
    assert ctx.message.reference is not None and ctx.message.reference.message_id is not None
    async with ctx.typing():
        quoted = await ctx.channel.fetch_message(ctx.message.reference.message_id)
    await ctx.send(f"{quoted.author.name} said: {quoted.content}")


@commands.command()
async def upload(ctx: commands.Context) -> None:
    await ctx.send("here", file=discord.File(io.BytesIO(b"teachbot notes"), filename="notes.txt"))


@commands.command()
async def stream(ctx: commands.Context) -> None:
    message = await ctx.send("thinking…")
    await message.edit(content="done thinking")


@commands.command()
async def readfile(ctx: commands.Context) -> None:
    attachment = ctx.message.attachments[0]
    data = await attachment.read()
    kind = "voice" if attachment.is_voice_message() else attachment.content_type
    await ctx.send(f"{attachment.filename} {kind} {attachment.duration} {data.decode()}")


@commands.command()
async def buttons(ctx: commands.Context) -> None:
    await ctx.send("confirm?", view=ConfirmView())


@commands.command()
async def join(ctx: commands.Context) -> None:
    assert ctx.guild is not None
    await ctx.guild.change_voice_state(channel=ctx.guild.voice_channels[0])


@commands.command()
async def dmme(ctx: commands.Context) -> None:
    await ctx.author.send("a private word")


@pytest.fixture
async def bot(start_bot: StartBot) -> HarnessBot:
    return await start_bot(HarnessBot())  # type: ignore[return-value]


async def test_bot_reaches_ready_with_seeded_guild(fake_discord: FakeDiscord, bot: HarnessBot) -> None:
    assert bot.user is not None and bot.user.id == fake_discord.bot.id
    assert bot.application_id == fake_discord.application_id
    assert bot.owner_id is None and await bot.is_owner(discord.Object(fake_discord.owner.id))  # type: ignore[arg-type]
    guild = bot.get_guild(fake_discord.guild.id)
    assert guild is not None and guild.chunked and guild.member_count == 4
    trainer = guild.get_member(fake_discord.trainer.id)
    assert trainer is not None and [r.name for r in trainer.roles] == ["@everyone", "trainer"]
    kinds = sorted(str(c.type) for c in guild.channels)
    assert kinds == ["text", "text", "voice"]
    identify = fake_discord.sessions[0].identify or {}
    assert identify["intents"] & discord.Intents(message_content=True).value
    assert fake_discord.sessions[0].query["encoding"] == "json"


async def test_prefix_command_replies_with_reference(fake_discord: FakeDiscord, bot: HarnessBot) -> None:
    sent = await fake_discord.send_message(fake_discord.text, fake_discord.member, "!ping")
    reply = await fake_discord.wait_for_bot_message(fake_discord.text)
    assert reply["content"] == "pong"
    assert reply["message_reference"]["message_id"] == sent["id"]
    assert reply["referenced_message"]["content"] == "!ping"
    request = await fake_discord.wait_for_request("POST", f"/channels/{fake_discord.text.id}/messages")
    assert str(request.json["message_reference"]["message_id"]) == sent["id"]


async def test_slash_command_response_and_ephemeral_flag(fake_discord: FakeDiscord, bot: HarnessBot) -> None:
    await bot.tree.sync()
    sync = await fake_discord.command_syncs.take(lambda _: True, timeout=5, description="global sync")
    assert {c["name"] for c in sync["commands"]} == {"hello", "slow", "export", "teach"}

    public = await fake_discord.slash("hello", user=fake_discord.trainer)
    response = await fake_discord.wait_for_interaction_response(public)
    assert response.type == 4 and not response.ephemeral
    assert response.data["content"] == "hello trainer"
    assert (await fake_discord.wait_for_bot_message(fake_discord.text))["content"] == "hello trainer"

    secret = await fake_discord.slash("hello", {"secret": True}, user=fake_discord.member)
    response = await fake_discord.wait_for_interaction_response(secret)
    assert response.ephemeral and response.message is not None
    assert response.message["flags"] & EPHEMERAL_FLAG


async def test_slash_files_and_followups(fake_discord: FakeDiscord, bot: HarnessBot) -> None:
    guild = discord.Object(fake_discord.guild.id)
    bot.tree.copy_global_to(guild=guild)
    await bot.tree.sync(guild=guild)
    await fake_discord.wait_for_request("PUT", rf"/applications/\d+/guilds/{fake_discord.guild.id}/commands")
    interaction = await fake_discord.slash("export", user=fake_discord.owner)
    assert interaction.payload["data"]["guild_id"] == str(fake_discord.guild.id)
    response = await fake_discord.wait_for_interaction_response(interaction)
    assert [(f.filename, f.data) for f in response.files] == [("data.csv", b"a,b\n1,2\n")]
    followup = await fake_discord.wait_for_followup(interaction)
    assert followup["content"] == "and the log" and followup["flags"] & EPHEMERAL_FLAG
    assert [a["filename"] for a in followup["attachments"]] == ["run.log"]
    first, second = [await fake_discord.wait_for_bot_message(fake_discord.text) for _ in range(2)]
    assert first["attachments"][0]["data"] == b"a,b\n1,2\n" and second["attachments"][0]["data"] == b"log line"


async def test_modal_is_recorded_and_submitted(fake_discord: FakeDiscord, bot: HarnessBot) -> None:
    opened = await fake_discord.slash("teach", user=fake_discord.trainer)
    modal = await fake_discord.wait_for_interaction_response(opened)
    assert modal.type == 9 and modal.data["title"] == "Teach me"
    submitted = await fake_discord.submit_modal(modal.data["custom_id"], {"answer": "42"}, user=fake_discord.trainer)
    response = await fake_discord.wait_for_interaction_response(submitted)
    assert response.data["content"] == "learned: 42" and response.ephemeral


async def test_mentions_references_and_fetch(fake_discord: FakeDiscord, bot: HarnessBot) -> None:
    original = await fake_discord.send_message(fake_discord.text, fake_discord.trainer, "the sky is blue")
    await fake_discord.send_message(
        fake_discord.text, fake_discord.member, f"{fake_discord.bot.mention} really?", reference=original
    )
    message, resolved = await asyncio.wait_for(bot.mentioned.get(), 5)
    assert message.content.endswith("really?")
    assert isinstance(resolved, discord.Message) and resolved.content == "the sky is blue"

    await fake_discord.send_message(fake_discord.text, fake_discord.member, "!quote", reference=original)
    await fake_discord.wait_for_request("POST", rf"/channels/{fake_discord.text.id}/typing")
    await fake_discord.wait_for_request("GET", rf"/channels/{fake_discord.text.id}/messages/{original['id']}")
    reply = await fake_discord.wait_for_bot_message(fake_discord.text)
    assert reply["content"] == "trainer said: the sky is blue"


async def test_deferred_slash_command_fills_in_original(fake_discord: FakeDiscord, bot: HarnessBot) -> None:
    interaction = await fake_discord.slash("slow", user=fake_discord.member, channel=fake_discord.text2)
    assert (await fake_discord.wait_for_interaction_response(interaction)).type == 5
    message = await fake_discord.wait_for_bot_message(fake_discord.text2)
    assert message["content"] == "slow answer"
    assert int(message["id"]) == interaction.original_id


async def test_bot_file_upload_arrives_with_bytes(fake_discord: FakeDiscord, bot: HarnessBot) -> None:
    await fake_discord.send_message(fake_discord.text, fake_discord.owner, "!upload")
    message = await fake_discord.wait_for_bot_message(fake_discord.text)
    assert message["content"] == "here"
    [attachment] = message["attachments"]
    assert attachment["filename"] == "notes.txt" and attachment["data"] == b"teachbot notes"


async def test_user_attachments_are_downloadable(fake_discord: FakeDiscord, bot: HarnessBot) -> None:
    text = Upload("lesson.txt", b"two plus two is four")
    await fake_discord.send_message(fake_discord.text, fake_discord.member, "!readfile", attachments=[text])
    reply = await fake_discord.wait_for_bot_message(fake_discord.text)
    assert reply["content"] == "lesson.txt text/plain None two plus two is four"

    voice = Upload.voice_message(b"OggS-audio", duration_secs=2.5)
    await fake_discord.send_message(
        fake_discord.text, fake_discord.member, "!readfile", attachments=[voice], flags=VOICE_MESSAGE_FLAG
    )
    reply = await fake_discord.wait_for_bot_message(fake_discord.text)
    assert reply["content"] == "voice-message.ogg voice 2.5 OggS-audio"


async def test_reaction_event_arrives(fake_discord: FakeDiscord, bot: HarnessBot) -> None:
    message = await fake_discord.send_message(fake_discord.text, fake_discord.member, "nice answer")
    await fake_discord.react(message, "👍", fake_discord.trainer)
    event = await asyncio.wait_for(bot.raw_reactions.get(), 5)
    assert str(event.emoji) == "👍" and event.user_id == fake_discord.trainer.id
    assert event.message_id == int(message["id"]) and event.member is not None
    assert event.member.get_role(fake_discord.trainer_role.id) is not None


async def test_bot_reactions_are_recorded(fake_discord: FakeDiscord, bot: HarnessBot) -> None:
    message = await fake_discord.send_message(fake_discord.text, fake_discord.member, "hi")
    channel = bot.get_channel(fake_discord.text.id)
    assert isinstance(channel, discord.TextChannel)
    await channel.get_partial_message(int(message["id"])).add_reaction("✅")
    reaction = await fake_discord.wait_for_bot_reaction(message)
    assert reaction.emoji == "✅" and reaction.added


async def test_direct_messages_both_ways(fake_discord: FakeDiscord, bot: HarnessBot) -> None:
    await fake_discord.send_message(fake_discord.dm, fake_discord.member, "!ping")
    assert (await fake_discord.wait_for_bot_message(fake_discord.dm))["content"] == "pong"

    await fake_discord.send_message(fake_discord.text, fake_discord.trainer, "!dmme")
    await fake_discord.wait_for_request("POST", "/users/@me/channels")
    dm = fake_discord.dm_with(fake_discord.trainer)
    assert dm.type == ChannelType.DM
    assert (await fake_discord.wait_for_bot_message(dm))["content"] == "a private word"


async def test_button_click_sends_component_interaction(fake_discord: FakeDiscord, bot: HarnessBot) -> None:
    await fake_discord.send_message(fake_discord.text, fake_discord.member, "!buttons")
    message = await fake_discord.wait_for_bot_message(fake_discord.text)
    interaction = await fake_discord.click(message, "confirm-yes", fake_discord.member)
    response = await fake_discord.wait_for_interaction_response(interaction)
    assert response.type == 7
    edit = await fake_discord.wait_for_edit(message)
    assert edit.message["content"] == "confirmed by member" and edit.message["components"] == []


async def test_bot_edits_are_recorded(fake_discord: FakeDiscord, bot: HarnessBot) -> None:
    await fake_discord.send_message(fake_discord.text, fake_discord.member, "!stream")
    status = await fake_discord.wait_for_bot_message(fake_discord.text)
    assert status["content"] == "thinking…"
    edit = await fake_discord.wait_for_edit(status)
    assert edit.payload["content"] == "done thinking"
    assert fake_discord.message(status)["content"] == "done thinking"


async def test_voice_state_is_echoed(fake_discord: FakeDiscord, bot: HarnessBot) -> None:
    await fake_discord.join_voice(fake_discord.member, fake_discord.voice)
    member, after = await asyncio.wait_for(bot.voice_updates.get(), 5)
    assert member.id == fake_discord.member.id and after.channel is not None

    await fake_discord.send_message(fake_discord.text, fake_discord.owner, "!join")
    request = await fake_discord.wait_for_voice_request()
    assert int(request["channel_id"]) == fake_discord.voice.id
    member, after = await asyncio.wait_for(bot.voice_updates.get(), 5)
    assert member.id == fake_discord.bot.id
    assert after.channel is not None and after.channel.id == fake_discord.voice.id


async def test_injected_failure_reaches_the_bot(fake_discord: FakeDiscord, bot: HarnessBot) -> None:
    fake_discord.fail("POST", rf"/channels/{fake_discord.text.id}/messages", 403)
    await fake_discord.send_message(fake_discord.text, fake_discord.member, "!ping")
    error = await asyncio.wait_for(bot.command_errors.get(), 5)
    assert isinstance(error, commands.CommandInvokeError) and isinstance(error.original, discord.Forbidden)
    await fake_discord.send_message(fake_discord.text, fake_discord.member, "!ping")
    assert (await fake_discord.wait_for_bot_message(fake_discord.text))["content"] == "pong"


async def test_unknown_routes_are_recorded(fake_discord: FakeDiscord, bot: HarnessBot) -> None:
    route = Route("GET", "/guilds/{guild_id}/bans", guild_id=fake_discord.guild.id)
    with pytest.raises(discord.NotFound):
        await bot.http.request(route)
    assert [str(r) for r in fake_discord.unknown_requests] == [f"GET /guilds/{fake_discord.guild.id}/bans -> 404"]
    with pytest.raises(AssertionError, match="routes the fake Discord does not know"):
        fake_discord.assert_clean()
    fake_discord.unknown_requests.clear()


async def test_waiting_fails_with_what_was_seen(fake_discord: FakeDiscord, bot: HarnessBot) -> None:
    with pytest.raises(AssertionError, match="no bot message"):
        await fake_discord.wait_for_bot_message(fake_discord.text2, timeout=0.05)
