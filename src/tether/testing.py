"""Testing helpers: an in-memory pair of message streams.

Test RPC routers, relay channel handlers or your own handlers without sockets::

    client, server = memory_pair()
    task = asyncio.create_task(handler(server))
    await client.send("hello")
    assert await client.recv() == ...

Each end implements :class:`tether.types.MessageStream`.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Mapping

from .exceptions import ConnectionClosed, ConnectionClosedError, ConnectionClosedOK
from .protocol.close import Close
from .types import Data, DataLike, HandshakeInfo


__all__ = ["MemoryStream", "memory_pair"]


class MemoryStream:
    """One end of an in-memory pair made by :func:`memory_pair`.

    Attributes:
        capacity: most unread messages the other end may hold before :meth:`send` waits
            (0: no limit); lets tests fill a server's outbound queue without sockets.
        sent_count: messages sent from this end.
    """

    def __init__(self, capacity: int, peer: HandshakeInfo) -> None:
        self.capacity = capacity
        self._peer = peer
        self.other: MemoryStream | None = None
        self._inbox: collections.deque[Data] = collections.deque()
        self._close: tuple[Close, bool] | None = None  # (close, closed by this end)
        self._waiters: list[asyncio.Future[None]] = []
        self.sent_count = 0

    @property
    def peer(self) -> HandshakeInfo:
        """What this end knows about the other (see :class:`tether.types.PeerInfo`)."""
        return self._peer

    @property
    def closed(self) -> bool:
        """Whether either end closed the pair."""
        return self._close is not None

    @property
    def unread(self) -> int:
        """Messages sent to this end and not received yet."""
        return len(self._inbox)

    async def send(self, message: DataLike) -> None:
        """Send a message to the other end; wait while it holds ``capacity`` unread."""
        if isinstance(message, bytearray | memoryview):
            message = bytes(message)
        other = self.other
        assert other is not None
        while self._close is None and self.capacity and len(other._inbox) >= self.capacity:
            await self._wait()
        if self._close is not None:
            raise self._error()
        other._inbox.append(message)
        self.sent_count += 1
        other._wake()

    async def recv(self) -> Data:
        """Receive the next message; raise :class:`ConnectionClosed` once closed."""
        while not self._inbox:
            if self._close is not None:
                raise self._error()
            await self._wait()
        message = self._inbox.popleft()
        assert self.other is not None
        self.other._wake()  # room for the other end's sender
        return message

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close both ends with ``code`` and ``reason``."""
        if self._close is not None:
            return
        close = Close(code, reason)
        other = self.other
        assert other is not None
        self._close = (close, True)
        other._close = (close, False)
        self._wake()
        other._wake()

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def _wait(self) -> None:
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)

    def _error(self) -> ConnectionClosed:
        assert self._close is not None
        close, ours = self._close
        cls = ConnectionClosedOK if close.code in (1000, 1001) else ConnectionClosedError
        return cls(None if ours else close, close if ours else None)


def memory_pair(
    capacity: int = 0,
    path: str = "/",
    query: str = "",
    headers: Mapping[str, str] | None = None,
) -> tuple[MemoryStream, MemoryStream]:
    """Return ``(client_end, server_end)`` of a new in-memory pair.

    The server end's :attr:`~MemoryStream.peer` reports ``path``, ``query`` and
    ``headers`` as if they came from an opening handshake.
    """
    client = MemoryStream(capacity, HandshakeInfo("/", "", {}, ("server", 0)))
    server = MemoryStream(capacity, HandshakeInfo(path, query, dict(headers or {}), ("client", 0)))
    client.other, server.other = server, client
    return client, server
