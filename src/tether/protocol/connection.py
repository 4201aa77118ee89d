"""The sans-I/O WebSocket connection: RFC 6455 sections 5-7 after the opening handshake.

Theory of operation
-------------------

A :class:`Protocol` is fed bytes with :meth:`~Protocol.receive_data` (or, without a copy,
through :meth:`~Protocol.get_buffer` and :meth:`~Protocol.buffer_updated`) and EOF with
:meth:`~Protocol.receive_eof`. Each call parses every complete frame in one pass, answers
pings and close frames by itself, and queues what the application must see. Callers then
drain :meth:`~Protocol.events_received` and :meth:`~Protocol.data_to_send`.

Events are whole messages (:class:`str` for text, :class:`bytes` for binary) and
:class:`~tether.protocol.frames.Frame` objects for PING, PONG and CLOSE. A message is
assembled here, bounded by :class:`~tether.protocol.limits.Limits`, so the runtime only
moves whole messages.

The state is one of CONNECTING, OPEN, CLOSING, CLOSED (:class:`State`). Any violation by
the peer *fails the connection* (RFC 6455 section 7.1.7): a close frame with the right code
is queued, further input is discarded and :attr:`~Protocol.close_transport` turns true.
The runtime closes the TCP connection when it does; a client waits for the server to close
first after a clean close handshake (section 7.1.1) and uses a timeout.
"""

from __future__ import annotations

import codecs
import enum
import os
import struct
from collections.abc import Sequence

from ..exceptions import InvalidState, PayloadTooBig, ProtocolError
from .close import Close, CloseCode
from .extensions.base import Extension
from .fastpath import Payload, PayloadBuffer, ProtocolCore, parse_messages
from .frames import Frame, Opcode, serialize_header
from .limits import Limits
from .masking import apply_mask, masked_frame


__all__ = ["CLIENT", "Event", "Protocol", "SERVER", "Side", "State"]


class Side(enum.IntEnum):
    """Which end of the connection this is."""

    SERVER = 0
    CLIENT = 1


SERVER = Side.SERVER
CLIENT = Side.CLIENT


class State(enum.IntEnum):
    """Connection state (RFC 6455 section 4 and 7)."""

    CONNECTING = 0
    OPEN = 1
    CLOSING = 2
    CLOSED = 3


Event = str | bytes | Frame
"""What :meth:`Protocol.events_received` returns: a message, or a control frame."""

_pack_b = struct.Struct("!BB").pack
_unpack_h = struct.Struct("!H").unpack_from
_unpack_q = struct.Struct("!Q").unpack_from
_UTF8Decoder = codecs.getincrementaldecoder("utf-8")

# Masks come from the OS's CSPRNG (RFC 6455 section 5.3: "derived from a strong source of
# entropy"); fetching them in batches saves a system call per frame.
_MASK_POOL_SIZE = 4096

_OP_CONT = Opcode.CONT.value
_OP_TEXT = Opcode.TEXT.value
_OP_BINARY = Opcode.BINARY.value
_OP_CLOSE = Opcode.CLOSE.value
_OP_PING = Opcode.PING.value
_OP_PONG = Opcode.PONG.value

# An unfragmented binary frame at least this large that is incomplete after a read is read
# to its end straight into the bytes object the application receives (see Payload).
_DIRECT_MIN = 65536

# Messages up to this size are sent as one bytes object (header + payload); larger ones
# as two objects so the payload is never copied just to prepend a header.
_JOIN_LIMIT = 2048


