"""Messages for the fake Discord: what users post, what the bot posts, edits, deletions, reactions.

Message payloads follow ``discord/types/message.py`` and what ``discord.Message.__init__`` reads;
reaction events carry the ``type`` field ``RawReactionActionEvent`` requires.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fakes.discord_models import EPHEMERAL_FLAG, FakeChannel, FakeGuild, FakeUser, RecordedFile, Upload, iso_now
from fakes.discord_rest import LOADING_FLAG, ApiError

if TYPE_CHECKING:
    from fakes.discord_server import ChannelLike, MessageLike

__all__ = ["BotReaction", "EditRecord", "MessageMixin"]

_MENTION = re.compile(r"<@!?(\d+)>")
_ROLE_MENTION = re.compile(r"<@&(\d+)>")


@dataclass
class EditRecord:
    """A change the bot made to a message (PATCH, interaction update, or @original edit)."""

    message_id: int
    channel_id: int
    payload: dict[str, Any]
    files: list[RecordedFile]
    message: dict[str, Any]


@dataclass
class BotReaction:
    """A reaction the bot added or removed."""

    channel_id: int
    message_id: int
    emoji: str
    added: bool


class MessageMixin:
    """The message half of ``FakeDiscord`` (its state and journals live on ``FakeDiscord``)."""

    # messages

    def _message_base(self, channel: FakeChannel, author: FakeUser, content: str, flags: int) -> dict[str, Any]:
        guild = self.guilds.get(channel.guild_id) if channel.guild_id else None
        mentioned = [self.users[int(i)] for i in _MENTION.findall(content) if int(i) in self.users]
        message: dict[str, Any] = {
            "id": str(self.ids.next()),
            "channel_id": str(channel.id),
            "author": author.payload(),
            "content": content,
            "timestamp": iso_now(),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [self._mention_payload(u, guild) for u in mentioned],
            "mention_roles": _ROLE_MENTION.findall(content),
            "attachments": [],
            "embeds": [],
            "components": [],
            "pinned": False,
            "type": 0,
            "flags": flags,
        }
        if guild is not None:
            message["guild_id"] = str(guild.id)
            if author.id in guild.members:
                message["member"] = guild.member_payload(author.id, with_user=False)
        return message

    def _mention_payload(self, user: FakeUser, guild: FakeGuild | None) -> dict[str, Any]:
        data = user.payload()
        if guild is not None and user.id in guild.members:
            data["member"] = guild.member_payload(user.id, with_user=False)
        return data

    def _attachment(self, filename: str, data: bytes, content_type: str, extra: Mapping[str, Any]) -> dict:
        attachment_id = self.ids.next()
        self.blobs[attachment_id] = (filename, content_type, data)
        url = f"{self.base_url}/attachments/{attachment_id}/{filename}"
        payload = {
            "id": str(attachment_id),
            "filename": filename,
            "size": len(data),
            "url": url,
            "proxy_url": url,
            "content_type": content_type,
            "flags": 0,
        }
        payload.update({k: v for k, v in extra.items() if v is not None})
        return payload

    def upload_payload(self, upload: Upload) -> dict[str, Any]:
        """Store a user's upload and return its attachment payload."""
        extra = {"duration_secs": upload.duration_secs, "waveform": upload.waveform}
        return self._attachment(upload.filename, upload.data, upload.guessed_content_type(), extra)

    def _uploads_from_bot(self, meta: Sequence[Mapping[str, Any]] | None, files: Sequence[RecordedFile]) -> list:
        by_index = {str(m.get("id")): m for m in meta or ()}
        result = []
        for file in files:
            index = file.field.removeprefix("files[").removesuffix("]")
            info = by_index.get(index, {})
            extra = {"description": info.get("description")}
            content_type = file.content_type or Upload(file.filename, b"").guessed_content_type()
            result.append(self._attachment(info.get("filename") or file.filename, file.data, content_type, extra))
        return result

    def _reference(self, message: dict[str, Any], ref: Mapping[str, Any]) -> None:
        referenced = self.messages.get(int(ref["message_id"])) if ref.get("message_id") else None
        if referenced is None and ref.get("fail_if_not_exists", True):
            raise ApiError(400, "Invalid Form Body (message_reference: Unknown message)", 50035)
        message["message_reference"] = {
            "type": ref.get("type", 0),
            "message_id": str(ref["message_id"]),
            "channel_id": str(ref.get("channel_id") or message["channel_id"]),
            **({"guild_id": message["guild_id"]} if "guild_id" in message else {}),
        }
        if referenced is not None:
            message["referenced_message"] = {k: v for k, v in referenced.items() if k != "referenced_message"}
            message["type"] = 19

    async def send_message(
        self,
        channel: ChannelLike,
        author: FakeUser,
        content: str = "",
        *,
        reference: MessageLike | None = None,
        attachments: Sequence[Upload] = (),
        flags: int = 0,
        mentions: Sequence[FakeUser] = (),
    ) -> dict[str, Any]:
        """A user posts a message (MESSAGE_CREATE); mentions also come from ``<@id>`` in ``content``."""
        target = self.channel(channel)
        message = self._message_base(target, author, content, flags)
        guild = self.guilds.get(target.guild_id) if target.guild_id else None
        known = {m["id"] for m in message["mentions"]}
        message["mentions"] += [self._mention_payload(u, guild) for u in mentions if str(u.id) not in known]
        message["attachments"] = [self.upload_payload(u) for u in attachments]
        if reference is not None:
            referenced = self.message(reference)
            self._reference(message, {"message_id": referenced["id"], "channel_id": referenced["channel_id"]})
        self.messages[int(message["id"])] = message
        await self.dispatch("MESSAGE_CREATE", message)
        return message

    async def create_bot_message(
        self,
        channel: FakeChannel,
        body: Mapping[str, Any],
        files: Sequence[RecordedFile],
        *,
        interaction: Any = None,
        extra_flags: int = 0,
        publish: bool = True,
    ) -> dict[str, Any]:
        """Store a message the bot posts (REST, interaction response or followup) and publish it."""
        message = self._message_base(
            channel, self.bot, body.get("content") or "", int(body.get("flags") or 0) | extra_flags
        )
        message.pop("member", None)
        message["tts"] = bool(body.get("tts"))
        message["embeds"] = list(body.get("embeds") or [])
        message["components"] = list(body.get("components") or [])
        message["attachments"] = self._uploads_from_bot(body.get("attachments"), files)
        if body.get("nonce") is not None:
            message["nonce"] = body["nonce"]
        if body.get("message_reference"):
            self._reference(message, body["message_reference"])
        if interaction is not None:
            message["webhook_id"] = message["application_id"] = str(self.application_id)
            message["type"] = 20 if interaction.type == 2 else 0
        self.messages[int(message["id"])] = message
        if publish:
            await self._publish(message)
        return message

    async def _publish(self, message: dict[str, Any]) -> None:
        snapshot = copy.deepcopy(message)
        for attachment in snapshot["attachments"]:
            attachment["data"] = self.blobs[int(attachment["id"])][2]
        self.bot_messages.add(snapshot)
        if self.echo_own_messages and not message["flags"] & EPHEMERAL_FLAG:
            await self.dispatch("MESSAGE_CREATE", self._with_member(message), echo=True)

    def _with_member(self, message: dict[str, Any]) -> dict[str, Any]:
        guild = self.guilds.get(int(message["guild_id"])) if "guild_id" in message else None
        if guild is not None and int(message["author"]["id"]) in guild.members and "webhook_id" not in message:
            return {**message, "member": guild.member_payload(int(message["author"]["id"]), with_user=False)}
        return message

    async def edit_message(
        self, message: dict[str, Any], body: Mapping[str, Any], files: Sequence[RecordedFile]
    ) -> dict[str, Any]:
        """Apply an edit; the first edit of a deferred (loading) response publishes it instead."""
        was_loading = bool(message["flags"] & LOADING_FLAG)
        for key in ("embeds", "components", "flags"):
            if key in body:
                message[key] = body[key] or ([] if key != "flags" else 0)
        if "content" in body:
            message["content"] = body["content"] or ""
        if "attachments" in body or files:
            keep = {str(a.get("id")) for a in body.get("attachments") or ()}
            kept = [a for a in message["attachments"] if a["id"] in keep]
            message["attachments"] = kept + self._uploads_from_bot(body.get("attachments"), files)
        message["flags"] = int(message.get("flags") or 0) & ~LOADING_FLAG
        if was_loading:
            await self._publish(message)
            return message
        message["edited_timestamp"] = iso_now()
        self.edits.add(
            EditRecord(int(message["id"]), int(message["channel_id"]), dict(body), list(files), copy.deepcopy(message))
        )
        if self.echo_own_messages and not message["flags"] & EPHEMERAL_FLAG:
            await self.dispatch("MESSAGE_UPDATE", self._with_member(message), echo=True)
        return message

    async def delete_message(self, message: dict[str, Any]) -> None:
        del self.messages[int(message["id"])]
        self.deletions.add(message)
        event = {"id": message["id"], "channel_id": message["channel_id"]}
        if "guild_id" in message:
            event["guild_id"] = message["guild_id"]
        await self.dispatch("MESSAGE_DELETE", event, echo=True)

    # reactions

    @staticmethod
    def _emoji_payload(emoji: str) -> dict[str, Any]:
        name, _, emoji_id = emoji.removeprefix("<").removeprefix("a:").removeprefix(":").partition(":")
        if emoji_id:
            return {"name": name, "id": emoji_id.removesuffix(">"), "animated": emoji.startswith("<a:")}
        return {"name": emoji, "id": None}

    def _reaction_event(self, message: dict[str, Any], emoji: str, user: FakeUser, added: bool) -> dict:
        event: dict[str, Any] = {
            "user_id": str(user.id),
            "channel_id": message["channel_id"],
            "message_id": message["id"],
            "emoji": self._emoji_payload(emoji),
            "type": 0,
            "burst": False,
        }
        if "guild_id" in message:
            event["guild_id"] = message["guild_id"]
            guild = self.guilds[int(message["guild_id"])]
            if added and user.id in guild.members:
                event["member"] = guild.member_payload(user.id)
        if added:
            event.update(message_author_id=message["author"]["id"], burst_colors=[])
        return event

    async def react(self, message: MessageLike, emoji: str, user: FakeUser, *, remove: bool = False) -> dict[str, Any]:
        """A user adds (or removes) a reaction: MESSAGE_REACTION_ADD / _REMOVE."""
        stored = self.message(message)
        event = self._reaction_event(stored, emoji, user, not remove)
        await self.dispatch("MESSAGE_REACTION_REMOVE" if remove else "MESSAGE_REACTION_ADD", event)
        return event

    async def record_bot_reaction(self, message: dict[str, Any], emoji: str, *, added: bool) -> None:
        self.bot_reactions.add(BotReaction(int(message["channel_id"]), int(message["id"]), emoji, added))
        if self.echo_own_messages:
            event = self._reaction_event(message, emoji, self.bot, added)
            await self.dispatch("MESSAGE_REACTION_ADD" if added else "MESSAGE_REACTION_REMOVE", event, echo=True)
