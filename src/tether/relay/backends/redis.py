"""The Redis backend: relay nodes that share one Redis server.

Install the extra: ``pip install 'tether[redis]'``. Only this module imports ``redis``,
and only when a :class:`RedisBackend` starts.

Keys and channels (``prefix`` is ``"tether:"`` by default):

* ``{prefix}ch:{topic}``: the pub/sub channel of one topic (one channel per topic, and
  one per topic's presence diffs), subscribed by the nodes that have subscribers;
* ``{prefix}pr:{topic}:{node}``: a hash of one node's presence entries on a topic
  (connection id to JSON metadata) with a TTL the owning node refreshes every third of
  it; a node that dies stops refreshing and its entries expire;
* ``{prefix}prn:{topic}``: the set of nodes that may have entries on a topic;
* ``{prefix}h:{topic}`` and ``{prefix}hc:{topic}``: a stream with the topic's last
  ``maxlen`` pushes (entry id ``{offset}-0``, trimmed exactly) and the offset counter,
  expiring ``history_ttl`` after the last push. One Lua script appends a push and
  publishes it with its offset, so recording and fan-out cost one round trip.

When the pub/sub connection drops (Redis restarted, network trouble) the backend reports
``BackendEvent("disconnected")``, reconnects with backoff, resubscribes every topic,
rewrites this node's presence, and reports ``BackendEvent("reconnected", down_for=...)``:
pushes published during that window may not have reached this node. Commands issued while
Redis is unreachable raise :class:`~tether.relay.errors.BackendError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections.abc import Iterator, Mapping
from typing import Any

from ..errors import BackendError
from .base import BackendEvent, DeliverCallback, EventCallback


__all__ = ["RedisBackend"]

logger = logging.getLogger("tether.relay.redis")

# KEYS: offset counter, stream. ARGV: message, ring length, TTL (ms), channel.
# The published copy is the message with ``"offset":N`` added before its closing brace.
_PUBLISH_RECORDED = """
local n = redis.call('INCR', KEYS[1])
local offset = string.format('%d', n)
redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[2], offset .. '-0', 'd', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
redis.call('PUBLISH', ARGV[4], string.sub(ARGV[1], 1, -2) .. ',"offset":' .. offset .. '}')
return n
"""


class RedisBackend:
    """Fan-out, presence and history in Redis (see :class:`~.base.Backend`).

    Args:
        url: the Redis URL, e.g. ``redis://127.0.0.1:6379/0``.
        prefix: prefix of every key and channel.
        presence_ttl: seconds this node's presence entries live unless refreshed.
        history_ttl: seconds a topic's history lives after its last push.
        reconnect_initial, reconnect_max: backoff bounds in seconds for reconnecting.
        connect_timeout: seconds allowed to connect to Redis.
    """

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        prefix: str = "tether:",
        presence_ttl: float = 30.0,
        history_ttl: float = 3600.0,
        reconnect_initial: float = 0.05,
        reconnect_max: float = 2.0,
        connect_timeout: float = 2.0,
    ) -> None:
        self.url = url
        self.prefix = prefix
        self.presence_ttl = presence_ttl
        self.history_ttl = history_ttl
        self.reconnect_initial = reconnect_initial
        self.reconnect_max = reconnect_max
        self.connect_timeout = connect_timeout
        self.node_id = secrets.token_hex(6)
        self._redis: Any = None
        self._publish_recorded: Any = None
        self._pubsub: Any = None
        self._deliver: DeliverCallback | None = None
        self._on_event: EventCallback | None = None
        self._topics: set[str] = set()
        self._channel_topics: dict[bytes, str] = {}
        self._confirmations: dict[bytes, asyncio.Future[None]] = {}
        self._owned: dict[str, dict[str, str]] = {}
        self._connected = asyncio.Event()
        self._down_since: float | None = None
        self._reader: asyncio.Task[None] | None = None
        self._refresher: asyncio.Task[None] | None = None
        self._closed = False

    # Names

    def _channel(self, topic: str) -> bytes:
        return f"{self.prefix}ch:{topic}".encode()

    def _presence_key(self, topic: str, node_id: str) -> str:
        return f"{self.prefix}pr:{topic}:{node_id}"

    def _nodes_key(self, topic: str) -> str:
        return f"{self.prefix}prn:{topic}"

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        import redis.exceptions

        if self._closed or self._redis is None:
            raise BackendError("redis backend is not running")
        try:
            yield
        except (redis.exceptions.RedisError, OSError) as exc:
            raise BackendError(f"redis: {exc}") from exc

    # Lifecycle

    async def start(self, deliver: DeliverCallback, on_event: EventCallback) -> None:
        """Connect, and start the pub/sub reader and the presence refresher.

        Returns once the pub/sub connection is up (or after ``connect_timeout``, with
        the reader retrying in the background).
        """
        import redis.asyncio

        self._deliver = deliver
        self._on_event = on_event
        self._redis = redis.asyncio.Redis.from_url(
            self.url, socket_connect_timeout=self.connect_timeout
        )
        self._publish_recorded = self._redis.register_script(_PUBLISH_RECORDED)
        self._reader = asyncio.create_task(self._read_forever())
        self._refresher = asyncio.create_task(self._refresh_forever())
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.connect_timeout):
                await self._connected.wait()

    async def close(self) -> None:
        """Stop the reader and the refresher and close the connections (idempotent)."""
        if self._closed:
            return
        self._closed = True
        for task in (self._reader, self._refresher):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self._close_pubsub()
        if self._redis is not None:
            await self._redis.aclose()
        for waiter in self._confirmations.values():
            waiter.cancel()
        self._confirmations.clear()

    async def _close_pubsub(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            with contextlib.suppress(Exception):
                await pubsub.aclose()

    # Pub/sub

    async def _read_forever(self) -> None:
        import redis.exceptions

        delay = self.reconnect_initial
        control = f"{self.prefix}node:{self.node_id}".encode()
        while True:
            try:
                pubsub = self._redis.pubsub()
                self._pubsub = pubsub
                # Always subscribed to something, so the connection exists while idle.
                await pubsub.subscribe(control, *(self._channel(t) for t in self._topics))
                await self._reader_loop(pubsub, reconnecting=self._down_since is not None)
            except (
                redis.exceptions.ConnectionError,
                redis.exceptions.TimeoutError,
                OSError,
            ) as exc:
                self._connected.clear()
                if self._down_since is None:
                    self._down_since = time.time()
                    self._report(
                        BackendEvent(
                            "disconnected",
                            error=str(exc) or type(exc).__name__,
                            down_since=self._down_since,
                            topics=tuple(sorted(self._topics)),
                        )
                    )
                await self._close_pubsub()
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.reconnect_max)
            else:  # pragma: no cover - the reader loop only ends with an exception
                return
            if self._closed:  # pragma: no cover
                return

    async def _reader_loop(self, pubsub: Any, reconnecting: bool) -> None:
        confirmed = False
        while True:
            message = await pubsub.get_message(timeout=None)
            if message is None:
                continue
            kind = message["type"]
            if kind == b"message" or kind == "message":
                topic = self._channel_topics.get(message["channel"])
                deliver = self._deliver
                if topic is not None and deliver is not None and topic in self._topics:
                    deliver(topic, message["data"].decode())
            elif kind == b"subscribe" or kind == "subscribe":
                if not confirmed:
                    confirmed = True
                    self._connected.set()
                    if reconnecting:
                        reconnecting = False
                        await self._reconnected()
                waiter = self._confirmations.pop(message["channel"], None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(None)

    async def _reconnected(self) -> None:
        down_since = self._down_since or time.time()
        self._down_since = None
        # Pooled connections from before the outage fail once each: retry a few times.
        for attempt in range(3):
            try:
                await self._refresh_once()
                break
            except BackendError as exc:
                if attempt == 2:
                    logger.warning("rewriting presence after reconnection failed: %s", exc)
        self._report(
            BackendEvent(
                "reconnected",
                down_since=down_since,
                down_for=time.time() - down_since,
                topics=tuple(sorted(self._topics)),
            )
        )

    def _report(self, event: BackendEvent) -> None:
        if self._on_event is not None:
            self._on_event(event)

    async def publish(self, topic: str, data: str) -> None:
        """``PUBLISH`` on the topic's channel.

        Raises:
            BackendError: Redis is unreachable.
        """
        with self._errors():
            await self._redis.publish(self._channel(topic), data)

    async def subscribe(self, topic: str) -> None:
        """``SUBSCRIBE`` to the topic's channel and wait for the confirmation.

        While Redis is unreachable, the topic is subscribed on reconnection instead.
        """
        channel = self._channel(topic)
        self._topics.add(topic)
        self._channel_topics[channel] = topic
        pubsub = self._pubsub
        if pubsub is None or not self._connected.is_set():
            return
        waiter = asyncio.get_running_loop().create_future()
        self._confirmations[channel] = waiter
        try:
            await pubsub.subscribe(channel)
            async with asyncio.timeout(self.connect_timeout):
                await waiter
        except Exception as exc:
            logger.warning("subscribing to %s failed: %s; will retry on reconnection", topic, exc)
        finally:
            self._confirmations.pop(channel, None)

    async def unsubscribe(self, topic: str) -> None:
        """``UNSUBSCRIBE`` from the topic's channel."""
        channel = self._channel(topic)
        self._topics.discard(topic)
        self._channel_topics.pop(channel, None)
        pubsub = self._pubsub
        if pubsub is None or not self._connected.is_set():
            return
        try:
            await pubsub.unsubscribe(channel)
        except Exception as exc:
            logger.warning("unsubscribing from %s failed: %s", topic, exc)

    # Presence

    def _ttl_ms(self) -> int:
        return max(1, int(self.presence_ttl * 1000))

    async def presence_set(self, topic: str, conn_id: str, meta: Any) -> bool:
        """Set this node's entry in its hash for the topic; refresh the TTL."""
        encoded = json.dumps(meta, separators=(",", ":"))
        self._owned.setdefault(topic, {})[conn_id] = encoded
        key = self._presence_key(topic, self.node_id)
        nodes = self._nodes_key(topic)
        ttl = self._ttl_ms()
        with self._errors():
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.hset(key, conn_id, encoded)
                pipe.pexpire(key, ttl)
                pipe.sadd(nodes, self.node_id)
                pipe.pexpire(nodes, ttl)
                added, *_ = await pipe.execute()
        return bool(added)

    async def presence_remove(self, topic: str, conn_id: str) -> Any | None:
        """Remove this node's entry; return its metadata or ``None``."""
        owned = self._owned.get(topic)
        encoded = owned.pop(conn_id, None) if owned is not None else None
        if owned is not None and not owned:
            del self._owned[topic]
        key = self._presence_key(topic, self.node_id)
        with self._errors():
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.hget(key, conn_id)
                pipe.hdel(key, conn_id)
                stored, _ = await pipe.execute()
        if stored is None:
            stored = encoded
        return json.loads(stored) if stored is not None else None

    async def _live_nodes(self, topic: str, command: str) -> list[tuple[str, Any]]:
        nodes_key = self._nodes_key(topic)
        with self._errors():
            nodes = sorted(n.decode() for n in await self._redis.smembers(nodes_key))
            if not nodes:
                return []
            async with self._redis.pipeline(transaction=False) as pipe:
                for node in nodes:
                    getattr(pipe, command)(self._presence_key(topic, node))
                results = await pipe.execute()
            dead = [node for node, result in zip(nodes, results) if not result]
            if dead:
                await self._redis.srem(nodes_key, *dead)
        return [(node, result) for node, result in zip(nodes, results) if result]

    async def presence_list(self, topic: str) -> Mapping[str, Any]:
        """Every live entry on the topic, across nodes."""
        entries: dict[str, Any] = {}
        for _, fields in await self._live_nodes(topic, "hgetall"):
            for conn_id, encoded in fields.items():
                entries[conn_id.decode()] = json.loads(encoded)
        return entries

    async def presence_count(self, topic: str) -> int:
        """How many live entries the topic has, across nodes."""
        return sum(int(count) for _, count in await self._live_nodes(topic, "hlen"))

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self.presence_ttl / 3)
            try:
                await self._refresh_once()
            except BackendError as exc:
                logger.debug("presence refresh failed: %s", exc)

    async def _refresh_once(self) -> None:
        """Push back the expiry of this node's entries; rewrite the ones Redis lost."""
        if not self._owned:
            return
        ttl = self._ttl_ms()
        topics = list(self._owned)
        with self._errors():
            async with self._redis.pipeline(transaction=False) as pipe:
                for topic in topics:
                    pipe.pexpire(self._presence_key(topic, self.node_id), ttl)
                    pipe.sadd(self._nodes_key(topic), self.node_id)
                    pipe.pexpire(self._nodes_key(topic), ttl)
                results = await pipe.execute()
            lost = [topic for topic, ok in zip(topics, results[::3]) if not ok]
            if lost:
                async with self._redis.pipeline(transaction=False) as pipe:
                    for topic in lost:
                        entries = self._owned.get(topic)
                        if not entries:
                            continue
                        key = self._presence_key(topic, self.node_id)
                        pipe.hset(key, mapping=entries)
                        pipe.pexpire(key, ttl)
                    await pipe.execute()

    # History

    async def publish_recorded(self, topic: str, data: str, maxlen: int) -> int:
        """Append to the topic's stream with the next offset and publish, in one call.

        One Lua script increments the counter, appends, refreshes the expiry and
        publishes the copy with the offset, so a push costs one round trip and every
        node sees a topic's offsets in order.
        """
        keys = [f"{self.prefix}hc:{topic}", f"{self.prefix}h:{topic}"]
        ttl = max(1, int(self.history_ttl * 1000))
        args = [data, maxlen, ttl, self._channel(topic)]
        with self._errors():
            return int(await self._publish_recorded(keys=keys, args=args))

    async def history_read(self, topic: str, since: int) -> list[tuple[int, str]] | None:
        """The pushes after ``since``, or ``None`` when some aren't available."""
        stream = f"{self.prefix}h:{topic}"
        with self._errors():
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.get(f"{self.prefix}hc:{topic}")
                pipe.xrange(stream, "-", "+", count=1)
                pipe.xrange(stream, f"{since + 1}-0", "+")
                counter, first, entries = await pipe.execute()
        last = int(counter) if counter is not None else 0
        if since > last:
            return None
        if since == last:
            return []
        if not first or _offset(first[0][0]) > since + 1:
            return None
        return [(_offset(entry_id), fields[b"d"].decode()) for entry_id, fields in entries]


def _offset(entry_id: bytes) -> int:
    return int(entry_id.partition(b"-")[0])
