"""Two shard processes against the fake Discord: each serves only its shards' guilds, slash commands are
synced once, and what is taught through one shard answers in the other's guilds (one shared database)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
from fakes.discord_models import FakeChannel
from fakes.discord_server import FakeDiscord, running_bot, serve_fake_discord
from scale.conftest import eventually, settings_for

from teachbot.app import App
from teachbot.transports.discord.bot import ShardedTeachBot, TeachBot, build_bot

QUESTION = "what is the capital of the planet zorblax"


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    async with serve_fake_discord() as server:
        yield server
        server.assert_clean()


def shard_of(guild_id: int, count: int = 2) -> int:
    return (guild_id >> 22) % count


async def test_two_shard_processes_split_the_guilds_and_share_the_brain(
    fake: FakeDiscord, database_url: str, tmp_path: Path
) -> None:
    other = fake.add_guild("second", shard=(1 - shard_of(fake.guild.id), 2))
    general = next(c for c in other.channels.values() if c.name == "general")
    chat: dict[int, FakeChannel] = {shard_of(fake.guild.id): fake.text2, shard_of(other.id): fake.channel(general)}

    def shard_settings(shard: int) -> Any:
        return settings_for(
            tmp_path / f"shard{shard}",
            database_url,
            discord_token=fake.token,
            discord_api_base=fake.api_base,
            discord_gateway_url=fake.gateway_url,
            chat_channels=[c.id for c in chat.values()],
            owner_ids=[fake.owner.id],
            trusted_roles=["teachbot"],
            chat_cooldown_seconds=0,
            heavy_cooldown_seconds=0,
            shard_count=2,
            shard_ids=[shard],
        )

    async with AsyncExitStack() as stack:
        bots: list[TeachBot] = []
        for shard in (0, 1):
            app = await App.start(shard_settings(shard), role="bot")
            stack.push_async_callback(app.close)
            bot = build_bot(app)
            assert isinstance(bot, ShardedTeachBot)
            bots.append(await stack.enter_async_context(running_bot(fake, bot)))

        for shard, bot in enumerate(bots):
            assert {g.id for g in bot.guilds} == {g for g in fake.guilds if shard_of(g) == shard}
            assert bot.syncs_commands is (shard == 0)
        syncs = [r for r in fake.requests.items if r.method == "PUT" and r.path.endswith("/commands")]
        assert len(syncs) == 1, "slash commands were synced more than once"

        # each guild's message is answered once, by the process holding its shard
        for shard in (0, 1):
            await fake.send_message(chat[shard], fake.member, QUESTION)
            reply = await fake.wait_for_bot_message(chat[shard])
            assert reply["content"]
        assert len(fake.bot_messages.items) == 2

        # a correction taught in a direct message (global scope, shard 0) answers in shard 1's guild
        dm = fake.dm_with(fake.owner)
        await fake.send_message(dm, fake.owner, QUESTION)
        answer = await fake.wait_for_bot_message(dm)
        await fake.send_message(dm, fake.owner, "!correct Zorbopolis", reference=answer)
        await fake.wait_for_bot_message(dm)

        async def shard1_answers() -> bool:
            await fake.send_message(chat[1], fake.member, QUESTION)
            return "Zorbopolis" in (await fake.wait_for_bot_message(chat[1]))["content"]

        await eventually(shard1_answers, timeout=2.0, step=0.05)
