"""WebSocket frames (RFC 6455 section 5): opcodes, the :class:`Frame` value, serialization.

Parsing lives in :mod:`tether.protocol.connection`, which pulls every complete frame out
of a buffer in one pass without building a :class:`Frame` per data frame.
"""

from __future__ import annotations

import dataclasses
import enum
import struct


__all__ = [
    "CTRL_OPCODES",
    "DATA_OPCODES",
    "Frame",
    "Opcode",
    "serialize_header",
    "serialize_unmasked",
]


class Opcode(enum.IntEnum):
    """Frame opcodes (RFC 6455 section 5.2)."""

    CONT = 0x0
    TEXT = 0x1
    BINARY = 0x2
    CLOSE = 0x8
    PING = 0x9
    PONG = 0xA


DATA_OPCODES = frozenset({Opcode.CONT, Opcode.TEXT, Opcode.BINARY})
CTRL_OPCODES = frozenset({Opcode.CLOSE, Opcode.PING, Opcode.PONG})


@dataclasses.dataclass(slots=True)
class Frame:
    """One WebSocket frame, unmasked.

    Attributes:
        opcode: the frame's opcode.
        data: the payload, unmasked.
        fin: whether this is the last frame of a message.
        rsv1: the RSV1 bit (permessage-deflate marks compressed messages with it).
        rsv2: the RSV2 bit.
        rsv3: the RSV3 bit.
    """

    opcode: int
    data: bytes
    fin: bool = True
    rsv1: bool = False
    rsv2: bool = False
    rsv3: bool = False

    def __str__(self) -> str:
        try:
            name = Opcode(self.opcode).name
        except ValueError:
            name = hex(self.opcode)
        flags = "" if self.fin else " (fragment)"
        return f"{name} {len(self.data)} bytes{flags}"


_pack_b = struct.Struct("!BB").pack
_pack_h = struct.Struct("!BBH").pack
_pack_q = struct.Struct("!BBQ").pack


def serialize_header(first_byte: int, length: int, mask: bytes | None) -> bytes:
    """Build a frame header.

    Args:
        first_byte: FIN, RSV1-3 and opcode, already combined.
        length: payload length.
        mask: the 4-byte masking key for a client frame, or ``None``.
    """
    mask_bit = 0x80 if mask is not None else 0
    if length < 126:
        header = _pack_b(first_byte, mask_bit | length)
    elif length < 65536:
        header = _pack_h(first_byte, mask_bit | 126, length)
    else:
        header = _pack_q(first_byte, mask_bit | 127, length)
    if mask is not None:
        return header + mask
    return header


def serialize_unmasked(opcode: int, payload: bytes) -> bytes:
    """Build a complete, final, unmasked frame (what a server sends)."""
    return serialize_header(0x80 | opcode, len(payload), None) + payload
