"""A discord.py VoiceClient that records the packets it would send, so the real player thread, Opus
encoder and transport encryption run in tests without a voice server."""

from __future__ import annotations

from typing import Any

import discord
import nacl.secret
import nacl.utils
from discord.voice_state import ConnectionFlowState, VoiceConnectionState


class _FakeVoiceWebSocket:
    def __init__(self) -> None:
        self.speaking: list[Any] = []

    async def speak(self, state: Any) -> None:
        self.speaking.append(state)


class _RecordingState(VoiceConnectionState):
    """The real connection state, but packets are recorded instead of sent over UDP."""

    def __init__(self, voice_client: discord.VoiceClient) -> None:
        super().__init__(voice_client)
        self.packets: list[bytes] = []

    def send_packet(self, packet: bytes) -> None:
        self.packets.append(bytes(packet))


class RecordingVoiceClient(discord.VoiceClient):
    """A VoiceClient whose connect() marks the connection ready without any network."""

    def create_connection_state(self) -> VoiceConnectionState:
        return _RecordingState(self)

    async def connect(self, *, reconnect: bool = True, timeout: float = 30.0, **_: Any) -> None:
        state = self._connection
        state.secret_key = list(nacl.utils.random(nacl.secret.Aead.KEY_SIZE))
        state.mode = "aead_xchacha20_poly1305_rtpsize"
        state.ssrc = 0x5EED
        state.ws = _FakeVoiceWebSocket()  # type: ignore[assignment]
        state.state = ConnectionFlowState.connected

    async def disconnect(self, *, force: bool = False) -> None:
        self.stop()
        self._connection.state = ConnectionFlowState.disconnected
        self._connection._socket_reader.stop()
        self.cleanup()  # as a real disconnect does: the guild forgets this voice client

    @property
    def packets(self) -> list[bytes]:
        return self._connection.packets  # type: ignore[attr-defined]
