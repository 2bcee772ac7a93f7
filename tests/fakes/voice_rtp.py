"""RTP packets as Discord's voice server relays them, transport-encrypted as discord.py negotiates.

Mode ``aead_xchacha20_poly1305_rtpsize``: the 12-byte RTP header (and, when present, the 4-byte
header-extension preamble) is authenticated but not encrypted; the extension body and the Opus frame
are encrypted with XChaCha20-Poly1305 under the session's secret key; a 32-bit counter is the nonce
(zero-padded to 24 bytes) and travels in the last four bytes. Real clients send a one-byte-header
extension (``0xBEDE``), so packets made here carry one too.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import nacl.secret

__all__ = ["MODE", "OPUS_SILENCE", "OpenedPacket", "open_rtp", "seal_rtp"]

MODE = "aead_xchacha20_poly1305_rtpsize"
OPUS_SILENCE = b"\xf8\xff\xfe"
PAYLOAD_TYPE = 0x78  # Opus, dynamic payload type 120
EXTENSION = b"\xbe\xde\x00\x01"  # one-byte header extensions, one 32-bit word follows
EXTENSION_BODY = b"\x10\xff\x00\x00"  # element id 1 (audio level), one byte, then padding


def seal_rtp(key: bytes, *, sequence: int, timestamp: int, ssrc: int, opus: bytes, nonce: int) -> bytes:
    """One packet from a member: header + extension preamble in clear, the rest sealed, nonce last."""
    header = struct.pack(">BBHII", 0x90, PAYLOAD_TYPE, sequence & 0xFFFF, timestamp & 0xFFFFFFFF, ssrc)
    clear = header + EXTENSION
    counter = struct.pack(">I", nonce & 0xFFFFFFFF)
    box = nacl.secret.Aead(key)
    sealed = box.encrypt(EXTENSION_BODY + opus, clear, counter + bytes(20)).ciphertext
    return clear + sealed + counter


@dataclass(frozen=True, slots=True)
class OpenedPacket:
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes  # the Opus frame (or a DAVE-encrypted one), extension removed


def open_rtp(key: bytes, packet: bytes) -> OpenedPacket:
    """Undo ``seal_rtp`` (or discord.py's own sealing, which sends no extension); raises on a bad tag."""
    first, _, sequence, timestamp, ssrc = struct.unpack_from(">BBHII", packet)
    clear_length = 12 + 4 * (first & 0x0F)
    extended = bool(first & 0x10)
    if extended:
        clear_length += 4
    counter = packet[-4:]
    box = nacl.secret.Aead(key)
    plain = box.decrypt(packet[clear_length:-4], packet[:clear_length], counter + bytes(20))
    if extended:
        words = struct.unpack_from(">H", packet, clear_length - 2)[0]
        plain = plain[4 * words :]
    return OpenedPacket(sequence, timestamp, ssrc, plain)
