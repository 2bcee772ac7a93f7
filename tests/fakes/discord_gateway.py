"""The fake gateway: HELLO → IDENTIFY → READY + GUILD_CREATE, heartbeats, dispatch, voice-state echo.

Frames are sent as JSON text, so discord.py never needs its zlib/zstd decompressor
(``DiscordWebSocket.received_message`` only decompresses binary frames).
"""

from __future__ import annotations

import json
import logging
import secrets
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

if TYPE_CHECKING:
    from fakes.discord_server import FakeDiscord

__all__ = ["GatewaySession", "handle_gateway"]

_log = logging.getLogger(__name__)

DISPATCH, HEARTBEAT, IDENTIFY, PRESENCE, VOICE_STATE, RESUME = 0, 1, 2, 3, 4, 6
REQUEST_MEMBERS, INVALIDATE_SESSION, HELLO, HEARTBEAT_ACK = 8, 9, 10, 11
HEARTBEAT_INTERVAL_MS = 41250


class GatewaySession:
    """One connected bot: its socket, sequence number and IDENTIFY payload."""

    def __init__(self, ws: web.WebSocketResponse, query: dict[str, str]) -> None:
        self.ws = ws
        self.query = query
        self.session_id = secrets.token_hex(16)
        self.sequence = 0
        self.identify: dict[str, Any] | None = None
        self.presences: list[dict[str, Any]] = []

    @property
    def intents(self) -> int:
        return int((self.identify or {}).get("intents", 0))

    @property
    def shard(self) -> tuple[int, int]:
        """(shard id, shard count) from IDENTIFY; an unsharded bot is shard 0 of 1."""
        shard = (self.identify or {}).get("shard") or [0, 1]
        return int(shard[0]), int(shard[1])

    def serves(self, guild_id: int | None) -> bool:
        """Whether events of ``guild_id`` go to this session (Discord's rule; DMs go to shard 0)."""
        shard_id, count = self.shard
        return (guild_id >> 22) % count == shard_id if guild_id is not None else shard_id == 0

    async def send(self, op: int, data: Any = None, event: str | None = None) -> None:
        frame: dict[str, Any] = {"op": op, "d": data, "s": None, "t": event}
        if op == DISPATCH:
            self.sequence += 1
            frame["s"] = self.sequence
        if not self.ws.closed:
            await self.ws.send_str(json.dumps(frame))


async def handle_gateway(fake: FakeDiscord, request: web.Request) -> web.WebSocketResponse:
    """Serve one gateway connection until the bot closes it."""
    ws = web.WebSocketResponse(compress=False, max_msg_size=0)
    await ws.prepare(request)
    session = GatewaySession(ws, dict(request.query))
    if session.query.get("encoding", "json") != "json":
        fake.problems.append(f"gateway asked for encoding={session.query.get('encoding')!r}")
        await ws.close(code=4002)
        return ws
    fake.sessions.append(session)
    try:
        await session.send(HELLO, {"heartbeat_interval": HEARTBEAT_INTERVAL_MS})
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                if msg.type == WSMsgType.BINARY:
                    fake.problems.append("gateway received a binary frame")
                continue
            await _handle_frame(fake, session, json.loads(msg.data))
    finally:
        fake.sessions.remove(session)
    return ws


async def _handle_frame(fake: FakeDiscord, session: GatewaySession, frame: dict[str, Any]) -> None:
    op, data = frame.get("op"), frame.get("d")
    fake.gateway_frames.add(frame)
    if op == HEARTBEAT:
        await session.send(HEARTBEAT_ACK)
    elif op == IDENTIFY:
        await _identify(fake, session, data)
    elif op == RESUME:
        # The fake keeps no event backlog: make the bot start a fresh session.
        await session.send(INVALIDATE_SESSION, False)
    elif op == PRESENCE:
        session.presences.append(data)
    elif op == VOICE_STATE:
        await _voice_state(fake, session, data)
    elif op == REQUEST_MEMBERS:
        await _members_chunk(fake, session, data)
    else:
        fake.problems.append(f"gateway received unknown op {op}: {frame}")


async def _identify(fake: FakeDiscord, session: GatewaySession, data: dict[str, Any]) -> None:
    if data.get("token") != fake.token:
        await session.ws.close(code=4004, message=b"Authentication failed.")
        return
    session.identify = data
    ready = {
        "v": 10,
        "user": {**fake.bot.payload(), "verified": True, "mfa_enabled": False},
        "guilds": [{"id": str(g.id), "unavailable": True} for g in fake.guilds.values() if session.serves(g.id)],
        "session_id": session.session_id,
        "shard": list(session.shard),
        "resume_gateway_url": fake.gateway_url,
        "application": {"id": str(fake.application_id), "flags": 0},
        "private_channels": [],
        "relationships": [],
        "presences": [],
        "user_settings": {},
        "geo_ordered_rtc_regions": [],
    }
    await session.send(DISPATCH, ready, "READY")
    for guild in fake.guilds.values():
        if session.serves(guild.id):
            await session.send(DISPATCH, guild.create_payload(), "GUILD_CREATE")


async def _voice_state(fake: FakeDiscord, session: GatewaySession, data: dict[str, Any]) -> None:
    """Echo the bot's own voice state, and the voice server to connect to (``fake.voice_endpoint``: by
    default one nobody listens on; a ``FakeVoiceServer`` sets its own)."""
    fake.voice_requests.add(data)
    guild = fake.guilds[int(data["guild_id"])]
    channel_id = data.get("channel_id")
    state = fake.set_voice_state(
        guild,
        fake.bot.id,
        int(channel_id) if channel_id else None,
        session_id=session.session_id,
        self_mute=bool(data.get("self_mute")),
        self_deaf=bool(data.get("self_deaf")),
    )
    await session.send(DISPATCH, state, "VOICE_STATE_UPDATE")
    if channel_id:
        server = {"token": secrets.token_hex(8), "guild_id": str(guild.id), "endpoint": fake.voice_endpoint}
        fake.voice_servers[guild.id] = server
        await session.send(DISPATCH, server, "VOICE_SERVER_UPDATE")


async def _members_chunk(fake: FakeDiscord, session: GatewaySession, data: dict[str, Any]) -> None:
    guild = fake.guilds[int(data["guild_id"])]
    wanted = {int(u) for u in data.get("user_ids") or ()}
    query = (data.get("query") or "").lower()
    members = [
        m.payload()
        for m in guild.members.values()
        if (not wanted or m.user.id in wanted) and m.user.name.lower().startswith(query)
    ]
    chunk: dict[str, Any] = {
        "guild_id": str(guild.id),
        "members": members,
        "chunk_index": 0,
        "chunk_count": 1,
    }
    if "nonce" in data:
        chunk["nonce"] = data["nonce"]
    await session.send(DISPATCH, chunk, "GUILD_MEMBERS_CHUNK")
