"""The common cases of the protocol, with a C accelerator and a pure-Python fallback.

:data:`ProtocolCore` is the base class of :class:`~tether.protocol.connection.Protocol`:
its fields are the protocol's per-message state and its methods the per-message calls
(``receive_data`` of a read that holds only whole messages, ``events_received``,
``data_to_send``, ``send_text`` and ``send_binary`` of an unfragmented message from a
server without extensions). Anything else they leave to the protocol's own methods
(``_receive_more``, ``_send_data``). :class:`PyProtocolCore` is the reference.

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
from typing import TYPE_CHECKING, Any, Protocol

from .masking import apply_mask


if TYPE_CHECKING:
    from .connection import Event, State


__all__ = [
    "SPEEDUPS",
    "Payload",
    "PayloadBuffer",
    "ProtocolCore",
    "PyPayload",
    "PyProtocolCore",
    "parse_messages",
    "py_parse_messages",
]

_pack_b = struct.Struct("!BB").pack
_unpack_h = struct.Struct("!H").unpack_from
_unpack_q = struct.Struct("!Q").unpack_from

_OP_TEXT = 0x1
_OP_BINARY = 0x2


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


class PyProtocolCore:
    """The per-message fields and methods a protocol has in C, written in Python."""

    __slots__ = (
        "_data_limit",
        "_discard",
        "_events",
        "_fast_send",
        "_msg_opcode",
        "_out",
        "_partial_checked",
        "_probe",
        "_server",
        "close_transport",
        "failure_pending",
        "partial_frame",
        "state",
    )

    # Set by the protocol: see Protocol.__init__.
    _events: list[Event]
    _out: list[bytes]
    _server: bool
    _fast_send: bool
    _discard: bool
    _msg_opcode: int
    _probe: Any
    _partial_checked: int
    _data_limit: int
    partial_frame: bool
    failure_pending: bool
    close_transport: bool
    state: State

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Feed bytes received from the network.

        Call :meth:`events_received` and :meth:`data_to_send` afterwards.
        """
        if self._discard or not data:
            return
        mv = data if type(data) is memoryview else memoryview(data)
        if self.partial_frame or self._msg_opcode >= 0:
            self._receive_more(mv, 0)
            return
        # No frame is pending: whole messages in one C call, usually all of the read.
        end = len(mv)
        events: list[str | bytes] = self._events  # type: ignore[assignment]
        consumed = parse_messages(mv, 0, end, self._server, self._data_limit, events)
        if consumed and self._probe is not None:
            self._probe = None
            self._partial_checked = 0
        if consumed < end:
            self._receive_more(mv, consumed)

    def events_received(self) -> list[Event]:
        """Return and clear the events parsed since the last call."""
        events, self._events = self._events, []
        return events

    def data_to_send(self) -> list[bytes]:
        """Return and clear the bytes to write to the network, in order."""
        out, self._out = self._out, []
        return out

    def has_data_to_send(self) -> bool:
        """Tell whether :meth:`data_to_send` would return something."""
        return bool(self._out)

    def send_text(self, data: str | bytes, fin: bool = True) -> None:
        """Queue a text frame; ``data`` is UTF-8 encoded when it is a :class:`str`.

        With ``fin=False`` it starts a fragmented message: continue it with
        :meth:`send_continuation`.
        """
        if isinstance(data, str):
            data = data.encode()
        if fin and self._fast_send and len(data) < 126:
            # Fast path: a small unfragmented message from a server without extensions.
            self._out.append(_pack_b(0x81, len(data)) + data)
            return
        self._send_data(_OP_TEXT, data, fin)

    def send_binary(self, data: bytes | bytearray | memoryview, fin: bool = True) -> None:
        """Queue a binary frame; see :meth:`send_text` for ``fin``."""
        if fin and self._fast_send and len(data) < 126:
            self._out.append(_pack_b(0x82, len(data)) + data)
            return
        self._send_data(_OP_BINARY, data, fin)

    # Implemented by the protocol.

    def _receive_more(self, mv: memoryview, pos: int) -> None:
        """Take ``mv[pos:]`` in the general case (a partial frame, a fragment, ...)."""
        raise NotImplementedError

    def _send_data(self, opcode: int, data: bytes | bytearray | memoryview, fin: bool) -> None:
        """Queue a data frame in the general case."""
        raise NotImplementedError


parse_messages: Callable[
    [bytes | bytearray | memoryview, int, int, bool, int, list[str | bytes]], int
]
Payload: Callable[[int], PayloadBuffer]
SPEEDUPS: bool

if TYPE_CHECKING:
    ProtocolCore = PyProtocolCore
    parse_messages, Payload = py_parse_messages, PyPayload
elif os.environ.get("TETHER_NO_SPEEDUPS") == "1":
    parse_messages, Payload, ProtocolCore, SPEEDUPS = (
        py_parse_messages,
        PyPayload,
        PyProtocolCore,
        False,
    )
else:
    try:
        from ._speedups import Payload, ProtocolCore, parse_messages
    except ImportError:  # pragma: no cover
        parse_messages, Payload, ProtocolCore, SPEEDUPS = (
            py_parse_messages,
            PyPayload,
            PyProtocolCore,
            False,
        )
    else:
        SPEEDUPS = True
