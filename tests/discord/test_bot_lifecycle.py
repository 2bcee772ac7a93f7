"""Start-up and shutdown: command sync once, secrets kept out of logs, voice, and ``teachbot run`` as a process."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from pathlib import Path

import pytest
from fakes.discord_server import FakeDiscord, serve_fake_discord
from fakes.env import child_env
from fakes.talk import RunTeachbot, Talk

from teachbot.transports.discord.bot import COMMANDS_HASH_FILE, TeachBot
from teachbot.transports.discord.cogs import chat as chat_cog

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


@pytest.mark.slow
async def test_teachbot_run_connects_and_stops_cleanly(fake_discord: FakeDiscord, tmp_path: Path) -> None:
    env = child_env()
    env.update(
        TEACHBOT_DATA_DIR=str(tmp_path / "run-data"),
        TEACHBOT_DISCORD_TOKEN=fake_discord.token,
        TEACHBOT_DISCORD_API_BASE=fake_discord.api_base,
        TEACHBOT_DISCORD_GATEWAY_URL=fake_discord.gateway_url,
        TEACHBOT_CHAT_CHANNELS=f"[{fake_discord.text2.id}]",
        TEACHBOT_CHAT_COOLDOWN_SECONDS="0",
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "teachbot",
        "run",
        env=env,
        cwd=tmp_path,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
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


async def test_a_malformed_gateway_event_is_skipped_and_the_bot_goes_on(
    fake_discord: FakeDiscord, teachbot_bot: TeachBot, talk: Talk, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    await fake_discord.dispatch("INTERACTION_CREATE", {"id": "1", "type": 2})  # no token, data, channel…
    await fake_discord.dispatch("MESSAGE_CREATE", {"id": "2", "channel_id": "nosuch"})
    assert (await talk.prefix("hi", user=fake_discord.member)).content == "HI!"
    assert "skipped a malformed INTERACTION_CREATE event" in caplog.text


async def test_a_refused_typing_indicator_does_not_cost_the_answer(
    fake_discord: FakeDiscord, teachbot_bot: TeachBot, talk: Talk, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(chat_cog, "TYPING_AFTER_SECONDS", 0.0)  # shown for every answer, however fast
    fake_discord.fail("POST", rf"/channels/{fake_discord.text2.id}/typing", 403, times=None)
    said = await talk.ask("hello there", user=fake_discord.member)
    assert said.content
    await fake_discord.wait_for_request("POST", rf"/channels/{fake_discord.text2.id}/typing", timeout=1)


@pytest.mark.slow
def test_teachbot_run_says_in_one_line_that_discord_cannot_be_reached(tmp_path: Path) -> None:
    import socket
    import subprocess

    with socket.socket() as probe:  # a loopback port nobody listens on: connection refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = child_env()
    env.update(
        TEACHBOT_DATA_DIR=str(tmp_path / "data"),
        TEACHBOT_DISCORD_TOKEN="not-a-real-token",
        TEACHBOT_DISCORD_API_BASE=f"http://127.0.0.1:{port}/api/v10",
        TEACHBOT_DISCORD_CONNECT_ATTEMPTS="2",
        TEACHBOT_LOG_LEVEL="WARNING",
    )
    result = subprocess.run(
        [sys.executable, "-m", "teachbot", "run"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert lines[-1].startswith(f"error: Could not reach Discord at http://127.0.0.1:{port}/api/v10"), lines
    assert sum("trying again in 1 s" in line for line in lines) == 1, lines  # one retry, with backoff
    assert "not-a-real-token" not in result.stderr
