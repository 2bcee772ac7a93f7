"""Buttons under a low-confidence answer: the likeliest answers, for a trainer to pick the right one.

Interactive teaching on Discord, as the terminal's ``interactive`` mode offers it: a trainer's click
teaches the chosen answer for the question at once (the same path as their ``!correct``) and edits the
answer to it; anyone else's click is refused privately. The buttons go away when they expire.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import discord

from teachbot.answering.knowledge import Candidate
from teachbot.answering.protocols import Answer
from teachbot.errors import UserError
from teachbot.transports import wording
from teachbot.transports.catalogue import Door, Privilege

if TYPE_CHECKING:
    from teachbot.answering.chat import Origin
    from teachbot.transports.discord.bot import TeachBot

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 900.0
LABEL_CHARS = 80  # Discord's limit for a button label


def wants_buttons(answer: Answer, threshold: float) -> bool:
    """Whether an answer is unsure enough to offer trainers the alternatives (the local model's only)."""
    return answer.backend == "local" and (answer.is_fallback or answer.confidence < threshold)


async def candidate_view(bot: TeachBot, where: Origin, question: str, answer: Answer) -> CandidateView | None:
    """Buttons for a low-confidence ``answer`` to ``question``, or None when it is sure or nothing is likely."""
    if not wants_buttons(answer, bot.app.settings.confidence_threshold):
        return None
    try:
        choices = await bot.door.handlers.candidates(where.scope, question, answer)
    except Exception:  # the buttons are a help: never cost the answer
        log.exception("could not find candidate answers")
        return None
    return CandidateView(bot, choices) if choices else None


class CandidateView(discord.ui.View):
    """One button per candidate answer; ``message`` is set once the answer is sent (to expire cleanly)."""

    def __init__(self, bot: TeachBot, choices: Sequence[Candidate], *, timeout: float | None = None) -> None:
        super().__init__(timeout=TIMEOUT_SECONDS if timeout is None else timeout)
        self.bot = bot
        self.message: discord.Message | None = None
        for number, choice in enumerate(choices):
            button: discord.ui.Button[CandidateView] = discord.ui.Button(
                label=wording.candidate_button(choice, LABEL_CHARS),
                style=discord.ButtonStyle.secondary,
                custom_id=f"teach:{number}",
            )
            button.callback = self._teach(choice.answer)  # type: ignore[method-assign]
            self.add_item(button)

    def _teach(self, answer: str) -> Any:
        async def callback(interaction: discord.Interaction) -> None:
            from teachbot.transports.discord.commands import origin_of
            from teachbot.transports.handlers import Call

            privilege = await self.bot.privilege(interaction.user)
            if privilege < Privilege.TRAINER:
                await _say(interaction, "Only trainers can teach with these buttons.")
                return
            origin = origin_of(interaction.user, interaction.channel, interaction.guild)
            answered = str(interaction.message.id) if interaction.message is not None else None
            call = Call(origin, Door.DISCORD, privilege, trusted=True, replied_to=answered)
            handlers = self.bot.door.handlers
            try:
                await handlers.correct(call, answer)
            except UserError as exc:
                await _say(interaction, wording.user_error(exc, handlers.prefix))
                return
            except Exception:
                log.exception("teaching button failed")
                await _say(interaction, wording.GENERIC_ERROR)
                return
            self.stop()
            content = wording.taught_with_button(answer, interaction.user.display_name)
            try:
                await interaction.response.edit_message(content=content, view=None)
            except discord.HTTPException:
                log.warning("could not edit a taught answer", exc_info=True)

        return callback

    async def on_timeout(self) -> None:
        """Take the buttons away: a click on an expired one would fail."""
        if self.message is None:
            return
        try:
            await self.message.edit(view=None)
        except discord.HTTPException:
            log.debug("could not remove expired teaching buttons", exc_info=True)


async def _say(interaction: discord.Interaction, text: str) -> None:
    """Answer a click privately (only the clicker sees it)."""
    try:
        await interaction.response.send_message(text, ephemeral=True)
    except discord.HTTPException:
        log.warning("could not answer a teaching button", exc_info=True)
