"""A WebSocket connection over asyncio, driving the sans-I/O :class:`Protocol`.

The connection is an :class:`asyncio.BufferedProtocol`. Reads land in one buffer shared by
every connection of the thread (or in the connection's own buffer while a frame is
incomplete), every complete frame of a read is parsed in one pass, and whole messages wait
in a bounded queue. A :meth:`Connection.recv` that finds a message queued returns without
suspending; a :meth:`Connection.send` below the write limit does not suspend either: frames
are appended to the protocol's output and written with one ``transport.write`` per event
loop turn.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import threading
import weakref
from asyncio import selector_events
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Mapping,
    Sequence,
)
from typing import Any, TypeVar, cast

from ..exceptions import (
    ConcurrencyError,
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    InvalidState,
)
from ..protocol.close import CloseCode
from ..protocol.connection import Event, Protocol, Side, State
from ..protocol.frames import Frame, Opcode
from ..protocol.headers import Headers
from ..types import Data, DataLike, HandshakeInfo, Subprotocol
from ._core import COALESCE_FRAMES, ConnectionCore, wake
from .events import EventListener
from .transport import SocketTransport, send_vectored


__all__ = ["ClosingState", "Connection", "Receiver", "Sender"]

_F = TypeVar("_F")

logger = logging.getLogger("tether")

_OP_PING = Opcode.PING.value
_OP_PONG = Opcode.PONG.value
_OP_CLOSE = Opcode.CLOSE.value
_OPEN = State.OPEN

# Size of the per-thread read buffer shared by all connections.
_SHARED_BUFFER_SIZE = 256 * 1024
_local = threading.local()


def _shared_buffer() -> memoryview:
    view: memoryview | None = getattr(_local, "view", None)
    if view is None:
        view = _local.view = memoryview(bytearray(_SHARED_BUFFER_SIZE))
    return view


class ClosingState:
    """What every tether connection reports about how it ended.

    Subclasses set ``_close_exc`` (the :class:`ConnectionClosed` describing the end, once
    known), ``_closed`` (a future done once closed), and ``path``, ``query``,
    ``request_headers`` and ``remote_address`` for :attr:`peer`.
    """

    __slots__ = ()

    _close_exc: ConnectionClosed | None
    _closed: asyncio.Future[None]
    path: str
    query: str
    remote_address: Any

    @property
    def close_code(self) -> int | None:
        """The close code received, 1006 after an abnormal closure, ``None`` while open."""
        if self._close_exc is None:
            return None
        return self._close_exc.code

    @property
    def close_reason(self) -> str | None:
        """The close reason received, "" if none, ``None`` while open."""
        if self._close_exc is None:
            return None
        return self._close_exc.reason

    @property
    def closed(self) -> bool:
        """Whether the connection is closed."""
        return self._closed.done()


class Connection(ConnectionCore, ClosingState, asyncio.BufferedProtocol):
    """A WebSocket connection, client or server side, after the opening handshake.

    Don't create it directly: :func:`tether.asyncio.serve` and
    :func:`tether.asyncio.connect` do.

    Iterate on it to receive messages until the connection closes normally::

        async for message in ws:
            await ws.send(message)

    Args:
        protocol: the sans-I/O engine.
        ping_interval: seconds of silence from the peer before a keepalive ping;
            ``None`` disables keepalive.
        ping_timeout: seconds to wait for the answer to a keepalive ping before failing
            the connection with 1011; ``None`` disables the timeout.
        close_timeout: seconds to wait for the closing handshake and TCP close.
        max_queue: high-water mark of the receive queue in bytes, or a
            ``(high, low)`` pair; reading from the socket pauses above ``high`` and
            resumes below ``low`` (``high // 4`` by default).
        write_limit: high-water mark of the write buffer in bytes, or a ``(high, low)``
            pair; :meth:`send` waits for the buffer to drain above it.
        listeners: observability hooks, called in order.
    """

    __slots__ = (
        "__dict__",
        "__weakref__",
        "_close_timer",
        "_closed",
        "_drain_waiter",
        "_failure_reason",
        "_halves_open",
        "_keepalive_ping",
        "_keepalive_sent",
        "_last_recv",
        "_pings",
        "_reads_at_ping",
        "_reads_seen",
        "_wheel",
        "close_timeout",
        "latency",
        "max_queue_high",
        "max_queue_low",
        "path",
        "ping_interval",
        "ping_timeout",
        "query",
        "remote_address",
        "request_headers",
        "response_headers",
        "subprotocol",
        "write_limit_low",
    )

    def __init__(
        self,
        protocol: Protocol,
        *,
        ping_interval: float | None = 20.0,
        ping_timeout: float | None = 20.0,
        close_timeout: float = 10.0,
        max_queue: int | tuple[int, int] = 1024 * 1024,
        write_limit: int | tuple[int, int] = 64 * 1024,
        listeners: Sequence[EventListener] = (),
    ) -> None:
        self.protocol = protocol
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.close_timeout = close_timeout
        if isinstance(max_queue, int):
            max_queue = (max_queue, max_queue // 4)
        self.max_queue_high, self.max_queue_low = max_queue
        if isinstance(write_limit, int):
            write_limit = (write_limit, write_limit // 4)
        self.write_limit_high, self.write_limit_low = write_limit
        self.listeners = listeners if isinstance(listeners, tuple) else tuple(listeners)

        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.subprotocol: Subprotocol | None = None
        """The negotiated subprotocol, or ``None``."""
        self.request_headers: Headers | None = None
        """Headers of the opening handshake request."""
        self.response_headers: Headers | None = None
        """Headers of the opening handshake response."""
        self.path = "/"
        """Path of the opening handshake request."""
        self.query = ""
        """Query string of the opening handshake request."""
        self.remote_address: Any = None
        """The peer's address, as the socket reports it."""
        self.latency = 0.0
        """Round-trip time of the last answered ping, in seconds."""

        # Receive side.
        # Allocated on the first message and released while waiting: idle connections
        # hold no queue.
        self._messages: collections.deque[Data] | None = None
        self._queued_bytes = 0
        # Resolved by a read: with the message when it was the only one and nobody else
        # wanted it (it skips the queue), else with None (look in the queue, or at the
        # connection's state).
        self._recv_waiter: asyncio.Future[Data | None] | None = None
        self._reading_paused = False
        self._own_buffer = False
        # True while the opening handshake reads the socket: reads go to _opening_data.
        self._opening = False
        self._shared = _shared_buffer()
        self._sink: Callable[[Data], bool] | None = None
        self._delivering = False

        # Send side.
        self._flush_handle: asyncio.Handle | None = None
        self._writing_paused = False
        self._drain_waiter: asyncio.Future[None] | None = None
        self._pending_out = 0
        self._pending_frames = 0
        self._fragment_lock: asyncio.Lock | None = None

        # Pings: payload -> (future, time sent).
        self._pings: dict[bytes, tuple[asyncio.Future[float], float]] | None = None
        self._keepalive_ping: bytes | None = None
        self._keepalive_sent = 0.0
        # Reads are counted, not timed: the keepalive wheel notes when the count moved.
        self._reads = 0
        self._reads_seen = 0
        self._reads_at_ping = 0
        self._last_recv = 0.0
        self._wheel: _KeepaliveWheel | None = None

        # Closing.
        self._closed: asyncio.Future[None] = self.loop.create_future()
        self._close_exc: ConnectionClosed | None = None
        self._close_timer: asyncio.TimerHandle | None = None
        self._failure_reason: str | None = None
        self._halves_open = 0

    # Properties

    @property
    def state(self) -> State:
        """The connection's state."""
        return self.protocol.state

    @property
    def peer(self) -> HandshakeInfo:
        """The peer's handshake and address (implements :class:`tether.types.PeerInfo`)."""
        headers: Mapping[str, str] = self.request_headers or Headers()
        return HandshakeInfo(self.path, self.query, headers, self.remote_address)

    # Receiving

    async def recv(self) -> Data:
        """Receive the next message.

        Returns:
            :class:`str` for a text message, :class:`bytes` for a binary message.

        Raises:
            ConnectionClosed: the connection is closed and no message is left.
            ConcurrencyError: another coroutine is already waiting in :meth:`recv`.
        """
        return await self._receive(False)

    def _take(self, iterating: bool) -> Data | None:
        """The next queued message, or ``None`` when the caller must wait for one.

        Raises:
            ConnectionClosed: the connection is closed and no message is left
                (``StopAsyncIteration`` instead when ``iterating`` and it closed normally).
            ConcurrencyError: another coroutine is already waiting for a message.
        """
        messages = self._messages
        if not messages:
            if self._close_exc is not None or self._closed.done():
                exc = self._closed_error()
                if iterating and isinstance(exc, ConnectionClosedOK):
                    raise StopAsyncIteration
                raise exc
            if self._recv_waiter is not None:
                raise ConcurrencyError("another coroutine is already waiting for a message")
            return None
        message = messages.popleft()
        if not messages and self.protocol.failure_pending:
            # Fail once the application had a chance to answer this last message.
            self.loop.call_soon(self._apply_pending_failure)
        self._queued_bytes -= len(message)
        if self._reading_paused and self._queued_bytes <= self.max_queue_low:
            self._reading_paused = False
            if self.transport is not None and not self.transport.is_closing():
                self.transport.resume_reading()
        return message

    def _requeue(self, message: Data) -> None:
        messages = self._messages
        if messages is None:
            messages = self._messages = collections.deque()
        messages.appendleft(message)
        self._queued_bytes += len(message)

    def __aiter__(self) -> AsyncIterator[Data]:
        return self

    def set_message_sink(self, sink: Callable[[Data], bool] | None) -> bool:
        """Hand received messages to ``sink`` as they are parsed, instead of queueing them.

        For consumers that can answer a message without awaiting, such as an RPC
        server: ``sink(message)`` runs inside the read callback, with no task switch and
        no queue, and replies it sends with :meth:`send_nowait` leave in one write with
        the other replies to the same read.

        ``sink`` returns ``True`` when it took the message. ``False`` hands it back:
        the message is queued for :meth:`recv` and the sink is unset, so that message
        and every later one arrive through :meth:`recv`, in order, until the sink is set
        again. A sink that raises fails the connection with 1011 (internal error).

        Messages consumed by the sink do not count against ``max_queue``; backpressure
        is the sink's business (hand messages back when it cannot keep up).

        Args:
            sink: the callable, or ``None`` to queue every message again.

        Returns:
            Whether the sink is set. It is not while messages are queued: receive them
            first, so that none is overtaken.
        """
        if sink is not None and self._messages:
            return False
        self._sink = sink
        return sink is not None

    # Sending

    async def _send(self, message: DataLike | Iterable[DataLike] | AsyncIterable[DataLike]) -> None:
        if self._fragment_lock is not None and self._fragment_lock.locked():
            async with self._fragment_lock:
                pass
        protocol = self.protocol
        if protocol.state is not State.OPEN:
            raise self._closed_error()
        if isinstance(message, str):
            protocol.send_text(message)
        elif isinstance(message, (bytes, bytearray, memoryview)):
            protocol.send_binary(message)
        elif isinstance(message, AsyncIterable) or isinstance(message, Iterable):
            await self._send_fragments(message)
            return
        else:
            raise TypeError(f"message must be str or bytes-like, not {type(message).__name__}")
        self._sent(message)
        if self._writing_paused:
            await self._wait_drain()

    def _sent(self, message: DataLike) -> None:
        """Tell the listeners about a queued message and write or schedule the write."""
        if self.listeners:
            for listener in self.listeners:
                listener.message_sent(self, message)
        # Coalesce writes while received messages wait to be answered, in batches of at
        # most COALESCE_FRAMES; with none left, nothing else is coming this turn: write
        # now rather than a loop turn later. Inside the message sink's run the end of
        # the read flushes anyway.
        pending = self._pending_out = self._pending_out + len(message)
        frames = self._pending_frames = self._pending_frames + 1
        if (
            pending >= self.write_limit_high
            or frames >= COALESCE_FRAMES
            or not (self._messages or self._delivering)
        ):
            self._flush()
        elif self._flush_handle is None and not self._delivering:
            self._flush_handle = self.loop.call_soon(self._flush)

    async def _send_fragments(self, chunks: Iterable[DataLike] | AsyncIterable[DataLike]) -> None:
        if self._fragment_lock is None:
            self._fragment_lock = asyncio.Lock()
        async with self._fragment_lock:
            first = True
            text = False
            if isinstance(chunks, AsyncIterable):
                async for chunk in chunks:
                    text = await self._send_fragment(chunk, first, text)
                    first = False
            else:
                for chunk in chunks:
                    text = await self._send_fragment(chunk, first, text)
                    first = False
            if first:
                raise TypeError("cannot send an empty fragmented message")
            if self.protocol.state is not State.OPEN:
                raise self._closed_error()
            self.protocol.send_continuation(b"", fin=True)
            self._flush()

    async def _send_fragment(self, chunk: DataLike, first: bool, text: bool) -> bool:
        protocol = self.protocol
        if protocol.state is not State.OPEN:
            raise self._closed_error()
        is_text = isinstance(chunk, str)
        if not is_text and not isinstance(chunk, (bytes, bytearray, memoryview)):
            raise TypeError(f"fragment must be str or bytes-like, not {type(chunk).__name__}")
        if first:
            if is_text:
                protocol.send_text(chunk, fin=False)  # type: ignore[arg-type]
            else:
                protocol.send_binary(chunk, fin=False)  # type: ignore[arg-type]
        else:
            if is_text != text:
                # The message is left unfinished: the connection can't continue it.
                protocol.fail(CloseCode.INTERNAL_ERROR, "mixed fragment types")
                self._flush()
                raise TypeError("all fragments must be of the same type")
            data = chunk.encode() if isinstance(chunk, str) else chunk
            protocol.send_continuation(data, fin=False)
        self._flush()
        if self._writing_paused:
            await self._wait_drain()
        return is_text

    async def ping(self, data: DataLike | None = None) -> Awaitable[float]:
        """Send a ping; return an awaitable that gives the round-trip time on the pong.

        Args:
            data: payload (at most 125 bytes); random 4 bytes when ``None``.

        Raises:
            ConnectionClosed: the connection is closed.
        """
        if isinstance(data, str):
            payload = data.encode()
        elif data is None:
            payload = os.urandom(4)
            while self._pings and payload in self._pings:  # pragma: no cover - 2**-32 chance
                payload = os.urandom(4)
        else:
            payload = bytes(data)
        if self._pings and payload in self._pings:
            raise ConcurrencyError("already waiting for a pong with the same data")
        if self.protocol.state is not State.OPEN:
            raise self._closed_error()
        self.protocol.send_ping(payload)
        waiter: asyncio.Future[float] = self.loop.create_future()
        if self._pings is None:
            self._pings = {}
        self._pings[payload] = (waiter, self.loop.time())
        self._flush()
        return waiter

    async def pong(self, data: DataLike = b"") -> None:
        """Send an unsolicited pong (a unidirectional heartbeat)."""
        if self.protocol.state is not State.OPEN:
            raise self._closed_error()
        self.protocol.send_pong(data.encode() if isinstance(data, str) else bytes(data))
        self._flush()

    # Closing

    async def close(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        """Perform the closing handshake, then close the TCP connection.

        Waits at most :attr:`close_timeout` for the peer, then aborts the connection.
        Calling it on a closed connection does nothing.
        """
        if self.protocol.state is State.OPEN:
            self.protocol.send_close(code, reason)
            for listener in self.listeners:
                listener.closing(self, code, reason)
            self._flush()
        await self._wait_for_close()

    async def wait_closed(self) -> None:
        """Wait until the TCP connection is closed."""
        await asyncio.shield(self._closed)

    def split(self) -> tuple[Sender, Receiver]:
        """Split into a sending half and a receiving half, for two independent tasks.

        The connection closes when both halves are closed, or when either closes it
        explicitly with a code.
        """
        self._halves_open = 2
        return Sender(self), Receiver(self)

    async def _wait_for_close(self) -> None:
        if self._closed.done():
            return
        try:
            async with asyncio.timeout(self.close_timeout):
                await asyncio.shield(self._closed)
        except TimeoutError:
            if self.transport is not None:
                self.transport.abort()
            await asyncio.shield(self._closed)

    def _closed_error(self) -> ConnectionClosed:
        """A new exception saying how the connection ended, to raise or hand out.

        Each raise gets its own instance: an exception that was raised keeps the frames
        it went through, and with them this connection, so the one kept in
        ``_close_exc`` is never raised and the connection is freed by reference counting
        rather than by the cyclic garbage collector.
        """
        base = self._close_exc
        if base is not None:
            exc = type(base)(base.rcvd, base.sent, base.rcvd_then_sent)
            exc.__cause__ = base.__cause__
            return exc
        protocol = self.protocol
        rcvd, sent = protocol.close_rcvd, protocol.close_sent
        ok = (
            rcvd is not None
            and sent is not None
            and rcvd.code in (1000, 1001)
            and sent.code in (1000, 1001)
        )
        cls = ConnectionClosedOK if ok else ConnectionClosedError
        exc = cls(rcvd, sent, protocol.close_rcvd_then_sent)
        if protocol.failure is not None:
            exc.__cause__ = protocol.failure
        return exc

    # asyncio.BufferedProtocol callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement the interface without subclassing it.
        self.transport = transport = cast(asyncio.Transport, transport)
        transport.set_write_buffer_limits(self.write_limit_high, self.write_limit_low)
        self.remote_address = transport.get_extra_info("peername")
        self._last_recv = self.loop.time()

    def eof_received(self) -> bool | None:
        self.protocol.receive_eof()
        self._process_events()
        # Returning a false value closes the transport.
        return None

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        protocol = self.protocol
        if protocol.state is not State.CLOSED:
            protocol.receive_eof()
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        if self._close_timer is not None:
            self._close_timer.cancel()
            self._close_timer = None
        wheel = self._wheel
        if wheel is not None:
            self._wheel = None
            wheel.discard(self)
        self._sink = None
        close_exc = self._close_exc = self._closed_error()
        if exc is not None and close_exc.__cause__ is None:
            close_exc.__cause__ = exc
        waiter = self._recv_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        drain = self._drain_waiter
        if drain is not None and not drain.done():
            drain.set_exception(self._closed_error())
            drain.exception()  # Mark it retrieved: nobody may be waiting any more.
        if self._pings:
            for ping_waiter, _ in self._pings.values():
                if not ping_waiter.done():
                    ping_waiter.set_exception(self._closed_error())
                    ping_waiter.exception()
        self._pings = None
        if not self._closed.done():
            self._closed.set_result(None)
        for listener in self.listeners:
            if isinstance(close_exc, ConnectionClosedOK):
                listener.closed(self, close_exc)
            else:
                listener.failed(self, close_exc)

    # Private

    def _start(self) -> None:
        """Called once the handshake is done: start keepalive, notify listeners."""
        if self.ping_interval is not None:
            wheel = self._wheel = _keepalive_wheel(self.loop)
            wheel.add(self)
        for listener in self.listeners:
            listener.opened(self)

    def _deliver(self, events: list[Event], waiter: Any) -> None:
        """Hand the events of a read to the sink, the queue and the waiting receiver."""
        protocol = self.protocol
        if events:
            messages = self._messages
            listeners = self.listeners
            sink = self._sink
            self._delivering = sink is not None
            for event in events:
                if type(event) is bytes or type(event) is str:
                    if listeners:
                        for listener in listeners:
                            listener.message_received(self, event)
                    if sink is not None:
                        # Set only while nothing is queued (see set_message_sink).
                        try:
                            taken = sink(event)
                        except Exception as exc:
                            self._sink_failed(exc)
                            taken = True  # dropped: the connection is failing
                        if taken:
                            # The sink may have unset itself (or failed).
                            sink = self._sink
                            continue
                        sink = self._sink = None
                        self._delivering = False
                    if messages is None:
                        messages = self._messages = collections.deque()
                    messages.append(event)
                    self._queued_bytes += len(event)
                else:
                    assert isinstance(event, Frame)
                    self._control_frame(event)
            self._delivering = False
            if self._queued_bytes > self.max_queue_high and not self._reading_paused:
                self._reading_paused = True
                if self.transport is not None:
                    self.transport.pause_reading()
            if waiter is not None and (waiter.done() or not messages):
                waiter = None
        else:
            waiter = None
        if protocol.failure_pending:
            if not self._messages:
                protocol.apply_pending_failure()
            elif self._close_timer is None:
                self._close_timer = self.loop.call_later(
                    self.close_timeout, self._apply_pending_failure
                )
        if protocol.has_data_to_send() or protocol.close_transport:
            self._flush()
        if waiter is not None:
            wake(waiter, self.loop, None)

    def _sink_failed(self, exc: Exception) -> None:
        """The message sink raised ``exc``: log it and fail the connection with 1011."""
        logger.error("message sink failed on %s", self.remote_address, exc_info=exc)
        self._sink = None
        self._failure_reason = "message sink failed"
        self.protocol.fail(CloseCode.INTERNAL_ERROR, "internal error")

    def _control_frame(self, frame: Frame) -> None:
        opcode = frame.opcode
        if opcode == _OP_PONG:
            self._pong_received(frame.data)
            for listener in self.listeners:
                listener.pong_received(self, frame.data)
        elif opcode == _OP_PING:
            for listener in self.listeners:
                listener.ping_received(self, frame.data)
        elif opcode == _OP_CLOSE:
            close = self.protocol.close_rcvd
            assert close is not None
            for listener in self.listeners:
                listener.closing(self, close.code, close.reason)
            # A client waits for the server to close TCP (RFC 6455 section 7.1.1), but
            # not forever.
            if self.protocol.side is Side.CLIENT and self._close_timer is None:
                self._close_timer = self.loop.call_later(self.close_timeout, self._abort)
            # A waiting receiver is woken by connection_lost, which follows: recv()
            # raises once the TCP connection is closed.

    def _pong_received(self, data: bytes) -> None:
        now = self.loop.time()
        if data == self._keepalive_ping:
            self.latency = now - self._keepalive_sent
            self._keepalive_ping = None
        pings = self._pings
        if not pings:
            return
        # A pong acknowledges the ping with the same payload and every earlier one
        # (RFC 6455 section 5.5.3 allows answering only the latest ping).
        if data not in pings:
            return
        for payload in list(pings):
            waiter, sent = pings.pop(payload)
            if not waiter.done():
                waiter.set_result(now - sent)
            if payload == data:
                self.latency = now - sent
                break

    def _schedule_flush(self, size: int) -> None:
        """Write queued frames at the end of this loop turn, or now if there's a lot."""
        self._pending_out += size
        if self._pending_out >= self.write_limit_high:
            self._flush()
        elif self._flush_handle is None:
            self._flush_handle = self.loop.call_soon(self._flush)

    def _write_many(self, out: list[bytes]) -> None:
        assert self.transport is not None
        _write_coalesced(self.transport, out)

    async def _wait_drain(self) -> None:
        while self._writing_paused:
            if self._closed.done():
                raise self._closed_error()
            waiter = self._drain_waiter
            if waiter is None or waiter.done():
                waiter = self._drain_waiter = self.loop.create_future()
            await asyncio.shield(waiter)

    def _apply_pending_failure(self) -> None:
        if self._close_timer is not None:
            self._close_timer.cancel()
            self._close_timer = None
        if self.protocol.failure_pending:
            self.protocol.apply_pending_failure()
            self._flush()

    def _abort(self) -> None:
        self._close_timer = None
        if self.transport is not None:
            self.transport.abort()

    def _keepalive_tick(self, now: float) -> None:
        """Called by the keepalive wheel; sends a ping or detects a dead peer."""
        if self.protocol.state is not State.OPEN:
            return
        reads = self._reads
        if self._keepalive_ping is not None:
            timeout = self.ping_timeout
            if (
                timeout is not None
                and reads == self._reads_at_ping
                and now - self._keepalive_sent >= timeout
                and not self._reading_paused
            ):
                self._failure_reason = "keepalive ping timeout"
                logger.info("! keepalive ping timeout on %s", self.remote_address)
                self.protocol.fail(CloseCode.INTERNAL_ERROR, "keepalive ping timeout")
                self._flush()
                if self.transport is not None:
                    self.transport.abort()
            return
        if reads != self._reads_seen:
            self._reads_seen = reads
            self._last_recv = now
        interval = self.ping_interval
        if interval is not None and now - self._last_recv >= interval:
            payload = os.urandom(4)
            self._keepalive_ping = payload
            self._keepalive_sent = now
            self._reads_at_ping = reads
            self.protocol.send_ping(payload)
            self._flush()

    # Split halves bookkeeping

    async def _half_closed(self) -> None:
        self._halves_open -= 1
        if self._halves_open <= 0:
            await self.close()


# Payloads at least this large are written on their own instead of being copied into
# one joined buffer with the small frames around them.
_LARGE_CHUNK = 65536


def _write_coalesced(transport: asyncio.Transport, chunks: list[bytes]) -> None:
    """Write many frames with as few system calls as possible.

    Small chunks are joined; a large one is written as it is. On asyncio's own socket
    transport with nothing buffered, the pieces go out in one ``sendmsg`` call (a large
    frame's header and payload in one system call, with no copy to join them) and the
    transport gets only what the kernel did not take. tether's own socket transport and
    uvloop's stream transports do the same in ``writelines``.
    """
    pieces: list[bytes | memoryview] = []
    small: list[bytes] = []
    for chunk in chunks:
        if len(chunk) < _LARGE_CHUNK:
            small.append(chunk)
            continue
        if small:
            pieces.append(small[0] if len(small) == 1 else b"".join(small))
            small = []
        pieces.append(chunk)
    if small:
        pieces.append(small[0] if len(small) == 1 else b"".join(small))
    if len(pieces) > 1:
        kind = type(transport)
        if kind is SocketTransport or kind.__module__ == "uvloop.loop":
            transport.writelines(pieces)
            return
        if (
            kind is _SELECTOR_TRANSPORT
            and not transport.get_write_buffer_size()
            and not transport.is_closing()
        ):
            pieces = send_vectored(cast(Any, transport)._sock, pieces)
    for piece in pieces:
        transport.write(piece)


# asyncio's socket transport on the selector loop (the default loop on Unix).
_SELECTOR_TRANSPORT: type | None = getattr(selector_events, "_SelectorSocketTransport", None)


def _select_extensions(
    compression: str | None, extensions: Sequence[_F] | None, deflate: Callable[[], _F]
) -> list[_F]:
    """The extension factories for a ``compression``/``extensions`` pair of options."""
    if extensions is not None:
        return list(extensions)
    if compression == "deflate":
        return [deflate()]
    if compression is None:
        return []
    raise ValueError(f"unsupported compression: {compression}")


class Sender:
    """The sending half of a connection (see :meth:`Connection.split`)."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self._closed = False

    async def send(self, message: DataLike | Iterable[DataLike] | AsyncIterable[DataLike]) -> None:
        """Send a message (see :meth:`Connection.send`)."""
        if self._closed:
            raise InvalidState("the sending half is closed")
        await self.connection.send(message)

    async def ping(self, data: DataLike | None = None) -> Awaitable[float]:
        """Send a ping (see :meth:`Connection.ping`)."""
        return await self.connection.ping(data)

    async def close(self) -> None:
        """Close this half; the connection closes once the other half is closed too."""
        if not self._closed:
            self._closed = True
            await self.connection._half_closed()

    async def __aenter__(self) -> Sender:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


class Receiver:
    """The receiving half of a connection (see :meth:`Connection.split`)."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self._closed = False

    async def recv(self) -> Data:
        """Receive a message (see :meth:`Connection.recv`)."""
        if self._closed:
            raise InvalidState("the receiving half is closed")
        return await self.connection.recv()

    def __aiter__(self) -> AsyncIterator[Data]:
        return self

    async def __anext__(self) -> Data:
        if self._closed:
            raise StopAsyncIteration
        return await self.connection.__anext__()

    async def close(self) -> None:
        """Close this half; the connection closes once the other half is closed too."""
        if not self._closed:
            self._closed = True
            await self.connection._half_closed()

    async def __aenter__(self) -> Receiver:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


class _KeepaliveWheel:
    """One timer per event loop drives keepalive for every connection on it.

    Idle connections cost no task and no timer handle of their own.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        # A plain set: connections remove themselves in connection_lost.
        self.connections: set[Connection] = set()
        self.handle: asyncio.TimerHandle | None = None
        self.period = 1.0

    def add(self, connection: Connection) -> None:
        self.connections.add(connection)
        candidates = [self.period]
        if connection.ping_interval is not None:
            candidates.append(connection.ping_interval / 4)
        if connection.ping_timeout is not None:
            candidates.append(connection.ping_timeout / 4)
        period = max(0.005, min(candidates))
        if self.handle is None or period < self.period:
            self.period = period
            if self.handle is not None:
                self.handle.cancel()
            self.handle = self.loop.call_later(self.period, self.tick)

    def discard(self, connection: Connection) -> None:
        self.connections.discard(connection)

    def tick(self) -> None:
        self.handle = None
        if not self.connections:
            self.period = 1.0
            return
        now = self.loop.time()
        for connection in list(self.connections):
            try:
                connection._keepalive_tick(now)
            except Exception:  # pragma: no cover - defensive: one bad connection
                logger.exception("keepalive failed")
        self.handle = self.loop.call_later(self.period, self.tick)


# The wheel of each event loop, by the loop's id. Held weakly: a wheel lives while its
# connections or its pending timer (in the loop) refer to it, so neither the wheel nor
# the loop it refers to outlives the loop's use.
_wheels: weakref.WeakValueDictionary[int, _KeepaliveWheel] = weakref.WeakValueDictionary()


def _keepalive_wheel(loop: asyncio.AbstractEventLoop) -> _KeepaliveWheel:
    # A live wheel keeps its loop alive, so the id can't belong to another loop.
    wheel = _wheels.get(id(loop))
    if wheel is None:
        wheel = _wheels[id(loop)] = _KeepaliveWheel(loop)
    return wheel
