"""Several relay nodes sharing one real redis-server."""

import asyncio

import pytest

from tests.relay.helpers import client, serving
from tests.utils import until
from tether.relay import Relay, RelayConfig
from tether.relay.backends.redis import RedisBackend
from tether.relay.backends.resp import RespParser
from tether.relay.errors import BackendError


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


# The backend's own RESP connections: addresses, credentials, database, scripts, errors.


async def test_password_database_and_unix_socket(secured_redis):
    import redis.asyncio

    for url in (
        f"redis://:s3cret@127.0.0.1:{secured_redis.port}/3",
        f"unix://{secured_redis.socket_path}?db=3&password=s3cret",
    ):
        relay = Relay(RelayConfig(), backend=RedisBackend(url))
        async with relay, serving(relay) as server, client(server.url) as c:
            await c.subscribe("db-test")
            offset = await relay.push("db-test", "hi", url[:4])
            assert await c.recv() == {
                "type": "push",
                "topic": "db-test",
                "event": "hi",
                "payload": url[:4],
                "offset": offset,
            }
        # The history went to database 3, where redis-py finds it.
        direct = redis.asyncio.Redis(port=secured_redis.port, password="s3cret", db=3)
        try:
            assert int(await direct.get("tether:hc:db-test")) == offset
            await direct.flushdb()
        finally:
            await direct.aclose()


async def assert_refused(url, reason):
    """The backend reports ``reason`` as a disconnection at start and on every command."""
    events = []
    backend = RedisBackend(url, connect_timeout=0.5)
    await backend.start(lambda topic, data: None, events.append)
    try:
        assert events[0].kind == "disconnected"
        assert reason in events[0].error
        with pytest.raises(BackendError, match=reason):
            await backend.publish("t", "{}")
    finally:
        await backend.close()


async def test_wrong_password_is_reported(secured_redis):
    await assert_refused(f"redis://:wrong@127.0.0.1:{secured_redis.port}/0", "AUTH refused")


async def test_script_cache_flushed(redis_url):
    import redis.asyncio

    relay = node(redis_url)
    async with relay, serving(relay) as server, client(server.url) as c:
        await c.subscribe("s")
        assert await relay.push("s", "one", 1) == 1
        direct = redis.asyncio.Redis.from_url(redis_url)
        try:
            await direct.script_flush()
        finally:
            await direct.aclose()
        # EVALSHA now answers NOSCRIPT: the script is sent again, the offsets go on.
        assert await relay.push("s", "two", 2) == 2
        assert [(await c.recv())["offset"] for _ in range(2)] == [1, 2]


async def test_tls(tls_redis):
    url = f"rediss://127.0.0.1:{tls_redis.tls_port}/0?ssl_ca_certs={tls_redis.ca_path}"
    relay = Relay(RelayConfig(), backend=RedisBackend(url))
    async with relay, serving(relay) as server, client(server.url) as c:
        await c.subscribe("secure")
        offset = await relay.push("secure", "hi", 1)
        assert await c.recv() == {
            "type": "push",
            "topic": "secure",
            "event": "hi",
            "payload": 1,
            "offset": offset,
        }
        # Presence goes through redis-py, over TLS too.
        await relay.track("secure", "me", {"x": 1})
        assert await relay.presence("secure") == {"me": {"x": 1}}


async def test_tls_with_an_untrusted_certificate_is_refused(tls_redis):
    # Without the test CA, the server's certificate does not verify.
    url = f"rediss://127.0.0.1:{tls_redis.tls_port}/0"
    await assert_refused(url, "CERTIFICATE_VERIFY_FAILED")


class FakeRedis:
    """A loopback server that speaks just enough RESP to answer the backend wrongly."""

    def __init__(self, answers, on_subscribe=b""):
        self.answers = answers  # command name -> raw reply bytes
        self.on_subscribe = on_subscribe  # sent before the confirmations; None: hang up

    async def __aenter__(self):
        self.server = await asyncio.start_server(self.serve, "127.0.0.1", 0)
        self.url = f"redis://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/0"
        return self

    async def __aexit__(self, *exc_info):
        self.server.close()
        await self.server.wait_closed()

    async def serve(self, reader, writer):
        parser = RespParser()
        try:
            while data := await reader.read(65536):
                for command in parser.feed(data):
                    name = command[0].upper()
                    if name == b"SUBSCRIBE":
                        if self.on_subscribe is None:
                            return
                        writer.write(self.on_subscribe)
                        for channel in command[1:]:
                            writer.write(encode_reply([b"subscribe", channel, 1]))
                    else:
                        writer.write(self.answers[name])
        finally:
            writer.close()


def encode_reply(items):
    return b"*%d\r\n" % len(items) + b"".join(
        b":%d\r\n" % item if isinstance(item, int) else b"$%d\r\n%s\r\n" % (len(item), item)
        for item in items
    )


async def test_error_and_unexpected_replies_raise_backend_error():
    answers = {b"PUBLISH": b"-ERR nope\r\n", b"EVALSHA": b"+OK\r\n"}
    async with FakeRedis(answers) as fake:
        backend = RedisBackend(fake.url)
        await backend.start(lambda topic, data: None, lambda event: None)
        try:
            with pytest.raises(BackendError, match="ERR nope"):
                await backend.publish("t", "{}")
            with pytest.raises(BackendError, match="unexpected answer"):
                await backend.publish_recorded("t", '{"x":1}', 10)
            # The connection is still in step: the next command gets its own answer.
            with pytest.raises(BackendError, match="ERR nope"):
                await backend.publish("t", "{}")
        finally:
            await backend.close()


async def test_bytes_that_are_not_resp_drop_the_connection(caplog):
    async with FakeRedis({b"PUBLISH": b"?garbage\r\n"}) as fake:
        backend = RedisBackend(fake.url)
        await backend.start(lambda topic, data: None, lambda event: None)
        try:
            with pytest.raises(BackendError, match="connection"):
                await backend.publish("t", "{}")
            assert "isn't RESP" in caplog.text
        finally:
            await backend.close()


async def test_pubsub_connection_lost_while_subscribing_is_reported():
    events = []
    async with FakeRedis({}, on_subscribe=None) as fake:
        backend = RedisBackend(fake.url, connect_timeout=0.3)
        await backend.start(lambda topic, data: None, events.append)
        await backend.close()
    assert events[0].kind == "disconnected"
    assert events[0].error == "connection lost while subscribing"


async def test_pubsub_ignores_replies_it_does_not_expect():
    # An error reply on the pub/sub connection is skipped; the subscription still counts.
    async with FakeRedis({}, on_subscribe=b"-ERR odd\r\n") as fake:
        backend = RedisBackend(fake.url)
        events = []
        await backend.start(lambda topic, data: None, events.append)
        try:
            await backend.subscribe("t")
            assert events == []
        finally:
            await backend.close()


async def test_first_commands_share_one_connection_and_stop_after_close(redis_url):
    backend = RedisBackend(redis_url)
    await backend.start(lambda topic, data: None, lambda event: None)
    await asyncio.gather(*(backend.publish("t", "{}") for _ in range(5)))
    lane = backend._commands
    await backend.publish("t", "{}")
    assert backend._commands is lane
    await backend.close()
    with pytest.raises(BackendError, match="not running"):
        await backend.publish("t", "{}")
