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

The hot paths, publishing and reading pub/sub messages, speak RESP directly over two
connections of their own (:mod:`.resp`): a publish is one write and one reply with no
pooling or retry layers, and every message that arrives in one read is handed to the
relay in that read, so that pushes that arrive together are written together. Presence
and history go through ``redis-py``. The URL may name a TCP or a Unix socket address
(``redis://``, ``unix://``) or TLS (``rediss://``, whose ``ssl_*`` settings the backend's
own connections take from redis-py, so both verify the server the same way).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import hashlib
import json
import logging
import secrets
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from ..errors import BackendError
from .base import BackendEvent, DeliverCallback, EventCallback
from .resp import Reply, RespError, RespParser, RespProtocolError, encode_command


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


_PUBLISH_RECORDED_SHA = hashlib.sha1(_PUBLISH_RECORDED.encode(), usedforsecurity=False).hexdigest()


class _Lane(asyncio.Protocol):
    """One connection speaking RESP: pipelined commands, or a pub/sub subscription.

    Replies answer the oldest pending :meth:`call`; after :meth:`subscribe_mode` (pub/sub)
    every reply goes to its callback instead. When the connection ends, pending calls fail
    with :class:`ConnectionError` and :attr:`lost` is resolved.
    """

    def __init__(self) -> None:
        loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.lost: asyncio.Future[None] = loop.create_future()
        self._on_push: Callable[[Reply], None] | None = None
        self._parser = RespParser()
        self._waiters: collections.deque[asyncio.Future[Reply]] = collections.deque()

    @property
    def closed(self) -> bool:
        return self.lost.done()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            replies = self._parser.feed(data)
        except RespProtocolError as exc:
            logger.error("redis sent something that isn't RESP: %s", exc)
            assert self.transport is not None
            self.transport.abort()
            return
        on_push = self._on_push
        for reply in replies:
            if on_push is not None:
                on_push(reply)
            elif self._waiters:
                waiter = self._waiters.popleft()
                if not waiter.done():
                    waiter.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        error = ConnectionError(f"connection lost: {exc}" if exc else "connection closed")
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(error)
        if not self.lost.done():
            self.lost.set_result(None)

    def subscribe_mode(self, on_push: Callable[[Reply], None]) -> None:
        """From now on, hand every reply to ``on_push`` (after the setup commands)."""
        self._on_push = on_push

    def send(self, *args: bytes | str | int) -> None:
        """Send a command whose answer comes through ``on_push``."""
        if self.transport is None or self.closed:
            raise ConnectionError("connection closed")
        self.transport.write(encode_command(*args))

    def call(self, *args: bytes | str | int) -> asyncio.Future[Reply]:
        """Send a command; the future gets its reply (a :class:`RespError` included)."""
        self.send(*args)
        waiter: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        return waiter

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


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
        self._pubsub: _Lane | None = None
        self._commands: _Lane | None = None
        self._commands_lock = asyncio.Lock()
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
        if self._commands is not None:
            self._commands.close()
        if self._redis is not None:
            await self._redis.aclose()
        for waiter in self._confirmations.values():
            waiter.cancel()
        self._confirmations.clear()

    async def _close_pubsub(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            pubsub.close()

    async def _open_lane(self) -> _Lane:
        """Connect a RESP connection to the URL's address, authenticated, on its database.

        Raises:
            ConnectionError, OSError, TimeoutError: Redis is unreachable or refused.
        """
        pool = self._redis.connection_pool
        settings = pool.connection_kwargs
        loop = asyncio.get_running_loop()
        lane = _Lane()
        async with asyncio.timeout(self.connect_timeout):
            if settings.get("path"):
                await loop.create_unix_connection(lambda: lane, settings["path"])
            else:
                host, port = settings.get("host", "localhost"), settings.get("port", 6379)
                tls = getattr(pool.connection_class(**settings), "ssl_context", None)
                context = None if tls is None else tls.get()
                await loop.create_connection(lambda: lane, host, port, ssl=context)
            setup: list[tuple[Any, ...]] = []
            if settings.get("password"):
                username = settings.get("username")
                setup.append(
                    ("AUTH", username, settings["password"])
                    if username
                    else ("AUTH", settings["password"])
                )
            if settings.get("db"):
                setup.append(("SELECT", settings["db"]))
            for command in setup:
                reply = await lane.call(*command)
                if isinstance(reply, RespError):
                    lane.close()
                    raise ConnectionError(f"{command[0]} refused: {reply}")
        return lane

    # Pub/sub

    async def _read_forever(self) -> None:
        delay = self.reconnect_initial
        control = f"{self.prefix}node:{self.node_id}".encode()
        while True:
            reconnecting = self._down_since is not None
            try:
                lane = await self._open_lane()
                self._pubsub = lane
                confirmed = asyncio.get_running_loop().create_future()
                lane.subscribe_mode(functools.partial(self._on_pubsub, confirmed))
                # Always subscribed to something, so the connection exists while idle.
                lane.send("SUBSCRIBE", control, *(self._channel(t) for t in self._topics))
                await asyncio.wait([confirmed, lane.lost], return_when=asyncio.FIRST_COMPLETED)
                if not confirmed.done():
                    raise ConnectionError("connection lost while subscribing")
                self._connected.set()
                delay = self.reconnect_initial
                if reconnecting:
                    await self._reconnected()
                await lane.lost
                raise ConnectionError("connection lost")
            except (ConnectionError, OSError, TimeoutError) as exc:
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

    def _on_pubsub(self, confirmed: asyncio.Future[None], reply: Reply) -> None:
        """A reply on the pub/sub connection: a message, or a subscription confirmed."""
        if type(reply) is not list or len(reply) != 3:
            return  # e.g. an error answering a command sent while Redis shuts down
        kind, channel, data = reply
        if kind == b"message":
            topic = self._channel_topics.get(channel)  # type: ignore[arg-type]
            deliver = self._deliver
            if topic is not None and deliver is not None and topic in self._topics:
                deliver(topic, data.decode())  # type: ignore[union-attr]
        elif kind == b"subscribe":
            if not confirmed.done():
                confirmed.set_result(None)
            waiter = self._confirmations.pop(channel, None)  # type: ignore[arg-type]
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

    async def _command(self, *args: bytes | str | int) -> Reply:
        """Send one command on the command connection (connected on first use).

        Raises:
            BackendError: Redis is unreachable, or the connection ended before the reply.
        """
        if self._closed or self._redis is None:
            raise BackendError("redis backend is not running")
        lane = self._commands
        if lane is None or lane.closed:
            async with self._commands_lock:
                lane = self._commands
                if lane is None or lane.closed:
                    try:
                        lane = self._commands = await self._open_lane()
                    except (ConnectionError, OSError, TimeoutError) as exc:
                        raise BackendError(f"redis: {exc}") from exc
        try:
            return await lane.call(*args)
        except ConnectionError as exc:
            raise BackendError(f"redis: {exc}") from exc

    async def publish(self, topic: str, data: str) -> None:
        """``PUBLISH`` on the topic's channel.

        Raises:
            BackendError: Redis is unreachable.
        """
        reply = await self._command("PUBLISH", self._channel(topic), data)
        if isinstance(reply, RespError):
            raise BackendError(f"redis: {reply}")

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
            pubsub.send("SUBSCRIBE", channel)
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
            pubsub.send("UNSUBSCRIBE", channel)
        except ConnectionError as exc:
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
        keys = (f"{self.prefix}hc:{topic}", f"{self.prefix}h:{topic}")
        ttl = max(1, int(self.history_ttl * 1000))
        args = (data, maxlen, ttl, self._channel(topic))
        reply = await self._command("EVALSHA", _PUBLISH_RECORDED_SHA, 2, *keys, *args)
        if isinstance(reply, RespError) and reply.prefix == "NOSCRIPT":
            # First use on this Redis (or after a restart): EVAL caches the script.
            reply = await self._command("EVAL", _PUBLISH_RECORDED, 2, *keys, *args)
        if not isinstance(reply, int):
            raise BackendError(f"redis: unexpected answer to the recording script: {reply!r}")
        return reply

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
