"""Server push: per-connection outbound queues, :class:`PeerHandle`, :class:`PeerRegistry`.

Every server connection has one bounded outbound queue and one writer task (spec
section 3.3): responses and pushed notifies leave in the order they were queued.
Pushing a notify never waits: :meth:`PeerHandle.send_notify` returns a
:class:`SendResult` at once, ``OK`` meaning "queued", not "delivered" (spec section 3.4).

Fast path: when the connection can take a message without waiting (an outbound queue
with a ``direct`` writer, empty, with no batch in the writer's hands) the message goes
straight to the transport's write buffer, on the event loop's thread, and never through
the queue and the writer task; the order is the same, since nothing is queued ahead of
it. A broadcast hands all such connections to ``direct`` in one call, which encodes
the WebSocket frame once for all of them.
"""

from __future__ import annotations

import asyncio
import collections
import enum
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeAlias

from ..types import BytesLike, PeerInfo
from .bodies import encode_body
from .repe import BodyFormat, notify_message


__all__ = [
    "DirectWrite",
    "Outbound",
    "PeerHandle",
    "PeerRegistry",
    "SendResult",
]


class SendResult(enum.Enum):
    """What happened to a pushed notify. Only ``OK`` is true in a boolean context."""

    OK = "ok"
    """Queued for the peer's writer (not yet delivered)."""
    FULL = "full"
    """The peer's outbound queue is full (a slow consumer); nothing was queued."""
    DISCONNECTED = "disconnected"
    """The peer is gone."""
    TOO_LARGE = "too_large"
    """Above the assumed peer frame limit: dropped and reported via ``on_error``."""

    def __bool__(self) -> bool:
        return self is SendResult.OK


_OK = SendResult.OK
_FULL = SendResult.FULL
_DISCONNECTED = SendResult.DISCONNECTED
_TOO_LARGE = SendResult.TOO_LARGE

DirectWrite: TypeAlias = Callable[[Sequence[Any], bytes], Sequence[Any]]
"""``direct(targets, message) -> skipped``: write one binary message to many targets
without waiting, returning those that could not take it now (closing, or above their
write high-water mark). :func:`tether.asyncio.server.broadcast` is one."""


