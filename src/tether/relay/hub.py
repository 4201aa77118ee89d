"""The relay hub: connections, subscriptions, fan-out, presence and history.

One :class:`Relay` runs many connections (:meth:`Relay.handle`, one call per
:class:`~tether.types.MessageStream`), so it works over tether's server
(:meth:`Relay.serve`), over ASGI, and over in-memory pairs. Pushes go through the
backend, which brings them back to every node with subscribers, this one included
(:meth:`Relay.push` works from anywhere: HTTP handlers, background tasks).

Each connection has a bounded outbox drained by one writer task. A push is serialized
once per topic and the same string is queued for every subscriber. When a subscriber's
outbox is full, the ``slow_consumer`` policy applies, and it is never silent:

* ``"disconnect"`` (default) closes the connection with 1013 (try again later): the
  client may reconnect and resume with ``since``;
* ``"drop"`` drops the pushes that don't fit and, once the outbox has drained to half
  its capacity, queues ``{"type":"error","message":"lagged","topic":T,"dropped":N}`` per
  topic that lost messages.

Replies to the client's own requests (``subscribed``, ``pong``, errors) wait for room in
the outbox instead, which stops reading from that client until it reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
import weakref
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

from ..asyncio.connection import Connection
from ..asyncio.server import broadcast
from ..exceptions import ConnectionClosed, RejectHandshake
from ..types import MessageStream
from . import envelope
from .backends.base import Backend, BackendEvent
from .backends.memory import MemoryBackend
from .channels import ChannelContext, ChannelHandlers, call_handler
from .errors import EnvelopeError, Reject
from .topics import PRESENCE_CHANNEL_PREFIX, PatternTable, presence_channel, validate_topic


if TYPE_CHECKING:  # pragma: no cover
    from ..asyncio.server import ServerConnection, serve
    from ..protocol.http11 import Request


__all__ = ["Authenticate", "Relay", "RelayConfig", "SLOW_CONSUMER_CLOSE_CODE", "bearer_token"]

logger = logging.getLogger("tether.relay")

# Longest coalescing wait, in write_coalescing windows (see _deliver).
_MAX_WINDOWS = 25

SLOW_CONSUMER_CLOSE_CODE = 1013
"""Close code for a subscriber closed by the ``"disconnect"`` slow-consumer policy."""

Authenticate = Callable[["Request"], Any]
"""``authenticate(request) -> user`` (or an awaitable of it): ``None`` refuses with 401."""


@dataclass(frozen=True, slots=True)
class RelayConfig:
    """Relay settings; every limit has a documented default.

    Attributes:
        path: request path :meth:`Relay.serve` accepts WebSocket connections on.
        topic_buffer: pushes kept per topic for resuming with ``since`` (0 disables
            history: pushes carry no offset and every resume gets "history unavailable").
        max_subscriptions: topics one connection may subscribe to at once.
        max_message_size: largest client message parsed, in bytes; larger ones get
            ``"message too large"``.
        outbox_capacity: messages queued per connection before the slow-consumer policy
            applies.
        slow_consumer: ``"disconnect"`` (close with 1013) or ``"drop"`` (drop and send a
            ``lagged`` notice).
        client_publish: whether client messages on topics without a ``message`` handler
            are pushed to the topic (default: refused with ``"publishing not allowed"``).
        open_topics: whether topics without a channel handler may be subscribed to
            (default: yes; ``False`` answers ``"no such channel"``).
        write_coalescing: while the relay is writing continuously (the previous batch
            of writes to subscribers ended less than this many seconds ago), a push
            waits this long, or twice as long as the previous batch took to write if
            that is longer (at most 25 times this), so that the pushes arriving meanwhile
            (one by one, as from another node) share one write per subscriber. A push
            to an idle relay goes out at once; 0 writes every loop turn.
    """

    path: str = "/ws"
    topic_buffer: int = 100
    max_subscriptions: int = 50
    max_message_size: int = envelope.DEFAULT_MAX_MESSAGE_SIZE
    outbox_capacity: int = 1024
    slow_consumer: Literal["disconnect", "drop"] = "disconnect"
    client_publish: bool = False
    open_topics: bool = True
    write_coalescing: float = 0.002

    def __post_init__(self) -> None:
        if self.slow_consumer not in ("disconnect", "drop"):
            raise ValueError(f"unknown slow_consumer policy: {self.slow_consumer}")
        if self.outbox_capacity < 1 or self.max_subscriptions < 1 or self.topic_buffer < 0:
            raise ValueError("outbox_capacity and max_subscriptions must be positive")
        if not 0 <= self.write_coalescing <= 1:
            raise ValueError("write_coalescing must be between 0 and 1 second")


def bearer_token(request: Request) -> str | None:
    """The bearer token of a handshake request: ``Authorization: Bearer T`` or ``?token=T``.

    Returns:
        The token, or ``None`` when the request carries none.
    """
    import urllib.parse

    header = request.headers.get("Authorization")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    values = urllib.parse.parse_qs(request.query).get("token")
    if values and values[0]:
        return values[0]
    return None


class _Subscription:
    __slots__ = ("conn", "ctx", "pending", "presence", "topic")

    def __init__(self, conn: _Connection, topic: str, presence: bool, ctx: ChannelContext):
        self.conn = conn
        self.topic = topic
        self.presence = presence
        self.ctx = ctx
        # Messages that arrive while the subscription is being confirmed or replayed.
        self.pending: list[str] | None = []


class _Connection:
    __slots__ = (
        "batched",
        "closed",
        "conn_id",
        "direct",
        "dropped",
        "kicked",
        "outbox",
        "relay",
        "space",
        "stream",
        "subs",
        "tracked",
        "user",
        "waiter",
        "writer",
    )

    def __init__(self, relay: Relay, conn_id: str, stream: MessageStream, user: Any) -> None:
        self.relay = relay
        self.conn_id = conn_id
        self.stream = stream
        self.user = user
        self.subs: dict[str, _Subscription] = {}
        self.tracked: set[str] = set()
        self.outbox: deque[str] = deque()
        self.dropped: dict[str, int] = {}
        self.waiter: asyncio.Future[None] | None = None
        self.space: asyncio.Future[None] | None = None
        self.kicked = False
        self.closed = False
        self.writer: asyncio.Task[None] | None = None
        # A tether connection can be written to with broadcast(): pushes queued in one
        # loop turn are then handed over by the relay's flush, one frame for everyone.
        self.direct: Connection | None = stream if isinstance(stream, Connection) else None
        self.batched = False

    def enqueue(self, data: str, topic: str, wake: bool = True) -> bool:
        """Queue a push; apply the slow-consumer policy when the outbox is full.

        Returns:
            Whether the push was queued. With ``wake=False`` the writer isn't woken: the
            relay's batch flush hands the push over (see :meth:`Relay._flush_batch`).
        """
        if self.closed or self.kicked:
            return False
        outbox = self.outbox
        if len(outbox) >= self.relay.config.outbox_capacity:
            if self.relay.config.slow_consumer == "drop":
                self.dropped[topic] = self.dropped.get(topic, 0) + 1
            else:
                self.kick()
            return False
        outbox.append(data)
        if wake:
            self._wake_writer()
        return True

    def can_batch(self) -> bool:
        """Whether a push may wait for the batch flush: a tether connection, idle writer."""
        waiter = self.waiter
        return (
            self.direct is not None
            and not self.outbox
            and not self.dropped
            and waiter is not None
            and not waiter.done()
        )

    def after_batch(self) -> None:
        """After the batch flush: lag notices, replies waiting for room, the writer."""
        self.batched = False
        if self.closed or self.kicked:
            return
        if self.dropped and len(self.outbox) <= self.relay.config.outbox_capacity // 2:
            self._queue_lag_notices()
        self._wake_space()
        if self.outbox:
            self._wake_writer()

    def _queue_lag_notices(self) -> None:
        for topic, count in self.dropped.items():
            self.outbox.append(envelope.error_message("lagged", topic, dropped=count))
        self.dropped.clear()

    def _wake_writer(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def reply(self, data: str) -> None:
        """Queue a reply, waiting for room in the outbox."""
        capacity = self.relay.config.outbox_capacity
        while len(self.outbox) >= capacity and not (self.closed or self.kicked):
            self.space = asyncio.get_running_loop().create_future()
            await self.space
        if self.closed or self.kicked:
            return
        self.outbox.append(data)
        self._wake_writer()

    def kick(self) -> None:
        logger.warning("closing slow consumer %s", self.conn_id)
        self.kicked = True
        self.outbox.clear()
        self._wake_space()
        if self.writer is not None:
            self.writer.cancel()

    def _wake_space(self) -> None:
        space = self.space
        if space is not None and not space.done():
            space.set_result(None)

    async def write(self) -> None:
        """The writer task: drain the outbox into the stream.

        On a tether :class:`~tether.asyncio.connection.Connection`, messages are handed
        over with :func:`~tether.asyncio.server.broadcast`, which never waits and writes
        what one loop turn queued in one go; a connection above its write high-water mark
        is skipped by it and gets the message with ``await send()``, which waits for it to
        drain. Other streams get ``await send()`` for every message.
        """
        outbox = self.outbox
        stream = self.stream
        send = stream.send
        direct = (stream,) if isinstance(stream, Connection) else None
        low = self.relay.config.outbox_capacity // 2
        loop = asyncio.get_running_loop()
        try:
            while True:
                while outbox:
                    data = outbox.popleft()
                    if self.space is not None:
                        self._wake_space()
                    if direct is None or broadcast(direct, data):
                        await send(data)
                    if self.dropped and len(outbox) <= low:
                        self._queue_lag_notices()
                self.waiter = loop.create_future()
                try:
                    await self.waiter
                finally:
                    self.waiter = None
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if not self.kicked or (task is not None and task.cancelling() > 1):
                raise
            if task is not None:
                task.uncancel()
        except ConnectionClosed:
            self.closed = True
            self._wake_space()
            return
        except Exception:
            logger.exception("relay writer failed for %s", self.conn_id)
            self.closed = True
            self._wake_space()
            return
        # Kicked by the "disconnect" policy.
        try:
            await self.stream.close(SLOW_CONSUMER_CLOSE_CODE, "slow consumer")
        except Exception:  # pragma: no cover - close should not fail
            logger.exception("closing slow consumer %s failed", self.conn_id)


class Relay:
    """Topic pub/sub with channel handlers, presence and history.

    ::

        relay = Relay(RelayConfig(client_publish=True))
        async with relay.serve("127.0.0.1", 8000, authenticate=check_token):
            await relay.push("news", "headline", {"title": "..."})

    Args:
        config: settings; defaults when ``None``.
        backend: fan-out, presence and history; an embedded
            :class:`~tether.relay.backends.memory.MemoryBackend` when ``None``, a
            :class:`~tether.relay.backends.redis.RedisBackend` to span nodes.
        on_backend_event: called with each :class:`~.backends.base.BackendEvent`
            (lost and restored backend connection, with the loss window); such events
            are also logged as warnings.
    """

    def __init__(
        self,
        config: RelayConfig | None = None,
        *,
        backend: Backend | None = None,
        on_backend_event: Callable[[BackendEvent], None] | None = None,
    ) -> None:
        self.config = config if config is not None else RelayConfig()
        self.backend: Backend = backend if backend is not None else MemoryBackend()
        self.on_backend_event = on_backend_event
        self.node_id = secrets.token_hex(4)
        self._conn_ids = itertools.count(1)
        self._channels: PatternTable[ChannelHandlers] = PatternTable()
        self._connections: dict[str, _Connection] = {}
        # backend topic (user topic or presence channel) -> conn_id -> subscription
        self._local: dict[str, dict[str, _Subscription]] = {}
        self._background: set[asyncio.Task[None]] = set()
        # Pushes queued this loop turn for tether connections, flushed with broadcast().
        self._batch: list[tuple[str, list[_Connection]]] = []
        self._batched: list[_Connection] = []
        self._flush_handle: asyncio.Handle | None = None
        self._flushed_at = float("-inf")
        self._flush_started = 0.0
        self._flush_cost = 0.0
        self._users: weakref.WeakKeyDictionary[ServerConnection, Any] = weakref.WeakKeyDictionary()
        self._start_lock = asyncio.Lock()
        self._started = False
        self._closed = False

    # Lifecycle

    async def start(self) -> None:
        """Start the backend (called on first use; idempotent)."""
        if self._started:
            return
        async with self._start_lock:
            if not self._started:
                await self.backend.start(self._deliver, self._backend_event)
                self._started = True

    async def close(self) -> None:
        """Close every connection with 1001, wait for background handlers, stop the backend."""
        if self._closed:
            return
        self._closed = True
        for conn in list(self._connections.values()):
            with contextlib.suppress(Exception):
                await conn.stream.close(1001, "relay shutting down")
        if self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)
        await self.backend.close()

    async def __aenter__(self) -> Relay:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # Channels

    def channel(self, pattern: str) -> ChannelHandlers:
        """Register channel handlers for a topic pattern (``"chat:lobby"``, ``"room:*"``).

        Use the result as a class decorator, or its ``join``/``message``/``leave``
        attributes as function decorators; see :mod:`tether.relay.channels`.

        Raises:
            InvalidTopic: the pattern is malformed.
            ValueError: the pattern is already registered.
        """
        handlers = ChannelHandlers(pattern)
        self._channels.add(pattern, handlers)
        return handlers

    # Publishing

    async def push(self, topic: str, event: str, payload: Any) -> int | None:
        """Push ``{"type":"push","topic":T,"event":E,"payload":P}`` to every subscriber.

        The message is serialized once and, with history on, stored in the topic's ring
        and given the next offset, which is returned.

        Raises:
            InvalidTopic: the topic is invalid.
            TypeError, ValueError: the payload cannot be serialized to JSON.
            BackendError: the backend is unreachable.
        """
        validate_topic(topic)
        if not self._started:
            await self.start()
        data = envelope.push_message(topic, event, payload)
        if self.config.topic_buffer:
            return await self.backend.publish_recorded(topic, data, self.config.topic_buffer)
        await self.backend.publish(topic, data)
        return None

    def _deliver(self, topic: str, data: str) -> None:
        """Backend callback: queue ``data`` for this node's subscribers of ``topic``.

        Subscribers on tether connections whose writer is idle keep the push in their
        outbox (so it counts against ``outbox_capacity`` as before) without waking the
        writer; :meth:`_flush_batch` hands it to all of them at once later in the loop
        turn, serialized into one frame by :func:`~tether.asyncio.server.broadcast`.
        """
        subs = self._local.get(topic)
        if not subs:
            return
        batch: list[_Connection] = []
        for sub in subs.values():
            pending = sub.pending
            if pending is not None:
                pending.append(data)
                continue
            conn = sub.conn
            if conn.batched or conn.can_batch():
                if conn.enqueue(data, topic, wake=False):
                    batch.append(conn)
                    if not conn.batched:
                        conn.batched = True
                        self._batched.append(conn)
            else:
                conn.enqueue(data, topic)
        if batch:
            self._batch.append((data, batch))
            if self._flush_handle is None:
                loop = asyncio.get_running_loop()
                now = loop.time()
                window = self.config.write_coalescing
                if now - self._flushed_at >= window:
                    self._flush_handle = loop.call_soon(self._flush_batch)
                else:
                    # Writing continuously: gather what arrives in the next window, or
                    # twice as long as the last batch took to write if that is longer
                    # (up to _MAX_WINDOWS windows): a relay busy writing pushes one by one
                    # spends at most a third of its time on those writes and gathers
                    # more pushes per write.
                    wait = min(max(window, 2 * self._flush_cost), _MAX_WINDOWS * window)
                    self._flush_handle = loop.call_at(now + wait, self._flush_batch)

    def _flush_batch(self) -> None:
        """Hand the pushes queued by :meth:`_deliver` over, in order, one frame per push.

        A connection gets a push only while it is at the head of its outbox (its writer
        may have sent it already). A connection that ``broadcast`` skips (above its write
        high-water mark, or closing) keeps the push at the head of its outbox, and its
        writer, woken at the end, sends it and the rest with backpressure.
        """
        self._flush_handle = None
        self._flush_started = asyncio.get_running_loop().time()
        batch, self._batch = self._batch, []
        touched, self._batched = self._batched, []
        for data, conns in batch:
            ready: list[Connection] = []
            for conn in conns:
                outbox = conn.outbox
                if outbox and outbox[0] is data and conn.direct is not None and not conn.closed:
                    outbox.popleft()
                    ready.append(conn.direct)
            if not ready:
                continue
            skipped = broadcast(ready, data)
            if skipped:
                by_stream = {conn.direct: conn for conn in conns}
                for stream in skipped:
                    conn = by_stream[stream]
                    conn.outbox.appendleft(data)
                    conn.batched = False
        for conn in touched:
            conn.after_batch()
        # Runs after the connections' writes scheduled above: the window starts then.
        asyncio.get_running_loop().call_soon(self._mark_flushed)

    def _mark_flushed(self) -> None:
        now = self._flushed_at = asyncio.get_running_loop().time()
        self._flush_cost = now - self._flush_started

    def _backend_event(self, event: BackendEvent) -> None:
        if event.kind == "disconnected":
            logger.warning("relay backend disconnected: %s", event.error)
        else:
            logger.warning(
                "relay backend reconnected after %.3f s; pushes in that window may be lost",
                event.down_for or 0.0,
            )
            for topic in event.topics:
                if topic.startswith(PRESENCE_CHANNEL_PREFIX):
                    continue
                notice = envelope.error_message("backend interrupted", topic)
                for sub in self._local.get(topic, {}).values():
                    sub.conn.enqueue(notice, topic)
        if self.on_backend_event is not None:
            try:
                self.on_backend_event(event)
            except Exception:
                logger.exception("on_backend_event failed")

    # Presence

    async def track(self, topic: str, conn_id: str, meta: Any = None) -> None:
        """Track ``conn_id`` on ``topic`` with ``meta`` (JSON-serializable; ``{}`` if None).

        Clients subscribed with ``"presence": true`` get a ``presence_diff`` push. Entries
        of this node's connections are removed when they unsubscribe or disconnect.
        """
        validate_topic(topic)
        if meta is None:
            meta = {}
        payload = {"joins": {conn_id: meta}, "leaves": {}}
        data = envelope.push_message(topic, "presence_diff", payload)
        await self.backend.presence_set(topic, conn_id, meta)
        conn = self._connections.get(conn_id)
        if conn is not None:
            conn.tracked.add(topic)
        await self.backend.publish(presence_channel(topic), data)

    async def untrack(self, topic: str, conn_id: str) -> None:
        """Stop tracking ``conn_id`` on ``topic`` (nothing happens if it wasn't)."""
        conn = self._connections.get(conn_id)
        if conn is not None:
            conn.tracked.discard(topic)
        meta = await self.backend.presence_remove(topic, conn_id)
        if meta is None:
            return
        payload = {"joins": {}, "leaves": {conn_id: meta}}
        data = envelope.push_message(topic, "presence_diff", payload)
        await self.backend.publish(presence_channel(topic), data)

    async def presence(self, topic: str) -> dict[str, Any]:
        """Who is on ``topic``, across nodes: connection id to metadata."""
        return dict(await self.backend.presence_list(topic))

    async def presence_count(self, topic: str) -> int:
        """How many connections are tracked on ``topic``, across nodes."""
        return await self.backend.presence_count(topic)

    # Connections

    async def handle(self, stream: MessageStream, user: Any = None) -> None:
        """Run one connection until it closes, then clean up after it.

        Args:
            stream: the connection (tether's, an ASGI adapter's, an in-memory one).
            user: the authenticated identity, available to channel handlers as
                ``ctx.user``.
        """
        if not self._started:
            await self.start()
        conn_id = f"{self.node_id}-{next(self._conn_ids)}"
        conn = _Connection(self, conn_id, stream, user)
        self._connections[conn_id] = conn
        conn.writer = asyncio.create_task(conn.write())
        max_size = self.config.max_message_size
        try:
            while not conn.kicked:
                data = await stream.recv()
                try:
                    message = envelope.parse(data, max_size)
                except EnvelopeError as exc:
                    await conn.reply(envelope.error_message(exc.message, exc.topic))
                    continue
                await self._dispatch(conn, message)
        except ConnectionClosed:
            pass
        finally:
            await self._cleanup(conn)

    async def _dispatch(self, conn: _Connection, message: envelope.ClientMessage) -> None:
        if isinstance(message, envelope.Publish):
            await self._publish(conn, message)
        elif isinstance(message, envelope.Subscribe):
            await self._subscribe(conn, message)
        elif isinstance(message, envelope.Unsubscribe):
            await self._unsubscribe(conn, message.topic)
        else:
            await conn.reply(envelope.pong_message())

    def _context(self, conn: _Connection, topic: str) -> ChannelContext:
        async def reply(event: str, payload: Any) -> None:
            await conn.reply(envelope.push_message(topic, event, payload))

        return ChannelContext(self, conn.conn_id, conn.user, topic, conn.stream.peer, reply)

    async def _subscribe(self, conn: _Connection, message: envelope.Subscribe) -> None:
        topic = message.topic
        if topic in conn.subs:
            await conn.reply(envelope.error_message("already subscribed", topic))
            return
        if len(conn.subs) >= self.config.max_subscriptions:
            await conn.reply(envelope.error_message("too many subscriptions", topic))
            return
        handlers = self._channels.match(topic)
        if handlers is None and not self.config.open_topics:
            await conn.reply(envelope.error_message("no such channel", topic))
            return
        ctx = self._context(conn, topic)
        if handlers is not None and handlers.on_join is not None:
            try:
                await call_handler(handlers.on_join, ctx)
            except Reject as exc:
                await self._untrack_quietly(conn, topic)
                await conn.reply(envelope.error_message(exc.reason, topic))
                return
            except Exception:
                logger.exception("join handler failed for %s", topic)
                await self._untrack_quietly(conn, topic)
                await conn.reply(envelope.error_message("internal error", topic))
                return
        sub = _Subscription(conn, topic, message.presence, ctx)
        conn.subs[topic] = sub
        await self._local_subscribe(topic, sub)
        if message.presence:
            await self._local_subscribe(presence_channel(topic), sub)
        await conn.reply(envelope.subscribed_message(topic))
        if message.presence:
            state = await self.backend.presence_list(topic)
            await conn.reply(envelope.push_message(topic, "presence_state", dict(state)))
        last: int | None = None
        if message.since is not None:
            entries = None
            if self.config.topic_buffer:
                entries = await self.backend.history_read(topic, message.since)
            if entries is None:
                await conn.reply(envelope.error_message("history unavailable", topic))
            else:
                for offset, data in entries:
                    await conn.reply(envelope.add_offset(data, offset))
                last = entries[-1][0] if entries else message.since
        pending, sub.pending = sub.pending or [], None
        for data in pending:
            if last is not None:
                seen = envelope.offset_of(data)
                if seen is not None and seen <= last:
                    continue
            conn.enqueue(data, topic)

    async def _local_subscribe(self, topic: str, sub: _Subscription) -> None:
        subs = self._local.get(topic)
        if subs is None:
            subs = self._local[topic] = {}
            subs[sub.conn.conn_id] = sub
            try:
                await self.backend.subscribe(topic)
            except Exception:
                logger.exception("backend subscribe failed for %s", topic)
        else:
            subs[sub.conn.conn_id] = sub

    async def _local_unsubscribe(self, topic: str, conn_id: str) -> None:
        subs = self._local.get(topic)
        if subs is None or subs.pop(conn_id, None) is None or subs:
            return
        del self._local[topic]
        try:
            await self.backend.unsubscribe(topic)
        except Exception:
            logger.exception("backend unsubscribe failed for %s", topic)

    async def _unsubscribe(self, conn: _Connection, topic: str) -> None:
        sub = conn.subs.get(topic)
        if sub is None:
            await conn.reply(envelope.error_message("not subscribed", topic))
            return
        await self._drop(conn, sub)
        await conn.reply(envelope.unsubscribed_message(topic))

    async def _drop(self, conn: _Connection, sub: _Subscription) -> None:
        topic = sub.topic
        del conn.subs[topic]
        await self._local_unsubscribe(topic, conn.conn_id)
        if sub.presence:
            await self._local_unsubscribe(presence_channel(topic), conn.conn_id)
        await self._untrack_quietly(conn, topic)
        handlers = self._channels.match(topic)
        if handlers is not None and handlers.on_leave is not None:
            self._spawn(self._leave(handlers.on_leave, sub.ctx))

    async def _untrack_quietly(self, conn: _Connection, topic: str) -> None:
        if topic not in conn.tracked:
            return
        try:
            await self.untrack(topic, conn.conn_id)
        except Exception:
            logger.exception("untrack failed for %s on %s", conn.conn_id, topic)

    async def _leave(self, handler: Callable[..., Any], ctx: ChannelContext) -> None:
        try:
            await call_handler(handler, ctx)
        except Exception:
            logger.exception("leave handler failed for %s", ctx.topic)

    def _spawn(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _publish(self, conn: _Connection, message: envelope.Publish) -> None:
        topic = message.topic
        sub = conn.subs.get(topic)
        if sub is None:
            await conn.reply(envelope.error_message("not subscribed", topic))
            return
        handlers = self._channels.match(topic)
        try:
            if handlers is not None and handlers.on_message is not None:
                await call_handler(handlers.on_message, sub.ctx, message.event, message.payload)
            elif self.config.client_publish:
                await self.push(topic, message.event, message.payload)
            else:
                await conn.reply(envelope.error_message("publishing not allowed", topic))
        except Reject as exc:
            await conn.reply(envelope.error_message(exc.reason, topic))
        except Exception:
            logger.exception("message handling failed on %s", topic)
            await conn.reply(envelope.error_message("internal error", topic))

    async def _cleanup(self, conn: _Connection) -> None:
        conn.closed = True
        conn._wake_space()
        for sub in list(conn.subs.values()):
            await self._drop(conn, sub)
        for topic in list(conn.tracked):
            await self._untrack_quietly(conn, topic)
        writer = conn.writer
        if writer is not None and not writer.done():
            if conn.kicked:
                # Let the writer finish closing the connection with 1013.
                await asyncio.shield(writer)
            else:
                writer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await writer
        del self._connections[conn.conn_id]

    def statistics(self) -> dict[str, int]:
        """Counts for monitoring and leak checks: connections, topics, subscriptions."""
        return {
            "connections": len(self._connections),
            "local_topics": len(self._local),
            "subscriptions": sum(len(subs) for subs in self._local.values()),
            "background_tasks": len(self._background),
        }

    # Serving

    async def _serve_connection(self, connection: ServerConnection) -> None:
        user = self._users.pop(connection, None)
        await self.handle(connection, user)

    def serve(
        self,
        host: str | None = None,
        port: int | None = None,
        *,
        authenticate: Authenticate | None = None,
        **kwargs: Any,
    ) -> serve:
        """Serve the relay on ``config.path`` with :func:`tether.asyncio.serve`.

        Args:
            host: address to listen on.
            port: TCP port (0 picks one).
            authenticate: ``authenticate(request) -> user``, run before the upgrade
                (:func:`bearer_token` reads the token). Returning ``None`` refuses with
                401; raise :class:`~tether.exceptions.RejectHandshake` (e.g. with 403)
                to refuse otherwise. The user becomes ``ctx.user`` in channel handlers.
            kwargs: passed to :func:`tether.asyncio.serve` (e.g. ``http_handler``).

        Returns:
            The :func:`~tether.asyncio.serve` object: await it or use ``async with``.
        """
        from ..asyncio.server import serve as serve_

        process_request = None
        if authenticate is not None:
            auth = authenticate

            async def process_request(connection: ServerConnection, request: Request) -> None:
                user = auth(request)
                if isinstance(user, Awaitable):
                    user = await user
                if user is None:
                    raise RejectHandshake(
                        401, "unauthorized\n", [("WWW-Authenticate", 'Bearer realm="relay"')]
                    )
                self._users[connection] = user

        return serve_(
            {self.config.path: self._serve_connection},
            host,
            port,
            process_request=process_request,
            **kwargs,
        )
