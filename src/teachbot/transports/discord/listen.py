"""Listening in a Discord voice channel: the receive extension's sink feeds a ``ListeningSession``.

``discord-ext-voice-recv`` (the ``voice`` extra) receives, decrypts and decodes each member's audio in
its own threads and hands 20 ms frames of 48 kHz stereo PCM to a sink; ``listen_dave`` adds the DAVE
step. The room posts in the voice channel's own text chat, so members reply there to ``!correct``
and react 👍/👎 as with any answer.
"""

from __future__ import annotations

import importlib.util
import logging
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import discord

from teachbot.errors import MissingExtra
from teachbot.transports.discord.commands import origin_of
from teachbot.transports.discord.permissions import Permissions, has_role
from teachbot.transports.voice_session import ListeningSession, Speaker

if TYPE_CHECKING:
    from teachbot.speech.service import SpeechService
    from teachbot.transports.discord.voice import VoiceManager

log = logging.getLogger(__name__)

__all__ = ["DiscordRoom", "listening_client_class", "make_sink", "receive_installed"]


def receive_installed() -> bool:
    return importlib.util.find_spec("discord.ext.voice_recv") is not None


def listening_client_class() -> type[discord.VoiceClient]:
    """The extension's voice client with the DAVE step added when it starts listening."""
    if not receive_installed():
        raise MissingExtra("Listening in voice channels", "pip install 'teachbot[voice]'")
    from discord.ext import voice_recv

    from teachbot.transports.discord.listen_dave import add_dave_step

    class ListeningVoiceClient(voice_recv.VoiceRecvClient):
        def listen(self, sink: Any, *, after: Any = None) -> None:
            super().listen(sink, after=after)
            add_dave_step(self._reader, self)

    return ListeningVoiceClient


HELD_FRAMES = 50  # 1 s of a speaker's frames kept until the SPEAKING message says whose they are
HELD_SPEAKERS = 16


def make_sink(session: ListeningSession) -> Any:
    """A receive sink handing decoded frames to the session (in the extension's router thread).

    A speaker's first packets can arrive before the voice gateway's SPEAKING message maps their ssrc
    to a member; the extension then hands them over without a user. They are held (briefly, a few
    speakers at most) and fed first once the ssrc is known, so the start of an utterance (often the
    bot's name) is not lost.
    """
    from discord.ext import voice_recv

    class SessionSink(voice_recv.AudioSink):
        def __init__(self) -> None:
            super().__init__()
            self._held: dict[int, deque[bytes]] = {}

        def wants_opus(self) -> bool:
            return False

        def write(self, user: discord.abc.User | None, data: Any) -> None:
            if not data.pcm:
                return
            ssrc = int(data.packet.ssrc)
            if user is None:
                if ssrc not in self._held and len(self._held) >= HELD_SPEAKERS:
                    self._held.pop(next(iter(self._held)))
                self._held.setdefault(ssrc, deque(maxlen=HELD_FRAMES)).append(data.pcm)
                return
            for frame in self._held.pop(ssrc, ()):
                session.feed(user.id, frame)
            session.feed(user.id, data.pcm)

        @voice_recv.AudioSink.listener()
        def on_voice_member_speaking_stop(self, member: discord.Member) -> None:
            session.packets_stopped(member.id)  # the extension's guess: no packet for 0.2 s

        def cleanup(self) -> None:
            pass

    return SessionSink()


class DiscordRoom:
    """A voice channel as a ``VoiceRoom``: its members, its text chat, the guild's playback queue."""

    def __init__(
        self,
        channel: discord.VoiceChannel | discord.StageChannel,
        manager: VoiceManager,
        permissions: Permissions,
        speech: SpeechService,
    ) -> None:
        self.channel = channel
        self.manager = manager
        self.permissions = permissions
        self.speech = speech

    @property
    def names(self) -> Sequence[str]:
        me = self.channel.guild.me
        return [n for n in {me.name, me.display_name} if n]

    def speaker(self, user_id: int) -> Speaker | None:
        member = self.channel.guild.get_member(user_id)
        if member is None or member.bot:
            return None
        if self.permissions.refusal(member, self.channel):
            return None
        if has_role(member.roles, self.permissions.settings.voice_opt_out_roles):
            return None
        return Speaker(user_id, member.display_name, origin_of(member, self.channel, self.channel.guild))

    def people(self) -> int:
        return sum(1 for m in self.channel.members if not m.bot)

    async def post_transcript(self, speaker: Speaker, text: str) -> str | None:
        try:
            sent = await self.channel.send(f"🎤 **{discord.utils.escape_markdown(speaker.name)}**: {text}"[:1900])
        except discord.HTTPException:
            log.warning("could not post a transcript in %s", self.channel.id, exc_info=True)
            return None
        return str(sent.id)

    async def post_answer(self, transcript_id: str | None, text: str) -> str | None:
        reference = (
            discord.MessageReference(
                message_id=int(transcript_id), channel_id=self.channel.id, fail_if_not_exists=False
            )
            if transcript_id
            else None
        )
        try:
            sent = await self.channel.send(text[:1900], reference=reference or discord.utils.MISSING)
        except discord.HTTPException:
            log.warning("could not post an answer in %s", self.channel.id, exc_info=True)
            return None
        return str(sent.id)

    async def speak(self, text: str) -> None:
        player = self.manager.player(self.channel.guild)
        if player is not None:
            player.enqueue(await self.speech.audio_source(text))

    def stop_speaking(self) -> None:
        player = self.manager.players.get(self.channel.guild.id)
        if player is not None:
            player.interrupt()

    def is_speaking(self) -> bool:
        player = self.manager.players.get(self.channel.guild.id)
        return player is not None and player.playing
