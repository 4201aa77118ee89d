"""The embedded backend: fan-out, presence and history in this process.

It is the default. One :class:`MemoryBroker` plays the part of the shared server; each
:class:`MemoryBackend` is one node attached to it. A relay created without a backend gets
a node on a broker of its own; relays that share a broker behave like nodes sharing a
Redis server, which the conformance tests use.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import time
from collections.abc import Callable, Mapping
from typing import Any

from ..envelope import add_offset
from ..presence import PresenceState
from .base import DeliverCallback, EventCallback


__all__ = ["MemoryBackend", "MemoryBroker"]

_node_ids = itertools.count(1)


class MemoryBroker:
    """State shared by the :class:`MemoryBackend` nodes attached to it.

    Args:
        max_history_topics: topics whose history is kept; the least recently used topic
            is forgotten beyond that.
        clock: the time source for presence expiry (monotonic seconds).
    """

    def __init__(
        self,
        *,
        max_history_topics: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_history_topics = max_history_topics
        self.clock = clock
        self.subscribers: dict[str, set[MemoryBackend]] = {}
        self.presence: dict[MemoryBackend, PresenceState] = {}
        self.history: collections.OrderedDict[
            str, tuple[list[int], collections.deque[tuple[int, str]]]
        ] = collections.OrderedDict()

    def _states(self) -> list[PresenceState]:
        now = self.clock()
        states = []
        for node, state in list(self.presence.items()):
            state.expire(now)
            if node._closed and len(state) == 0:
                del self.presence[node]
            else:
                states.append(state)
        return states


class MemoryBackend:
    """A relay node on a :class:`MemoryBroker` (see :class:`~.base.Backend`).

    Args:
        broker: the broker to attach to; a private one when ``None``.
        presence_ttl: seconds this node's presence entries live unless refreshed; the
            node refreshes them every third of that while it runs. ``None`` disables
            expiry.
    """

    def __init__(
        self, broker: MemoryBroker | None = None, *, presence_ttl: float | None = 30.0
    ) -> None:
        self.broker = broker if broker is not None else MemoryBroker()
        self.node_id = f"memory-{next(_node_ids)}"
        self.presence_ttl = presence_ttl
        self._state = PresenceState(presence_ttl)
        self._topics: set[str] = set()
        self._deliver: DeliverCallback | None = None
        self._refresher: asyncio.Task[None] | None = None
        self._closed = False

    async def start(self, deliver: DeliverCallback, on_event: EventCallback) -> None:
        """Attach to the broker. ``on_event`` is never called: nothing here can fail."""
        self._deliver = deliver
        self.broker.presence[self] = self._state
        if self.presence_ttl is not None and self._refresher is None:
            self._refresher = asyncio.create_task(self._refresh_forever(self.presence_ttl))

    async def _refresh_forever(self, ttl: float) -> None:
        while True:
            await asyncio.sleep(ttl / 3)
            self._state.refresh(self.broker.clock())

    async def publish(self, topic: str, data: str) -> None:
        """Deliver ``data`` to every node subscribed to ``topic`` (synchronously)."""
        for node in list(self.broker.subscribers.get(topic, ())):
            deliver = node._deliver
            if deliver is not None:
                deliver(topic, data)

    async def subscribe(self, topic: str) -> None:
        """Receive ``topic``'s messages."""
        self._topics.add(topic)
        self.broker.subscribers.setdefault(topic, set()).add(self)

    async def unsubscribe(self, topic: str) -> None:
        """Stop receiving ``topic``'s messages."""
        self._topics.discard(topic)
        nodes = self.broker.subscribers.get(topic)
        if nodes is not None:
            nodes.discard(self)
            if not nodes:
                del self.broker.subscribers[topic]

    async def presence_set(self, topic: str, conn_id: str, meta: Any) -> bool:
        """Set this node's entry; return whether it is new."""
        state = self._state
        new = conn_id not in state.entries(topic, self.broker.clock())
        state.join(topic, conn_id, meta, self.broker.clock())
        return new

    async def presence_remove(self, topic: str, conn_id: str) -> Any | None:
        """Remove this node's entry; return its metadata or ``None``."""
        diff = self._state.leave(topic, conn_id)
        return diff.leaves.get(conn_id)

    async def presence_list(self, topic: str) -> Mapping[str, Any]:
        """Live entries of ``topic`` on every node of the broker."""
        now = self.broker.clock()
        result: dict[str, Any] = {}
        for state in self.broker._states():
            result.update(state.entries(topic, now))
        return result

    async def presence_count(self, topic: str) -> int:
        """How many live entries ``topic`` has on every node of the broker."""
        now = self.broker.clock()
        return sum(state.count(topic, now) for state in self.broker._states())

    async def publish_recorded(self, topic: str, data: str, maxlen: int) -> int:
        """Store ``data`` in ``topic``'s ring and publish it with its offset."""
        offset = self._record(topic, data, maxlen)
        await self.publish(topic, add_offset(data, offset))
        return offset

    def _record(self, topic: str, data: str, maxlen: int) -> int:
        broker = self.broker
        history = broker.history
        record = history.get(topic)
        if record is None:
            record = ([0], collections.deque(maxlen=maxlen))
            history[topic] = record
            while len(history) > broker.max_history_topics:
                history.popitem(last=False)
        else:
            history.move_to_end(topic)
        counter, ring = record
        if ring.maxlen != maxlen:
            ring = collections.deque(ring, maxlen=maxlen)
            history[topic] = (counter, ring)
        counter[0] += 1
        offset = counter[0]
        ring.append((offset, data))
        return offset

    async def history_read(self, topic: str, since: int) -> list[tuple[int, str]] | None:
        """The messages after ``since``, or ``None`` when some aren't available."""
        record = self.broker.history.get(topic)
        last = record[0][0] if record is not None else 0
        if since > last:
            return None
        if since == last:
            return []
        assert record is not None
        ring = record[1]
        if not ring or ring[0][0] > since + 1:
            return None
        return [(offset, data) for offset, data in ring if offset > since]

    async def close(self) -> None:
        """Detach from the broker; this node's presence entries are left to expire."""
        if self._closed:
            return
        self._closed = True
        for topic in list(self._topics):
            await self.unsubscribe(topic)
        self._deliver = None
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher
            self._refresher = None
