"""Plain data for the fake Discord server: snowflakes, users, roles, members, channels, guilds, uploads.

Each model renders the JSON payload discord.py 2.7 parses (``payload()``); the shapes follow
``discord/types/*.py`` and the fields ``discord/guild.py``, ``member.py``, ``channel.py`` read.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import mimetypes
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import discord

__all__ = [
    "ALL_PERMISSIONS",
    "DISCORD_EPOCH_MS",
    "EPHEMERAL_FLAG",
    "EVERYONE_PERMISSIONS",
    "VOICE_MESSAGE_FLAG",
    "ChannelType",
    "FakeChannel",
    "FakeGuild",
    "FakeMember",
    "FakeRole",
    "FakeUser",
    "Journal",
    "RecordedFile",
    "RecordedRequest",
    "Snowflakes",
    "Upload",
    "deferred_journal_adds",
    "iso_now",
]

DISCORD_EPOCH_MS = 1420070400000
EPHEMERAL_FLAG = 1 << 6
VOICE_MESSAGE_FLAG = 1 << 13
ALL_PERMISSIONS = discord.Permissions.all().value
EVERYONE_PERMISSIONS = (
    discord.Permissions.text() | discord.Permissions.voice() | discord.Permissions(view_channel=True)
).value & ~discord.Permissions.elevated().value

T = TypeVar("T")
_deferred: ContextVar[list[Callable[[], None]] | None] = ContextVar("fake_discord_deferred", default=None)


class ChannelType:
    """The channel type numbers the fake uses (``discord.ChannelType`` values)."""

    TEXT = 0
    DM = 1
    VOICE = 2


def iso_now() -> str:
    """The current UTC time as Discord writes timestamps."""
    return datetime.datetime.now(datetime.UTC).isoformat()


class Snowflakes:
    """Time-based, strictly increasing snowflake ids (interactions older than 15 minutes look expired)."""

    def __init__(self) -> None:
        self._last = 0

    def next(self) -> int:
        """A new id whose timestamp part is now."""
        candidate = (int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22
        self._last = max(candidate, self._last + 1)
        return self._last


@dataclass
class FakeUser:
    """A Discord user (a person or the bot)."""

    id: int
    name: str
    bot: bool = False

    @property
    def mention(self) -> str:
        """The mention text Discord puts in message content."""
        return f"<@{self.id}>"

    def payload(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "username": self.name,
            "discriminator": "0",
            "global_name": self.name,
            "avatar": None,
            "bot": self.bot,
            "public_flags": 0,
            "flags": 0,
        }


@dataclass
class FakeRole:
    """A guild role; the @everyone role has the guild's id."""

    id: int
    name: str
    permissions: int = 0
    position: int = 0

    @property
    def mention(self) -> str:
        return f"<@&{self.id}>"

    def payload(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "name": self.name,
            "permissions": str(self.permissions),
            "position": self.position,
            "color": 0,
            "hoist": False,
            "managed": False,
            "mentionable": True,
            "flags": 0,
        }


