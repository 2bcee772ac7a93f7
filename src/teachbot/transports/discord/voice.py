"""Voice on Discord: which voice pieces are installed, joining, listening and leaving channels."""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import shutil
from typing import TYPE_CHECKING

import aiohttp
import discord

from teachbot.errors import MissingExtra, UserError
from teachbot.speech.playback import VoicePlayer
from teachbot.speech.service import SpeechService

if TYPE_CHECKING:
    from teachbot.answering.chat import ChatService
    from teachbot.transports.discord.permissions import Permissions
    from teachbot.transports.voice_session import ListeningSession

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
        self.sessions: dict[int, ListeningSession] = {}
        self._closing: set[asyncio.Task[None]] = set()

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
                self._end_session(guild.id)

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

    async def listen(
        self,
        channel: discord.VoiceChannel | discord.StageChannel,
        *,
        chat: ChatService,
        permissions: Permissions,
        announce: bool = True,
    ) -> str:
        """Join ``channel`` able to receive (not deafened) and answer what members say there."""
        from teachbot.transports.discord.listen import DiscordRoom, listening_client_class, make_sink
        from teachbot.transports.voice_session import ListeningSession

        client_class = listening_client_class()
        missing = missing_voice_parts()
        if missing:
            raise MissingExtra("Voice", "install " + "; ".join(missing))
        guild = channel.guild
        current = guild.voice_client
        if guild.id in self.sessions and isinstance(current, client_class) and current.channel.id == channel.id:
            return f"I'm already listening in {channel.mention}."
        await self.leave(guild)  # a speaking-only connection cannot receive: connect again
        try:
            voice = await channel.connect(
                cls=client_class, self_deaf=False, timeout=self.connect_timeout, reconnect=False
            )
        except (TimeoutError, OSError, aiohttp.ClientError, discord.ClientException, discord.ConnectionClosed):
            log.warning("could not connect to voice channel %s to listen", channel.id, exc_info=True)
            raise UserError(f"I couldn't connect to the voice channel {channel.mention}; try again later.") from None
        room = DiscordRoom(channel, self, permissions, self.speech)
        settings = self.speech.settings
        audio_dir = settings.data_dir / "voice" / str(guild.id)
        session = ListeningSession(room, self.speech, chat, settings, audio_dir=audio_dir)
        self.sessions[guild.id] = session
        voice.listen(make_sink(session))  # type: ignore[attr-defined]
        self.player(guild)
        preparing = asyncio.get_running_loop().create_task(self.speech.prepare_to_listen())
        self._closing.add(preparing)  # kept referenced until done, like sessions being closed
        preparing.add_done_callback(self._closing.discard)
        log.info("listening in voice channel %s of guild %s", channel.id, guild.id)
        address = "" if settings.voice_answer_everyone else " When others are here too, start with my name."
        text = (
            f"🎧 I'm listening in {channel.mention}: talk to me and I'll answer aloud and here.{address} "
            f"`{settings.command_prefix}stop` ends it."
        )
        if announce:  # the voice channel's own text chat, where transcripts and answers will be posted
            try:
                await channel.send(text)
            except discord.HTTPException:
                log.warning("could not announce listening in %s", channel.id, exc_info=True)
        return text

    def _end_session(self, guild_id: int) -> None:
        session = self.sessions.pop(guild_id, None)
        if session is not None:
            task = asyncio.get_running_loop().create_task(session.close())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def stop_listening(self, guild: discord.Guild) -> str:
        if guild.id not in self.sessions:
            return "I'm not listening here."
        await self.leave(guild)
        return "I stopped listening and left the voice channel."

    async def leave(self, guild: discord.Guild) -> str:
        session = self.sessions.pop(guild.id, None)
        current = guild.voice_client
        if session is not None:
            stop = getattr(current, "stop_listening", None)
            if callable(stop):
                stop()
            await session.close()
        if current is None:
            return "I'm not in a voice channel here."
        player = self.players.pop(guild.id, None)
        if player is not None:
            await player.close()
        else:
            await current.disconnect(force=False)
        log.info("left voice in guild %s", guild.id)
        return "Left the voice channel."
