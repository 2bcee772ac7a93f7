"""Voice on Discord: which voice pieces are installed, joining and leaving channels."""

from __future__ import annotations

import importlib.util
import logging
import shutil

import aiohttp
import discord

from teachbot.errors import MissingExtra, UserError

log = logging.getLogger(__name__)


def missing_voice_parts() -> list[str]:
    """What voice needs and is not installed: discord.py's voice extra, libopus, ffmpeg."""
    missing = []
    if importlib.util.find_spec("nacl") is None or importlib.util.find_spec("davey") is None:
        missing.append("discord.py's voice extra (pip install 'discord.py[voice]')")
    if not discord.opus.is_loaded():
        try:
            discord.opus._load_default()
        except Exception:  # the loader raises OSError or its own errors depending on the platform
            log.debug("loading libopus failed", exc_info=True)
    if not discord.opus.is_loaded():
        missing.append("libopus (apt-get install libopus0)")
    if shutil.which("ffmpeg") is None:
        missing.append("ffmpeg (apt-get install ffmpeg)")
    return missing


class VoiceManager:
    """Connects to voice channels; one connection per server."""

    connect_timeout = 20.0  # seconds to reach the voice server before giving up

    def __init__(self, client: discord.Client) -> None:
        self.client = client

    async def join(self, channel: discord.VoiceChannel | discord.StageChannel) -> str:
        missing = missing_voice_parts()
        if missing:
            raise MissingExtra("Voice", "install " + "; ".join(missing))
        current = channel.guild.voice_client
        if isinstance(current, discord.VoiceClient) and current.is_connected():
            if current.channel.id == channel.id:
                return f"I'm already in {channel.mention}."
            await current.move_to(channel)
        else:
            try:
                await channel.connect(self_deaf=True, timeout=self.connect_timeout, reconnect=False)
            except (TimeoutError, OSError, aiohttp.ClientError, discord.ClientException, discord.ConnectionClosed):
                log.warning("could not connect to voice channel %s", channel.id, exc_info=True)
                text = f"I couldn't connect to the voice channel {channel.mention}; try again later."
                raise UserError(text) from None
        log.info("joined voice channel %s in guild %s", channel.id, channel.guild.id)
        return f"Joined {channel.mention}: I'll speak my answers here."

    async def leave(self, guild: discord.Guild) -> str:
        current = guild.voice_client
        if current is None:
            return "I'm not in a voice channel here."
        await current.disconnect(force=False)
        log.info("left voice in guild %s", guild.id)
        return "Left the voice channel."
