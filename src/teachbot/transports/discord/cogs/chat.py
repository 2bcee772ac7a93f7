"""Chat: answer DMs, mentions, replies to the bot and every message in the chat channels."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import discord
from discord.ext import commands

from teachbot.answering.protocols import Answer, Attachment
from teachbot.config import Backend
from teachbot.errors import UserError
from teachbot.transports import wording
from teachbot.transports.arguments import readable
from teachbot.transports.discord.commands import origin_of
from teachbot.transports.discord.rendering import send_text, typing_if_possible
from teachbot.transports.discord.streaming import StreamingReply
from teachbot.transports.discord.teach_buttons import candidate_view

if TYPE_CHECKING:
    from teachbot.transports.discord.bot import TeachBot

log = logging.getLogger(__name__)

AUDIO_TYPES = ("audio/",)
MAX_ATTACHMENTS = 4
#: Answers in flight above which the extras are shed: "typing…" (a request per message) and the trainer
#: buttons under an unsure answer (finding the likeliest answers costs a second pass through the model).
SHED_EXTRAS_AFTER = 4
#: "typing…" shows only for an answer not ready this soon: the local model answers in milliseconds, and an
#: indicator for every message cost a request each (bench/load.py).
TYPING_AFTER_SECONDS = 0.5


@asynccontextmanager
async def typing_when_slow(
    channel: discord.abc.Messageable, *, after: float | None = None, when: bool = True
) -> AsyncIterator[None]:
    """Show "typing…" (``typing_if_possible``) once the body has run for ``after`` seconds, until it ends."""
    if not when:
        yield
        return
    done = asyncio.Event()
    started = False

    async def show() -> None:
        nonlocal started
        await asyncio.sleep(TYPING_AFTER_SECONDS if after is None else after)
        started = True
        async with typing_if_possible(channel):
            await done.wait()

    shown = asyncio.create_task(show(), name="typing")
    try:
        yield
    finally:
        done.set()
        if not started:
            shown.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await shown


def is_audio(attachment: discord.Attachment) -> bool:
    """Voice messages and audio files (by content type, or by extension when the type is missing)."""
    content_type = (attachment.content_type or "").split(";")[0].strip().lower()
    if content_type.startswith(AUDIO_TYPES) or content_type == "video/ogg":
        return True
    return not content_type and attachment.filename.lower().endswith((".ogg", ".opus", ".mp3", ".wav", ".m4a", ".flac"))


class ChatCog(commands.Cog):
    """The conversation itself; commands are built from the catalogue."""

    def __init__(self, bot: TeachBot) -> None:
        self.bot = bot
        self.app = bot.app
        self.in_flight = 0  # answers being worked on now
        seconds = self.app.settings.chat_cooldown_seconds
        bucket = commands.BucketType.user
        self.cooldowns = commands.CooldownMapping.from_cooldown(1, seconds, bucket) if seconds else None

    def _addressed(self, message: discord.Message) -> bool:
        me = self.bot.user
        if message.guild is None:
            return True
        if me is not None and me in message.mentions:
            return True
        resolved = message.reference.resolved if message.reference else None
        if isinstance(resolved, discord.Message) and me is not None and resolved.author.id == me.id:
            return True
        return message.channel.id in self.app.settings.chat_channels

    def _text(self, message: discord.Message) -> str:
        me = self.bot.user
        text = readable(message.content)
        if me is not None:
            text = re.sub(rf"<@!?{me.id}>", "", text)
        return text.strip()

    async def handle(self, message: discord.Message) -> None:
        """A message that is not a command (the bot's ``on_message`` decided): answer it if addressed."""
        if message.author.bot or not self._addressed(message):
            return
        refusal = self.bot.permissions.refusal(message.author, message.channel)
        if refusal:  # blocked or not allowed: ignored, like llmcord, so the bot can't be used to spam
            log.debug("ignoring message %s: %s", message.id, refusal)
            return
        if self.cooldowns is not None:
            retry = self.cooldowns.update_rate_limit(message)
            if retry:
                log.info("cooldown author=%s retry=%.1fs", message.author.id, retry)
                return
        try:
            await self._answer(message)
        except UserError as exc:
            await self._reply(message, wording.user_error(exc, self.app.settings.command_prefix))
        except Exception:
            log.exception("answering message %s failed", message.id)
            await self._reply(message, wording.GENERIC_ERROR)

    async def _answer(self, message: discord.Message) -> None:
        audio = next((a for a in message.attachments if is_audio(a)), None)
        text = self._text(message)
        spoken = False
        if audio is not None:
            text = await self.bot.transcribe(audio)
            spoken = True
        if not text:
            return
        where = origin_of(message.author, message.channel, message.guild)
        files = await self._files_for_model(message, skip=audio)
        prefix = f"> 🎤 {text}\n" if spoken else ""
        reference = message.reference.message_id if message.reference else None
        reply_to = str(reference) if reference else None
        if self.app.chat.streams:
            streaming = StreamingReply(message)
            placeholder = await streaming.start()
            reply = await self.app.chat.ask_streaming(
                text,
                where,
                lambda so_far: streaming.update(prefix + so_far),
                external_id=str(message.id),
                attachments=files,
                reply_to=reply_to,
                sent_id=str(placeholder.id),
            )
            await streaming.finish(prefix + reply.answer.text)
        else:
            question = text

            async def deliver(answer: Answer) -> str | None:
                text = answer.text
                if answer.is_fallback:
                    text = f"{text} {wording.teach_hint(self.app.settings.command_prefix, terminal=False)}"
                view = None
                if self.in_flight <= SHED_EXTRAS_AFTER:
                    view = await candidate_view(self.bot, where, question, answer)  # for trainers, when unsure
                sent = await self._reply(message, prefix + text, view=view)
                if view is not None:
                    view.message = sent
                return str(sent.id) if sent is not None else None

            self.in_flight += 1
            try:  # under load the typing indicator is the first thing shed: it costs a request per message
                async with typing_when_slow(message.channel, when=self.in_flight <= SHED_EXTRAS_AFTER):
                    reply = await self.app.chat.ask(
                        text, where, external_id=str(message.id), attachments=files, reply_to=reply_to, deliver=deliver
                    )
            finally:
                self.in_flight -= 1
        await self.bot.speak_reply(message, reply.answer.text)

    async def _files_for_model(self, message: discord.Message, skip: discord.Attachment | None) -> list[Attachment]:
        """Images and text files for backends that read them (the local model does not)."""
        if self.app.settings.backend is Backend.LOCAL:
            return []
        files = []
        for attachment in message.attachments[:MAX_ATTACHMENTS]:
            if attachment is skip or attachment.size > self.app.settings.max_upload_bytes:
                continue
            kind = (attachment.content_type or "application/octet-stream").split(";")[0].strip().lower()
            if kind.startswith("image/") or kind.startswith("text/") or kind in ("application/json",):
                files.append(Attachment(attachment.filename, kind, await attachment.read()))
        return files

    async def _reply(
        self, message: discord.Message, text: str, *, view: discord.ui.View | None = None
    ) -> discord.Message | None:
        """Reply with ``text`` split for Discord (``view`` under the first message); a failed send is
        logged, never raised."""

        async def first(chunk: str, files: list[discord.File]) -> discord.Message:
            return await message.reply(
                chunk,
                files=files or discord.utils.MISSING,
                view=view if view is not None else discord.utils.MISSING,
                mention_author=False,
            )

        async def more(chunk: str, files: list[discord.File]) -> discord.Message:
            return await message.channel.send(chunk, files=files or discord.utils.MISSING)

        try:
            return await send_text(text, first, more)
        except discord.HTTPException:
            log.warning("could not reply in channel %s", message.channel.id, exc_info=True)
            return None
