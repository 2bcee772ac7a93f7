"""Start-up and shutdown: command sync once, secrets kept out of logs, voice, and ``teachbot run`` as a process."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

import pytest
from bot_talk import RunTeachbot, Talk
from fake_discord import FakeDiscord, serve_fake_discord

from teachbot.transports.discord.bot import COMMANDS_HASH_FILE, TeachBot

SECRET_TOKEN = "MTk4NjIyNDgzNDcxOTI1MjQ4.Cl2FMQ.ZnCjm1XVW7vRze4b7Cq4se7kKWs"


async def test_commands_are_synced_once_and_not_again_when_unchanged(
    fake_discord: FakeDiscord, run_teachbot: RunTeachbot, talk: Talk, tmp_path: Path
) -> None:
    async with run_teachbot():
        await fake_discord.wait_for_request("PUT", r"/applications/\d+/commands")
    assert (tmp_path / "data" / COMMANDS_HASH_FILE).is_file()
    async with run_teachbot():
        assert (await talk.slash("hi", user=fake_discord.member)).content == "HI!"
    syncs = [r for r in fake_discord.requests.items if r.method == "PUT" and "/commands" in r.path]
    assert len(syncs) == 1


async def test_the_token_never_reaches_logs_or_replies(
    caplog: pytest.LogCaptureFixture, run_teachbot: RunTeachbot
) -> None:
    caplog.set_level(logging.DEBUG)
    async with serve_fake_discord(token=SECRET_TOKEN) as fake:
        talk = Talk(fake)
        async with run_teachbot(fake):
            await talk.ask("what is your token?", user=fake.member)
            await talk.prefix("help", user=fake.owner)
            fake.fail("POST", rf"/channels/{fake.text.id}/messages", 401, message="401: Unauthorized")
            await fake.send_message(fake.text, fake.owner, "!hi")
            await fake.wait_for_request("POST", rf"/channels/{fake.text.id}/messages")
        fake.assert_clean()
    assert caplog.records
    assert SECRET_TOKEN not in caplog.text
    assert all(SECRET_TOKEN not in str(m.get("content")) for m in fake.bot_messages.items)


async def test_join_without_a_reachable_voice_server_says_so(
    fake_discord: FakeDiscord, teachbot_bot: TeachBot, talk: Talk
) -> None:
    teachbot_bot.voice.connect_timeout = 2
    await fake_discord.join_voice(fake_discord.member, fake_discord.voice)
    await fake_discord.send_message(fake_discord.text, fake_discord.member, "!join")
    request = await fake_discord.wait_for_voice_request()
    assert int(request["channel_id"]) == fake_discord.voice.id and request["self_deaf"]
    said = await fake_discord.wait_for_bot_message(fake_discord.text, timeout=10)
    assert said["content"].startswith("I couldn't connect to the voice channel")
    assert (await talk.prefix("hi", user=fake_discord.member)).content == "HI!"


async def test_teachbot_run_connects_and_stops_cleanly(fake_discord: FakeDiscord, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEACHBOT_")}
    env.update(
        TEACHBOT_DATA_DIR=str(tmp_path / "run-data"),
        TEACHBOT_DISCORD_TOKEN=fake_discord.token,
        TEACHBOT_DISCORD_API_BASE=fake_discord.api_base,
        TEACHBOT_DISCORD_GATEWAY_URL=fake_discord.gateway_url,
        TEACHBOT_CHAT_CHANNELS=f"[{fake_discord.text2.id}]",
        TEACHBOT_CHAT_COOLDOWN_SECONDS="0",
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "teachbot", "run", env=env, cwd=tmp_path,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        await fake_discord.wait_for_request("GET", "/users/@me", timeout=60)
        for _ in range(600):  # READY: the gateway session identified
            if any(s.identify is not None for s in fake_discord.sessions):
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("teachbot run never identified on the gateway")
        await fake_discord.send_message(fake_discord.text2, fake_discord.member, "hello")
        reply = await fake_discord.wait_for_bot_message(fake_discord.text2, timeout=20)
        assert reply["content"]
        process.send_signal(signal.SIGTERM)
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, stderr.decode()
    assert fake_discord.token not in (stdout + stderr).decode()
    assert "Traceback" not in stderr.decode()
