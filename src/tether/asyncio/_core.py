"""The per-message paths of a connection, with a C accelerator and a pure-Python fallback.

:class:`Connection` inherits its hot paths from :data:`ConnectionCore`: ``get_buffer``
and ``buffer_updated`` (a read, and the hand-over of its one message to a receiver that
waits for it, or of its messages to the message sink), ``__anext__`` (the next message
for ``async for``), ``send`` and ``send_nowait`` (a message queued, and written at once
or with the other replies of the same read) and ``_flush``. Everything they do not
handle themselves, they leave to methods of the connection (``_deliver``, ``_take``,
``_send``, ``_write_many``, ...), so that the rarer cases are written once, in Python.
:class:`~tether.asyncio.transport.SocketTransport`'s read callback, ``write`` and
``is_closing`` come from here too.

:class:`PyConnectionCore` is the reference; the C version in ``_speedups.c`` does the
same in fewer steps: it needs no coroutine frame per received message (its ``__anext__``
returns an awaitable that is also the future its task waits on) and none per sent message
(``send`` does its work when called and returns an awaitable that is already done, as the
Python version does, or the coroutine of the slow path). Both give the same results; the
asyncio tests run against both (``tests/asyncio/test_core.py``). Set
``TETHER_NO_SPEEDUPS=1`` to use the fallback.
"""

from __future__ import annotations

import asyncio
import os
import types
from collections import deque
from collections.abc import AsyncIterable, Awaitable, Callable, Generator, Iterable
from typing import TYPE_CHECKING, Any

from ..exceptions import ConnectionClosed
from ..protocol.connection import State
from ..types import Data, DataLike
from .events import EventListener


if TYPE_CHECKING:
    from ..protocol.connection import Event, Protocol

_OPEN = State.OPEN


__all__ = [
    "SPEEDUPS",
    "ConnectionCore",
    "PyConnectionCore",
    "py_wake",
    "transport_is_closing",
    "transport_read_ready",
    "transport_write",
    "use_transport_class",
    "wake",
]

# Replies coalesced into one write at most: a burst of requests read at once is answered
# in batches of this many frames, so the peer can send more while the rest is processed
# (one write per whole burst turns a pipelined client into a lock-step one).
COALESCE_FRAMES = 16


def py_wake(waiter: Any, loop: asyncio.AbstractEventLoop, message: Data | None) -> None:
    """Resolve ``waiter`` with ``message``; if a task is all that waits, run its step now.

    Called at the end of a read callback that has a message for a task suspended in
    ``recv()`` or ``async for`` (``message`` is that message when it skips the queue,
    else ``None``). Resolving the future the usual way schedules the task's wakeup for a
    later loop turn: one more pass through the selector (with a zero timeout) and a
    callback handle per message, which is a large share of a round trip that does little
    else. When the future's only callback is the wakeup of an asyncio task (C
    implementation) and no task is running, the wakeup is taken off the future and run
    here, in the task's context, exactly as the loop would have run it a moment later:
    the handler takes the message, and a reply it sends is written before this callback
    returns. Anything else (other callbacks, a running task, a Python-level task) gets
    the plain ``set_result``.
    """
    callbacks = getattr(waiter, "_callbacks", None)
    if callbacks and len(callbacks) == 1 and asyncio.current_task(loop) is None:
        wakeup, context = callbacks[0]
        if type(wakeup) is types.BuiltinMethodType and wakeup.__name__ == "task_wakeup":
            waiter.remove_done_callback(wakeup)
            waiter.set_result(message)
            context.run(wakeup, waiter)
            return
    waiter.set_result(message)


class PyDone:
    """An awaitable that is already complete: awaiting it gives ``None`` at once.

    What :meth:`PyConnectionCore.send` returns once its message is queued or written. It
    has a coroutine's methods, so ``asyncio.create_task()`` and ``ensure_future()`` take
    it too.
    """

    __slots__ = ()

    def __await__(self) -> Generator[Any, None, None]:
        return self

    def __iter__(self) -> PyDone:
        return self

    def __next__(self) -> None:
        raise StopIteration

    def send(self, value: None) -> None:
        raise StopIteration

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> None:
        if isinstance(typ, BaseException):
            raise typ.with_traceback(tb) if tb is not None else typ
        raise typ() if val is None else typ(val)

    def close(self) -> None:
        pass


DONE = PyDone()


