"""The common case of frame parsing, with a C accelerator and a pure-Python fallback.

:func:`parse_messages` turns every complete, final, uncompressed text or binary frame at
the head of a buffer into a message, and stops at the first frame it doesn't handle, which
the full parser in :mod:`tether.protocol.connection` then takes (errors included). Both
implementations give identical results; ``tests/protocol/test_fastpath.py`` checks it.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable

from .masking import apply_mask


__all__ = ["SPEEDUPS", "parse_messages", "py_parse_messages"]

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


parse_messages: Callable[
    [bytes | bytearray | memoryview, int, int, bool, int, list[str | bytes]], int
]
SPEEDUPS: bool

if os.environ.get("TETHER_NO_SPEEDUPS") == "1":
    parse_messages, SPEEDUPS = py_parse_messages, False
else:
    try:
        from ._speedups import parse_messages as _c_parse_messages
    except ImportError:  # pragma: no cover
        parse_messages, SPEEDUPS = py_parse_messages, False
    else:
        parse_messages, SPEEDUPS = _c_parse_messages, True
