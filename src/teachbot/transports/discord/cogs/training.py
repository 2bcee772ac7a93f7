"""Training and testing: datasets in, model versions out, reports back."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import time
from typing import Any

import discord
from discord.ext import commands

from teachbot.errors import UserError
from teachbot.training.charts import render_chart
from teachbot.transports.catalogue import BY_NAME, Privilege
from teachbot.transports.discord.bot import requires
from teachbot.transports.discord.cogs.base import BaseCog

log = logging.getLogger(__name__)

STATUS_EDIT_SECONDS = 1.0


def heavy_cooldown(ctx: commands.Context[Any]) -> commands.Cooldown | None:
    seconds = ctx.bot.settings.heavy_cooldown_seconds
    return commands.Cooldown(1, seconds) if seconds else None


class StatusMessage:
    """One message edited as a run advances, at most about once a second."""

    def __init__(self, message: discord.Message) -> None:
        self.message = message
        self._last = 0.0
        self._pending: asyncio.Task[None] | None = None

    def update(self, stage: str, fraction: float) -> None:
        now = time.monotonic()
        if fraction < 1.0 and now - self._last < STATUS_EDIT_SECONDS:
            return
        self._last = now
        bar = "█" * int(fraction * 10) + "░" * (10 - int(fraction * 10))
        self._pending = asyncio.create_task(self._edit(f"Training… {bar} {fraction:.0%} — {stage}"))

    async def _edit(self, text: str) -> None:
        try:
            await self.message.edit(content=text)
        except discord.HTTPException:
            log.debug("status edit failed", exc_info=True)

    async def finish(self, text: str) -> None:
        if self._pending is not None:
            await self._pending
        await self._edit(text[:1900])


class TrainingCog(BaseCog):
    """Trainer commands: train, test, datasets, select_dataset, models."""

    @commands.hybrid_command(name="train", description=BY_NAME["train"].help)
    @requires(Privilege.TRAINER)
    @commands.dynamic_cooldown(heavy_cooldown, commands.BucketType.user)
    async def train(
        self, ctx: commands.Context[Any], file: discord.Attachment | None = None, name: str | None = None
    ) -> None:
        upload = await self.upload_of(file or (ctx.message.attachments[0] if ctx.message.attachments else None))
        status = StatusMessage(await ctx.send("Training… starting"))
        try:
            text = await self.actions.train(self.where(ctx), upload, name=name, progress=status.update)
        except UserError as exc:
            await status.finish(f"Training stopped: {exc}")
            return
        except Exception:
            log.exception("training failed")
            await status.finish("Training failed on my side; it has been logged. The active model is unchanged.")
            return
        await status.finish(text)

    @commands.hybrid_command(name="test", description=BY_NAME["test"].help)
    @requires(Privilege.TRAINER)
    @commands.dynamic_cooldown(heavy_cooldown, commands.BucketType.user)
    async def test(self, ctx: commands.Context[Any], file: discord.Attachment | None = None, *, data: str = "") -> None:
        upload = await self.upload_of(file or (ctx.message.attachments[0] if ctx.message.attachments else None))
        await ctx.defer()
        summary, report = await self.actions.test(self.where(ctx), upload, data)
        if report is None:
            await self.send(ctx, summary)
            return
        payload = json.dumps(report.to_json(), ensure_ascii=False, indent=2).encode()
        chart = await asyncio.to_thread(render_chart, report)
        await self.send(
            ctx,
            summary,
            files=[
                discord.File(io.BytesIO(payload), filename=f"test-{report.model_version}.json"),
                discord.File(io.BytesIO(chart), filename=f"test-{report.model_version}.png"),
            ],
        )

    @commands.hybrid_command(name="datasets", description=BY_NAME["datasets"].help)
    @requires(Privilege.TRAINER)
    async def datasets(self, ctx: commands.Context[Any], *, action: str = "list") -> None:
        await self.send(ctx, await self.actions.datasets(self.where(ctx), action))

    @commands.hybrid_command(name="validate", description=BY_NAME["validate"].help)
    @requires(Privilege.TRAINER)
    async def validate(self, ctx: commands.Context[Any], file: discord.Attachment | None = None) -> None:
        upload = await self.upload_of(file or (ctx.message.attachments[0] if ctx.message.attachments else None))
        if upload is None:
            raise UserError("Attach the dataset file to check.")
        report = await self.actions.validate(upload)
        payload = json.dumps(report.to_json(), ensure_ascii=False, indent=2).encode()
        await self.send(ctx, report.to_text(), files=[discord.File(io.BytesIO(payload), filename="validation.json")])

    @commands.hybrid_command(name="select_dataset", description=BY_NAME["select_dataset"].help)
    @requires(Privilege.TRAINER)
    async def select_dataset(self, ctx: commands.Context[Any], name: str, use: str = "positive") -> None:
        await self.send(ctx, await self.actions.select_dataset(self.where(ctx).scope, f"{name} {use}"))

    @commands.hybrid_command(name="jobs", description=BY_NAME["jobs"].help)
    @requires(Privilege.TRAINER)
    async def jobs(self, ctx: commands.Context[Any], action: str = "", run_id: str = "") -> None:
        await self.send(ctx, await self.actions.jobs(self.where(ctx), f"{action} {run_id}".strip()))

    @commands.hybrid_command(name="models", description=BY_NAME["models"].help)
    @requires(Privilege.TRAINER)
    async def models(self, ctx: commands.Context[Any], action: str = "", version: str = "") -> None:
        await self.send(ctx, await self.actions.models(self.where(ctx), f"{action} {version}".strip()))
