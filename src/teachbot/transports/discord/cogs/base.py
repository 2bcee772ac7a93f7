"""What every cog shares: the bot's services, where a context is, and sending long replies."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import discord
from discord.ext import commands

from teachbot.answering.chat import StoredAnswer, Where
from teachbot.errors import UserError
from teachbot.transports.actions import Actions, Upload
from teachbot.transports.discord.rendering import plan_reply

if TYPE_CHECKING:
    from teachbot.transports.discord.bot import TeachBot


def where_of(author: discord.abc.User, channel: Any, guild: discord.Guild | None) -> Where:
    scope = "global" if guild is None else str(guild.id)
    return Where(scope=scope, channel=str(getattr(channel, "id", "dm")), author=str(author.id), author_name=author.name)


class BaseCog(commands.Cog):
    """Holds the bot and the shared command actions."""

    def __init__(self, bot: TeachBot) -> None:
        self.bot = bot
        self.app = bot.app
        self.actions = Actions(bot.app)

    def where(self, ctx: commands.Context[Any]) -> Where:
        return where_of(ctx.author, ctx.channel, ctx.guild)

    async def send(
        self, ctx: commands.Context[Any], text: str, *, files: list[discord.File] | None = None, ephemeral: bool = False
    ) -> discord.Message:
        """Reply with ``text`` split for Discord (or attached when long); returns the first message."""
        chunks, attachment = plan_reply(text)
        files = ([attachment] if attachment else []) + (files or [])
        first: discord.Message | None = None
        for index, chunk in enumerate(chunks):
            last = index == len(chunks) - 1
            sent = await ctx.send(
                chunk,
                files=files if last and files else discord.utils.MISSING,
                ephemeral=ephemeral,
                reference=ctx.message if index == 0 and ctx.interaction is None else None,  # type: ignore[arg-type]
                mention_author=False,
            )
            first = first or sent
        assert first is not None
        return first

    async def referenced_answer(self, ctx: commands.Context[Any], message_id: int | None = None) -> StoredAnswer | None:
        """The bot answer a command is about: the message replied to, or one given by id."""
        scope = self.where(ctx).scope
        reference = ctx.message.reference if ctx.interaction is None else None
        if message_id is None and reference is not None and reference.message_id is not None:
            message_id = reference.message_id
        if message_id is None:
            return None
        return await self.app.chat.find_answer(scope, external_id=str(message_id))

    async def upload_of(self, attachment: discord.Attachment | None) -> Upload | None:
        """An attachment's bytes, refused before download when over the size limit."""
        if attachment is None:
            return None
        limit = self.app.settings.max_upload_bytes
        if attachment.size > limit:
            raise UserError(f"{attachment.filename} is {attachment.size:,} bytes; the limit is {limit:,}.")
        return Upload(attachment.filename, await attachment.read())
