"""The common case of frame parsing, with a C accelerator and a pure-Python fallback.

:func:`parse_messages` turns every complete, final, uncompressed text or binary frame at
the head of a buffer into a message, and stops at the first frame it doesn't handle, which
the full parser in :mod:`tether.protocol.connection` then takes (errors included).

:class:`Payload` holds a large binary message while its frame arrives: the socket reads
into it, it is unmasked in place, and it is taken as the ``bytes`` the application gets.
The C version writes into that ``bytes`` object itself, so the payload is never copied out
of a read buffer; the pure-Python version fills a ``bytearray`` and copies it once at the
end. Both implementations give identical results; ``tests/protocol/test_fastpath.py``
checks it.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from typing import Protocol

from .masking import apply_mask


__all__ = [
    "SPEEDUPS",
    "Payload",
    "PayloadBuffer",
    "PyPayload",
    "parse_messages",
    "py_parse_messages",
]

_unpack_h = struct.Struct("!H").unpack_from
_unpack_q = struct.Struct("!Q").unpack_from


def py_parse_messages(
    data: bytes | bytearray | memoryview,
    pos: int,
    end: int,
    masked: bool,
    limit: int,
    events: list[str | bytes],
) -> int:
    """Append complete unfragmented messages from ``data[pos:end]`` to ``events``.

    Args:
        data: the receive buffer.
        pos: where the next frame starts.
        end: where the received bytes end.
        masked: whether frames must be masked (a server reading a client).
        limit: largest payload to accept here, or -1 for none; bigger frames are left to
            the full parser, which fails them.
        events: list to append ``bytes`` (binary) and ``str`` (text) messages to.

    Returns:
        The position after the last frame handled.
    """
    end = min(end, len(data))
    while end - pos >= 2:
        b0 = data[pos]
        if b0 != 0x81 and b0 != 0x82:
            break
        b1 = data[pos + 1]
        if bool(b1 & 0x80) != masked:
            break
        length = b1 & 0x7F
        hlen = 2
        if length == 126:
            if end - pos < 4:
                break
            (length,) = _unpack_h(data, pos + 2)
            hlen = 4
        elif length == 127:
            if end - pos < 10:
                break
            (length,) = _unpack_q(data, pos + 2)
            hlen = 10
        if masked:
            hlen += 4
        if 0 <= limit < length:
            break
        start = pos + hlen
        if end - start < length:
            break
        view = memoryview(data)
        if masked:
            payload = apply_mask(view[start : start + length], view[start - 4 : start])
        else:
            payload = view[start : start + length].tobytes()
        if b0 == 0x81:
            try:
                events.append(payload.decode())
            except UnicodeDecodeError:
                break
        else:
            events.append(payload)
        pos = start + length
    return pos


class PayloadBuffer(Protocol):
    """What :data:`Payload` makes: see :class:`PyPayload` for each method."""

    @property
    def size(self) -> int: ...
    def fill(
        self, pos: int, src: bytes | bytearray | memoryview, mask: bytes | None = None
    ) -> None: ...
    def unmask(self, start: int, end: int, mask: bytes) -> None: ...
    def view(self) -> memoryview: ...
    def take(self) -> bytes: ...


class PyPayload:
    """A binary message's payload of ``size`` bytes, filled in place, then taken as bytes.

    Byte ``i`` of a masked payload is XORed with key byte ``i % 4`` (RFC 6455 section
    5.3), whatever piece of the payload it arrives in.
    """

    __slots__ = ("_data", "_taken")

    def __init__(self, size: int) -> None:
        if size < 0:
            raise ValueError("size must be non-negative")
        self._data = bytearray(size)
        self._taken = False

    @property
    def size(self) -> int:
        """Length of the payload in bytes."""
        return len(self._data)

    def _check(self, start: int, n: int) -> None:
        if self._taken:
            raise ValueError("payload already taken")
        if start < 0 or n < 0 or start > len(self._data) - n:
            raise ValueError("range outside the payload")

    def fill(
        self, pos: int, src: bytes | bytearray | memoryview, mask: bytes | None = None
    ) -> None:
        """Write ``src`` at ``pos``, unmasked with ``mask`` unless it is ``None``."""
        n = len(src)
        if mask is not None and len(mask) != 4:
            raise ValueError("mask must contain 4 bytes")
        self._check(pos, n)
        self._data[pos : pos + n] = src if mask is None else apply_mask(src, mask, pos)

    def unmask(self, start: int, end: int, mask: bytes) -> None:
        """Unmask ``payload[start:end]`` in place."""
        if len(mask) != 4:
            raise ValueError("mask must contain 4 bytes")
        self._check(start, end - start)
        data = self._data
        data[start:end] = apply_mask(memoryview(data)[start:end], mask, start)

    def view(self) -> memoryview:
        """A writable view of the whole payload, for a socket to read into."""
        if self._taken:
            raise BufferError("payload already taken")
        return memoryview(self._data)

    def take(self) -> bytes:
        """The payload as ``bytes``; nothing can be written to it afterwards."""
        self._check(0, 0)
        self._taken = True
        return bytes(self._data)


parse_messages: Callable[
    [bytes | bytearray | memoryview, int, int, bool, int, list[str | bytes]], int
]
Payload: Callable[[int], PayloadBuffer]
SPEEDUPS: bool

if os.environ.get("TETHER_NO_SPEEDUPS") == "1":
    parse_messages, Payload, SPEEDUPS = py_parse_messages, PyPayload, False
else:
    try:
        from ._speedups import Payload as _CPayload, parse_messages as _c_parse_messages
    except ImportError:  # pragma: no cover
        parse_messages, Payload, SPEEDUPS = py_parse_messages, PyPayload, False
    else:
        parse_messages, Payload, SPEEDUPS = _c_parse_messages, _CPayload, True
