"""The receive sink between the extension and a listening session: whose frames go where."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

pytest.importorskip("discord.ext.voice_recv")
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the extension imports audioop and aifc

ALICE_SSRC, BOB_SSRC = 1000, 2000


@dataclass
class Session:
    """Records what a ``ListeningSession`` would be fed."""

    fed: list[tuple[int, bytes]] = field(default_factory=list)

    def feed(self, user_id: int, frame: bytes) -> None:
        self.fed.append((user_id, frame))

    def packets_stopped(self, user_id: int) -> None:
        pass


@dataclass
class Member:
    id: int


def frame(ssrc: int, n: int) -> object:
    from discord.ext.voice_recv.opus import VoiceData
    from discord.ext.voice_recv.rtp import FakePacket

    return VoiceData(FakePacket(ssrc, n, n * 960), None, pcm=bytes([n]) * 3840)


def test_frames_before_the_speaking_mapping_are_fed_first_once_it_is_known() -> None:
    """Packets can beat the SPEAKING message: the start of what was said (often the bot's name) is kept."""
    from teachbot.transports.discord.listen import make_sink

    session = Session()
    sink = make_sink(session)  # type: ignore[arg-type]
    alice, bob = Member(7), Member(8)
    for n in range(3):
        sink.write(None, frame(ALICE_SSRC, n))  # no mapping yet: the extension knows no user
    sink.write(None, frame(BOB_SSRC, 10))
    assert session.fed == []
    sink.write(alice, frame(ALICE_SSRC, 3))
    assert session.fed == [(7, bytes([n]) * 3840) for n in range(4)]
    sink.write(alice, frame(ALICE_SSRC, 4))
    assert session.fed[-1] == (7, bytes([4]) * 3840) and len(session.fed) == 5  # nothing fed twice
    sink.write(bob, frame(BOB_SSRC, 11))
    assert session.fed[-2:] == [(8, bytes([10]) * 3840), (8, bytes([11]) * 3840)]


def test_frames_of_an_ssrc_never_mapped_are_held_briefly_not_forever() -> None:
    from teachbot.transports.discord.listen import HELD_FRAMES, HELD_SPEAKERS, make_sink

    session = Session()
    sink = make_sink(session)  # type: ignore[arg-type]
    for n in range(HELD_FRAMES + 20):
        sink.write(None, frame(ALICE_SSRC, n % 256))
    for ssrc in range(HELD_SPEAKERS + 5):
        sink.write(None, frame(5000 + ssrc, 1))
    sink.write(Member(7), frame(ALICE_SSRC, 99))
    assert session.fed == [(7, bytes([99]) * 3840)]  # alice's old frames were dropped with the oldest speaker
    sink.write(Member(9), frame(5000 + HELD_SPEAKERS + 4, 2))
    assert session.fed[-2:] == [(9, bytes([1]) * 3840), (9, bytes([2]) * 3840)]
