"""A fake Discord voice server on loopback: the voice gateway (TLS websocket, v8) and the UDP media socket.

It speaks the protocol as far as discord.py and discord-ext-voice-recv use it: HELLO, IDENTIFY →
READY (ssrc, UDP port, modes), UDP IP discovery, SELECT_PROTOCOL → SESSION_DESCRIPTION with a secret
key (``aead_xchacha20_poly1305_rtpsize``), heartbeats, CLIENTS_CONNECT and SPEAKING ssrc mappings.
Members "speak" by sending Opus frames of real PCM in transport-encrypted RTP packets at the real pace
(20 ms); what the bot sends back is decrypted and decoded to PCM for the test to hear.

With ``dave_members`` it also offers DAVE (protocol version 1) the way a bot joining a channel whose
members already share an MLS group sees it: the bot's key package (opcode 26) is proposed by the
server's external sender (25), a member commits, the bot gets the welcome (30), says it is ready for
the transition (23) and is told to execute it (22); members' frames are then end-to-end encrypted
inside the transport encryption, and the bot's are opened with a member's session.

discord.py always connects to ``wss://<endpoint>``, so the gateway serves TLS with a throwaway
self-signed certificate; the bot trusts it through its HTTP connector (``client_ssl``).
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import json
import logging
import secrets
import ssl
import struct
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import discord.opus
import numpy as np
from aiohttp import WSMsgType, web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from fakes.voice_rtp import MODE, OPUS_SILENCE, OpenedPacket, open_rtp, seal_rtp

if TYPE_CHECKING:
    from fakes.discord_server import FakeDiscord

__all__ = ["BotPacket", "FakeVoiceServer", "Utterance"]

_log = logging.getLogger(__name__)

IDENTIFY, SELECT_PROTOCOL, READY, HEARTBEAT, SESSION_DESCRIPTION, SPEAKING = 0, 1, 2, 3, 4, 5
HEARTBEAT_ACK, RESUME, HELLO, RESUMED, CLIENTS_CONNECT, CLIENT_DISCONNECT = 6, 7, 8, 9, 11, 13
DAVE_EXECUTE_TRANSITION, DAVE_TRANSITION_READY = 22, 23
MLS_EXTERNAL_SENDER, MLS_KEY_PACKAGE, MLS_WELCOME = 25, 26, 30
DAVE_TRANSITION = 1  # the id of the one transition the fake makes: the bot joining the members' group
FRAME_BYTES = 3840  # 20 ms of 48 kHz stereo 16-bit PCM
SAMPLES_PER_FRAME = 960
SILENCE_FRAMES_AFTER_SPEECH = 5  # what clients send when they stop talking
VOICED_PEAK = 1000  # a frame whose loudest sample is above this carries voice (espeak peaks near 10 000)


def _self_signed(folder: Path) -> tuple[Path, Path, bytes]:
    """A certificate for 127.0.0.1 and its key (files for the server), and the certificate as PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake voice server")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM)
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(pem)
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file, pem


@dataclass(frozen=True, slots=True)
class BotPacket:
    """A packet the bot sent, opened, with when it arrived (``time.perf_counter``) and this process's
    CPU time then (``time.process_time``, for benchmarks on a shared machine)."""

    at: float
    cpu: float
    packet: OpenedPacket


@dataclass(frozen=True, slots=True)
class Utterance:
    """What a member's client sends for one utterance: Opus frames, and which of them carry voice."""

    frames: list[bytes]
    voiced: list[bool]

    @property
    def seconds(self) -> float:
        return len(self.frames) * 0.02


@dataclass
class _Member:
    user_id: int
    ssrc: int
    sequence: int = field(default_factory=lambda: secrets.randbelow(1 << 16))
    timestamp: int = field(default_factory=lambda: secrets.randbelow(1 << 32))
    nonce: int = 0


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, server: FakeVoiceServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.server._datagram(data, addr)


