"""Voice: join and leave voice channels, hear voice messages, speak answers."""

from __future__ import annotations

import logging
from typing import Any

from discord.ext import commands

from teachbot.errors import UserError
from teachbot.transports.catalogue import BY_NAME, Privilege
from teachbot.transports.discord.bot import requires
from teachbot.transports.discord.cogs.base import BaseCog

log = logging.getLogger(__name__)


class VoiceCog(BaseCog):
    """Voice channel presence; speech itself comes from the app's speech service."""

    @commands.hybrid_command(name="join", description=BY_NAME["join"].help)
    @commands.guild_only()
    @requires(Privilege.MEMBER)
    async def join(self, ctx: commands.Context[Any]) -> None:
        voice = getattr(ctx.author, "voice", None)
        if voice is None or voice.channel is None:
            raise UserError("Join a voice channel first, then call me.")
        await ctx.send(await self.bot.join_voice(voice.channel))

    @commands.hybrid_command(name="leave", description=BY_NAME["leave"].help)
    @commands.guild_only()
    @requires(Privilege.MEMBER)
    async def leave(self, ctx: commands.Context[Any]) -> None:
        assert ctx.guild is not None
        await ctx.send(await self.bot.leave_voice(ctx.guild))
