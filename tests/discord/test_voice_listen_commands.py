"""``!listen`` and ``!stop`` through the fake Discord, as far as no voice server is needed."""

from __future__ import annotations

import pytest
from fakes.discord_server import FakeDiscord
from fakes.talk import Talk

from teachbot.transports.discord.bot import TeachBot


@pytest.mark.parametrize("mode", ["prefix", "slash"])
async def test_listen_needs_the_caller_in_a_voice_channel_and_stop_says_when_not_listening(
    mode: str, fake_discord: FakeDiscord, teachbot_bot: TeachBot, talk: Talk
) -> None:
    member = fake_discord.member
    said = await talk.run(mode, "listen", user=member)
    assert said.content == "Join a voice channel first, then call me to listen."
    assert (await talk.run(mode, "stop", user=member)).content == "I'm not listening here."