class FakeVoiceServer:
    """One voice server for ``fake``'s guild; ``fake.voice_endpoint`` points the gateway's
    VOICE_SERVER_UPDATE here once started."""

    def __init__(self, fake: FakeDiscord, *, dave_members: Sequence[int] = ()) -> None:
        """``dave_members``: offer DAVE; these members are in an MLS group before the bot comes, which
        one of them adds the bot to (the server's external sender proposes, the first member commits)."""
        self.fake = fake
        self.dave_members = list(dave_members)
        self.dave_sessions: dict[int, Any] = {}  # the members' davey sessions, by user id
        self._dave_sender: Any = None
        self._dave_ready = asyncio.Event()
        self.secret_key = secrets.token_bytes(32)
        self.bot_ssrc = 0x5EED
        self.bot_address: tuple[str, int] | None = None
        self.identified: dict[str, Any] | None = None
        self.selected: dict[str, Any] | None = None
        self.bot_packets: list[BotPacket] = []
        self.bot_speaking: list[tuple[float, int]] = []  # (perf_counter, SPEAKING flags) the bot sent
        self.problems: list[str] = []
        self.members: dict[int, _Member] = {}
        self.end_cpu = 0.0  # process CPU time when the last voiced frame was sent
        self._ws: web.WebSocketResponse | None = None
        self._seq = 0
        self._connected = asyncio.Event()
        self._folder = tempfile.TemporaryDirectory(prefix="fake-voice-")
        self._runner: web.AppRunner | None = None
        self._udp: _Udp | None = None
        self.client_ssl: ssl.SSLContext | None = None
        self.port = 0
        self.udp_port = 0

    # lifecycle

    async def start(self) -> None:
        cert, key, pem = _self_signed(Path(self._folder.name))
        server_ssl = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_ssl.load_cert_chain(cert, key)
        self.client_ssl = ssl.create_default_context(cadata=pem.decode())
        app = web.Application()
        app.router.add_get("/", self._gateway)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=server_ssl).start()
        self.port = self._runner.addresses[0][1]
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_datagram_endpoint(lambda: _Udp(self), local_addr=("127.0.0.1", 0))
        self._udp = protocol
        assert protocol.transport is not None
        self.udp_port = protocol.transport.get_extra_info("sockname")[1]
        self.fake.voice_endpoint = self.endpoint
        if not discord.opus.is_loaded():
            discord.opus._load_default()

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close(code=1000)
        if self._udp is not None and self._udp.transport is not None:
            self._udp.transport.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self._folder.cleanup()

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def assert_clean(self) -> None:
        assert not self.problems, f"fake voice server problems: {self.problems}"

    async def wait_connected(self, timeout: float = 10) -> None:
        """Until the bot has its session description and its UDP address is known."""
        await asyncio.wait_for(self._connected.wait(), timeout)

    # the voice gateway

    async def _send(self, op: int, data: Any) -> None:
        if self._ws is None or self._ws.closed:
            return
        self._seq += 1
        await self._ws.send_str(json.dumps({"op": op, "d": data, "seq": self._seq}))

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        if request.query.get("v") != "8":
            self.problems.append(f"voice gateway version {request.query.get('v')!r}, expected 8")
        self._ws = ws
        await self._send(HELLO, {"heartbeat_interval": 13_750})
        async for message in ws:
            if message.type == WSMsgType.TEXT:
                try:
                    await self._frame(json.loads(message.data))
                except Exception as exc:  # a bug in the fake: report it at teardown
                    self.problems.append(f"voice gateway crashed on {message.data[:200]}: {exc!r}")
            elif message.type == WSMsgType.BINARY:
                try:
                    await self._binary(message.data)
                except Exception as exc:
                    self.problems.append(f"voice gateway crashed on binary opcode {message.data[:1].hex()}: {exc!r}")
        return ws

    async def _frame(self, frame: dict[str, Any]) -> None:
        op, data = frame.get("op"), frame.get("d") or {}
        if op == HEARTBEAT:
            await self._send(HEARTBEAT_ACK, {"t": data.get("t")})
        elif op == IDENTIFY:
            await self._identify(data)
        elif op == SELECT_PROTOCOL:
            await self._select_protocol(data)
        elif op == SPEAKING:
            self.bot_speaking.append((time.perf_counter(), int(data.get("speaking", 0))))
        elif op == RESUME:
            await self._send(RESUMED, None)
        elif op == DAVE_TRANSITION_READY and self.dave_members:
            await self._send(DAVE_EXECUTE_TRANSITION, {"transition_id": data.get("transition_id")})
            self._dave_ready.set()
        else:
            self.problems.append(f"voice gateway received unknown op {op}: {frame}")

    async def _identify(self, data: dict[str, Any]) -> None:
        guild = self.fake.guilds.get(int(data.get("server_id", 0)))
        issued = self.fake.voice_servers.get(guild.id) if guild else None
        state = guild.voice_states.get(self.fake.bot.id) if guild else None
        if (
            issued is None
            or state is None
            or data.get("token") != issued["token"]
            or data.get("session_id") != state["session_id"]
            or int(data.get("user_id", 0)) != self.fake.bot.id
        ):
            self.problems.append(f"voice IDENTIFY does not match the voice state and server update: {data}")
            assert self._ws is not None
            await self._ws.close(code=4004)
            return
        self.identified = data
        modes = [MODE, "xsalsa20_poly1305_lite", "xsalsa20_poly1305_suffix", "xsalsa20_poly1305"]
        await self._send(READY, {"ssrc": self.bot_ssrc, "ip": "127.0.0.1", "port": self.udp_port, "modes": modes})

    async def _select_protocol(self, data: dict[str, Any]) -> None:
        self.selected = data
        chosen = (data.get("data") or {}).get("mode")
        if data.get("protocol") != "udp" or chosen != MODE:
            self.problems.append(f"the bot selected {data}, expected udp and {MODE}")
        await self._send(
            SESSION_DESCRIPTION,
            {
                "mode": chosen,
                "secret_key": list(self.secret_key),
                "dave_protocol_version": 1 if self.dave_members else 0,
            },
        )
        await self._send(CLIENTS_CONNECT, {"user_ids": [str(m) for m in self.members]})
        self._connected.set()

    # DAVE

    async def _send_binary(self, op: int, payload: bytes) -> None:
        """Server-to-client binary frames: sequence number, opcode, payload."""
        assert self._ws is not None
        self._seq += 1
        await self._ws.send_bytes(struct.pack(">HB", self._seq & 0xFFFF, op) + payload)

    async def _binary(self, data: bytes) -> None:
        """The bot's binary frames: opcode then payload. Its key package (26) gets it into the group."""
        op, payload = data[0], data[1:]
        if op != MLS_KEY_PACKAGE or not self.dave_members:
            self.problems.append(f"unexpected binary voice frame, opcode {op}")
            return
        import davey

        from fakes.voice_dave import ExternalSender, dave_group

        if self._dave_sender is None:
            self._dave_sender = ExternalSender()
            self.dave_sessions = dave_group(self._bot_channel(), self.dave_members, self._dave_sender)
        await self._send_binary(MLS_EXTERNAL_SENDER, self._dave_sender.package())
        committer = self.dave_sessions[self.dave_members[0]]
        proposals = self._dave_sender.add_proposals(committer.channel_id, committer.epoch, [payload])
        result = committer.process_proposals(davey.ProposalsOperationType.append, proposals)
        assert result is not None and result.welcome is not None
        for user in self.dave_members[1:]:  # every member gets the proposals; the first commit wins
            self.dave_sessions[user].process_proposals(davey.ProposalsOperationType.append, proposals)
        for session in self.dave_sessions.values():
            session.process_commit(result.commit)
        await self._send_binary(MLS_WELCOME, struct.pack(">H", DAVE_TRANSITION) + result.welcome)

    def _bot_channel(self) -> int:
        assert self.identified is not None
        guild = self.fake.guilds[int(self.identified["server_id"])]
        return int(guild.voice_states[self.fake.bot.id]["channel_id"])

    async def wait_dave_ready(self, timeout: float = 10) -> None:
        """Until the bot joined the members' group and the transition to it was executed."""
        await asyncio.wait_for(self._dave_ready.wait(), timeout)

    # UDP

    def _datagram(self, data: bytes, addr: tuple[str, int]) -> None:
        if len(data) == 74 and data[:2] == b"\x00\x01":  # IP discovery request
            self.bot_address = addr
            reply = struct.pack(">HHI", 2, 70, struct.unpack_from(">I", data, 4)[0])
            reply += addr[0].encode().ljust(64, b"\x00") + struct.pack(">H", addr[1])
            self._sendto(reply)
        elif len(data) == 8:  # the receive extension's UDP keep-alive
            pass
        elif len(data) > 12 and data[0] >> 6 == 2 and data[1] & 0x7F == 0x78:
            try:
                self.bot_packets.append(
                    BotPacket(time.perf_counter(), time.process_time(), open_rtp(self.secret_key, data))
                )
            except Exception as exc:
                self.problems.append(f"a packet from the bot did not open: {exc!r}")
        else:
            self.problems.append(f"unexpected datagram of {len(data)} bytes from the bot")

    def _sendto(self, data: bytes) -> None:
        assert self._udp is not None and self._udp.transport is not None and self.bot_address is not None
        self._udp.transport.sendto(data, self.bot_address)

    # members

    async def add_member(self, user_id: int) -> None:
        """A member in the channel gets an ssrc; the bot learns it from SPEAKING (and CLIENTS_CONNECT)."""
        member = self.members.get(user_id)
        if member is None:
            ssrc = 1000 + len(self.members) * 111
            member = self.members[user_id] = _Member(user_id, ssrc)
        if self._connected.is_set():
            await self._send(CLIENTS_CONNECT, {"user_ids": [str(user_id)]})
        await self._send(SPEAKING, {"user_id": str(user_id), "ssrc": member.ssrc, "speaking": 1})

    def encode(self, pcm48: bytes) -> Utterance:
        """``pcm48`` (48 kHz stereo 16-bit) as a client would send it: Opus frames, then silence frames."""
        pcm48 += b"\x00" * (-len(pcm48) % FRAME_BYTES)
        encoder = discord.opus.Encoder()
        pieces = [pcm48[i : i + FRAME_BYTES] for i in range(0, len(pcm48), FRAME_BYTES)]
        frames = [bytes(encoder.encode(piece, SAMPLES_PER_FRAME)) for piece in pieces]
        voiced = [int(np.abs(np.frombuffer(piece, dtype="<i2")).max()) > VOICED_PEAK for piece in pieces]
        silence = [OPUS_SILENCE] * SILENCE_FRAMES_AFTER_SPEECH
        return Utterance(frames + silence, voiced + [False] * len(silence))

    async def speak(self, user_id: int, pcm48: bytes) -> float:
        """Send ``pcm48`` as ``user_id``'s voice; see ``send``."""
        return await self.send(user_id, self.encode(pcm48))

    async def send(self, user_id: int, utterance: Utterance) -> float:
        """Send ``utterance`` as ``user_id``'s voice at the real pace (a packet every 20 ms); returns
        when the packet of its last voiced frame left (``time.perf_counter``): the end of speech.
        ``end_cpu`` is this process's CPU time at that moment."""
        member = self.members[user_id]
        loop = asyncio.get_running_loop()
        start = loop.time()
        end_of_speech = time.perf_counter()
        for index, (opus, voiced) in enumerate(zip(utterance.frames, utterance.voiced, strict=True)):
            delay = start + index * 0.02 - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            self._sendto(
                seal_rtp(
                    self.secret_key,
                    sequence=member.sequence,
                    timestamp=member.timestamp,
                    ssrc=member.ssrc,
                    opus=self.dave_sessions[user_id].encrypt_opus(opus) if self.dave_sessions else opus,
                    nonce=member.nonce,
                )
            )
            member.sequence = (member.sequence + 1) & 0xFFFF
            member.timestamp = (member.timestamp + SAMPLES_PER_FRAME) & 0xFFFFFFFF
            member.nonce += 1
            if voiced:
                end_of_speech, self.end_cpu = time.perf_counter(), time.process_time()
        return end_of_speech

    # what the bot said

    def bot_audio(self, packets: Sequence[BotPacket] | None = None) -> bytes:
        """The bot's packets (all by default) decoded to 48 kHz stereo PCM, in order of arrival."""
        chosen = self.bot_packets if packets is None else packets
        decoder = discord.opus.Decoder()
        frames = [p.packet.payload for p in chosen if p.packet.payload != OPUS_SILENCE]
        if self.dave_sessions:  # end-to-end encrypted by the bot: a member's session opens it
            import davey

            listener = self.dave_sessions[self.dave_members[0]]
            frames = [bytes(listener.decrypt(self.fake.bot.id, davey.MediaType.audio, f)) for f in frames]
        return b"".join(decoder.decode(frame, fec=False) for frame in frames)

    async def wait_bot_quiet(self, since: int = 0, quiet: float = 0.6, timeout: float = 60) -> None:
        """Until the bot has sent packets after the first ``since`` and then nothing for ``quiet`` seconds."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            await asyncio.sleep(0.1)
            if len(self.bot_packets) > since and time.perf_counter() - self.bot_packets[-1].at >= quiet:
                return
        raise AssertionError(f"the bot did not speak and finish within {timeout}s")
