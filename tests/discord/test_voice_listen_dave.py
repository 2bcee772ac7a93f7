"""The DAVE step added to received voice: what can be checked without a real Discord voice server."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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
