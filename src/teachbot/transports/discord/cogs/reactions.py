"""👍 / 👎 reactions on the bot's answers become feedback on those answers."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord.ext import commands

from teachbot.answering.chat import Origin
from teachbot.answering.protocols import scope_for
from teachbot.transports.catalogue import Door
from teachbot.transports.handlers import Call

if TYPE_CHECKING:
    from teachbot.transports.discord.bot import TeachBot

log = logging.getLogger(__name__)

THUMBS_UP = "👍"
THUMBS_DOWN = "👎"


class ReactionsCog(commands.Cog):
    """Stores a member's 👍 / 👎 on an answer (a trusted 👎 stops that answer at once)."""

    def __init__(self, bot: TeachBot) -> None:
        self.bot = bot

    @commands.Cog.listener()
    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        emoji = str(payload.emoji)
        if emoji not in (THUMBS_UP, THUMBS_DOWN) or (self.bot.user and payload.user_id == self.bot.user.id):
            return
        try:
            await self._store(payload, good=emoji == THUMBS_UP)
        except Exception:
            log.exception("storing a reaction failed")

    async def _store(self, payload: discord.RawReactionActionEvent, *, good: bool) -> None:
        bot = self.bot
        target = await bot.app.chat.find_answer(scope_for(payload.guild_id), external_id=str(payload.message_id))
        if target is None:
            return
        user = payload.member or bot.get_user(payload.user_id)
        if user is None:
            try:
                user = await bot.fetch_user(payload.user_id)
            except discord.HTTPException:
                return
        if user.bot or bot.permissions.refusal(user, bot.get_channel(payload.channel_id)):
            return
        origin = Origin(scope_for(payload.guild_id), str(payload.channel_id), str(user.id), user.name)
        call = Call(origin, Door.DISCORD, await bot.privilege(user), trusted=await bot.trusted(user))
        await bot.door.handlers.rate(call, target, good=good)