class PyConnectionCore:
    """The fields and per-message methods a connection has in C, written in Python."""

    __slots__ = (
        "_close_exc",
        "_delivering",
        "_flush_handle",
        "_fragment_lock",
        "_messages",
        "_opening",
        "_own_buffer",
        "_pending_frames",
        "_pending_out",
        "_queued_bytes",
        "_reading_paused",
        "_reads",
        "_recv_waiter",
        "_shared",
        "_sink",
        "_writing_paused",
        "listeners",
        "loop",
        "protocol",
        "transport",
        "write_limit_high",
    )

    protocol: Protocol
    transport: asyncio.Transport | None
    loop: asyncio.AbstractEventLoop
    listeners: tuple[EventListener, ...]
    write_limit_high: int
    # Read side: reads go into the shared buffer unless the protocol offers its own;
    # while _opening, they go to the opening handshake (_opening_data).
    _shared: memoryview
    _own_buffer: bool
    _opening: bool
    _reads: int
    # Receive side: the queue (None while empty and idle), its size, the receiver waiting
    # for a message, the message sink, whether the sink is being fed, and whether reading
    # is paused because the queue is full.
    _messages: deque[Data] | None
    _queued_bytes: int
    _recv_waiter: Any
    _sink: Callable[[Data], bool] | None
    _delivering: bool
    _reading_paused: bool
    # Set when the connection is closed: how it ended.
    _close_exc: ConnectionClosed | None
    # Send side: the scheduled write, whether the transport is above its high-water mark,
    # what was queued since the last write, and the lock of a fragmented message.
    _flush_handle: asyncio.Handle | None
    _writing_paused: bool
    _pending_out: int
    _pending_frames: int
    _fragment_lock: asyncio.Lock | None

    # asyncio.BufferedProtocol, the read side

    def get_buffer(self, sizehint: int) -> memoryview:
        protocol = self.protocol
        if protocol.partial_frame:
            view = protocol.get_buffer(sizehint)
            assert view is not None
            self._own_buffer = True
            return view
        # No frame is pending: read into the buffer every connection of the thread shares.
        self._own_buffer = False
        return self._shared

    def buffer_updated(self, nbytes: int) -> None:
        if self._own_buffer:
            self.protocol.buffer_updated(nbytes)
        elif self._opening:
            self._opening_data(bytes(self._shared[:nbytes]))
            return
        else:
            self.protocol.receive_data(self._shared[:nbytes])
        self._reads += 1
        self._process_events()

    def _process_events(self) -> None:
        """Hand what the protocol parsed to the application, then write what is due."""
        protocol = self.protocol
        events = protocol.events_received()
        waiter = self._recv_waiter
        if (
            len(events) == 1
            and waiter is not None
            and self._sink is None
            and not self.listeners
            and not protocol.failure_pending
            and not waiter.done()
        ):
            message = events[0]
            if type(message) is bytes or type(message) is str:
                # The common case: one message for a receiver waiting on an empty queue.
                # The future carries it; the queue is not involved.
                if protocol.has_data_to_send() or protocol.close_transport:
                    self._flush()
                py_wake(waiter, self.loop, message)
                return
        if self._sink is not None and not self.listeners:
            # Messages for the sink (an RPC server, say), answered within this read.
            start = self._feed_sink(events)
            if start == len(events):
                if protocol.failure_pending:
                    self._deliver([], None)
                elif protocol.has_data_to_send() or protocol.close_transport:
                    self._flush()
                return
            events = events[start:]
        self._deliver(events, waiter)

    def _feed_sink(self, events: list[Event]) -> int:
        """Hand the leading messages of ``events`` to the sink; return how many it took.

        It stops at a control frame, at a message the sink hands back (the sink is then
        unset: that message and the rest are queued), or once the sink is unset.
        """
        self._delivering = True
        taken = 0
        for event in events:
            sink = self._sink
            if sink is None or not (type(event) is bytes or type(event) is str):
                break
            try:
                done = sink(event)
            except Exception as exc:
                self._sink_failed(exc)
                done = True  # dropped: the connection is failing
            if not done:
                self._sink = None
                break
            taken += 1
        self._delivering = False
        return taken

    # Receiving

    def __anext__(self) -> Awaitable[Data]:
        return self._receive(True)

    async def _receive(self, iterating: bool) -> Data:
        """The next message; at the end, ``StopAsyncIteration`` when ``iterating``."""
        while True:
            messages = self._messages
            if messages and not self._reading_paused and not self.protocol.failure_pending:
                # Fast path: a message is queued and no flow-control bookkeeping is due.
                message = messages.popleft()
                self._queued_bytes -= len(message)
                return message
            taken = self._take(iterating)
            if taken is not None:
                return taken
            waiter = self._idle_waiter()
            try:
                received = await waiter
            except BaseException:
                self._give_back(waiter)
                raise
            finally:
                self._recv_waiter = None
            if received is not None:
                return received

    def _idle_waiter(self) -> asyncio.Future[Data | None]:
        """Going idle: release the empty queue and return the future a read resolves."""
        self._messages = None
        waiter = self._recv_waiter = self.loop.create_future()
        return waiter

    def _give_back(self, waiter: asyncio.Future[Data | None]) -> None:
        """Queue again a message handed to a receiver that was cancelled before taking it."""
        if waiter.done() and not waiter.cancelled():
            message = waiter.result()
            if message is not None:
                self._requeue(message)

    # Sending

    def send_nowait(self, message: DataLike) -> bool:
        """Send a message now if the connection takes it without waiting.

        Returns:
            ``True`` when the message was queued for writing, like :meth:`send`;
            ``False``, with nothing sent, when the connection is not open, its write
            buffer is above the high-water mark, or a fragmented message is being sent.
            Use ``await send()`` then: it waits for room.
        """
        protocol = self.protocol
        if (
            self._writing_paused
            or protocol.state is not _OPEN
            or (self._fragment_lock is not None and self._fragment_lock.locked())
        ):
            return False
        if type(message) is bytes or not isinstance(message, str):
            protocol.send_binary(message)
        else:
            protocol.send_text(message)
        self._sent(message)
        return True

    def send(
        self, message: DataLike | Iterable[DataLike] | AsyncIterable[DataLike]
    ) -> Awaitable[None]:
        """Send a message.

        A :class:`str` is sent as a text message, a bytes-like object as binary. An
        iterable or async iterable of them is sent as one fragmented message, one frame
        per item (all items must be of the same kind). Await the result: it waits while
        the write buffer is above its high-water mark.

        Raises:
            ConnectionClosed: the connection is closed.
        """
        if (
            (type(message) is bytes or type(message) is str)
            and self._fragment_lock is None
            and self.protocol.state is _OPEN
        ):
            # Queued (or written) now; the awaitable only waits for room to write.
            if type(message) is bytes:
                self.protocol.send_binary(message)
            else:
                self.protocol.send_text(message)
            self._sent(message)
            if self._writing_paused:
                return self._wait_drain()
            return DONE
        return self._send(message)

    def _sink_failed(self, exc: Exception) -> None:
        """The message sink raised ``exc``."""
        raise NotImplementedError

    def _flush(self) -> None:
        """Write what the protocol has queued, and close the transport if it asks to."""
        handle = self._flush_handle
        if handle is not None:
            handle.cancel()
            self._flush_handle = None
        self._pending_out = 0
        self._pending_frames = 0
        transport = self.transport
        out = self.protocol.data_to_send()
        if transport is None or transport.is_closing():
            return
        if out:
            if len(out) == 1:
                transport.write(out[0])
            else:
                self._write_many(out)
        if self.protocol.close_transport:
            # close() lets the transport write what is buffered first.
            transport.close()

    # Implemented by the connection.

    def _opening_data(self, data: bytes) -> None:
        """Take bytes received during the opening handshake (while ``_opening``)."""
        raise NotImplementedError

    def _deliver(self, events: list[Event], waiter: Any) -> None:
        """Hand ``events`` over in the general case (``waiter``: the waiting receiver)."""
        raise NotImplementedError

    def _take(self, iterating: bool) -> Data | None:
        """The next queued message, or ``None`` to wait; raises once closed."""
        raise NotImplementedError

    def _requeue(self, message: Data) -> None:
        """Put back first in line a message a cancelled receiver did not take."""
        raise NotImplementedError

    async def _send(self, message: Any) -> None:
        """Send a message in the general case."""
        raise NotImplementedError

    def _sent(self, message: DataLike) -> None:
        """Write, or schedule the write of, a message the protocol has queued."""
        raise NotImplementedError

    async def _wait_drain(self) -> None:
        """Wait while the transport's write buffer is above its high-water mark."""
        raise NotImplementedError

    def _write_many(self, out: list[bytes]) -> None:
        """Write several frames with as few system calls as the transport allows."""
        raise NotImplementedError


SPEEDUPS: bool
# SocketTransport's read callback (registered with the transport as its argument) and
# its write method, in C; None without the accelerator.
transport_read_ready: Callable[[Any], None] | None
transport_write: Callable[[Any, Any], None] | None
transport_is_closing: Callable[[Any], bool] | None
use_transport_class: Callable[[type], None] | None

if TYPE_CHECKING:
    ConnectionCore = PyConnectionCore
    wake = py_wake
elif os.environ.get("TETHER_NO_SPEEDUPS") == "1":
    ConnectionCore, wake, SPEEDUPS = PyConnectionCore, py_wake, False
    transport_read_ready = transport_write = transport_is_closing = use_transport_class = None
else:
    try:
        from ._speedups import (
            ConnectionCore,
            transport_is_closing,
            transport_read_ready,
            transport_write,
            use_transport_class,
            wake,
        )
    except ImportError:  # pragma: no cover - built without the C accelerator
        ConnectionCore, wake, SPEEDUPS = PyConnectionCore, py_wake, False
        transport_read_ready = transport_write = transport_is_closing = None
        use_transport_class = None
    else:
        SPEEDUPS = True