@dataclass
class FakeMember:
    """A user's membership of a guild."""

    user: FakeUser
    role_ids: list[int] = field(default_factory=list)
    nick: str | None = None
    joined_at: str = field(default_factory=iso_now)

    def payload(self, *, with_user: bool = True, permissions: int | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {
            "roles": [str(r) for r in self.role_ids],
            "joined_at": self.joined_at,
            "nick": self.nick,
            "avatar": None,
            "deaf": False,
            "mute": False,
            "pending": False,
            "flags": 0,
        }
        if with_user:
            data["user"] = self.user.payload()
        if permissions is not None:
            data["permissions"] = str(permissions)
        return data


@dataclass
class FakeChannel:
    """A text, voice or DM channel."""

    id: int
    type: int
    name: str = ""
    guild_id: int | None = None
    position: int = 0
    recipients: list[FakeUser] = field(default_factory=list)

    @property
    def mention(self) -> str:
        return f"<#{self.id}>"

    def payload(self, *, with_guild_id: bool = True) -> dict[str, Any]:
        if self.type == ChannelType.DM:
            return {
                "id": str(self.id),
                "type": self.type,
                "recipients": [u.payload() for u in self.recipients],
                "last_message_id": None,
                "flags": 0,
            }
        data: dict[str, Any] = {
            "id": str(self.id),
            "type": self.type,
            "name": self.name,
            "position": self.position,
            "permission_overwrites": [],
            "parent_id": None,
            "nsfw": False,
            "rate_limit_per_user": 0,
            "last_message_id": None,
            "flags": 0,
        }
        if self.type == ChannelType.TEXT:
            data["topic"] = None
        if self.type == ChannelType.VOICE:
            data.update(bitrate=64000, user_limit=0, rtc_region=None)
        if with_guild_id and self.guild_id is not None:
            data["guild_id"] = str(self.guild_id)
        return data


@dataclass
class FakeGuild:
    """A guild with its roles, members, channels and voice states."""

    id: int
    name: str
    owner_id: int
    roles: dict[int, FakeRole] = field(default_factory=dict)
    members: dict[int, FakeMember] = field(default_factory=dict)
    channels: dict[int, FakeChannel] = field(default_factory=dict)
    voice_states: dict[int, dict[str, Any]] = field(default_factory=dict)

    def permissions_of(self, user_id: int) -> int:
        """Guild-level permissions of a member, as Discord computes them (no channel overwrites)."""
        if user_id == self.owner_id:
            return ALL_PERMISSIONS
        value = self.roles[self.id].permissions if self.id in self.roles else 0
        member = self.members.get(user_id)
        for role_id in member.role_ids if member else ():
            value |= self.roles[role_id].permissions
        if value & discord.Permissions(administrator=True).value:
            return ALL_PERMISSIONS
        return value

    def member_payload(self, user_id: int, *, with_user: bool = True, with_permissions: bool = False) -> dict:
        member = self.members[user_id]
        permissions = self.permissions_of(user_id) if with_permissions else None
        return member.payload(with_user=with_user, permissions=permissions)

    def create_payload(self) -> dict[str, Any]:
        """The GUILD_CREATE payload; ``member_count`` equals the members sent, so no chunking is needed."""
        return {
            "id": str(self.id),
            "name": self.name,
            "owner_id": str(self.owner_id),
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "features": [],
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "premium_tier": 0,
            "preferred_locale": "en-US",
            "afk_timeout": 300,
            "afk_channel_id": None,
            "system_channel_id": None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "roles": [r.payload() for r in self.roles.values()],
            "emojis": [],
            "stickers": [],
            "joined_at": iso_now(),
            "large": False,
            "unavailable": False,
            "member_count": len(self.members),
            "members": [m.payload() for m in self.members.values()],
            "channels": [c.payload(with_guild_id=False) for c in self.channels.values()],
            "voice_states": [
                {k: v for k, v in state.items() if k not in ("guild_id", "member")}
                for state in self.voice_states.values()
            ],
            "presences": [],
            "threads": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
        }


@dataclass
class Upload:
    """A file a fake user attaches (to a message or a slash-command attachment option)."""

    filename: str
    data: bytes
    content_type: str | None = None
    duration_secs: float | None = None
    waveform: str | None = None

    @classmethod
    def voice_message(cls, data: bytes, *, duration_secs: float = 1.0, filename: str = "voice-message.ogg") -> Upload:
        """A voice-message attachment (send it with ``flags=VOICE_MESSAGE_FLAG``)."""
        waveform = base64.b64encode(bytes(range(0, 256, 4))).decode()
        return cls(filename, data, "audio/ogg", duration_secs=duration_secs, waveform=waveform)

    def guessed_content_type(self) -> str:
        return self.content_type or mimetypes.guess_type(self.filename)[0] or "application/octet-stream"


@dataclass
class RecordedFile:
    """A file part of a multipart request the bot made."""

    field: str
    filename: str
    content_type: str | None
    data: bytes


@dataclass
class RecordedRequest:
    """One REST request the bot made, as the fake saw it (``path`` is relative to ``/api/v10``)."""

    method: str
    path: str
    query: dict[str, str]
    json: Any
    files: list[RecordedFile]
    status: int = 0
    response: Any = None

    def __str__(self) -> str:
        return f"{self.method} {self.path} -> {self.status}"


class Journal(Generic[T]):
    """An append-only record that tests wait on; each waiter takes the oldest matching item not yet taken."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.items: list[T] = []
        self._taken: set[int] = set()
        self._changed: asyncio.Event | None = None

    def add(self, item: T) -> None:
        """Record ``item`` (inside ``deferred_journal_adds`` only when that block releases it)."""
        pending = _deferred.get()
        if pending is not None:
            pending.append(lambda: self._add_now(item))
        else:
            self._add_now(item)

    def _add_now(self, item: T) -> None:
        self.items.append(item)
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    async def take(self, predicate: Callable[[T], bool], *, timeout: float, description: str) -> T:
        """The next untaken item matching ``predicate``; fails the test after ``timeout`` seconds."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    for index, item in enumerate(self.items):
                        if index not in self._taken and predicate(item):
                            self._taken.add(index)
                            return item
                    if self._changed is None:
                        self._changed = asyncio.Event()
                    await self._changed.wait()
        except TimeoutError:
            seen = "\n  ".join(str(i)[:300] for i in self.items[-10:]) or "(nothing)"
            raise AssertionError(
                f"no {self.what} matching {description} within {timeout}s; last seen:\n  {seen}"
            ) from None


@contextmanager
def deferred_journal_adds() -> Iterator[list[Callable[[], None]]]:
    """Hold journal adds made in this task; the caller runs them once the bot has the response.

    A test that sees a bot message must be able to act on it at once (click its button): discord.py
    registers the message's view only after reading the REST response, so the record has to wait.
    """
    pending: list[Callable[[], None]] = []
    token = _deferred.set(pending)
    try:
        yield pending
    finally:
        _deferred.reset(token)
