"""A fake Discord on loopback (REST + gateway) so the real discord.py client can be tested end to end.

Usage (fixtures in ``tests/discord/conftest.py``)::

    async def test_ping(fake_discord: FakeDiscord, start_bot: StartBot) -> None:
        await start_bot(make_bot())
        sent = await fake_discord.send_message(fake_discord.text, fake_discord.member, "!ping")
        reply = await fake_discord.wait_for_bot_message(fake_discord.text)
        assert reply["content"] == "pong"
        assert reply["message_reference"]["message_id"] == sent["id"]

State lives in memory: ``guilds``, ``channels``, ``users``, ``messages`` (payload dicts by id). What the
bot did is recorded in journals (``requests``, ``bot_messages``, ``edits``, ``deletions``,
``bot_reactions``, ``command_syncs``, ``voice_requests``) that the ``wait_for_*`` helpers take from.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any

import yarl
from aiohttp import web
from discord.ext import commands
from discord.gateway import DiscordWebSocket
from discord.http import Route

from fakes.discord_gateway import GatewaySession, handle_gateway
from fakes.discord_interactions import FakeInteraction, InteractionMixin, InteractionResponse
from fakes.discord_messages import BotReaction, EditRecord, MessageMixin
from fakes.discord_models import (
    ALL_PERMISSIONS,
    EVERYONE_PERMISSIONS,
    ChannelType,
    FakeChannel,
    FakeGuild,
    FakeMember,
    FakeRole,
    FakeUser,
    Journal,
    RecordedRequest,
    Snowflakes,
    Upload,
    deferred_journal_adds,
)
from fakes.discord_rest import NO_CONTENT, ApiError, RestApi, json_response, read_request

__all__ = [
    "BotReaction",
    "EditRecord",
    "FakeDiscord",
    "FakeInteraction",
    "InteractionResponse",
    "StartBot",
    "Upload",
    "patched_endpoints",
    "running_bot",
    "serve_fake_discord",
]

API_PREFIX = "/api/v10"
SETTLE_LOOP_TURNS = 20
ChannelLike = FakeChannel | int | str
MessageLike = Mapping[str, Any] | int | str
StartBot = Callable[[commands.Bot], Awaitable[commands.Bot]]


@dataclass
class _Failure:
    method: str
    pattern: re.Pattern[str]
    status: int
    code: int
    message: str
    remaining: int | None


class FakeDiscord(MessageMixin, InteractionMixin):
    """Discord REST and gateway for one bot, with a seeded guild and helpers to play its users."""

    def __init__(self, *, token: str = "fake-bot-token", echo_own_messages: bool = True) -> None:
        self.token = token
        self.echo_own_messages = echo_own_messages
        self.application_flags = 0  # GET /applications/@me; 1 << 19: the Message Content intent (limited) is on
        self.ids = Snowflakes()
        self.port = 0
        self._runner: web.AppRunner | None = None
        self.rest = RestApi(self)
        self.sessions: list[GatewaySession] = []
        self.users: dict[int, FakeUser] = {}
        self.guilds: dict[int, FakeGuild] = {}
        self.channels: dict[int, FakeChannel] = {}
        self.messages: dict[int, dict[str, Any]] = {}
        self.blobs: dict[int, tuple[str, str, bytes]] = {}
        self.global_commands: list[dict[str, Any]] = []
        self.guild_commands: dict[int, list[dict[str, Any]]] = {}
        self.problems: list[str] = []
        self.unknown_requests: list[RecordedRequest] = []
        self.failures: list[_Failure] = []
        self.requests: Journal[RecordedRequest] = Journal("request")
        self.bot_messages: Journal[dict[str, Any]] = Journal("bot message")
        self.edits: Journal[EditRecord] = Journal("message edit")
        self.deletions: Journal[dict[str, Any]] = Journal("message deletion")
        self.bot_reactions: Journal[BotReaction] = Journal("bot reaction")
        self.command_syncs: Journal[dict[str, Any]] = Journal("command sync")
        self.voice_requests: Journal[dict[str, Any]] = Journal("voice state request (op 4)")
        self.gateway_frames: Journal[dict[str, Any]] = Journal("gateway frame from the bot")
        self.voice_endpoint = "127.0.0.1:9"  # VOICE_SERVER_UPDATE's endpoint (a FakeVoiceServer sets its own)
        self.voice_servers: dict[int, dict[str, Any]] = {}  # the last VOICE_SERVER_UPDATE sent, by guild
        InteractionMixin.__init__(self)
        self._seed()

    def _seed(self) -> None:
        """One guild: the bot, an owner, a trainer (role "trainer"), a member; text ×2, voice, and a DM."""
        self.bot = self.add_user("teachbot", bot=True)
        self.application_id = self.bot.id
        self.owner = self.add_user("owner")
        self.owner_id = self.owner.id
        self.trainer = self.add_user("trainer")
        self.member = self.add_user("member")
        self.guild = FakeGuild(self.ids.next(), "teachbot test guild", owner_id=self.owner.id)
        self.guilds[self.guild.id] = self.guild
        everyone = FakeRole(self.guild.id, "@everyone", EVERYONE_PERMISSIONS)
        self.bot_role = FakeRole(self.ids.next(), "teachbot", ALL_PERMISSIONS, position=2)
        self.trainer_role = FakeRole(self.ids.next(), "trainer", everyone.permissions, position=1)
        for role in (everyone, self.bot_role, self.trainer_role):
            self.guild.roles[role.id] = role
        self.add_member(self.bot, [self.bot_role.id])
        self.add_member(self.owner)
        self.add_member(self.trainer, [self.trainer_role.id])
        self.add_member(self.member)
        self.text = self.add_channel("general", ChannelType.TEXT)
        self.text2 = self.add_channel("teaching", ChannelType.TEXT)
        self.voice = self.add_channel("voice", ChannelType.VOICE)
        self.dm = self.dm_with(self.member)

    # lifecycle

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Listen on loopback (``port=0`` picks a free port)."""
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def close(self) -> None:
        """Close gateway sockets, then the server."""
        for session in list(self.sessions):
            await session.ws.close(code=1001)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_base(self) -> str:
        """What ``discord.http.Route.BASE`` (setting ``discord_api_base``) must be."""
        return self.base_url + API_PREFIX

    @property
    def gateway_url(self) -> str:
        """What ``DiscordWebSocket.DEFAULT_GATEWAY`` (setting ``discord_gateway_url``) must be."""
        return f"ws://127.0.0.1:{self.port}/gateway"

    def assert_clean(self) -> None:
        """Fail if the bot used a route the fake does not know, or the fake hit a problem."""
        unknown = [str(r) for r in self.unknown_requests]
        assert not unknown, f"the bot called routes the fake Discord does not know: {unknown}"
        assert not self.problems, f"fake Discord problems: {self.problems}"

    # HTTP entry point

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if path == "/gateway":
            return await handle_gateway(self, request)
        if path.startswith("/attachments/"):
            return self._serve_attachment(path)
        relative = path.removeprefix(API_PREFIX) if path.startswith(API_PREFIX + "/") else path
        with deferred_journal_adds() as pending:
            record = await read_request(request, relative)
            status, body = await self._route(request, record, relative != path)
            record.status, record.response = status, None if body is NO_CONTENT else body
            self.requests.add(record)
        response = json_response(status, body)
        await response.prepare(request)
        await response.write_eof()
        # Let the bot (same process, same loop) read the response before tests see the records.
        for _ in range(SETTLE_LOOP_TURNS):
            await asyncio.sleep(0)
        for add in pending:
            add()
        return response

    async def _route(self, request: web.Request, record: RecordedRequest, under_api: bool) -> tuple[int, Any]:
        resolved = self.rest.resolve(record.method, record.path) if under_api else None
        if resolved is None:
            self.unknown_requests.append(record)
            return 404, {"message": f"404: route unknown to the fake Discord: {record.method} {record.path}", "code": 0}
        failure = self._take_failure(record.method, record.path)
        if failure is not None:
            return failure.status, {"message": failure.message, "code": failure.code}
        needs_token = not record.path.startswith(("/webhooks/", "/interactions/"))
        if needs_token and request.headers.get("Authorization") != f"Bot {self.token}":
            return 401, {"message": "401: Unauthorized", "code": 0}
        handler, params = resolved
        try:
            body = await handler(record, **params)
        except ApiError as exc:
            return exc.status, {"message": exc.message, "code": exc.code}
        except Exception as exc:  # a bug in the fake: report it at teardown
            self.problems.append(f"{record.method} {record.path} crashed the fake: {exc!r}")
            return 400, {"message": f"fake Discord crashed: {exc!r}", "code": 0}
        return (204 if body is NO_CONTENT else 200), body

    def _serve_attachment(self, path: str) -> web.Response:
        parts = path.split("/")
        blob = self.blobs.get(int(parts[2])) if len(parts) == 4 and parts[2].isdigit() else None
        if blob is None or blob[0] != parts[3]:
            self.problems.append(f"unknown attachment requested: {path}")
            return web.Response(status=404)
        return web.Response(body=blob[2], content_type=blob[1])

    # failure injection

    def fail(
        self,
        method: str,
        path_pattern: str,
        status: int = 403,
        *,
        times: int | None = 1,
        code: int = 50013,
        message: str = "injected failure",
    ) -> None:
        """Make the next ``times`` requests (None: all) matching ``path_pattern`` (regex) fail.

        Prefer 4xx or 503: discord.py retries 500/502/504 with 1 s, 3 s… sleeps (webhooks retry any 5xx).
        """
        self.failures.append(_Failure(method.upper(), re.compile(path_pattern), status, code, message, times))

    def _take_failure(self, method: str, path: str) -> _Failure | None:
        for failure in self.failures:
            if failure.method == method and failure.pattern.fullmatch(path):
                if failure.remaining is not None:
                    failure.remaining -= 1
                    if failure.remaining <= 0:
                        self.failures.remove(failure)
                return failure
        return None

    # state

    def add_user(self, name: str, *, bot: bool = False) -> FakeUser:
        user = FakeUser(self.ids.next(), name, bot)
        self.users[user.id] = user
        return user

    def add_guild(self, name: str, *, shard: tuple[int, int] | None = None) -> FakeGuild:
        """Another guild (before the bot connects) with the bot, the owner, the member and a text channel
        "general"; ``shard`` (id, count) picks an id that Discord's rule puts on that shard."""
        guild_id = self.ids.next()
        while shard is not None and (guild_id >> 22) % shard[1] != shard[0]:
            guild_id = self.ids.next() + (1 << 22)  # the next millisecond: the next shard
            self.ids._last = guild_id
        guild = FakeGuild(guild_id, name, owner_id=self.owner.id)
        self.guilds[guild.id] = guild
        everyone = FakeRole(guild.id, "@everyone", EVERYONE_PERMISSIONS)
        bot_role = FakeRole(self.ids.next(), "teachbot", ALL_PERMISSIONS, position=1)
        guild.roles.update({everyone.id: everyone, bot_role.id: bot_role})
        self.add_member(self.bot, [bot_role.id], guild)
        self.add_member(self.owner, guild=guild)
        self.add_member(self.member, guild=guild)
        self.add_channel("general", ChannelType.TEXT, guild)
        return guild

    def add_member(self, user: FakeUser, role_ids: Sequence[int] = (), guild: FakeGuild | None = None) -> FakeMember:
        """Add a member before the bot connects (GUILD_CREATE carries members; no GUILD_MEMBER_ADD)."""
        member = FakeMember(user, list(role_ids))
        (guild or self.guild).members[user.id] = member
        return member

    def add_channel(self, name: str, type: int, guild: FakeGuild | None = None) -> FakeChannel:
        """Add a guild channel before the bot connects."""
        guild = guild or self.guild
        channel = FakeChannel(self.ids.next(), type, name, guild.id, position=len(guild.channels))
        guild.channels[channel.id] = channel
        self.channels[channel.id] = channel
        return channel

    def dm_with(self, user: FakeUser) -> FakeChannel:
        """The DM channel between the bot and ``user`` (created on first use)."""
        for channel in self.channels.values():
            if channel.type == ChannelType.DM and channel.recipients[0].id == user.id:
                return channel
        channel = FakeChannel(self.ids.next(), ChannelType.DM, recipients=[user])
        self.channels[channel.id] = channel
        return channel

    def user(self, user_id: int) -> FakeUser:
        if user_id not in self.users:
            raise ApiError(404, "Unknown User", 10013)
        return self.users[user_id]

    def channel(self, channel: ChannelLike) -> FakeChannel:
        channel_id = channel.id if isinstance(channel, FakeChannel) else int(channel)
        if channel_id not in self.channels:
            raise ApiError(404, "Unknown Channel", 10003)
        return self.channels[channel_id]

    def guild_by_id(self, guild_id: int) -> FakeGuild:
        if guild_id not in self.guilds:
            raise ApiError(404, "Unknown Guild", 10004)
        return self.guilds[guild_id]

    def message(self, message: MessageLike, *, channel_id: int | None = None) -> dict[str, Any]:
        """The current payload of a stored message."""
        message_id = int(message["id"]) if isinstance(message, Mapping) else int(message)
        found = self.messages.get(message_id)
        if found is None or (channel_id is not None and int(found["channel_id"]) != channel_id):
            raise ApiError(404, "Unknown Message", 10008)
        return found

    # voice

    def set_voice_state(
        self,
        guild: FakeGuild,
        user_id: int,
        channel_id: int | None,
        *,
        session_id: str,
        self_mute: bool = False,
        self_deaf: bool = False,
    ) -> dict[str, Any]:
        """Update and return a member's voice state (``channel_id`` None: left voice)."""
        state = {
            "guild_id": str(guild.id),
            "channel_id": str(channel_id) if channel_id else None,
            "user_id": str(user_id),
            "member": guild.member_payload(user_id),
            "session_id": session_id,
            "deaf": False,
            "mute": False,
            "self_deaf": self_deaf,
            "self_mute": self_mute,
            "self_video": False,
            "self_stream": False,
            "suppress": False,
            "request_to_speak_timestamp": None,
        }
        if channel_id is None:
            guild.voice_states.pop(user_id, None)
        else:
            guild.voice_states[user_id] = state
        return state

    async def join_voice(self, user: FakeUser, channel: ChannelLike | None) -> dict[str, Any]:
        """A member joins ``channel`` (or leaves voice with None): VOICE_STATE_UPDATE."""
        target = self.channel(channel) if channel is not None else None
        guild = self.guilds[target.guild_id] if target and target.guild_id else self.guild
        state = self.set_voice_state(guild, user.id, target.id if target else None, session_id=secrets.token_hex(8))
        await self.dispatch("VOICE_STATE_UPDATE", state)
        return state

    # gateway

    async def dispatch(self, event: str, data: Mapping[str, Any], *, echo: bool = False) -> None:
        """Send a DISPATCH event to every identified bot whose shard holds its guild (DMs: shard 0)
        (``echo``: the bot's own doing, none is fine)."""
        guild_id = int(data["guild_id"]) if data.get("guild_id") else None
        ready = [s for s in self.sessions if s.identify is not None and s.serves(guild_id)]
        assert ready or echo, f"no bot is connected to the fake gateway to receive {event}"
        for session in ready:
            await session.send(0, data, event)

    # waiting

    async def wait_for_request(self, method: str, path_pattern: str, timeout: float = 5) -> RecordedRequest:
        """The next request (path relative to ``/api/v10``, regex full match) not taken before."""
        pattern = re.compile(path_pattern)
        return await self.requests.take(
            lambda r: r.method == method.upper() and bool(pattern.fullmatch(r.path)),
            timeout=timeout,
            description=f"{method} {path_pattern}",
        )

    async def wait_for_bot_message(self, channel: ChannelLike | None = None, timeout: float = 5) -> dict[str, Any]:
        """The next message the bot made visible (attachments carry their bytes under ``"data"``)."""
        channel_id = None if channel is None else self.channel(channel).id
        return await self.bot_messages.take(
            lambda m: channel_id is None or int(m["channel_id"]) == channel_id,
            timeout=timeout,
            description=f"in channel {channel_id}",
        )

    async def wait_for_edit(self, message: MessageLike | None = None, timeout: float = 5) -> EditRecord:
        """The next edit the bot made (to ``message`` if given)."""
        message_id = None if message is None else int(message["id"] if isinstance(message, Mapping) else message)
        return await self.edits.take(
            lambda e: message_id is None or e.message_id == message_id,
            timeout=timeout,
            description=f"of message {message_id}",
        )

    async def wait_for_bot_reaction(self, message: MessageLike | None = None, timeout: float = 5) -> BotReaction:
        """The next reaction the bot added or removed (on ``message`` if given)."""
        message_id = None if message is None else int(message["id"] if isinstance(message, Mapping) else message)
        return await self.bot_reactions.take(
            lambda r: message_id is None or r.message_id == message_id,
            timeout=timeout,
            description=f"on message {message_id}",
        )

    async def wait_for_voice_request(self, timeout: float = 5) -> dict[str, Any]:
        """The next op 4 (voice state update) the bot sent."""
        return await self.voice_requests.take(lambda _: True, timeout=timeout, description="any")


