"""A plain socket transport and accept loop for selector event loops.

asyncio's own server path costs, per accepted connection, a task and a future to hand the
socket to the protocol, three callbacks scheduled before the first byte is read, a weak
registry entry and a ``getsockname`` call. For short-lived connections that is a large
share of the server's time, so :func:`serve` accepts plain (non-TLS) connections on the
default selector loop itself, with :class:`Listener`, and runs each one on a
:class:`SocketTransport`: ``connection_made`` runs as soon as the socket is accepted and
reading starts at once. uvloop gets the same path (through its ``add_reader``); TLS and
other loops keep their own transports.

The transport implements :class:`asyncio.Transport` for a
:class:`asyncio.BufferedProtocol`: the protocol's buffer is filled with ``recv_into``,
writes go straight to the socket while nothing is buffered, write flow control calls
``pause_writing``/``resume_writing`` around the high and low water marks, and
``connection_lost`` is called exactly once, in a later callback, before the socket is
closed.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import logging
import socket
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from ._core import (
    transport_is_closing as _c_is_closing,
    transport_read_ready as _c_read_ready,
    transport_write as _c_write,
    use_transport_class as _c_use_class,
)


__all__ = ["Listener", "SocketTransport", "send_vectored", "supports_loop"]

logger = logging.getLogger("tether.server")

# Pieces per sendmsg call (Linux's IOV_MAX is 1024).
_MAX_IOV = 64

# Seconds to wait before accepting again after accept() failed.
ACCEPT_RETRY_DELAY = 1.0

_DEFAULT_HIGH = 64 * 1024

# Reads per read callback while each one fills the buffer it was given: a full buffer
# means the socket likely holds more, which is read at once instead of after another turn
# of the event loop (a 1 MiB message arriving in one burst is then read in one callback:
# the start into the shared buffer, the rest straight into the message). The bound keeps
# one busy connection from holding the loop. The C read callback reads the same way.
_MAX_READS = 4

_Buffer = bytes | bytearray | memoryview


def send_vectored(
    sock: socket.socket, pieces: list[bytes | memoryview]
) -> list[bytes | memoryview]:
    """Send ``pieces`` with one ``sendmsg``; return what was not sent, in order.

    Errors are left to the caller's transport: writing the rest meets them again and
    reports them the transport's way.
    """
    try:
        sent = sock.sendmsg(pieces[:_MAX_IOV])
    except OSError:  # BlockingIOError included: the socket's buffer is full
        return pieces
    index = 0
    while index < len(pieces) and sent >= len(pieces[index]):
        sent -= len(pieces[index])
        index += 1
    rest = pieces[index:]
    if sent:
        rest[0] = memoryview(rest[0])[sent:]
    return rest


def _owned(data: _Buffer) -> _Buffer:
    """``data`` in a form that later changes by the caller cannot alter."""
    if type(data) is bytes:
        return data
    if type(data) is memoryview and data.readonly:
        return data
    return bytes(data)


# Stands in for the protocol once connection_lost was called.
_DETACHED = asyncio.BufferedProtocol()


class SocketTransport(asyncio.Transport):
    """A connected, non-blocking stream socket driven by the loop's reader and writer.

    Made by :class:`Listener` for every accepted connection (or directly, for a socket
    connected elsewhere); ``protocol.connection_made`` is called from the constructor.
    """

    __slots__ = (
        "_buffer",
        "_buffer_size",
        "_closing",
        "_eof",
        "_fd",
        "_high",
        "_loop",
        "_lost",
        "_low",
        "_peer",
        "_protocol",
        "_reader_on",
        "_reading",
        "_sock",
        "_sockname",
        "_write_eof",
        "_writing_paused",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        protocol: asyncio.BufferedProtocol,
        peer: Any = None,
    ) -> None:
        self._loop = loop
        self._sock: socket.socket | None = sock
        self._fd = sock.fileno()
        self._protocol: asyncio.BufferedProtocol = protocol
        self._peer = peer
        self._sockname: Any = None
        # Bytes the kernel did not take yet; None while everything was sent.
        self._buffer: collections.deque[_Buffer] | None = None
        self._buffer_size = 0
        self._high = _DEFAULT_HIGH
        self._low = _DEFAULT_HIGH // 4
        self._writing_paused = False
        self._closing = False  # close() or abort() was called, or the peer left
        self._lost = False  # connection_lost is scheduled
        self._eof = False  # the peer sent EOF
        self._write_eof = False
        self._reading = True  # not paused by the protocol
        self._reader_on = False  # the loop watches the socket for reading
        try:
            protocol.connection_made(self)
        except Exception as exc:
            self._fatal_error(exc, "protocol.connection_made() failed")
            return
        self._update_reader()

    def __repr__(self) -> str:
        state = "closed" if self._sock is None else "closing" if self._closing else "open"
        return f"<SocketTransport fd={self._fd} {state}>"

    # Extra info

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "peername":
            return self._peer
        if name == "sockname":
            if self._sockname is None and self._sock is not None:
                self._sockname = self._sock.getsockname()
            return self._sockname if self._sockname is not None else default
        if name == "socket":
            return self._sock if self._sock is not None else default
        return default

    # Protocol

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._protocol

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        if not isinstance(protocol, asyncio.BufferedProtocol):
            raise TypeError("SocketTransport needs an asyncio.BufferedProtocol")
        self._protocol = protocol

    # Reading

    def is_reading(self) -> bool:
        return self._reader_on

    def pause_reading(self) -> None:
        self._reading = False
        self._update_reader()

    def resume_reading(self) -> None:
        self._reading = True
        self._update_reader()

    def _update_reader(self) -> None:
        want = self._reading and not self._closing and not self._eof
        if want and not self._reader_on:
            self._reader_on = True
            if _c_read_ready is not None:
                self._loop.add_reader(self._fd, _c_read_ready, self)
            else:
                self._loop.add_reader(self._fd, self._read_ready)
        elif not want and self._reader_on:
            self._reader_on = False
            self._loop.remove_reader(self._fd)

    def _read_ready(self) -> None:
        for _ in range(_MAX_READS):
            # Checked before every read: the protocol may have paused reading, closed the
            # transport or been replaced during the one before.
            sock = self._sock
            if sock is None or not self._reader_on:
                return
            if not self._read_once(sock, self._protocol):
                return

    def _read_once(self, sock: socket.socket, protocol: asyncio.BufferedProtocol) -> bool:
        """One read into the protocol's buffer; whether it filled the buffer."""
        try:
            buffer = protocol.get_buffer(-1)
        except Exception as exc:
            self._fatal_error(exc, "protocol.get_buffer() failed")
            return False
        try:
            nbytes = sock.recv_into(buffer)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError as exc:
            self._fatal_error(exc, "socket.recv_into() failed")
            return False
        if not nbytes:
            self._read_eof(protocol)
            return False
        try:
            protocol.buffer_updated(nbytes)
        except Exception as exc:
            self._fatal_error(exc, "protocol.buffer_updated() failed")
            return False
        return nbytes == memoryview(buffer).nbytes

    def _read_eof(self, protocol: asyncio.BufferedProtocol) -> None:
        """The peer sent EOF."""
        self._eof = True
        self._update_reader()
        try:
            keep_open = protocol.eof_received()
        except Exception as exc:
            self._fatal_error(exc, "protocol.eof_received() failed")
            return
        if not keep_open:
            self.close()

    # Writing

    def get_write_buffer_size(self) -> int:
        return self._buffer_size

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return (self._low, self._high)

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        if high is None:
            high = _DEFAULT_HIGH if low is None else 4 * low
        if low is None:
            low = high // 4
        if not high >= low >= 0:
            raise ValueError(f"high ({high!r}) must be >= low ({low!r}) must be >= 0")
        self._high, self._low = high, low
        self._check_high_water()

    def _write(self, data: _Buffer) -> None:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"data must be bytes-like, not {type(data).__name__}")
        if self._write_eof:
            raise RuntimeError("cannot write after write_eof()")
        sock = self._sock
        if not data or self._closing or sock is None:
            return  # nothing is written after close() or abort()
        if type(data) is memoryview and data.itemsize != 1:
            data = data.cast("B")  # sizes below are in bytes
        if self._buffer is None:
            try:
                sent = sock.send(data)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError as exc:
                self._fatal_error(exc, "socket.send() failed")
                return
            if sent == len(data):
                return
            self._buffer_rest(data, sent)
            return
        self._buffer.append(_owned(data))
        self._buffer_size += len(data)
        self._check_high_water()

    def _buffer_rest(self, data: _Buffer, sent: int) -> None:
        """Keep what the kernel did not take of ``data`` (nothing was buffered before)."""
        rest = memoryview(data)[sent:]
        self._start_buffering()
        assert self._buffer is not None
        self._buffer.append(_owned(rest))
        self._buffer_size += len(rest)
        self._check_high_water()

    # In C when the accelerator is built: bytes written at once there, the rest in _write.
    if TYPE_CHECKING:
        write = _write
    else:
        write = _write if _c_write is None else _c_write

    def writelines(self, list_of_data: Iterable[_Buffer]) -> None:
        # Sizes are counted in bytes, as sendmsg counts them.
        pieces = [
            piece if type(piece) is bytes else memoryview(piece).cast("B")
            for piece in list_of_data
            if len(piece)
        ]
        sock = self._sock
        if len(pieces) <= 1 or self._buffer is not None or self._closing or sock is None:
            for piece in pieces:
                self.write(piece)
            return
        if self._write_eof:
            raise RuntimeError("cannot write after write_eof()")
        rest = send_vectored(sock, pieces)
        # Whatever the kernel did not take (or an error) goes the usual way.
        for piece in rest:
            self.write(piece)

    def _start_buffering(self) -> None:
        self._buffer = collections.deque()
        self._loop.add_writer(self._fd, self._write_ready)

    def _write_ready(self) -> None:
        sock, buffer = self._sock, self._buffer
        if sock is None or buffer is None:
            return
        pieces = list(itertools.islice(buffer, _MAX_IOV))
        try:
            sent = sock.sendmsg(pieces) if len(pieces) > 1 else sock.send(pieces[0])
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._fatal_error(exc, "socket.send() failed")
            return
        self._buffer_size -= sent
        while sent:
            first = buffer[0]
            if sent < len(first):
                buffer[0] = memoryview(first)[sent:]
                break
            sent -= len(first)
            buffer.popleft()
        if self._writing_paused and self._buffer_size <= self._low:
            self._writing_paused = False
            self._call_protocol("resume_writing")
        if not buffer:
            self._buffer = None
            self._loop.remove_writer(self._fd)
            if self._write_eof:
                self._shutdown_write()
            if self._closing:
                self._connection_lost(None)

    def _check_high_water(self) -> None:
        if not self._writing_paused and self._buffer_size > self._high:
            self._writing_paused = True
            self._call_protocol("pause_writing")

    def _call_protocol(self, name: str) -> None:
        try:
            getattr(self._protocol, name)()
        except Exception as exc:
            self._loop.call_exception_handler(
                {
                    "message": f"protocol.{name}() failed",
                    "exception": exc,
                    "transport": self,
                    "protocol": self._protocol,
                }
            )

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        if self._write_eof or self._closing:
            return
        self._write_eof = True
        if self._buffer is None:
            self._shutdown_write()

    def _shutdown_write(self) -> None:
        sock = self._sock
        assert sock is not None  # called only before the connection is lost
        try:
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the connection is already gone; reading will tell

    # Closing

    def _is_closing(self) -> bool:
        return self._closing

    if TYPE_CHECKING:
        is_closing = _is_closing
    else:
        is_closing = _is_closing if _c_is_closing is None else _c_is_closing

    def close(self) -> None:
        """Close once everything buffered is written; the protocol hears it later."""
        if self._closing:
            return
        self._closing = True
        self._update_reader()
        if self._buffer is None:
            self._connection_lost(None)

    def abort(self) -> None:
        """Close now, dropping whatever is buffered."""
        self._force_close(None)

    def _fatal_error(self, exc: Exception, message: str) -> None:
        if not isinstance(exc, OSError):
            self._loop.call_exception_handler(
                {
                    "message": message,
                    "exception": exc,
                    "transport": self,
                    "protocol": self._protocol,
                }
            )
        elif self._loop.get_debug():
            logger.debug("%r: %s", self, message, exc_info=exc)
        self._force_close(exc)

    def _force_close(self, exc: Exception | None) -> None:
        if self._lost:
            return
        if self._buffer is not None:
            self._buffer = None
            self._buffer_size = 0
            self._loop.remove_writer(self._fd)
        self._closing = True
        self._update_reader()
        self._connection_lost(exc)

    def _connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        self._loop.call_soon(self._call_connection_lost, exc)

    def _call_connection_lost(self, exc: Exception | None) -> None:
        try:
            self._protocol.connection_lost(exc)
        finally:
            sock, self._sock = self._sock, None
            assert sock is not None
            sock.close()
            # Let go of the protocol: it usually refers back to this transport, and
            # reference counting alone then frees both.
            self._protocol = _DETACHED