class Protocol(ProtocolCore):
    """A WebSocket connection after the opening handshake, as a state machine.

    Args:
        side: :data:`CLIENT` or :data:`SERVER`; decides masking (RFC 6455 section 5.1).
        state: initial state; :attr:`State.OPEN` once the handshake is done.
        limits: size limits; a breach fails the connection with 1009.
        extensions: negotiated extensions (at most one may use RSV1).
    """

    __slots__ = (
        "_buf",
        "_buf_len",
        "_direct",
        "_direct_mask",
        "_direct_pos",
        "_ext",
        "_mask_pool",
        "_mask_pos",
        "_max_frame",
        "_max_message",
        "_msg_compressed",
        "_msg_decoder",
        "_msg_frames",
        "_msg_parts",
        "_msg_size",
        "_msg_text",
        "_rsv1_ok",
        "_sending_message",
        "close_rcvd",
        "close_rcvd_then_sent",
        "close_sent",
        "eof_rcvd",
        "extensions",
        "failure",
        "limits",
        "max_fragments",
        "side",
    )

    def __init__(
        self,
        side: Side,
        *,
        state: State = State.OPEN,
        limits: Limits | None = None,
        extensions: Sequence[Extension] = (),
    ) -> None:
        self.side = side
        self._server = side is Side.SERVER
        self.state = state
        self.limits = limits = limits if limits is not None else Limits()
        self._set_extensions(extensions)

        self._max_message = limits.max_message_size
        self._max_frame = limits.max_frame_size
        self._data_limit = self._limit()
        self.max_fragments = limits.max_fragments

        # Output.
        self._out: list[bytes] = []
        self._events: list[Event] = []
        self._mask_pool = b""
        self._mask_pos = 0
        self._sending_message = False
        # True while a small final frame may skip every check in _send_data: server side,
        # no extension, OPEN, no fragmented message in progress.
        self._fast_send = side is Side.SERVER and self._ext is None and state is State.OPEN

        # Input buffer holding a partial frame between reads; empty when idle.
        self._buf = bytearray()
        self._buf_len = 0
        self.partial_frame = False
        """A frame is partly received: :meth:`get_buffer` returns where the rest goes."""
        self._discard = False
        # Large binary message being read in place: its payload, the frame's mask (None
        # from a server) and how many payload bytes arrived.
        self._direct: PayloadBuffer | None = None
        self._direct_mask: bytes | None = None
        self._direct_pos = 0

        # Message being reassembled.
        self._msg_opcode = -1
        self._msg_parts: list[bytes] = []
        self._msg_text: list[str] = []
        self._msg_size = 0
        self._msg_frames = 0
        self._msg_decoder: codecs.IncrementalDecoder | None = None
        self._msg_compressed = False
        # How many payload bytes of the partial frame at the head of _buf were already
        # UTF-8 validated (fail fast inside a frame, RFC 6455 section 8.1).
        self._partial_checked = 0
        self._probe: codecs.IncrementalDecoder | None = None

        # Close handshake.
        self.close_rcvd: Close | None = None
        self.close_sent: Close | None = None
        self.close_rcvd_then_sent: bool | None = None
        self.close_transport = False
        self.eof_rcvd = False
        self.failure: ProtocolError | None = None
        """The error that failed the connection, if the peer broke the protocol."""
        self.failure_pending = False
        """A protocol error waits for the application to consume earlier messages."""

    @property
    def max_message_size(self) -> int | None:
        """Largest message accepted, in bytes; ``None`` for no limit."""
        return self._max_message

    @max_message_size.setter
    def max_message_size(self, size: int | None) -> None:
        self._max_message = size
        self._data_limit = self._limit()

    @property
    def max_frame_size(self) -> int | None:
        """Largest frame payload accepted, in bytes; ``None`` for no limit."""
        return self._max_frame

    @max_frame_size.setter
    def max_frame_size(self, size: int | None) -> None:
        self._max_frame = size
        self._data_limit = self._limit()

    def _set_extensions(self, extensions: Sequence[Extension]) -> None:
        self.extensions = list(extensions)
        self._ext: Extension | None = self.extensions[0] if self.extensions else None
        if len(self.extensions) > 1:
            raise ValueError("at most one extension is supported")
        self._rsv1_ok = self._ext is not None and self._ext.rsv1

    def open(self, extensions: Sequence[Extension] = ()) -> None:
        """Move from CONNECTING to OPEN once the opening handshake succeeded.

        ``extensions`` are the ones the handshake negotiated.
        """
        if self.state is not State.CONNECTING:
            raise InvalidState(f"cannot open in state {self.state.name}")
        self._set_extensions(extensions)
        self.state = State.OPEN
        self._fast_send = self.side is Side.SERVER and self._ext is None

    # Public API: input

    def _receive_more(self, mv: memoryview, pos: int) -> None:
        """Take ``mv[pos:]`` when a frame is pending or a fragmented message is open."""
        direct = self._direct
        if direct is not None:
            start = self._direct_pos
            n = min(len(mv) - pos, direct.size - start)
            direct.fill(start, mv[pos : pos + n], self._direct_mask)
            self._direct_received(n)
            pos += n
            if pos == len(mv):
                return
        if self._buf_len:
            data = mv[pos:]
            end = self._buf_len + len(data)
            if end > len(self._buf):
                self._buf.extend(bytes(end - len(self._buf)))
            self._buf[self._buf_len : end] = data
            self._buf_len = end
            self._parse_buffer()
        else:
            end = len(mv)
            consumed = self._parse(mv, end, pos)
            if consumed < end and not self._discard:
                self._keep_partial(mv[consumed:])

    def get_buffer(self, sizehint: int = -1) -> memoryview | None:
        """Return a writable buffer to read into while a frame is incomplete.

        While no partial frame is pending this returns ``None``: the caller reads into any
        buffer of its own (for example one shared by all connections) and passes the bytes
        to :meth:`receive_data`. Otherwise the returned view is large enough for the rest
        of the pending frame when its length is known, so a large message is read into one
        preallocated buffer; the payload of a large binary message is read straight into
        the message itself. Report how many bytes were written with :meth:`buffer_updated`.
        """
        direct = self._direct
        if direct is not None:
            return direct.view()[self._direct_pos :]
        if not self._buf_len:
            return None
        need = self._pending_frame_end()
        # Room beyond the frame's end too: the read that completes a large frame also
        # brings the start of the next one, so a stream of large messages takes one read
        # per message rather than two.
        target = max(need, self._buf_len) + _READ_AHEAD
        if len(self._buf) < target:
            # A new bytearray, never a resize: a view of the old one may still be exported.
            grown = _take_buffer(target)
            grown[: self._buf_len] = memoryview(self._buf)[: self._buf_len]
            self._buf = grown
        return memoryview(self._buf)[self._buf_len :]

    def buffer_updated(self, nbytes: int) -> None:
        """Account for ``nbytes`` written into the view returned by :meth:`get_buffer`."""
        direct = self._direct
        if direct is not None:
            mask = self._direct_mask
            if mask is not None:
                pos = self._direct_pos
                direct.unmask(pos, pos + nbytes, mask)
            self._direct_received(nbytes)
            return
        self._buf_len += nbytes
        if not self._discard:
            self._parse_buffer()

    def receive_eof(self) -> None:
        """Signal that the peer closed its side of the TCP connection."""
        self.eof_rcvd = True
        if self.state is State.CLOSED:
            return
        # Without a close handshake this is an abnormal closure (RFC 6455 section 7.1.5):
        # there is no one left to send a close frame to; 1006 is reported locally.
        self._fast_send = False
        self.state = State.CLOSED
        self.close_transport = True
        self._drop_input()

    # Public API: output

    def close_expected(self) -> bool:
        """Tell whether the TCP connection is expected to close soon.

        True once a close frame was sent or received, or the connection failed.
        """
        return self.state is not State.OPEN or self._discard

    # Public API: sending

    def send_prepared(self, frame: bytes) -> bool:
        """Queue a complete unmasked frame built once for many connections.

        Only a server connection without extensions, open and outside a fragmented
        message, can take a shared frame; otherwise nothing is queued and the caller
        sends the message the ordinary way. See :func:`tether.asyncio.server.broadcast`.

        Returns:
            Whether the frame was queued.
        """
        # _fast_send is exactly that condition, kept up to date on every state change.
        if self._fast_send:
            self._out.append(frame)
            return True
        return False

    def can_send_prepared(self) -> bool:
        """Tell whether :meth:`send_prepared` would queue a frame now."""
        return self._fast_send

    def send_continuation(self, data: bytes | bytearray | memoryview, fin: bool) -> None:
        """Queue a continuation frame of a fragmented message."""
        if not self._sending_message:
            raise InvalidState("no fragmented message in progress")
        self._send_data(_OP_CONT, data, fin)

    def send_ping(self, data: bytes = b"") -> None:
        """Queue a ping frame (at most 125 bytes of payload)."""
        self._send_control(_OP_PING, data)

    def send_pong(self, data: bytes = b"") -> None:
        """Queue a pong frame (at most 125 bytes of payload)."""
        self._send_control(_OP_PONG, data)

    def send_close(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        """Start the closing handshake (RFC 6455 section 7.1.2).

        Args:
            code: close code; 1005 sends a close frame without a payload.
            reason: close reason; at most 123 bytes once UTF-8 encoded.
        """
        if self.state is not State.OPEN:
            raise InvalidState(f"cannot send close frame in state {self.state.name}")
        close = Close(code, reason)
        payload = close.serialize()
        if len(payload) > 125:
            raise ValueError("close reason too long")
        self._write_frame(0x80 | _OP_CLOSE, payload)
        self.close_sent = close
        if self.close_rcvd is not None:  # pragma: no cover - state would be CLOSING
            self.close_rcvd_then_sent = True
        self.state = State.CLOSING
        self._fast_send = False

    def fail(self, code: int, reason: str = "") -> None:
        """Fail the connection (RFC 6455 section 7.1.7).

        Sends a close frame with ``code`` if none was sent yet, discards further input and
        asks for the transport to be closed.
        """
        if self.state is State.OPEN and code != CloseCode.ABNORMAL_CLOSURE:
            close = Close(code, reason)
            self._write_frame(0x80 | _OP_CLOSE, close.serialize())
            self.close_sent = close
            if self.close_rcvd is not None:  # pragma: no cover - state would be CLOSING
                self.close_rcvd_then_sent = True
        if self.state is not State.CLOSED:
            self.state = State.CLOSING
        self._fast_send = False
        self._discard = True
        self.close_transport = True
        self._drop_input()
        self._reset_message()

    # Private: sending

    def _next_mask(self) -> bytes:
        pos = self._mask_pos
        if pos + 4 > len(self._mask_pool):
            self._mask_pool = os.urandom(_MASK_POOL_SIZE)
            pos = 0
        self._mask_pos = pos + 4
        return self._mask_pool[pos : pos + 4]

    def _write_frame(self, first_byte: int, payload: bytes | bytearray | memoryview) -> None:
        length = len(payload)
        if self.side is Side.CLIENT:
            mask = self._next_mask()
            if length <= _JOIN_LIMIT:
                self._out.append(masked_frame(first_byte, payload, mask))
                return
            header = serialize_header(first_byte, length, mask)
            payload = apply_mask(payload, mask)
        else:
            header = serialize_header(first_byte, length, None)
        if length <= _JOIN_LIMIT:
            self._out.append(header + payload)
        else:
            self._out.append(header)
            self._out.append(payload if isinstance(payload, bytes) else bytes(payload))

    def _send_data(self, opcode: int, data: bytes | bytearray | memoryview, fin: bool) -> None:
        if self.state is not State.OPEN:
            raise InvalidState(f"cannot send data in state {self.state.name}")
        if opcode != _OP_CONT and self._sending_message:
            raise InvalidState("a fragmented message is in progress")
        self._sending_message = not fin
        self._fast_send = bool(fin) and self._server and self._ext is None
        ext = self._ext
        if ext is None:
            self._write_frame((0x80 if fin else 0) | opcode, data)
            return
        frame = ext.encode(Frame(opcode, bytes(data), fin))
        first = (0x80 if frame.fin else 0) | (0x40 if frame.rsv1 else 0) | frame.opcode
        self._write_frame(first, frame.data)

    def _send_control(self, opcode: int, data: bytes) -> None:
        if self.state is not State.OPEN:
            raise InvalidState(f"cannot send control frame in state {self.state.name}")
        if len(data) > 125:
            raise ValueError("control frame payload must be 125 bytes or less")
        self._write_frame(0x80 | opcode, data)

    # Private: receiving

    def _drop_input(self) -> None:
        """Forget buffered input, a message being read in place included."""
        self._buf = bytearray()
        self._buf_len = 0
        self._direct = None
        self._direct_mask = None
        self.partial_frame = False

    def _start_direct(self, mv: memoryview, start: int, end: int, length: int) -> None:
        """Read the rest of a large binary message straight into its payload.

        ``mv[start:end]`` is the start of the payload of an unfragmented binary frame of
        ``length`` bytes whose header (mask included) ends at ``start``.
        """
        direct = self._direct = Payload(length)
        mask = self._direct_mask = bytes(mv[start - 4 : start]) if self.side is SERVER else None
        direct.fill(0, mv[start:end], mask)
        self._direct_pos = end - start
        self.partial_frame = True

    def _direct_received(self, n: int) -> None:
        """Account for ``n`` more payload bytes of the message read in place."""
        direct = self._direct
        assert direct is not None
        pos = self._direct_pos = self._direct_pos + n
        if pos == direct.size:
            self._events.append(direct.take())
            self._direct = None
            self._direct_mask = None
            # Nothing else is buffered while a message is read in place.
            self.partial_frame = False

    def _parse_buffer(self) -> None:
        buf = self._buf
        mv = memoryview(buf)
        consumed = self._parse(mv, self._buf_len)
        if self._discard:
            return
        remaining = self._buf_len - consumed
        if remaining == 0:
            # Release the buffer while idle: a connection with nothing pending holds none.
            mv.release()
            self._buf = bytearray()
            self._buf_len = 0
            self.partial_frame = self._direct is not None
            _give_back(buf)
        elif consumed:
            mv.release()
            self._keep_partial(memoryview(buf)[consumed : self._buf_len])
            _give_back(buf)
        else:
            self._check_partial(mv, remaining)

    def _keep_partial(self, rest: memoryview) -> None:
        """Keep the start of a frame, in a buffer with room for all of it if it is known.

        A large frame is then read into that buffer to its end, with no second copy.
        """
        n = len(rest)
        need = _frame_end(rest, n)
        if need > n:
            buf = _take_buffer(need + _READ_AHEAD)
            buf[:n] = rest
        else:
            buf = bytearray(rest)
        self._buf = buf
        self._buf_len = n
        self.partial_frame = True
        self._check_partial(memoryview(buf), n)

    def _pending_frame_end(self) -> int:
        """Total bytes of the partial frame at the head of the buffer, or 0 if unknown."""
        return _frame_end(self._buf, self._buf_len)

    def _limit(self) -> int:
        """The largest payload a data frame may have here, -1 for no limit."""
        max_frame = self._max_frame
        max_message = self._max_message
        if max_frame is None:
            return -1 if max_message is None else max_message
        return max_frame if max_message is None else min(max_frame, max_message)

    def _parse(self, mv: memoryview, end: int, pos: int = 0) -> int:
        """Parse every complete frame in ``mv[pos:end]``; return where parsing stopped."""
        server = self.side is SERVER
        events = self._events
        max_frame = self._max_frame
        limit = self._data_limit
        try:
            while end - pos >= 2:
                if self._msg_opcode < 0:
                    # Complete, unfragmented, uncompressed messages: one C call for all.
                    start = pos
                    pos = parse_messages(mv, pos, end, server, limit, events)  # type: ignore[arg-type]
                    if pos != start and self._probe is not None:
                        self._probe = None
                        self._partial_checked = 0
                    if end - pos < 2:
                        break
                b0 = mv[pos]
                b1 = mv[pos + 1]
                length = b1 & 0x7F
                hlen = 2
                if length == 126:
                    if end - pos < 4:
                        break
                    (length,) = _unpack_h(mv, pos + 2)
                    hlen = 4
                elif length == 127:
                    if end - pos < 10:
                        break
                    (length,) = _unpack_q(mv, pos + 2)
                    hlen = 10
                masked = b1 & 0x80
                if masked:
                    hlen += 4
                opcode = b0 & 0x0F
                # Header checks happen before the payload arrives, so a bad frame fails
                # at once and an oversized one is never buffered.
                if b0 & 0x70:
                    self._check_rsv(b0, opcode)
                if server:
                    if not masked:
                        # RFC 6455 section 5.1: "The server MUST close the connection
                        # upon receiving a frame that is not masked."
                        raise ProtocolError("incorrect masking")
                elif masked:
                    # "A client MUST close a connection if it detects a masked frame."
                    raise ProtocolError("incorrect masking")
                if opcode >= 8:
                    if length > 125:
                        # Section 5.5: control frames have a payload of 125 bytes or less.
                        raise ProtocolError("control frame too long")
                    if not b0 & 0x80:
                        # Section 5.5: "Control frames MUST NOT be fragmented."
                        raise ProtocolError("fragmented control frame")
                elif max_frame is not None and length > max_frame:
                    raise PayloadTooBig(f"frame with {length} bytes exceeds limit of {max_frame}")
                frame_end = pos + hlen + length
                if frame_end > end:
                    if opcode < 8:
                        self._check_frame_start(opcode, length)
                        if b0 == 0x82 and length >= _DIRECT_MIN and end - pos >= hlen:
                            # Final, uncompressed binary: read the rest in place.
                            self._start_direct(mv, pos + hlen, end, length)
                            return end
                    break
                start = pos + hlen
                if masked:
                    payload = apply_mask(mv[start:frame_end], mv[start - 4 : start])
                else:
                    payload = mv[start:frame_end].tobytes()
                pos = frame_end
                fin = b0 & 0x80
                if opcode == _OP_BINARY and fin and self._msg_opcode < 0 and not b0 & 0x40:
                    # Fast path: an unfragmented, uncompressed binary message.
                    if self._max_message is not None and length > self._max_message:
                        raise PayloadTooBig(self._too_big(length))
                    events.append(payload)
                elif opcode == _OP_TEXT and fin and self._msg_opcode < 0 and not b0 & 0x40:
                    if self._max_message is not None and length > self._max_message:
                        raise PayloadTooBig(self._too_big(length))
                    try:
                        events.append(payload.decode())
                    except UnicodeDecodeError as exc:
                        raise ProtocolError("invalid UTF-8 in text message", 1007) from exc
                else:
                    self._handle_frame(opcode, payload, fin, b0 & 0x40)
                    if self._discard:
                        return pos
                if self._probe is not None:
                    self._probe = None
                    self._partial_checked = 0
        except ProtocolError as exc:
            if any(type(event) is not Frame for event in events):
                self._defer_failure(exc)
            else:
                self._fail_with(exc)
            return end
        return pos

    def _defer_failure(self, exc: ProtocolError) -> None:
        """Fail after the application has seen the messages that came before the error.

        Messages parsed in the same read as a bad frame were valid and complete; the
        application may still answer them. Input is discarded from here on, and the runtime
        calls :meth:`apply_pending_failure` once those messages are consumed (or a timeout
        expires), which sends the close frame after any answers.
        """
        self.failure = exc
        self.failure_pending = True
        self._discard = True
        self._drop_input()
        self._reset_message()

    def apply_pending_failure(self) -> None:
        """Fail the connection for the error that :attr:`failure_pending` announced."""
        if not self.failure_pending:
            return
        self.failure_pending = False
        assert self.failure is not None
        self._fail_with(self.failure)

    def _check_rsv(self, b0: int, opcode: int) -> None:
        # RFC 6455 section 5.2: RSV bits "MUST be 0 unless an extension is negotiated
        # that defines meanings for non-zero values".
        if b0 & 0x30:
            raise ProtocolError("reserved bits must be 0")
        if not self._rsv1_ok:
            raise ProtocolError("reserved bits must be 0")
        # RFC 7692 section 6: RSV1 goes on the first frame of a message only.
        if opcode >= 8 or opcode == _OP_CONT:
            raise ProtocolError("unexpected rsv1 bit")

    def _check_frame_start(self, opcode: int, length: int) -> None:
        """Sequence and size checks for a data frame whose payload is still incomplete."""
        if opcode == _OP_CONT:
            if self._msg_opcode < 0:
                raise ProtocolError("unexpected continuation frame")
        elif opcode in (_OP_TEXT, _OP_BINARY):
            if self._msg_opcode >= 0:
                raise ProtocolError("expected a continuation frame")
        else:
            raise ProtocolError(f"invalid opcode {opcode}")
        max_size = self._max_message
        if max_size is not None and not self._msg_compressed:
            if self._msg_size + length > max_size:
                raise PayloadTooBig(self._too_big(self._msg_size + length))

    def _check_partial(self, mv: memoryview, end: int) -> None:
        """Validate the UTF-8 of a text frame's payload before the frame is complete.

        RFC 6455 section 8.1 lets an endpoint fail as soon as invalid UTF-8 shows up; doing
        it inside a frame means a huge invalid message is never buffered to the end.
        """
        if end < 2:
            return
        b0 = mv[0]
        opcode = b0 & 0x0F
        text = opcode == _OP_TEXT or (opcode == _OP_CONT and self._msg_opcode == _OP_TEXT)
        if not text or b0 & 0x40 or self._msg_compressed:
            return
        b1 = mv[1]
        length = b1 & 0x7F
        hlen = 2 if length < 126 else (4 if length == 126 else 10)
        masked = b1 & 0x80
        if masked:
            hlen += 4
        avail = end - hlen
        checked = self._partial_checked
        if avail <= checked:
            return
        chunk = mv[hlen + checked : end]
        if masked:
            chunk_bytes = apply_mask(chunk, mv[hlen - 4 : hlen], checked)
        else:
            chunk_bytes = chunk.tobytes()
        probe = self._probe
        if probe is None:
            # A scratch decoder continuing from the message's state: the frame is decoded
            # for real once complete, this only finds invalid bytes early.
            probe = self._probe = _UTF8Decoder()
            if self._msg_decoder is not None:
                probe.setstate(self._msg_decoder.getstate())
        try:
            probe.decode(chunk_bytes, False)
        except UnicodeDecodeError as exc:
            error = ProtocolError("invalid UTF-8 in text message", 1007)
            error.__cause__ = exc
            self._fail_with(error)
            return
        self._partial_checked = avail

    def _handle_frame(self, opcode: int, payload: bytes, fin: int, rsv1: int) -> None:
        if opcode == _OP_CONT:
            if self._msg_opcode < 0:
                raise ProtocolError("unexpected continuation frame")
            self._add_fragment(payload, fin)
        elif opcode == _OP_TEXT or opcode == _OP_BINARY:
            if self._msg_opcode >= 0:
                raise ProtocolError("expected a continuation frame")
            self._msg_opcode = opcode
            self._msg_compressed = bool(rsv1)
            if opcode == _OP_TEXT:
                self._msg_decoder = _UTF8Decoder()
            self._add_fragment(payload, fin)
        elif opcode == _OP_PING:
            self._events.append(Frame(opcode, payload))
            if self.state is State.OPEN:
                # Section 5.5.2: answer a ping with a pong carrying the same payload.
                self._write_frame(0x80 | _OP_PONG, payload)
        elif opcode == _OP_PONG:
            self._events.append(Frame(opcode, payload))
        elif opcode == _OP_CLOSE:
            self._receive_close(payload)
        else:
            raise ProtocolError(f"invalid opcode {opcode}")

    def _add_fragment(self, payload: bytes, fin: int) -> None:
        self._msg_frames += 1
        if self.max_fragments is not None and self._msg_frames > self.max_fragments:
            raise PayloadTooBig(f"message with more than {self.max_fragments} frames")
        max_size = self._max_message
        if self._msg_compressed:
            assert self._ext is not None
            remaining = None if max_size is None else max_size - self._msg_size
            first = self._msg_frames == 1
            frame = self._ext.decode(
                Frame(self._msg_opcode if first else _OP_CONT, payload, bool(fin), rsv1=first),
                max_size=remaining,
            )
            payload = frame.data
        size = self._msg_size + len(payload)
        if max_size is not None and size > max_size:
            raise PayloadTooBig(self._too_big(size))
        self._msg_size = size
        decoder = self._msg_decoder
        if decoder is not None:
            try:
                self._msg_text.append(decoder.decode(payload, bool(fin)))
            except UnicodeDecodeError as exc:
                raise ProtocolError("invalid UTF-8 in text message", 1007) from exc
        else:
            self._msg_parts.append(payload)
        if fin:
            if decoder is not None:
                text = self._msg_text
                self._events.append(text[0] if len(text) == 1 else "".join(text))
            else:
                parts = self._msg_parts
                self._events.append(parts[0] if len(parts) == 1 else b"".join(parts))
            self._reset_message()

    def _reset_message(self) -> None:
        self._msg_opcode = -1
        self._msg_parts = []
        self._msg_text = []
        self._msg_size = 0
        self._msg_frames = 0
        self._msg_decoder = None
        self._msg_compressed = False
        self._partial_checked = 0
        self._probe = None

    def _receive_close(self, payload: bytes) -> None:
        close = Close.parse(payload)
        self.close_rcvd = close
        self._events.append(Frame(_OP_CLOSE, payload))
        if self.state is State.OPEN:
            # Section 5.5.1: reply with a close frame, echoing the status code.
            echo = payload[:2] if close.code != CloseCode.NO_STATUS_RCVD else b""
            self._write_frame(0x80 | _OP_CLOSE, echo)
            self.close_sent = Close(close.code, "")
            self.close_rcvd_then_sent = True
        elif self.close_rcvd_then_sent is None:
            self.close_rcvd_then_sent = False
        self.state = State.CLOSING
        self._fast_send = False
        # Nothing may follow a close frame: discard the rest of the input.
        self._discard = True
        self._reset_message()
        # Section 7.1.1: the server closes the TCP connection first; a client waits for it.
        if self.side is Side.SERVER:
            self.close_transport = True

    def _too_big(self, size: int) -> str:
        return f"message with {size} bytes exceeds limit of {self._max_message}"

    def _fail_with(self, exc: ProtocolError) -> None:
        if self.failure is None:
            self.failure = exc
        self.fail(exc.code, str(exc) if len(str(exc).encode()) <= 123 else "")


def _frame_end(buf: bytearray | memoryview, n: int) -> int:
    """Total bytes of the frame starting ``buf`` (``n`` bytes of it known), 0 if unknown."""
    if n < 2:
        return 0
    b1 = buf[1]
    length = b1 & 0x7F
    hlen = 2
    if length == 126:
        if n < 4:
            return 0
        (length,) = _unpack_h(buf, 2)
        hlen = 4
    elif length == 127:
        if n < 10:
            return 0
        (length,) = _unpack_q(buf, 2)
        hlen = 10
    if b1 & 0x80:
        hlen += 4
    return int(hlen + length)


# Buffers for large frames, kept after their frame is parsed (payloads are copied out),
# so that the next large frame skips allocating, zero-filling and page-faulting a fresh
# one. Connections hold one only while a frame is incomplete. list.pop and list.append
# are atomic, so threads with their own event loops may share the pool.
_POOLED_MIN = 256 * 1024
# Room a read into a partial frame's buffer has beyond the frame's end.
_READ_AHEAD = 65536
_POOLED_MAX = 64 * 1024 * 1024
_POOL_SIZE = 4
_pool: list[bytearray] = []


def _take_buffer(size: int) -> bytearray:
    """A buffer of at least ``size`` bytes (contents undefined)."""
    if size >= _POOLED_MIN and _pool:
        try:
            buffer = _pool.pop()
        except IndexError:  # pragma: no cover - another thread took the last one
            return bytearray(size)
        if len(buffer) >= size:
            return buffer
        _give_back(buffer)
    return bytearray(size)


def _give_back(buffer: bytearray) -> None:
    """Keep a large buffer nothing refers to any more for :func:`_take_buffer`."""
    if _POOLED_MIN <= len(buffer) <= _POOLED_MAX and len(_pool) < _POOL_SIZE:
        _pool.append(buffer)
