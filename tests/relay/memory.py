"""In-memory MessageStream pairs for relay tests (no sockets)."""

import asyncio
import collections

from tether.exceptions import ConnectionClosedError, ConnectionClosedOK
from tether.protocol.close import Close


class PeerInfo:
    def __init__(self, path="/ws", query="", headers=None, remote_address=("memory", 0)):
        self.path = path
        self.query = query
        self.headers = headers or {}
        self.remote_address = remote_address


class MemoryStream:
    """One end of a pair. ``capacity`` bounds the peer's unread messages (0: unbounded)."""

    def __init__(self, capacity, info):
        self.capacity = capacity
        self.peer = info
        self.other = None
        self.inbox = collections.deque()
        self.close_info = None  # (Close, closed_by_us)
        self._waiters = []

    def _wake(self):
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def _wait(self):
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)

    def _error(self):
        close, ours = self.close_info
        cls = ConnectionClosedOK if close.code in (1000, 1001) else ConnectionClosedError
        return cls(None if ours else close, close if ours else None)

    async def send(self, message):
        other = self.other
        while self.close_info is None and self.capacity and len(other.inbox) >= self.capacity:
            await self._wait()
        if self.close_info is not None:
            raise self._error()
        other.inbox.append(message)
        other._wake()

    async def recv(self):
        while not self.inbox:
            if self.close_info is not None:
                raise self._error()
            await self._wait()
        message = self.inbox.popleft()
        self.other._wake()
        return message

    async def close(self, code=1000, reason=""):
        if self.close_info is not None:
            return
        close = Close(code, reason)
        self.close_info = (close, True)
        self.other.close_info = (close, False)
        self._wake()
        self.other._wake()


def memory_pair(capacity=0, path="/ws", query="", headers=None):
    """Return ``(client_end, server_end)``."""
    client = MemoryStream(capacity, PeerInfo("/", "", {}, ("server", 0)))
    server = MemoryStream(capacity, PeerInfo(path, query, headers, ("client", 0)))
    client.other, server.other = server, client
    return client, server
