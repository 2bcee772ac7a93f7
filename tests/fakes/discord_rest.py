"""The fake REST API under ``/api/v10``: a small route table over the state ``FakeDiscord`` keeps.

Shapes follow discord.py 2.7 (``discord/http.py``, ``discord/webhook/async_.py``,
``discord/interactions.py``). Responses are ``Content-Type: application/json`` exactly, because
``discord.http.json_or_text`` compares the header verbatim; no rate-limit headers are sent.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from fakes.discord_models import EPHEMERAL_FLAG, FakeChannel, RecordedFile, RecordedRequest

if TYPE_CHECKING:
    from fakes.discord_server import FakeDiscord, FakeInteraction

__all__ = ["ApiError", "RestApi", "json_response", "read_request"]

Handler = Callable[..., Awaitable[Any]]
LOADING_FLAG = 1 << 7
NO_CONTENT = object()


class ApiError(Exception):
    """A Discord-style JSON error response."""

    def __init__(self, status: int, message: str, code: int = 0) -> None:
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


def json_response(status: int, body: Any) -> web.Response:
    """A response discord.py parses as JSON (exact content type), or 204 for ``NO_CONTENT``."""
    if body is NO_CONTENT:
        return web.Response(status=204)
    return web.Response(status=status, body=json.dumps(body).encode(), headers={"Content-Type": "application/json"})


async def read_request(request: web.Request, path: str) -> RecordedRequest:
    """Parse a JSON or multipart (``payload_json`` + ``files[n]``) request into a record."""
    body: Any = None
    files: list[RecordedFile] = []
    if request.content_type.startswith("multipart/"):
        reader = await request.multipart()
        async for part in reader:
            name = part.name or ""
            data = await part.read()  # type: ignore[union-attr]
            if name == "payload_json":
                body = json.loads(data)
            else:
                content_type = part.headers.get("Content-Type")  # type: ignore[union-attr]
                files.append(RecordedFile(name, part.filename or "", content_type, bytes(data)))
    else:
        raw = await request.read()
        if raw:
            body = json.loads(raw)
    return RecordedRequest(request.method, path, dict(request.query), body, files)


def _sid(value: Any) -> int:
    return int(value)


class RestApi:
    """Route table and handlers; each handler returns the JSON body (or ``NO_CONTENT``)."""

    def __init__(self, fake: FakeDiscord) -> None:
        self.fake = fake
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = []
        m = r"(?P<{}>[^/]+)".format
        table: list[tuple[str, str, Handler]] = [
            ("GET", "/users/@me", self.get_me),
            ("GET", f"/users/{m('user_id')}", self.get_user),
            ("POST", "/users/@me/channels", self.open_dm),
            ("GET", "/oauth2/applications/@me", self.application_info),
            ("GET", "/applications/@me", self.application_info),
            ("GET", "/gateway", self.gateway),
            ("GET", "/gateway/bot", self.gateway),
            ("GET", f"/channels/{m('channel_id')}", self.get_channel),
            ("GET", f"/channels/{m('channel_id')}/messages", self.history),
            ("POST", f"/channels/{m('channel_id')}/messages", self.create_message),
            ("GET", f"/channels/{m('channel_id')}/messages/{m('message_id')}", self.get_message),
            ("PATCH", f"/channels/{m('channel_id')}/messages/{m('message_id')}", self.edit_message),
            ("DELETE", f"/channels/{m('channel_id')}/messages/{m('message_id')}", self.delete_message),
            ("POST", f"/channels/{m('channel_id')}/typing", self.typing),
            ("PUT", f"/channels/{m('channel_id')}/messages/{m('message_id')}/reactions/{m('emoji')}/@me", self.react),
            (
                "DELETE",
                f"/channels/{m('channel_id')}/messages/{m('message_id')}/reactions/{m('emoji')}/{m('user')}",
                self.unreact,
            ),
            ("GET", f"/guilds/{m('guild_id')}", self.get_guild),
            ("GET", f"/guilds/{m('guild_id')}/channels", self.guild_channels),
            ("GET", f"/guilds/{m('guild_id')}/members/{m('user_id')}", self.get_member),
            ("GET", f"/applications/{m('app')}/commands", self.get_commands),
            ("PUT", f"/applications/{m('app')}/commands", self.put_commands),
            ("GET", f"/applications/{m('app')}/guilds/{m('guild_id')}/commands", self.get_commands),
            ("PUT", f"/applications/{m('app')}/guilds/{m('guild_id')}/commands", self.put_commands),
            ("POST", f"/interactions/{m('interaction_id')}/{m('token')}/callback", self.callback),
            ("GET", f"/webhooks/{m('app')}/{m('token')}/messages/{m('message_id')}", self.webhook_get),
            ("PATCH", f"/webhooks/{m('app')}/{m('token')}/messages/{m('message_id')}", self.webhook_edit),
            ("DELETE", f"/webhooks/{m('app')}/{m('token')}/messages/{m('message_id')}", self.webhook_delete),
            ("POST", f"/webhooks/{m('app')}/{m('token')}", self.followup),
        ]
        for method, pattern, handler in table:
            self.routes.append((method, re.compile(pattern), handler))

    def resolve(self, method: str, path: str) -> tuple[Handler, dict[str, str]] | None:
        """The handler for a request, or ``None`` for a route the fake does not know."""
        for route_method, pattern, handler in self.routes:
            match = pattern.fullmatch(path)
            if route_method == method and match:
                return handler, match.groupdict()
        return None

    # users, application, gateway

    async def get_me(self, req: RecordedRequest) -> Any:
        return {**self.fake.bot.payload(), "verified": True, "mfa_enabled": False}

    async def get_user(self, req: RecordedRequest, user_id: str) -> Any:
        return self.fake.user(_sid(user_id)).payload()

    async def open_dm(self, req: RecordedRequest) -> Any:
        return self.fake.dm_with(self.fake.user(_sid(req.json["recipient_id"]))).payload()

    async def application_info(self, req: RecordedRequest) -> Any:
        fake = self.fake
        return {
            "id": str(fake.application_id),
            "name": fake.bot.name,
            "description": "",
            "icon": None,
            "bot_public": False,
            "bot_require_code_grant": False,
            "owner": fake.user(fake.owner_id).payload(),
            "verify_key": "0" * 64,
            "flags": fake.application_flags,
            "team": None,
            "bot": fake.bot.payload(),
        }

    async def gateway(self, req: RecordedRequest) -> Any:
        limit = {"total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1}
        return {"url": self.fake.gateway_url, "shards": 1, "session_start_limit": limit}

    # channels and messages

    async def get_channel(self, req: RecordedRequest, channel_id: str) -> Any:
        return self.fake.channel(_sid(channel_id)).payload()

    async def history(self, req: RecordedRequest, channel_id: str) -> Any:
        cid = _sid(channel_id)
        found = [
            m
            for m in self.fake.messages.values()
            if int(m["channel_id"]) == cid and not m.get("flags", 0) & (EPHEMERAL_FLAG | LOADING_FLAG)
        ]
        found.sort(key=lambda m: int(m["id"]), reverse=True)
        if "before" in req.query:
            found = [m for m in found if int(m["id"]) < int(req.query["before"])]
        if "after" in req.query:
            found = [m for m in found if int(m["id"]) > int(req.query["after"])]
        return found[: int(req.query.get("limit", 50))]

    async def create_message(self, req: RecordedRequest, channel_id: str) -> Any:
        channel = self.fake.channel(_sid(channel_id))
        return await self.fake.create_bot_message(channel, req.json or {}, req.files)

    async def get_message(self, req: RecordedRequest, channel_id: str, message_id: str) -> Any:
        return self.fake.message(_sid(message_id), channel_id=_sid(channel_id))

    async def edit_message(self, req: RecordedRequest, channel_id: str, message_id: str) -> Any:
        message = self.fake.message(_sid(message_id), channel_id=_sid(channel_id))
        return await self.fake.edit_message(message, req.json or {}, req.files)

    async def delete_message(self, req: RecordedRequest, channel_id: str, message_id: str) -> Any:
        await self.fake.delete_message(self.fake.message(_sid(message_id), channel_id=_sid(channel_id)))
        return NO_CONTENT

    async def typing(self, req: RecordedRequest, channel_id: str) -> Any:
        self.fake.channel(_sid(channel_id))
        return NO_CONTENT

    async def react(self, req: RecordedRequest, channel_id: str, message_id: str, emoji: str) -> Any:
        message = self.fake.message(_sid(message_id), channel_id=_sid(channel_id))
        await self.fake.record_bot_reaction(message, emoji, added=True)
        return NO_CONTENT

    async def unreact(self, req: RecordedRequest, channel_id: str, message_id: str, emoji: str, user: str) -> Any:
        message = self.fake.message(_sid(message_id), channel_id=_sid(channel_id))
        if user != "@me":
            raise ApiError(403, "the fake only supports removing the bot's own reactions", 50013)
        await self.fake.record_bot_reaction(message, emoji, added=False)
        return NO_CONTENT

    # guilds

    async def get_guild(self, req: RecordedRequest, guild_id: str) -> Any:
        data = self.fake.guild_by_id(_sid(guild_id)).create_payload()
        for key in ("members", "channels", "voice_states", "presences", "threads", "joined_at", "large"):
            data.pop(key)
        return data

    async def guild_channels(self, req: RecordedRequest, guild_id: str) -> Any:
        return [c.payload() for c in self.fake.guild_by_id(_sid(guild_id)).channels.values()]

    async def get_member(self, req: RecordedRequest, guild_id: str, user_id: str) -> Any:
        guild = self.fake.guild_by_id(_sid(guild_id))
        if _sid(user_id) not in guild.members:
            raise ApiError(404, "Unknown Member", 10007)
        return guild.member_payload(_sid(user_id))

    # application commands

    def _command_list(self, app: str, guild_id: str | None) -> list[dict[str, Any]]:
        if _sid(app) != self.fake.application_id:
            raise ApiError(403, "Missing Access", 50001)
        if guild_id is None:
            return self.fake.global_commands
        return self.fake.guild_commands.setdefault(_sid(guild_id), [])

    async def get_commands(self, req: RecordedRequest, app: str, guild_id: str | None = None) -> Any:
        return self._command_list(app, guild_id)

    async def put_commands(self, req: RecordedRequest, app: str, guild_id: str | None = None) -> Any:
        commands = self._command_list(app, guild_id)
        old = {c["name"]: c["id"] for c in commands}
        commands.clear()
        for command in req.json or []:
            command_id = old.get(command["name"]) or str(self.fake.ids.next())
            stored = {
                **command,
                "id": command_id,
                "application_id": str(self.fake.application_id),
                "version": str(self.fake.ids.next()),
                "type": command.get("type", 1),
            }
            stored.setdefault("default_member_permissions", None)
            if guild_id is not None:
                stored["guild_id"] = guild_id
            commands.append(stored)
        self.fake.command_syncs.add({"guild_id": guild_id and int(guild_id), "commands": list(commands)})
        return commands

    # interactions and their webhooks

    def _interaction(self, token: str, app: str | None = None) -> FakeInteraction:
        if app is not None and _sid(app) != self.fake.application_id:
            raise ApiError(401, "Invalid Webhook Token", 50027)
        interaction = self.fake.interactions_by_token.get(token)
        if interaction is None:
            raise ApiError(404, "Unknown Webhook", 10015)
        return interaction

    async def callback(self, req: RecordedRequest, interaction_id: str, token: str) -> Any:
        interaction = self._interaction(token)
        if interaction.id != _sid(interaction_id):
            raise ApiError(404, "Unknown interaction", 10062)
        return await self.fake.respond_to_interaction(interaction, req.json or {}, req.files)

    def _webhook_message(self, interaction: FakeInteraction, message_id: str) -> dict[str, Any]:
        if message_id == "@original":
            if interaction.original_id is None:
                raise ApiError(404, "Unknown Message", 10008)
            return self.fake.messages[interaction.original_id]
        if _sid(message_id) not in interaction.message_ids:
            raise ApiError(404, "Unknown Message", 10008)
        return self.fake.messages[_sid(message_id)]

    async def webhook_get(self, req: RecordedRequest, app: str, token: str, message_id: str) -> Any:
        return self._webhook_message(self._interaction(token, app), message_id)

    async def webhook_edit(self, req: RecordedRequest, app: str, token: str, message_id: str) -> Any:
        interaction = self._interaction(token, app)
        message = self._webhook_message(interaction, message_id)
        return await self.fake.edit_message(message, req.json or {}, req.files)

    async def webhook_delete(self, req: RecordedRequest, app: str, token: str, message_id: str) -> Any:
        interaction = self._interaction(token, app)
        await self.fake.delete_message(self._webhook_message(interaction, message_id))
        return NO_CONTENT

    async def followup(self, req: RecordedRequest, app: str, token: str) -> Any:
        interaction = self._interaction(token, app)
        original = self.fake.messages.get(interaction.original_id or 0)
        if original is not None and original["flags"] & LOADING_FLAG:
            # Like Discord: the first followup after a deferral fills in the "thinking…" message.
            message = await self.fake.edit_message(original, req.json or {}, req.files)
        else:
            channel: FakeChannel = self.fake.channel(interaction.channel_id)
            message = await self.fake.create_bot_message(channel, req.json or {}, req.files, interaction=interaction)
            interaction.message_ids.append(int(message["id"]))
        interaction.followups.add(message)
        return message
