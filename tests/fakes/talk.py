"""Types and helpers the teachbot bot tests share (a module of its own: two conftest modules exist)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fakes.discord_models import EPHEMERAL_FLAG, FakeChannel, FakeUser, Upload
from fakes.discord_server import FakeDiscord, InteractionResponse

if TYPE_CHECKING:
    from teachbot.transports.discord.bot import TeachBot

RunTeachbot = Callable[..., AbstractAsyncContextManager["TeachBot"]]
MakeTeachbot = Callable[..., Awaitable["TeachBot"]]


@dataclass
class Said:
    """What the bot said back: the visible message, and for a slash command its interaction response."""

    message: dict[str, Any]
    response: InteractionResponse | None = None

    @property
    def content(self) -> str:
        return str(self.message.get("content") or "")

    @property
    def embed_text(self) -> str:
        """The text of the message's embeds: titles, descriptions, field names and values."""
        parts: list[str] = []
        for embed in self.message.get("embeds") or []:
            parts += [embed.get("title") or "", embed.get("description") or ""]
            for field in embed.get("fields") or []:
                parts += [field.get("name") or "", field.get("value") or ""]
        return "\n".join(p for p in parts if p)

    @property
    def files(self) -> dict[str, bytes]:
        return {a["filename"]: a["data"] for a in self.message.get("attachments") or []}

    @property
    def ephemeral(self) -> bool:
        return bool(int(self.message.get("flags") or 0) & EPHEMERAL_FLAG)


class Talk:
    """Run one command as a prefix message or as a slash command and take the bot's first visible answer."""

    def __init__(self, fake: FakeDiscord) -> None:
        self.fake = fake

    async def prefix(
        self,
        name: str,
        args: str = "",
        *,
        user: FakeUser,
        channel: FakeChannel | None = None,
        attachments: Sequence[Upload] = (),
        reference: dict[str, Any] | None = None,
        timeout: float = 10,
    ) -> Said:
        channel = channel or self.fake.text
        await self.fake.send_message(
            channel, user, f"!{name} {args}".strip(), attachments=attachments, reference=reference
        )
        return Said(await self.fake.wait_for_bot_message(channel, timeout=timeout))

    async def slash(
        self,
        name: str,
        options: Mapping[str, Any] | None = None,
        *,
        user: FakeUser,
        channel: FakeChannel | None = None,
        timeout: float = 10,
    ) -> Said:
        channel = channel or self.fake.text
        interaction = await self.fake.slash(name, options, user=user, channel=channel)
        response = await self.fake.wait_for_interaction_response(interaction, timeout=timeout)
        return Said(await self.fake.wait_for_bot_message(channel, timeout=timeout), response)

    async def run(
        self, mode: str, name: str, args: str = "", options: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> Said:
        """``mode`` "prefix" sends ``!name args`` (attachments, reference allowed); "slash" sends ``options``."""
        if mode == "prefix":
            return await self.prefix(name, args, **kwargs)
        kwargs.pop("attachments", None)
        kwargs.pop("reference", None)
        return await self.slash(name, options, **kwargs)

    async def ask(
        self, text: str, *, user: FakeUser, channel: FakeChannel | None = None, timeout: float = 5, **kwargs: Any
    ) -> Said:
        """A chat message; the bot's next message in that channel must be the reply to it."""
        channel = channel or self.fake.text2
        sent = await self.fake.send_message(channel, user, text, **kwargs)
        said = Said(await self.fake.wait_for_bot_message(channel, timeout=timeout))
        reference = said.message.get("message_reference") or {}
        assert reference.get("message_id") == sent["id"], f"expected a reply to {text!r}, got {said.content!r}"
        return said
