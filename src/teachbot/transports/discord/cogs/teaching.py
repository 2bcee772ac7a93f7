"""Teaching: corrections, feedback (commands and 👍/👎 reactions), review with buttons, forget, undo."""

from __future__ import annotations

import logging
from typing import Any

import discord
from discord.ext import commands

from teachbot.transports.actions import split_leading_id
from teachbot.transports.catalogue import BY_NAME, Privilege
from teachbot.transports.discord.bot import requires
from teachbot.transports.discord.cogs.base import BaseCog, where_of

log = logging.getLogger(__name__)

THUMBS_UP = "👍"
THUMBS_DOWN = "👎"
REVIEW_BUTTONS = 5


class ReviewView(discord.ui.View):
    """Approve / reject buttons for pending review items; only trainers may press them."""

    def __init__(self, cog: TeachingCog, scope: str, item_ids: list[str]) -> None:
        super().__init__(timeout=900)
        self.cog = cog
        self.scope = scope
        for item_id in item_ids[:REVIEW_BUTTONS]:
            for approve in (True, False):
                button: discord.ui.Button[ReviewView] = discord.ui.Button(
                    label=f"{'✔' if approve else '✖'} {item_id}",
                    style=discord.ButtonStyle.success if approve else discord.ButtonStyle.danger,
                    custom_id=f"review:{'approve' if approve else 'reject'}:{item_id}",
                )
                button.callback = self._decide(item_id, approve)  # type: ignore[method-assign]
                self.add_item(button)

    def _decide(self, item_id: str, approve: bool) -> Any:
        async def callback(interaction: discord.Interaction) -> None:
            bot = self.cog.bot
            if await bot.privilege(interaction.user) < Privilege.TRAINER:
                await interaction.response.send_message("Only trainers can review.", ephemeral=True)
                return
            where = where_of(interaction.user, interaction.channel, interaction.guild)
            try:
                text = await self.cog.actions.review(where, item_id, approve=approve)
            except Exception as exc:  # a UserError's text, anything else hidden
                from teachbot.errors import UserError

                if not isinstance(exc, UserError):
                    log.exception("review button failed")
                text = str(exc) if isinstance(exc, UserError) else "Something went wrong; it has been logged."
            await interaction.response.send_message(text, ephemeral=False)

        return callback


class TeachingCog(BaseCog):
    """Commands and events that teach the bot."""

    @commands.hybrid_command(name="correct", description=BY_NAME["correct"].help)
    @requires(Privilege.MEMBER)
    async def correct(self, ctx: commands.Context[Any], *, answer: str) -> None:
        message_id, better = split_leading_id(answer)
        where = self.where(ctx)
        target = await self.referenced_answer(ctx, message_id)
        replied = ctx.interaction is None and ctx.message.reference is not None
        if target is None and message_id is None and not replied:  # neither a reply nor an id: the last answer here
            target = await self.app.chat.last_answer(where.scope, where.channel)
        text = await self.actions.correct(where, target, better, trusted=await self.bot.trusted(ctx.author))
        await self.send(ctx, text)

    @commands.hybrid_command(name="feedback", description=BY_NAME["feedback"].help)
    @requires(Privilege.MEMBER)
    async def feedback(self, ctx: commands.Context[Any], *, text: str) -> None:
        trusted = await self.bot.trusted(ctx.author)
        await self.send(ctx, await self.actions.feedback(self.where(ctx), text, trusted=trusted))

    @commands.hybrid_command(name="undo", description=BY_NAME["undo"].help)
    @requires(Privilege.MEMBER)
    async def undo(self, ctx: commands.Context[Any]) -> None:
        await self.send(ctx, await self.actions.undo(self.where(ctx)))

    @commands.hybrid_command(name="forget", description=BY_NAME["forget"].help)
    @requires(Privilege.TRAINER)
    async def forget(self, ctx: commands.Context[Any], example_id: str = "") -> None:
        target = await self.referenced_answer(ctx)
        await self.send(ctx, await self.actions.forget(self.where(ctx), target, example_id))

    @commands.hybrid_command(name="review", description=BY_NAME["review"].help)
    @requires(Privilege.TRAINER)
    async def review(self, ctx: commands.Context[Any]) -> None:
        scope = self.where(ctx).scope
        items = await self.app.teaching.pending(scope)
        text = await self.actions.review_list(scope)
        if not items:
            await self.send(ctx, text)
            return
        await ctx.send(text[:1900], view=ReviewView(self, scope, [i.item_id for i in items]))

    @commands.hybrid_command(name="approve", description=BY_NAME["approve"].help)
    @requires(Privilege.TRAINER)
    async def approve(self, ctx: commands.Context[Any], item_id: str) -> None:
        await self.send(ctx, await self.actions.review(self.where(ctx), item_id, approve=True))

    @commands.hybrid_command(name="reject", description=BY_NAME["reject"].help)
    @requires(Privilege.TRAINER)
    async def reject(self, ctx: commands.Context[Any], item_id: str) -> None:
        await self.send(ctx, await self.actions.review(self.where(ctx), item_id, approve=False))

    @commands.Cog.listener()
    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        """👍 / 👎 on one of the bot's answers is stored as feedback on that answer."""
        emoji = str(payload.emoji)
        if emoji not in (THUMBS_UP, THUMBS_DOWN) or (self.bot.user and payload.user_id == self.bot.user.id):
            return
        guild = self.bot.get_guild(payload.guild_id) if payload.guild_id else None
        scope = "global" if payload.guild_id is None else str(payload.guild_id)
        target = await self.app.chat.find_answer(scope, external_id=str(payload.message_id))
        if target is None:
            return
        user = payload.member or self.bot.get_user(payload.user_id)
        if user is None:
            try:
                user = await self.bot.fetch_user(payload.user_id)
            except discord.HTTPException:
                return
        if user.bot or self.bot.permissions.refusal(user, self.bot.get_channel(payload.channel_id)):
            return
        where = where_of(user, discord.Object(payload.channel_id), guild)
        try:
            await self.actions.rate(where, target, good=emoji == THUMBS_UP, trusted=await self.bot.trusted(user))
        except Exception:
            log.exception("storing a reaction failed")
