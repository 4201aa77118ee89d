"""Payload masking (RFC 6455 section 5.3): a C accelerator with a pure-Python fallback.

Both implementations give identical results; ``tests/protocol/test_masking.py`` checks it.
Set ``TETHER_NO_SPEEDUPS=1`` to force the fallback.
"""

from __future__ import annotations

import os
from collections.abc import Callable


__all__ = ["apply_mask", "py_apply_mask", "SPEEDUPS"]


def py_apply_mask(
    data: bytes | bytearray | memoryview, mask: bytes | bytearray | memoryview, offset: int = 0
) -> bytes:
    """XOR ``data`` with the 4-byte ``mask``, starting at mask position ``offset % 4``.

    XOR is done on one big integer, which is far faster in CPython than a byte loop.
    """
    if len(mask) != 4:
        raise ValueError("mask must contain 4 bytes")
    if offset < 0:
        raise ValueError("offset must be non-negative")
    n = len(data)
    if n == 0:
        return b""
    shift = offset & 3
    mask = bytes(mask)
    key = (mask[shift:] + mask[:shift]) * ((n >> 2) + 1)
    result = int.from_bytes(data, "little") ^ int.from_bytes(key[:n], "little")
    return result.to_bytes(n, "little")


apply_mask: Callable[..., bytes]
SPEEDUPS: bool

if os.environ.get("TETHER_NO_SPEEDUPS") == "1":
    apply_mask, SPEEDUPS = py_apply_mask, False
else:
    try:
        from ._speedups import apply_mask as _c_apply_mask
    except ImportError:  # pragma: no cover
        apply_mask, SPEEDUPS = py_apply_mask, False
    else:
        apply_mask, SPEEDUPS = _c_apply_mask, True
