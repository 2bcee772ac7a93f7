"""Fixtures for end-to-end tests of discord.py bots against the fake Discord on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import pytest
from discord.ext import commands
from fake_discord import FakeDiscord, StartBot, running_bot, serve_fake_discord


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
