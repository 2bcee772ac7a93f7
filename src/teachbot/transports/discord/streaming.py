"""One Discord message edited while work goes on (a streamed answer, a training run's progress).

Discord rate-limits edits, so the text is shown at most about once a second; the final text always
lands, and what does not fit one message follows as more messages.
"""

from __future__ import annotations

import asyncio
import logging
import time

import discord

from teachbot.transports.discord.rendering import MESSAGE_LIMIT, split_message

log = logging.getLogger(__name__)

EDIT_INTERVAL = 1.0
WRITING = " ▌"
PLACEHOLDER = "…"


class ThrottledEdit:
    """Edits ``message`` with the newest text offered, at most once per ``interval``; ``finish`` settles it."""

    def __init__(self, message: discord.Message, *, interval: float = EDIT_INTERVAL) -> None:
        self.message = message
        self.interval = interval
        self._last_edit = time.monotonic()
        self._shown = ""
        self._pending: asyncio.Task[None] | None = None

    def offer(self, text: str) -> None:
        """Show ``text`` if the last edit is old enough (never waits; an edit runs in the background)."""
        shown = _fit(text)
        if shown == self._shown or time.monotonic() - self._last_edit < self.interval:
            return
        if self._pending is not None and not self._pending.done():
            return  # the previous edit is still on its way
        self._last_edit = time.monotonic()
        self._shown = shown
        self._pending = asyncio.get_running_loop().create_task(self._edit(shown))

    async def finish(self, text: str) -> None:
        """The final text; what does not fit follows as more messages in the same channel."""
        if self._pending is not None:
            await self._pending
        chunks = split_message(text)
        await self._edit(chunks[0])
        for chunk in chunks[1:]:
            try:
                await self.message.channel.send(chunk)
            except discord.HTTPException:
                log.warning("could not send the rest of an edited reply", exc_info=True)
                return

    async def _edit(self, text: str) -> None:
        try:
            await self.message.edit(content=text)
        except discord.HTTPException:  # a deleted message or a rate limit must not cost the answer
            log.debug("message edit failed", exc_info=True)


class StreamingReply:
    """An answer shown while the model writes it: a placeholder reply, then throttled edits."""

    def __init__(self, source: discord.Message, *, interval: float = EDIT_INTERVAL) -> None:
        self.source = source
        self.interval = interval
        self._edit: ThrottledEdit | None = None

    async def start(self) -> discord.Message:
        message = await self.source.reply(PLACEHOLDER, mention_author=False)
        self._edit = ThrottledEdit(message, interval=self.interval)
        return message

    async def update(self, text: str) -> None:
        """Called with the whole text so far."""
        if self._edit is not None:
            self._edit.offer(text + WRITING)

    async def finish(self, text: str) -> None:
        if self._edit is not None:
            await self._edit.finish(text)


def progress_bar(title: str, stage: str, fraction: float) -> str:
    filled = int(fraction * 10)
    return f"{title}… {'█' * filled}{'░' * (10 - filled)} {fraction:.0%} — {stage}"


def _fit(text: str) -> str:
    limit = MESSAGE_LIMIT - 1
    return text if len(text) <= limit else "…" + text[-(limit - 1) :]
