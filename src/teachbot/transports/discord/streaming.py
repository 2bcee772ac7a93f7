"""Show an answer while the model writes it: one Discord message edited about once a second."""

from __future__ import annotations

import logging
import time

import discord

from teachbot.transports.discord.rendering import MESSAGE_LIMIT, split_message

log = logging.getLogger(__name__)

EDIT_INTERVAL = 1.0
WRITING = " ▌"
PLACEHOLDER = "…"


class StreamingReply:
    """Posts a placeholder reply, edits it as text arrives (throttled), and marks it complete."""

    def __init__(self, source: discord.Message, *, interval: float = EDIT_INTERVAL) -> None:
        self.source = source
        self.interval = interval
        self.message: discord.Message | None = None
        self._last_edit = 0.0
        self._shown = ""

    async def start(self) -> discord.Message:
        self.message = await self.source.reply(PLACEHOLDER, mention_author=False)
        self._last_edit = time.monotonic()
        return self.message

    async def update(self, text: str) -> None:
        """Called with the whole text so far; edits only when ``interval`` has passed."""
        if self.message is None or time.monotonic() - self._last_edit < self.interval:
            return
        shown = _fit(text) + WRITING
        if shown == self._shown:
            return
        self._last_edit = time.monotonic()
        self._shown = shown
        try:
            await self.message.edit(content=shown)
        except discord.HTTPException:
            log.debug("streaming edit failed", exc_info=True)

    async def finish(self, text: str) -> None:
        """The final text without the writing mark; what does not fit follows as more messages."""
        if self.message is None:
            return
        chunks = split_message(text)
        try:
            await self.message.edit(content=chunks[0])
            for chunk in chunks[1:]:
                await self.source.channel.send(chunk)
        except discord.HTTPException:
            log.warning("could not finish a streamed reply", exc_info=True)


def _fit(text: str) -> str:
    limit = MESSAGE_LIMIT - len(WRITING) - 1
    return text if len(text) <= limit else "…" + text[-(limit - 1) :]