@contextmanager
def patched_endpoints(fake: FakeDiscord) -> Iterator[None]:
    """Point discord.py's REST base and gateway at ``fake``; restore the previous values after."""
    old_base, old_gateway = Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY
    Route.BASE = fake.api_base
    DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(fake.gateway_url)
    try:
        yield
    finally:
        Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = old_base, old_gateway


@asynccontextmanager
async def serve_fake_discord(
    *, token: str = "fake-bot-token", echo_own_messages: bool = True
) -> AsyncIterator[FakeDiscord]:
    """A started fake with discord.py pointed at it; closed (endpoints restored) on exit."""
    fake = FakeDiscord(token=token, echo_own_messages=echo_own_messages)
    await fake.start()
    try:
        with patched_endpoints(fake):
            yield fake
    finally:
        await fake.close()


@asynccontextmanager
async def running_bot(
    fake: FakeDiscord, bot: commands.Bot, *, timeout: float = 10, guild_ready_timeout: float | None = 0.05
) -> AsyncIterator[commands.Bot]:
    """Run ``bot.start(fake.token)`` as a task until ``on_ready``; close it cleanly on exit.

    ``guild_ready_timeout`` (seconds discord.py waits for more GUILD_CREATEs before ``on_ready``;
    default 2) is lowered on the bot's connection state unless None.
    """
    if guild_ready_timeout is not None:
        bot._connection.guild_ready_timeout = guild_ready_timeout
    ready = asyncio.Event()

    async def on_ready() -> None:
        ready.set()

    bot.add_listener(on_ready, "on_ready")
    task = asyncio.create_task(bot.start(fake.token), name="fake-discord-bot")
    waiter = asyncio.create_task(ready.wait())
    try:
        done, _ = await asyncio.wait({task, waiter}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            task.result()
            raise AssertionError("the bot stopped before it was ready")
        if waiter not in done:
            raise AssertionError(f"the bot was not ready within {timeout}s")
        yield bot
    finally:
        waiter.cancel()
        bot.remove_listener(on_ready, "on_ready")
        await bot.close()
        await asyncio.wait_for(task, timeout=timeout)  # re-raises a crash of the bot's run task
