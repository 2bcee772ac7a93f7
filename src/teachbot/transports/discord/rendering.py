"""Fit text into Discord messages: split under 2000 characters, never inside a code block."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager

import discord

log = logging.getLogger(__name__)

MESSAGE_LIMIT = 2000
MAX_MESSAGES = 3
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def _pieces(text: str, limit: int) -> list[str]:
    """Split ``text`` at line ends, then sentence ends, then spaces; hard cut only as a last resort."""
    if len(text) <= limit:
        return [text]
    for separator in ("\n", None, " "):
        parts = text.split(separator) if separator else _SENTENCE_END.split(text)
        joiner = separator if separator else " "
        if len(parts) > 1:
            chunks: list[str] = []
            current = ""
            for part in parts:
                candidate = f"{current}{joiner}{part}" if current else part
                if len(candidate) <= limit:
                    current = candidate
                    continue
                if current:
                    chunks.append(current)
                if len(part) > limit:
                    chunks.extend(_pieces(part, limit))
                    current = ""
                else:
                    current = part
            if current:
                chunks.append(current)
            return chunks
    return [text[i : i + limit] for i in range(0, len(text), limit)]


def split_message(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Split into messages of at most ``limit`` characters; a code block cut in two is closed and reopened."""
    text = text.strip() or "…"
    budget = limit - 12  # room to close and reopen a code fence
    chunks: list[str] = []
    fence: str | None = None  # the opening fence line of a block that continues into the next chunk
    for piece in _pieces(text, budget):
        body = f"{fence}\n{piece}" if fence else piece
        opened = None
        for line in body.split("\n"):
            if line.startswith("```"):
                opened = None if opened else line
        if opened:
            body += "\n```"
        fence = opened
        chunks.append(body)
    return chunks


def as_file(text: str, filename: str = "reply.txt") -> discord.File:
    return discord.File(io.BytesIO(text.encode("utf-8")), filename=filename)


def plan_reply(text: str) -> tuple[list[str], discord.File | None]:
    """Messages to send, plus a file when the text would take more than a few messages."""
    chunks = split_message(text)
    if len(chunks) <= MAX_MESSAGES:
        return chunks, None
    preview = chunks[0][: MESSAGE_LIMIT - 60].rstrip()
    return [f"{preview}\n… (the whole reply is attached)"], as_file(text)


Send = Callable[[str, list[discord.File]], Awaitable[discord.Message | None]]


async def send_text(text: str, first: Send, more: Send, files: Sequence[discord.File] = ()) -> discord.Message | None:
    """Send ``text`` as ``plan_reply`` splits it: ``first`` sends the first message (a reply), ``more`` the
    rest; files go with the last message. Returns the first message sent."""
    chunks, attachment = plan_reply(text)
    extra = ([attachment] if attachment else []) + list(files)
    sent_first: discord.Message | None = None
    for index, chunk in enumerate(chunks):
        last = index == len(chunks) - 1
        sent = await (first if index == 0 else more)(chunk, extra if last else [])
        sent_first = sent_first or sent
    return sent_first


@asynccontextmanager
async def typing_if_possible(channel: discord.abc.Messageable, *, when: bool = True) -> AsyncIterator[None]:
    """Show "typing…" while the body runs (unless ``when`` is false), if Discord lets us: the indicator is
    cosmetic, so a refused or failed one (403, 404, a rate limit) never costs the user their answer."""
    if not when:
        yield
        return
    typing = channel.typing()
    try:
        await typing.__aenter__()
    except discord.HTTPException:
        log.debug("typing indicator refused", exc_info=True)
        yield
        return
    try:
        yield
    finally:
        await typing.__aexit__(None, None, None)
