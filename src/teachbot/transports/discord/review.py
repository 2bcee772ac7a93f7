"""Approve / reject buttons under the review list; only trainers may press them."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import discord

from teachbot.errors import UserError
from teachbot.transports import wording
from teachbot.transports.catalogue import Door, Privilege

if TYPE_CHECKING:
    from teachbot.transports.discord.commands import CommandDoor

log = logging.getLogger(__name__)

REVIEW_BUTTONS = 5
TIMEOUT_SECONDS = 900


class ReviewView(discord.ui.View):
    """Two buttons per pending item (the first ``REVIEW_BUTTONS``): approve and reject."""

    def __init__(self, door: CommandDoor, item_ids: tuple[str, ...]) -> None:
        super().__init__(timeout=TIMEOUT_SECONDS)
        self.door = door
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
            from teachbot.transports.discord.commands import origin_of
            from teachbot.transports.handlers import Call

            bot = self.door.bot
            privilege = await bot.privilege(interaction.user)
            if privilege < Privilege.TRAINER:
                await interaction.response.send_message("Only trainers can review.", ephemeral=True)
                return
            origin = origin_of(interaction.user, interaction.channel, interaction.guild)
            call = Call(origin, Door.DISCORD, privilege, trusted=True)
            handlers = self.door.handlers
            try:
                reply = await (handlers.approve if approve else handlers.reject)(call, item_id)
                text = reply.text
            except UserError as exc:
                text = wording.user_error(exc, handlers.prefix)
            except Exception:
                log.exception("review button failed")
                text = wording.GENERIC_ERROR
            try:
                await interaction.response.send_message(text, ephemeral=False)
            except discord.HTTPException:
                log.warning("could not answer a review button", exc_info=True)

        return callback
