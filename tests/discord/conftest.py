"""Fixtures for end-to-end tests of discord.py bots against the fake Discord on loopback."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from discord.ext import commands
from fakes.discord_server import FakeDiscord, StartBot, running_bot, serve_fake_discord
from fakes.talk import MakeTeachbot, RunTeachbot, Talk

if TYPE_CHECKING:  # teachbot imports wait for the fixtures, so the harness tests run without the model
    from teachbot.config import Settings
    from teachbot.transports.discord.bot import TeachBot


@pytest.fixture
async def fake_discord() -> AsyncIterator[FakeDiscord]:
    """A seeded fake Discord with discord.py pointed at it; fails if the bot used an unknown route."""
    async with serve_fake_discord() as fake:
        yield fake
        fake.assert_clean()


@pytest.fixture
async def start_bot(fake_discord: FakeDiscord) -> AsyncIterator[StartBot]:
    """``await start_bot(bot)`` runs the bot against the fake until ready; bots are closed at teardown."""
    async with AsyncExitStack() as stack:

        async def start(bot: commands.Bot) -> commands.Bot:
            return await stack.enter_async_context(running_bot(fake_discord, bot))

        yield start


# -- teachbot's own bot on a real App --------------------------------------------------------------


def teachbot_settings(fake: FakeDiscord, data_dir: Path, **overrides: Any) -> Settings:
    """Settings pointing at ``fake``: text2 is a chat channel, the seeded owner owns the bot, no cooldowns."""
    from teachbot.config import load_settings

    values: dict[str, Any] = {
        "data_dir": data_dir,
        "discord_token": fake.token,
        "discord_api_base": fake.api_base,
        "discord_gateway_url": fake.gateway_url,
        "chat_channels": [fake.text2.id],
        "owner_ids": [fake.owner.id],
        "chat_cooldown_seconds": 0,
        "heavy_cooldown_seconds": 0,
    }
    values.update(overrides)
    return load_settings(**values)


@pytest.fixture
def run_teachbot(fake_discord: FakeDiscord, tmp_path: Path, trained_data_dir: Path) -> RunTeachbot:
    """``async with run_teachbot(fake=None, **settings) as bot``: a ready TeachBot on a fresh App; both closed on exit.

    The data folder is ``tmp_path/"data"`` (seeded from the trained template once), so two runs in one
    test share it, like a restart.
    """
    from teachbot.app import App
    from teachbot.transports.discord.bot import TeachBot

    @asynccontextmanager
    async def run(fake: FakeDiscord | None = None, **overrides: Any) -> AsyncIterator[TeachBot]:
        fake = fake or fake_discord
        data_dir = overrides.pop("data_dir", tmp_path / "data")
        if not data_dir.exists():
            shutil.copytree(trained_data_dir, data_dir)
        settings = teachbot_settings(fake, data_dir, **overrides)
        app = await App.start(settings)
        try:
            async with running_bot(fake, TeachBot(app)) as bot:
                yield bot  # type: ignore[misc]
        finally:
            await app.close()

    return run


@pytest.fixture
async def make_teachbot(run_teachbot: RunTeachbot) -> AsyncIterator[MakeTeachbot]:
    """``await make_teachbot(**settings)``: a ready TeachBot, closed (with its App) at teardown."""
    async with AsyncExitStack() as stack:

        async def make(**overrides: Any) -> TeachBot:
            return await stack.enter_async_context(run_teachbot(**overrides))

        yield make


@pytest.fixture
async def teachbot_bot(make_teachbot: MakeTeachbot) -> TeachBot:
    """A ready TeachBot with the default test settings (chat channel text2, owner, no cooldowns)."""
    return await make_teachbot()


@pytest.fixture
def talk(fake_discord: FakeDiscord) -> Talk:
    return Talk(fake_discord)
