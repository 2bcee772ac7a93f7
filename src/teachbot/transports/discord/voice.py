"""Voice on Discord: which voice pieces are installed, joining and leaving channels."""

from __future__ import annotations

import importlib.util
import logging
import shutil

import aiohttp
import discord

from teachbot.errors import MissingExtra, UserError
from teachbot.speech.playback import VoicePlayer
from teachbot.speech.service import SpeechService

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

    def __init__(self, client: discord.Client, speech: SpeechService, *, idle_seconds: float) -> None:
        self.client = client
        self.speech = speech
        self.idle_seconds = idle_seconds
        self.players: dict[int, VoicePlayer] = {}

    def player(self, guild: discord.Guild) -> VoicePlayer | None:
        """The guild's playback queue over its live voice connection (made on first use)."""
        voice = guild.voice_client
        if not isinstance(voice, discord.VoiceClient) or not voice.is_connected():
            self.players.pop(guild.id, None)
            return None
        player = self.players.get(guild.id)
        if player is None or player.closed or player.voice is not voice:

            def forget() -> None:
                self.players.pop(guild.id, None)

            player = VoicePlayer(voice, idle_seconds=self.idle_seconds, on_disconnect=forget)
            self.players[guild.id] = player
        return player

    async def speak(self, member: discord.abc.User, guild: discord.Guild | None, text: str, *, always: bool) -> bool:
        """Say ``text`` where ``member`` is listening: in the bot's voice channel, or (``always``) in
        whatever channel the member is in. Returns whether it was queued; never raises."""
        state = getattr(member, "voice", None)
        if guild is None or state is None or state.channel is None:
            return False
        try:
            current = guild.voice_client
            in_same = isinstance(current, discord.VoiceClient) and current.channel.id == state.channel.id
            if not in_same:
                if not always:
                    return False
                await self.join(state.channel)
            player = self.player(guild)
            if player is None:
                return False
            player.enqueue(await self.speech.audio_source(text))
            return True
        except Exception:
            log.exception("speaking in guild %s failed", guild.id)
            return False

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
        return f"Joined {channel.mention}: I'll speak my answers here. {await self.speech.describe()}"

    async def leave(self, guild: discord.Guild) -> str:
        current = guild.voice_client
        if current is None:
            return "I'm not in a voice channel here."
        player = self.players.pop(guild.id, None)
        if player is not None:
            await player.close()
        else:
            await current.disconnect(force=False)
        log.info("left voice in guild %s", guild.id)
        return "Left the voice channel."
