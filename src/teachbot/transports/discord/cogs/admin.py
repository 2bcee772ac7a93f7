"""Greeting, help, the guide, archives and file downloads."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import discord
from discord.ext import commands

from teachbot.transports.catalogue import BY_NAME, Privilege, help_text, instruction_text
from teachbot.transports.discord.bot import requires
from teachbot.transports.discord.cogs.base import BaseCog
from teachbot.transports.discord.cogs.training import heavy_cooldown


class AdminCog(BaseCog):
    """Everyday commands that are not about teaching."""

    @commands.hybrid_command(name="hi", description=BY_NAME["hi"].help)
    @requires(Privilege.MEMBER)
    async def hi(self, ctx: commands.Context[Any]) -> None:
        await ctx.send("HI!")

    @commands.hybrid_command(name="help", description=BY_NAME["help"].help)
    @requires(Privilege.MEMBER)
    async def help(self, ctx: commands.Context[Any]) -> None:
        privilege = await self.bot.privilege(ctx.author)
        await self.send(ctx, help_text(self.app.settings.command_prefix, console=False, privilege=privilege))

    @commands.hybrid_command(name="instruction", description=BY_NAME["instruction"].help)
    @requires(Privilege.MEMBER)
    async def instruction(self, ctx: commands.Context[Any]) -> None:
        await self.send(ctx, await asyncio.to_thread(instruction_text, self.app.settings.instruction_file))

    @commands.hybrid_command(name="archive", description=BY_NAME["archive"].help)
    @requires(Privilege.TRAINER)
    @commands.dynamic_cooldown(heavy_cooldown, commands.BucketType.user)
    async def archive(self, ctx: commands.Context[Any], what: str = "all") -> None:
        await ctx.defer()
        await self.send(ctx, await self.actions.archive(self.where(ctx), what))

    @commands.hybrid_command(name="getfile", description=BY_NAME["getfile"].help)
    @requires(Privilege.TRAINER)
    async def getfile(self, ctx: commands.Context[Any], name: str) -> None:
        path = await self.actions.file_to_send(name)
        data = await asyncio.to_thread(path.read_bytes)  # bounded by max_send_bytes; no handle left open
        await ctx.send(f"`{path.name}`", file=discord.File(io.BytesIO(data), filename=path.name))
