"""The DAVE step added to received voice, checked offline: the pass-through cases, and real frames
encrypted by a member's davey session in a group the bot's session is in."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from teachbot.transports.discord.listen_dave import OPUS_SILENCE, dave_decrypt

davey = pytest.importorskip("davey")

FRAME = b"\xfc\x01\x02\x03 an opus frame"


@dataclass
class State:
    dave_session: Any = None
    dave_protocol_version: int = 0


def test_without_dave_frames_pass_unchanged() -> None:
    assert dave_decrypt(State(), 42, FRAME) == FRAME
    session = davey.DaveSession(davey.DAVE_PROTOCOL_VERSION, 1, 2)
    assert dave_decrypt(State(session, 0), 42, FRAME) == FRAME  # the call downgraded to no E2EE


def test_silence_frames_are_never_encrypted() -> None:
    session = davey.DaveSession(davey.DAVE_PROTOCOL_VERSION, 1, 2)
    assert dave_decrypt(State(session, davey.DAVE_PROTOCOL_VERSION), None, OPUS_SILENCE) == OPUS_SILENCE


def test_a_frame_of_an_unknown_speaker_becomes_silence_not_garbage() -> None:
    session = davey.DaveSession(davey.DAVE_PROTOCOL_VERSION, 1, 2)
    assert dave_decrypt(State(session, davey.DAVE_PROTOCOL_VERSION), None, FRAME) == OPUS_SILENCE


def test_a_member_without_a_decryptor_in_the_group_is_silence_even_in_passthrough() -> None:
    """davey keeps a decryptor per group member: one not in the group cannot pass plain frames."""
    session = davey.DaveSession(davey.DAVE_PROTOCOL_VERSION, 1, 2)
    session.set_passthrough_mode(True, 10)
    assert not session.ready
    assert dave_decrypt(State(session, davey.DAVE_PROTOCOL_VERSION), 42, FRAME) == OPUS_SILENCE


# -- real DAVE frames: the bot and members in one group made offline (``fakes.voice_dave``) ----------------

CHANNEL, BOT, ALICE, BOB = 927310423890473011, 1001, 2002, 3003


def opus_frame() -> bytes:
    """20 ms of a 440 Hz tone as a real Opus frame, as a member's client would encrypt it."""
    import discord.opus

    if not discord.opus.is_loaded():
        discord.opus._load_default()
    t = np.arange(960) / 48_000
    tone = np.repeat((8000 * np.sin(2 * np.pi * 440 * t)).astype("<i2"), 2).tobytes()
    return bytes(discord.opus.Encoder().encode(tone, 960))


@pytest.fixture(scope="module")
def group() -> dict[int, Any]:
    pytest.importorskip("cryptography")
    from fakes.voice_dave import dave_group

    return dave_group(CHANNEL, [BOT, ALICE, BOB])


def test_a_members_encrypted_frame_is_decrypted_with_the_bots_session(group: dict[int, Any]) -> None:
    frame = opus_frame()
    sealed = group[ALICE].encrypt_opus(frame)
    assert sealed != frame and frame not in sealed  # really end-to-end encrypted
    state = State(group[BOT], davey.DAVE_PROTOCOL_VERSION)
    assert dave_decrypt(state, ALICE, sealed) == frame
    assert dave_decrypt(state, BOB, group[BOB].encrypt_opus(frame)) == frame


def test_a_frame_attributed_to_the_wrong_member_is_silence_not_garbage(group: dict[int, Any]) -> None:
    """A stale or wrong ssrc mapping must not feed the decoder another member's ciphertext."""
    sealed = group[ALICE].encrypt_opus(opus_frame())
    assert dave_decrypt(State(group[BOT], davey.DAVE_PROTOCOL_VERSION), BOB, sealed) == OPUS_SILENCE


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the extension imports audioop and aifc
def test_the_step_runs_after_the_extensions_transport_decryption(group: dict[int, Any]) -> None:
    """Through the extension's own RTP parsing and transport decryption, then the DAVE step, to PCM."""
    import discord.opus
    from discord.ext.voice_recv import rtp
    from discord.ext.voice_recv.reader import PacketDecryptor
    from fakes.voice_rtp import MODE, seal_rtp

    from teachbot.transports.discord.listen_dave import add_dave_step

    key = bytes(range(32))
    ssrc = 4242

    @dataclass
    class Reader:
        decryptor: Any

    @dataclass
    class VoiceClient:
        _connection: State

        def _get_id_from_ssrc(self, found: int) -> int | None:
            return ALICE if found == ssrc else None

    reader = Reader(PacketDecryptor(MODE, key))
    add_dave_step(reader, VoiceClient(State(group[BOT], davey.DAVE_PROTOCOL_VERSION)))
    frame = opus_frame()
    packet = seal_rtp(key, sequence=7, timestamp=960 * 7, ssrc=ssrc, opus=group[ALICE].encrypt_opus(frame), nonce=7)
    opened = reader.decryptor.decrypt_rtp(rtp.decode_rtp(packet))
    assert opened == frame
    pcm = discord.opus.Decoder().decode(opened, fec=False)
    assert len(pcm) == 3840 and max(abs(s) for s in memoryview(pcm).cast("h")) > 2000
