"""The voice server's part of DAVE, offline: an MLS external sender that puts davey sessions in one group.

Discord's voice server is the group's external sender: it announces its signing key (opcode 25),
collects each member's key package (26) and sends Add proposals it signs (27); one member commits
them and the others join from the welcome (28-30). Here the proposals are framed as RFC 9420
``PublicMessage``s from an external sender (no group context in what is signed, no membership tag)
and signed with ECDSA P-256 (ciphersuite 2, the one DAVE uses).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

import davey
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

__all__ = ["ExternalSender", "dave_group"]

MLS10 = 1
PUBLIC_MESSAGE = 1
SENDER_EXTERNAL = 2
CONTENT_PROPOSAL = 2
PROPOSAL_ADD = 1
CREDENTIAL_BASIC = 1


def _varint(n: int) -> bytes:
    """MLS variable-length integer (RFC 9420 §2.1.2)."""
    if n < 1 << 6:
        return bytes([n])
    if n < 1 << 14:
        return struct.pack(">H", 0x4000 | n)
    return struct.pack(">I", 0x8000_0000 | n)


def _vector(data: bytes) -> bytes:
    return _varint(len(data)) + data


class ExternalSender:
    """A signing key standing for the voice server."""

    def __init__(self) -> None:
        self._key = ec.generate_private_key(ec.SECP256R1())

    def package(self) -> bytes:
        """The external sender package (opcode 25's body): signature key and a basic credential."""
        public = self._key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return _vector(public) + struct.pack(">H", CREDENTIAL_BASIC) + _vector(b"\x00")

    def add_proposals(self, group_id: int, epoch: int, key_packages: Sequence[bytes]) -> bytes:
        """Opcode 27's body after its operation byte: signed Add proposals for ``key_packages``."""
        return _vector(b"".join(self._add(group_id, epoch, package) for package in key_packages))

    def _add(self, group_id: int, epoch: int, key_package: bytes) -> bytes:
        framing = struct.pack(">HH", MLS10, PUBLIC_MESSAGE)
        content = (
            _vector(struct.pack(">Q", group_id))
            + struct.pack(">QBI", epoch, SENDER_EXTERNAL, 0)
            + _vector(b"")  # authenticated data
            + struct.pack(">BH", CONTENT_PROPOSAL, PROPOSAL_ADD)
            + key_package
        )
        to_sign = _vector(b"MLS 1.0 FramedContentTBS") + _vector(framing + content)
        signature = self._key.sign(to_sign, ec.ECDSA(hashes.SHA256()))
        return framing + content + _vector(signature)


def dave_group(
    channel_id: int, user_ids: Sequence[int], sender: ExternalSender | None = None
) -> dict[int, davey.DaveSession]:
    """One davey session per user, all in one ready group; the first user commits the others' adds."""
    sender = sender or ExternalSender()
    sessions = {user: davey.DaveSession(davey.DAVE_PROTOCOL_VERSION, user, channel_id) for user in user_ids}
    packages = {}
    for user, session in sessions.items():
        session.set_external_sender(sender.package())
        packages[user] = session.get_serialized_key_package()
    first, *others = user_ids
    proposals = sender.add_proposals(channel_id, 0, [packages[user] for user in others])
    result = sessions[first].process_proposals(davey.ProposalsOperationType.append, proposals)
    assert result is not None and result.welcome is not None, "the committer made no commit"
    sessions[first].process_commit(result.commit)
    for user in others:
        sessions[user].process_welcome(result.welcome)
    assert all(s.ready for s in sessions.values()), "a session did not become ready"
    return sessions
