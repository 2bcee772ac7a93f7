"""The DAVE (end-to-end encryption) step for received voice, which the receive extension lacks.

Discord voice has two layers: the transport encryption of each RTP packet (the extension removes it)
and, since DAVE became mandatory, an end-to-end encrypted Opus frame inside. discord.py already keeps
the DAVE session (``davey``) for sending; the same session decrypts what a member sends, given the
member's user id (from the SPEAKING ssrc mapping). This module adds that step after the extension's
transport decryption and nothing else, so it can be deleted once the extension does it itself.
Verified offline: with davey sessions in one group made by a test external sender (a member's frame
decrypts; one attributed to the wrong member becomes silence), and end to end against a fake voice
server that adds the bot to its members' group; Discord's own voice server and clients are verified
only against real Discord (see the README).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

__all__ = ["OPUS_SILENCE", "add_dave_step", "dave_decrypt"]

log = logging.getLogger(__name__)

OPUS_SILENCE = b"\xf8\xff\xfe"
"""The Opus silence frame Discord sends unencrypted at the end of speech."""


def dave_decrypt(state: Any, user_id: int | None, payload: bytes) -> bytes:
    """``payload`` (an Opus frame, transport layer removed) with the DAVE layer removed.

    ``state`` is discord.py's ``VoiceConnectionState``. Without a DAVE session (protocol version 0)
    frames are plain. A frame that cannot be decrypted becomes silence unless the member's decryptor
    is in pass-through (the transition periods of the protocol), so garbage never reaches the decoder.
    """
    session = getattr(state, "dave_session", None)
    if session is None or getattr(state, "dave_protocol_version", 0) == 0 or payload == OPUS_SILENCE:
        return payload
    if user_id is None:  # no SPEAKING mapping yet: whose key to use is unknown
        return OPUS_SILENCE
    import davey

    try:
        if session.ready:
            return bytes(session.decrypt(user_id, davey.MediaType.audio, payload))
    except Exception:  # davey raises its own errors for frames of an old epoch or a wrong key
        log.debug("DAVE decryption failed for user %s", user_id, exc_info=True)
    try:
        if session.can_passthrough(user_id):
            return payload
    except Exception:
        log.debug("no DAVE decryptor for user %s", user_id, exc_info=True)
    return OPUS_SILENCE


def add_dave_step(reader: Any, voice_client: Any) -> None:
    """Wrap the extension reader's RTP decryption so DAVE is removed after the transport layer."""
    transport: Callable[[Any], bytes] = reader.decryptor.decrypt_rtp

    def decrypt_rtp(packet: Any) -> bytes:
        payload = transport(packet)
        return dave_decrypt(voice_client._connection, voice_client._get_id_from_ssrc(packet.ssrc), payload)

    reader.decryptor.decrypt_rtp = decrypt_rtp