if _c_use_class is not None:
    _c_use_class(SocketTransport)


class Listener:
    """Accepts connections on a listening socket and runs each on a :class:`SocketTransport`.

    The listener works on its own duplicate of the socket, so the object that owns the
    listening socket (an :class:`asyncio.Server` that was never started) keeps it.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        protocol_factory: Callable[[], asyncio.BufferedProtocol],
        backlog: int,
    ) -> None:
        self.loop = loop
        self.sock = sock
        self.protocol_factory = protocol_factory
        self.backlog = max(backlog, 1)
        self._nodelay = sock.family in (socket.AF_INET, socket.AF_INET6)
        self._retry: asyncio.TimerHandle | None = None
        self._closed = False
        sock.setblocking(False)
        # An asyncio server made with start_serving=False has bound but not listened.
        sock.listen(backlog)
        loop.add_reader(sock.fileno(), self._accept_ready)

    def close(self) -> None:
        """Stop accepting and close this listener's socket."""
        if self._closed:
            return
        self._closed = True
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        else:
            self.loop.remove_reader(self.sock.fileno())
        self.sock.close()

    def _accept_ready(self) -> None:
        for _ in range(self.backlog):
            try:
                conn, peer = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:  # pragma: no cover - Linux drops these itself
                continue  # the client gave up before we got to it
            except OSError as exc:
                # Out of descriptors or memory, usually (EMFILE, ENFILE, ENOBUFS,
                # ENOMEM): retrying at once would spin, so pause accepting a while.
                logger.error(
                    "accept() failed: %s; accepting again in %.1f s", exc, ACCEPT_RETRY_DELAY
                )
                self.loop.remove_reader(self.sock.fileno())
                self._retry = self.loop.call_later(ACCEPT_RETRY_DELAY, self._resume)
                return
            self._start(conn, peer)

    def _resume(self) -> None:
        self._retry = None
        if not self._closed:
            self.loop.add_reader(self.sock.fileno(), self._accept_ready)

    def _start(self, conn: socket.socket, peer: Any) -> None:
        try:
            conn.setblocking(False)
            if self._nodelay:
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            protocol = self.protocol_factory()
        except Exception as exc:
            conn.close()
            self.loop.call_exception_handler(
                {"message": "starting an accepted connection failed", "exception": exc}
            )
            return
        SocketTransport(self.loop, conn, protocol, peer)


def supports_loop(loop: asyncio.AbstractEventLoop) -> bool:
    """Tell whether :class:`Listener` and :class:`SocketTransport` can run on ``loop``.

    They need ``add_reader``/``add_writer`` on plain sockets, which asyncio's selector
    loops and uvloop provide; on uvloop they also cost fewer instructions per message
    than uvloop's stream transports, whose read and write paths add a layer of their own.
    """
    # sendmsg() is missing on Windows, whose selector loop then keeps asyncio's path.
    if not hasattr(socket.socket, "sendmsg"):
        return False
    if isinstance(loop, asyncio.selector_events.BaseSelectorEventLoop):
        return True
    return any(cls.__module__ in _UVLOOP_MODULES for cls in type(loop).__mro__)


# Where uvloop's Loop class is defined (``uvloop.Loop`` subclasses ``uvloop.loop.Loop``).
_UVLOOP_MODULES = frozenset({"uvloop", "uvloop.loop"})
