"""An in-memory pair of message streams for unit tests of the RPC layer.

Each end implements :class:`tether.types.MessageStream`. ``capacity`` bounds each
direction's queue: a sender waits when the other end has that many unread messages,
which lets tests fill a server's outbound queue without sockets.
"""

import asyncio
import collections

from tether.exceptions import ConnectionClosedError, ConnectionClosedOK
from tether.protocol.close import Close


class MemoryPeerInfo:
    def __init__(self, path="/repe", query="", headers=None, remote_address=("memory", 0)):
        self.path = path
        self.query = query
        self.headers = headers or {}
        self.remote_address = remote_address


class MemoryStream:
    def __init__(self, capacity, info):
        self.capacity = capacity
        self._peer_info = info
        self.other = None
        self._inbox = collections.deque()
        self._close = None  # (Close, sent_by_us)
        self._waiters = []
        self.sent_count = 0

    @property
    def peer(self):
        return self._peer_info

    @property
    def closed(self):
        return self._close is not None

    def _wake(self):
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def _wait(self):
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        await waiter

    def _error(self):
        close, ours = self._close
        ok = close.code in (1000, 1001)
        cls = ConnectionClosedOK if ok else ConnectionClosedError
        return cls(None if ours else close, close if ours else None)

    async def send(self, message):
        if isinstance(message, bytearray | memoryview):
            message = bytes(message)
        other = self.other
        while self._close is None and self.capacity and len(other._inbox) >= self.capacity:
            await other._wait_space(self)
        if self._close is not None:
            raise self._error()
        other._inbox.append(message)
        self.sent_count += 1
        other._wake()

    async def _wait_space(self, sender):
        await sender._wait()

    async def recv(self):
        while not self._inbox:
            if self._close is not None:
                raise self._error()
            await self._wait()
        message = self._inbox.popleft()
        self.other._wake()  # room for the other end's sender
        return message

    async def close(self, code=1000, reason=""):
        if self._close is not None:
            return
        close = Close(code, reason)
        self._close = (close, True)
        self.other._close = (close, False)
        self._wake()
        self.other._wake()


def memory_pair(capacity=0, path="/repe", query="", headers=None):
    """Return ``(client_end, server_end)``."""
    client = MemoryStream(capacity, MemoryPeerInfo("/", "", {}, ("server", 0)))
    server = MemoryStream(capacity, MemoryPeerInfo(path, query, headers or {}, ("client", 0)))
    client.other, server.other = server, client
    return client, server


try:  # tests/utils.py, importable when the repository root is on sys.path
    from tests.utils import until
except ImportError:  # pragma: no cover - running one file with a bare `pytest`
    import importlib.util
    import pathlib

    _spec = importlib.util.spec_from_file_location(
        "_tether_test_utils", pathlib.Path(__file__).parent.parent / "utils.py"
    )
    _utils = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(_utils)
    until = _utils.until