class Outbound:
    """A bounded FIFO of encoded messages, drained by one writer task.

    :meth:`try_put` never waits (notifies; callable from any thread); :meth:`put` waits
    for room (responses: a full queue stops the reader, which is the backpressure).

    Args:
        capacity: the most messages queued at once (at least 1).
        direct: writes a message at once when nothing is queued ahead of it (see the
            module docstring); ``None`` sends everything through the writer task.
        target: what ``direct`` is called with, e.g. the WebSocket connection.
        reply: writes one message to ``target`` at once if it can take it, returning
            whether it did (e.g. the connection's ``send_nowait``); used instead of
            ``direct`` for single messages such as responses.
    """

    def __init__(
        self,
        capacity: int,
        *,
        direct: DirectWrite | None = None,
        target: Any = None,
        reply: Callable[[bytes], bool] | None = None,
    ) -> None:
        if capacity < 1:
            raise ValueError(f"outbound capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self.direct = direct
        self.target = target
        self.reply = reply
        self.loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        self._items: collections.deque[BytesLike] = collections.deque()
        self._closed = False
        self._busy = False  # the writer holds a batch it has not written yet
        self._reader_waiter: asyncio.Future[None] | None = None
        self._space_waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        # Sets (one per registry holding this queue) that contain it while it is not
        # idle: messages queued, a batch in the writer's hands, or closed.
        self._watchers: tuple[set[Outbound], ...] = ()

    def __len__(self) -> int:
        return len(self._items)

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def writable_now(self) -> bool:
        """Whether a message may skip the queue: ``direct`` set, nothing ahead of it,
        and we are on the event loop's thread."""
        return (
            self.direct is not None
            and not self._items
            and not self._busy
            and not self._closed
            and threading.get_ident() == self._thread
        )

    def watch(self, watcher: set[Outbound], *, stop: bool = False) -> None:
        """Keep this queue in ``watcher`` exactly while it is not idle (or stop that)."""
        if stop:
            self._watchers = tuple(w for w in self._watchers if w is not watcher)
            watcher.discard(self)
            return
        if not any(w is watcher for w in self._watchers):
            self._watchers = (*self._watchers, watcher)
        self._report_idle()

    def _report_idle(self) -> None:
        if self._items or self._busy or self._closed:
            self._report_busy()
        else:
            for watcher in self._watchers:
                watcher.discard(self)

    def _report_busy(self) -> None:
        for watcher in self._watchers:
            watcher.add(self)

    def try_put(self, data: BytesLike) -> SendResult:
        """Queue ``data`` if there is room, without waiting."""
        if self._closed:
            return _DISCONNECTED
        if (
            self.direct is not None
            and type(data) is bytes
            and threading.get_ident() == self._thread
            and self.write_now(data)
        ):
            return _OK
        return self.enqueue(data)

    def write_now(self, data: bytes) -> bool:
        """Write ``data`` through ``direct`` if nothing is queued ahead of it and the
        connection takes it without waiting; return whether it did (event loop only)."""
        if self._items or self._busy or self._closed:
            return False
        reply = self.reply
        if reply is not None:
            return reply(data)
        direct = self.direct
        return direct is not None and not direct((self.target,), data)

    def enqueue(self, data: BytesLike) -> SendResult:
        """Queue ``data`` for the writer task if there is room (never written directly)."""
        if self._closed:
            return _DISCONNECTED
        if len(self._items) >= self.capacity:
            return _FULL
        self._items.append(data)
        self._report_busy()
        if threading.get_ident() == self._thread:
            self._wake()
        else:
            self.loop.call_soon_threadsafe(self._wake)
        return _OK

    async def put(self, data: BytesLike) -> bool:
        """Queue ``data``, waiting for room; return ``False`` once the queue is closed."""
        if type(data) is bytes and self.write_now(data):
            return True
        while len(self._items) >= self.capacity and not self._closed:
            waiter = self.loop.create_future()
            self._space_waiters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._space_waiters:
                    self._space_waiters.remove(waiter)
        if self._closed:
            return False
        self._items.append(data)
        self._report_busy()
        self._wake()
        return True

    async def get_all(self) -> list[BytesLike]:
        """Wait for messages and take all of them; ``[]`` once closed and empty.

        Until :meth:`batch_written`, later messages are queued behind the batch.
        """
        items = self._items
        while not items:
            if self._closed:
                return []
            waiter = self._reader_waiter = self.loop.create_future()
            try:
                await waiter
            finally:
                self._reader_waiter = None
        batch = list(items)
        items.clear()
        self._busy = True
        for waiter in self._space_waiters:
            if not waiter.done():
                waiter.set_result(None)
        return batch

    def batch_written(self) -> None:
        """The writer handed the whole batch from :meth:`get_all` to the transport."""
        self._busy = False
        if self._watchers:
            self._report_idle()

    def close(self) -> None:
        """Refuse new messages; the writer still takes what is queued."""
        self._closed = True
        self._report_idle()
        self._wake()
        for waiter in self._space_waiters:
            if not waiter.done():
                waiter.set_result(None)

    def _wake(self) -> None:
        waiter = self._reader_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class PeerHandle:
    """One connected peer, for pushing notifies to it (spec section 3.4).

    Attributes:
        id: the peer id, unique in the process, from 1.
        info: the transport's peer information (handshake path, query, headers).
    """

    __slots__ = ("_limit", "_outbound", "_too_large", "id", "info")

    def __init__(
        self,
        id: int,
        info: PeerInfo,
        outbound: Outbound,
        *,
        limit: int | None = None,
        too_large: Callable[[PeerHandle, int, str], None] | None = None,
    ) -> None:
        self.id = id
        self.info = info
        self._outbound = outbound
        self._limit = limit
        self._too_large = too_large

    def __repr__(self) -> str:
        return f"<PeerHandle {self.id}>"

    @property
    def connected(self) -> bool:
        """Whether the connection still accepts messages."""
        return not self._outbound.closed

    @property
    def queued(self) -> int:
        """How many messages wait in the outbound queue."""
        return len(self._outbound)

    def send_notify(
        self, path: str, body: BytesLike = b"", body_format: int = BodyFormat.RAW
    ) -> SendResult:
        """Queue a notify with an encoded body (id 0, query format 1; spec 3.4).

        Never waits. Callable from a thread pool handler too.
        """
        return self.send_encoded(notify_message(path, body, body_format).encode(), path)

    def send_notify_json(self, path: str, value: Any) -> SendResult:
        """Queue a notify with ``value`` encoded as JSON."""
        return self.send_notify(path, encode_body(value, BodyFormat.JSON), BodyFormat.JSON)

    def send_notify_beve(self, path: str, value: Any) -> SendResult:
        """Queue a notify with ``value`` encoded as BEVE."""
        return self.send_notify(path, encode_body(value, BodyFormat.BEVE), BodyFormat.BEVE)

    def send_notify_utf8(self, path: str, text: str) -> SendResult:
        """Queue a notify with a UTF-8 text body."""
        return self.send_notify(path, text.encode(), BodyFormat.UTF8)

    def send_encoded(self, data: BytesLike, path: str = "") -> SendResult:
        """Queue an already encoded REPE message (broadcasts encode once and call this)."""
        limit = self._limit
        if limit is not None and len(data) > limit:
            # Spec section 3.6: an oversized notify is dropped and reported.
            if self._too_large is not None:
                self._too_large(self, len(data), path)
            return _TOO_LARGE
        return self._outbound.try_put(data)


class PeerRegistry:
    """The live peers of one or more servers, with application aliases (spec 3.4).

    A key names at most one peer; a peer may have several keys; aliasing a key to
    another peer moves it; removing a peer drops its keys. Use it from the event loop's
    thread (pushing through a :class:`PeerHandle` works from any thread).
    """

    def __init__(self) -> None:
        self._peers: dict[int, PeerHandle] = {}
        self._key_to_peer: dict[str, int] = {}
        self._peer_keys: dict[int, list[str]] = {}
        # The outbound queues of our peers that are not idle (see Outbound.watch), and
        # the peers grouped for broadcasts, rebuilt after a peer comes or goes.
        self._not_idle: set[Outbound] = set()
        self._groups: list[_Group] | None = None

    def __len__(self) -> int:
        return len(self._peers)

    def __iter__(self) -> Iterator[PeerHandle]:
        return iter(list(self._peers.values()))

    def __contains__(self, peer_id: object) -> bool:
        return peer_id in self._peers

    def ids(self) -> list[int]:
        """The ids of the live peers."""
        return list(self._peers)

    def insert(self, peer: PeerHandle) -> None:
        """Add a peer (the server does it when a connection opens)."""
        previous = self._peers.get(peer.id)
        if previous is not None and previous is not peer:
            previous._outbound.watch(self._not_idle, stop=True)
        self._peers[peer.id] = peer
        peer._outbound.watch(self._not_idle)
        self._groups = None

    def remove(self, peer_id: int) -> PeerHandle | None:
        """Remove a peer and its aliases (the server does it on disconnect)."""
        for key in self._peer_keys.pop(peer_id, ()):
            del self._key_to_peer[key]
        peer = self._peers.pop(peer_id, None)
        if peer is not None:
            peer._outbound.watch(self._not_idle, stop=True)
            self._groups = None
        return peer

    def get(self, peer_id: int) -> PeerHandle | None:
        """The peer with this id, or ``None``."""
        return self._peers.get(peer_id)

    # Aliases

    def alias(self, peer_id: int, key: str) -> bool:
        """Attach ``key`` to a peer, moving it from any other peer.

        Returns:
            ``False`` when no live peer has this id (nothing changes).
        """
        if peer_id not in self._peers:
            return False
        previous = self._key_to_peer.get(key)
        if previous == peer_id:
            return True
        if previous is not None:
            keys = self._peer_keys[previous]
            keys.remove(key)
            if not keys:
                del self._peer_keys[previous]
        self._key_to_peer[key] = peer_id
        self._peer_keys.setdefault(peer_id, []).append(key)
        return True

    def unalias(self, key: str) -> bool:
        """Detach ``key``; return whether it was attached."""
        peer_id = self._key_to_peer.pop(key, None)
        if peer_id is None:
            return False
        keys = self._peer_keys[peer_id]
        keys.remove(key)
        if not keys:
            del self._peer_keys[peer_id]
        return True

    def get_by(self, key: str) -> PeerHandle | None:
        """The peer that ``key`` names, or ``None``."""
        peer_id = self._key_to_peer.get(key)
        return None if peer_id is None else self._peers.get(peer_id)

    def key_for(self, peer_id: int) -> str | None:
        """The first key attached to a peer, or ``None``."""
        keys = self._peer_keys.get(peer_id)
        return keys[0] if keys else None

    def aliases_for(self, peer_id: int) -> list[str]:
        """Every key attached to a peer, in the order they were attached."""
        return list(self._peer_keys.get(peer_id, ()))

    # Broadcast: encode once, enqueue everywhere (spec section 3.4).

    def broadcast_notify_raw(
        self, path: str, body: BytesLike, body_format: int = BodyFormat.RAW
    ) -> dict[int, SendResult]:
        """Queue one notify to every peer; the message is encoded once.

        Returns:
            Each peer's :class:`SendResult`; a full queue affects only its peer.
        """
        data = notify_message(path, body, body_format).encode()
        size = len(data)
        me = threading.get_ident()
        results = dict.fromkeys(self._peers, _OK)
        not_idle = self._not_idle
        groups = self._groups
        if groups is None:
            groups = self._groups = _group(self._peers.values())
        for direct, thread, limit, peers, all_targets in groups:
            if direct is None or thread != me or (limit is not None and size > limit):
                for peer in peers:
                    results[peer.id] = peer.send_encoded(data, path)
                continue
            if not_idle:
                # Something is queued for some peers: theirs goes behind it, in order.
                ready: list[PeerHandle] = []
                for peer in peers:
                    if peer._outbound in not_idle:
                        results[peer.id] = peer.send_encoded(data, path)
                    else:
                        ready.append(peer)
                targets = [peer._outbound.target for peer in ready]
            else:
                ready, targets = peers, all_targets
            skipped = direct(targets, data)
            if skipped:
                # Closing, or above the write high-water mark: the writer task takes it.
                by_target = {id(peer._outbound.target): peer for peer in ready}
                for target in skipped:
                    peer = by_target[id(target)]
                    results[peer.id] = peer._outbound.enqueue(data)
        return results

    def broadcast_notify_json(self, path: str, value: Any) -> dict[int, SendResult]:
        """:meth:`broadcast_notify_raw` with ``value`` encoded as JSON."""
        return self.broadcast_notify_raw(path, encode_body(value, BodyFormat.JSON), BodyFormat.JSON)

    def broadcast_notify_beve(self, path: str, value: Any) -> dict[int, SendResult]:
        """:meth:`broadcast_notify_raw` with ``value`` encoded as BEVE."""
        return self.broadcast_notify_raw(path, encode_body(value, BodyFormat.BEVE), BodyFormat.BEVE)

    def broadcast_notify_utf8(self, path: str, text: str) -> dict[int, SendResult]:
        """:meth:`broadcast_notify_raw` with a UTF-8 text body."""
        return self.broadcast_notify_raw(path, text.encode(), BodyFormat.UTF8)


_Group: TypeAlias = tuple[DirectWrite | None, int, int | None, list[PeerHandle], list[Any]]
"""Peers one ``direct`` call can serve: (direct, loop thread, size limit, peers, targets)."""


def _group(peers: Iterable[PeerHandle]) -> list[_Group]:
    groups: dict[tuple[DirectWrite | None, int, int | None], list[PeerHandle]] = {}
    for peer in peers:
        outbound = peer._outbound
        key = (outbound.direct, outbound._thread, peer._limit)
        groups.setdefault(key, []).append(peer)
    return [
        (*key, members, [peer._outbound.target for peer in members])
        for key, members in groups.items()
    ]
