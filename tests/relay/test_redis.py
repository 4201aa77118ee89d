"""Several relay nodes sharing one real redis-server."""

import asyncio

from tests.relay.helpers import client, serving
from tests.utils import until
from tether.relay import Relay, RelayConfig
from tether.relay.backends.redis import RedisBackend


def node(url, events=None, presence_ttl=30.0):
    return Relay(
        RelayConfig(),
        backend=RedisBackend(url, presence_ttl=presence_ttl),
        on_backend_event=None if events is None else events.append,
    )


async def poll(predicate, timeout=5.0):
    """Bounded poll of a condition that needs a Redis round trip to check."""
    async with asyncio.timeout(timeout):
        while not await predicate():  # noqa: ASYNC110 - the check itself needs Redis
            await asyncio.sleep(0.05)


async def test_two_nodes(redis_url):
    a, b = node(redis_url, presence_ttl=1.0), node(redis_url, presence_ttl=1.0)

    @b.channel("room:*")
    class Room:
        async def join(self, ctx):
            await ctx.track({"node": "b"})

    async with a, b, serving(a) as server_a, serving(b) as server_b:
        async with client(server_b.url) as on_b, client(server_a.url) as on_a:
            await on_b.subscribe("room:1")
            await on_a.subscribe("room:1", presence=True)
            state = await on_a.recv()
            assert list(state["payload"].values()) == [{"node": "b"}]
            await a.track("room:1", "server-side", {"node": "a"})
            diff = await on_a.recv()
            assert diff["payload"]["joins"] == {"server-side": {"node": "a"}}
            # A push on node A reaches the client on node B (and the one on A).
            offset = await a.push("room:1", "hello", {"from": "a"})
            for c in (on_b, on_a):
                assert await c.recv() == {
                    "type": "push",
                    "topic": "room:1",
                    "event": "hello",
                    "payload": {"from": "a"},
                    "offset": offset,
                }
            assert await a.presence_count("room:1") == 2
            assert await b.presence_count("room:1") == 2
            # Node B's backend dies: its presence expires after the 1 s TTL.
            await b.backend.close()
            await poll(lambda: _count_is(a, "room:1", 1))
            assert await a.presence("room:1") == {"server-side": {"node": "a"}}


async def _count_is(relay, topic, n):
    return await relay.presence_count(topic) == n


async def test_redis_restart_is_survived_and_reported(redis_server, redis_url):
    events = []
    relay = node(redis_url, events)
    async with relay, serving(relay) as server, client(server.url) as c:
        await c.subscribe("t")
        await relay.track("t", "someone", {"x": 1})
        await relay.push("t", "before", 1)
        assert (await c.recv())["event"] == "before"
        redis_server.stop()
        await until(lambda: events)
        assert events[0].kind == "disconnected"
        assert "t" in events[0].topics
        redis_server.start()
        await until(lambda: len(events) >= 2)
        reconnected = events[1]
        assert reconnected.kind == "reconnected"
        assert reconnected.down_for > 0
        assert "t" in reconnected.topics
        # The client is told it may have missed pushes on its topic.
        assert await c.recv() == {"type": "error", "message": "backend interrupted", "topic": "t"}
        # Resubscribed: pushes flow again, and the node rewrote its presence.
        await relay.push("t", "after", 2)
        assert (await c.recv())["event"] == "after"
        assert await relay.presence("t") == {"someone": {"x": 1}}
