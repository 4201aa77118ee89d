"""The relay over real sockets: tether's server and client on loopback."""

import asyncio
import json

import pytest

from tests.relay.helpers import client, serving
from tests.utils import until
from tether.exceptions import ConnectionClosed, InvalidStatus, RejectHandshake
from tether.relay import Reject, Relay, RelayConfig, bearer_token


@pytest.fixture
async def relay():
    relay = Relay(RelayConfig())
    yield relay
    await relay.close()


async def test_wire_shapes(relay):
    async with serving(relay) as server, client(server.url) as c:
        assert await c.request({"type": "ping"}) == {"type": "pong"}
        await c.subscribe("news")
        offset = await relay.push("news", "headline", {"title": "hi", "n": [1, 2]})
        assert await c.recv() == {
            "type": "push",
            "topic": "news",
            "event": "headline",
            "payload": {"title": "hi", "n": [1, 2]},
            "offset": offset,
        }
        assert await c.request({"type": "unsubscribe", "topic": "news"}) == {
            "type": "unsubscribed",
            "topic": "news",
        }
        await relay.push("news", "after", None)
        assert await c.request({"type": "ping"}) == {"type": "pong"}


@pytest.mark.parametrize(
    ("message", "reply"),
    [
        ("not json", {"message": "malformed json"}),
        (b"\x00binary", {"message": "binary messages are not supported"}),
        ("[1]", {"message": "message must be a json object"}),
        ({"type": "nope"}, {"message": "unknown type: nope"}),
        ({"topic": "a"}, {"message": "missing field: type"}),
        ({"type": "subscribe"}, {"message": "missing field: topic"}),
        (
            {"type": "subscribe", "topic": "a b"},
            {"message": "invalid topic: topic must not contain whitespace or control characters"},
        ),
        (
            {"type": "message", "topic": "a", "payload": 1},
            {"message": "missing field: event", "topic": "a"},
        ),
        (
            {"type": "message", "topic": "a", "event": "e", "payload": 1},
            {"message": "not subscribed", "topic": "a"},
        ),
        ({"type": "unsubscribe", "topic": "a"}, {"message": "not subscribed", "topic": "a"}),
        (
            {"type": "message", "topic": "a", "event": "e", "payload": "x" * 70_000},
            {"message": "message too large"},
        ),
    ],
)
async def test_error_paths_keep_the_connection(relay, message, reply):
    async with serving(relay) as server, client(server.url) as c:
        assert await c.request(message) == {"type": "error", **reply}
        assert await c.request({"type": "ping"}) == {"type": "pong"}


async def test_already_subscribed_and_publishing_not_allowed(relay):
    async with serving(relay) as server, client(server.url) as c:
        await c.subscribe("a")
        assert await c.request({"type": "subscribe", "topic": "a"}) == {
            "type": "error",
            "message": "already subscribed",
            "topic": "a",
        }
        msg = {"type": "message", "topic": "a", "event": "e", "payload": 1}
        assert await c.request(msg) == {
            "type": "error",
            "message": "publishing not allowed",
            "topic": "a",
        }


async def test_client_publish_pushes_to_every_subscriber():
    async with Relay(RelayConfig(client_publish=True)) as relay, serving(relay) as server:
        async with client(server.url) as a, client(server.url) as b:
            await a.subscribe("chat")
            await b.subscribe("chat")
            await a.send({"type": "message", "topic": "chat", "event": "say", "payload": "yo"})
            for c in (a, b):
                got = await c.recv()
                assert (got["event"], got["payload"]) == ("say", "yo")


async def test_exact_beats_prefix_and_longer_prefix_wins(relay):
    seen = []

    for pattern in ("*", "room:*", "room:vip:*", "room:vip:1"):
        handlers = relay.channel(pattern)

        @handlers.join
        def join(ctx, pattern=pattern):
            seen.append((ctx.topic, pattern))

    async with serving(relay) as server, client(server.url) as c:
        for topic in ("room:vip:1", "room:vip:2", "room:3", "lobby"):
            await c.subscribe(topic)
    assert seen == [
        ("room:vip:1", "room:vip:1"),
        ("room:vip:2", "room:vip:*"),
        ("room:3", "room:*"),
        ("lobby", "*"),
    ]


async def test_join_rejection_and_user(relay):
    @relay.channel("private:*")
    class Private:
        async def join(self, ctx):
            if ctx.topic != f"private:{ctx.user}":
                raise Reject("forbidden")

    async def authenticate(request):
        return bearer_token(request)

    async with serving(relay, authenticate=authenticate) as server:
        async with client(server.url + "?token=ann") as c:
            assert await c.request({"type": "subscribe", "topic": "private:bob"}) == {
                "type": "error",
                "message": "forbidden",
                "topic": "private:bob",
            }
            await relay.push("private:bob", "secret", 1)
            await c.subscribe("private:ann")
            await relay.push("private:ann", "mine", 2)
            assert (await c.recv())["event"] == "mine"


async def test_join_handler_crash_is_an_internal_error(relay, caplog):
    @relay.channel("boom")
    class Boom:
        def join(self, ctx):
            raise RuntimeError("bug")

    async with serving(relay) as server, client(server.url) as c:
        assert await c.request({"type": "subscribe", "topic": "boom"}) == {
            "type": "error",
            "message": "internal error",
            "topic": "boom",
        }
    assert "join handler failed" in caplog.text


async def test_open_topics_false():
    async with Relay(RelayConfig(open_topics=False)) as relay, serving(relay) as server:
        relay.channel("known")
        async with client(server.url) as c:
            await c.subscribe("known")
            assert await c.request({"type": "subscribe", "topic": "unknown"}) == {
                "type": "error",
                "message": "no such channel",
                "topic": "unknown",
            }


async def test_message_handler_decides(relay):
    chat = relay.channel("chat:*")

    @chat.message
    async def on_message(ctx, event, payload):
        if event == "shout":
            await ctx.push("said", {"from": ctx.conn_id, "text": payload.upper()})
        elif event == "whisper":
            await ctx.reply("echo", payload)
        elif event == "bad":
            raise Reject("no bad words")
        elif event == "crash":
            raise RuntimeError("bug")
        # anything else: dropped

    async with serving(relay) as server, client(server.url) as a, client(server.url) as b:
        await a.subscribe("chat:1")
        await b.subscribe("chat:1")
        for event in ("ignored", "shout"):
            await a.send({"type": "message", "topic": "chat:1", "event": event, "payload": "hi"})
        for c in (a, b):
            got = await c.recv()
            assert (got["event"], got["payload"]["text"]) == ("said", "HI")
        await a.send({"type": "message", "topic": "chat:1", "event": "whisper", "payload": 1})
        assert await a.recv() == {"type": "push", "topic": "chat:1", "event": "echo", "payload": 1}
        await a.send({"type": "message", "topic": "chat:1", "event": "bad", "payload": 1})
        assert await a.recv() == {"type": "error", "message": "no bad words", "topic": "chat:1"}
        await a.send({"type": "message", "topic": "chat:1", "event": "crash", "payload": 1})
        assert await a.recv() == {"type": "error", "message": "internal error", "topic": "chat:1"}
        assert await b.request({"type": "ping"}) == {"type": "pong"}  # b got none of those


async def test_leave_on_unsubscribe_and_disconnect(relay, caplog):
    left = []
    done = asyncio.Event()

    @relay.channel("room:*")
    class Room:
        async def leave(self, ctx):
            left.append((ctx.topic, ctx.user))
            if len(left) == 3:
                done.set()
            if ctx.topic == "room:bad":
                raise RuntimeError("leave bug")

    async with serving(relay, authenticate=lambda request: "ann") as server:
        async with client(server.url) as c:
            await c.subscribe("room:1")
            await c.subscribe("room:2")
            await c.subscribe("room:bad")
            await c.request({"type": "unsubscribe", "topic": "room:1"})
        async with asyncio.timeout(5):
            await done.wait()
    assert sorted(left) == [("room:1", "ann"), ("room:2", "ann"), ("room:bad", "ann")]
    await until(lambda: "leave handler failed" in caplog.text)


async def test_presence_and_diffs(relay):
    @relay.channel("room:*")
    class Room:
        async def join(self, ctx):
            await ctx.track({"user": ctx.user})

    tokens = {"t-ann": "ann", "t-bob": "bob"}
    async with serving(relay, authenticate=lambda r: tokens.get(bearer_token(r))) as server:
        headers = {"Authorization": "Bearer t-ann"}
        async with client(server.url, headers=headers) as ann:
            await ann.subscribe("room:1", presence=True)
            state = await ann.recv()
            assert state["event"] == "presence_state"
            [(ann_id, meta)] = state["payload"].items()
            assert meta == {"user": "ann"}
            # ann's own join happened in join(), before she subscribed: it is in the state.
            async with client(server.url + "?token=t-bob") as bob:
                await bob.subscribe("room:1")
                diff = await ann.recv()
                assert (diff["type"], diff["event"]) == ("push", "presence_diff")
                [(bob_id, meta)] = diff["payload"]["joins"].items()
                assert meta == {"user": "bob"}
                assert diff["payload"]["leaves"] == {}
                assert await relay.presence_count("room:1") == 2
                assert await relay.presence("room:1") == {
                    ann_id: {"user": "ann"},
                    bob_id: {"user": "bob"},
                }
            diff = await ann.recv()
            assert diff["payload"] == {"joins": {}, "leaves": {bob_id: {"user": "bob"}}}
            assert await relay.presence_count("room:1") == 1
            await ann.request({"type": "unsubscribe", "topic": "room:1"})
            assert await relay.presence("room:1") == {}


async def test_auth_401_and_403_at_the_handshake(relay):
    def authenticate(request):
        token = bearer_token(request)
        if token == "banned":
            raise RejectHandshake(403, "forbidden\n")
        return {"ok": "ann"}.get(token)

    async with serving(relay, authenticate=authenticate) as server:
        for url, status in [
            (server.url, 401),
            (server.url + "?token=bad", 401),
            (server.url + "?token=banned", 403),
        ]:
            with pytest.raises(InvalidStatus) as info:
                async with client(url):
                    pass
            assert info.value.status == status
        async with client(server.url + "?token=ok") as c:
            await c.subscribe("x")


async def test_max_subscriptions():
    async with Relay(RelayConfig(max_subscriptions=50)) as relay, serving(relay) as server:
        async with client(server.url) as c:
            for i in range(50):
                await c.subscribe(f"t{i}")
            assert await c.request({"type": "subscribe", "topic": "t50"}) == {
                "type": "error",
                "message": "too many subscriptions",
                "topic": "t50",
            }
            await c.request({"type": "unsubscribe", "topic": "t0"})
            await c.subscribe("t50")


async def test_history_resume():
    async with Relay(RelayConfig(topic_buffer=3)) as relay, serving(relay) as server:
        for i in range(1, 6):
            assert await relay.push("feed", "item", i) == i
        async with client(server.url) as c:
            await c.subscribe("feed", since=2)
            got = [await c.recv() for _ in range(3)]
            assert [(m["offset"], m["payload"]) for m in got] == [(3, 3), (4, 4), (5, 5)]
            await relay.push("feed", "item", 6)
            assert (await c.recv())["offset"] == 6
            await c.subscribe("other", since=0)
            await c.request({"type": "unsubscribe", "topic": "feed"})
            await c.subscribe("feed", since=1)
            assert await c.recv() == {
                "type": "error",
                "message": "history unavailable",
                "topic": "feed",
            }
            await c.subscribe("future", since=9)
            assert await c.recv() == {
                "type": "error",
                "message": "history unavailable",
                "topic": "future",
            }


async def test_history_disabled():
    async with Relay(RelayConfig(topic_buffer=0)) as relay, serving(relay) as server:
        async with client(server.url) as c:
            await c.subscribe("t", since=0)
            assert (await c.recv())["message"] == "history unavailable"
            assert await relay.push("t", "e", 1) is None
            assert await c.recv() == {"type": "push", "topic": "t", "event": "e", "payload": 1}


async def test_slow_consumer_disconnect():
    config = RelayConfig(outbox_capacity=4, slow_consumer="disconnect")
    async with Relay(config) as relay, serving(relay, write_limit=1024) as server:
        async with client(server.url, max_queue=1024) as c:
            await c.subscribe("t")
            for _ in range(200):
                await relay.push("t", "e", "x" * 10_000)

            async def drain():
                while True:
                    await c.ws.recv()

            with pytest.raises(ConnectionClosed) as info:
                await drain()
            assert info.value.rcvd.code == 1013
            assert info.value.rcvd.reason == "slow consumer"
        await until(lambda: relay.statistics()["connections"] == 0)


async def test_slow_consumer_drop_sends_lag_notice():
    config = RelayConfig(outbox_capacity=4, slow_consumer="drop")
    async with Relay(config) as relay, serving(relay) as server:
        async with client(server.url) as c:
            await c.subscribe("t")
            for i in range(100):
                await relay.push("t", "e", i)
            pushes, notice = [], None
            while notice is None:
                message = await c.recv()
                if message["type"] == "push":
                    pushes.append(message["payload"])
                else:
                    notice = message
            assert (notice["message"], notice["topic"]) == ("lagged", "t")
            assert len(pushes) + notice["dropped"] == 100
            assert pushes == sorted(pushes)
            await relay.push("t", "e", "later")
            assert (await c.recv())["payload"] == "later"


async def test_thousand_subscribers_on_one_topic(relay):
    async with serving(relay, compression=None) as server:
        clients = []
        try:
            for _ in range(1000):
                ctx = client(server.url, compression=None, ping_interval=None)
                clients.append((ctx, await ctx.__aenter__()))
            await asyncio.gather(*(c.subscribe("big") for _, c in clients))
            await relay.push("big", "all", {"n": 1})
            got = await asyncio.gather(*(c.recv() for _, c in clients))
            assert all(m["payload"] == {"n": 1} for m in got)
        finally:
            for ctx, _ in clients:
                await ctx.__aexit__(None, None, None)
        await until(lambda: relay.statistics()["connections"] == 0)


async def test_push_validates(relay):
    with pytest.raises(ValueError):
        await relay.push("bad topic", "e", 1)
    with pytest.raises(TypeError):
        await relay.push("t", "e", object())
    assert json.loads('{"a":1}') == {"a": 1}


async def test_pushes_keep_their_order_over_tether_connections(relay):
    # Bursts (handed over by the batch flush, one frame for all) and single pushes
    # between loop turns, with a reply to a's own request queued in the middle.
    async with serving(relay, compression=None) as server:
        async with client(server.url) as a, client(server.url) as b:
            await a.subscribe("t")
            await b.subscribe("t")
            for i in range(300):
                if i == 150:
                    await a.send({"type": "ping"})
                await relay.push("t", "e", i)
                if i % 7 == 0:
                    await asyncio.sleep(0)
            got_a = [await a.recv() for _ in range(301)]
            got_b = [await b.recv() for _ in range(300)]
            assert {"type": "pong"} in got_a
            pushes_a = [m["payload"] for m in got_a if m["type"] == "push"]
            assert pushes_a == list(range(300))
            assert [m["payload"] for m in got_b] == list(range(300))
            assert [m["offset"] for m in got_b] == list(range(1, 301))


async def test_write_coalescing_holds_pushes_that_follow_a_write():
    async with Relay(RelayConfig(write_coalescing=0.3)) as relay:
        async with serving(relay, compression=None) as server, client(server.url) as a:
            await a.subscribe("t")
            loop = asyncio.get_running_loop()
            start = loop.time()
            await relay.push("t", "e", 0)  # the relay is idle: written at once
            assert (await a.recv())["payload"] == 0
            # The relay has just written: these wait for the window, then go together.
            await relay.push("t", "e", 1)
            await relay.push("t", "e", 2)
            got = [await a.recv(), await a.recv()]
            assert loop.time() - start >= 0.3
            assert [m["payload"] for m in got] == [1, 2]
            assert [m["offset"] for m in got] == [2, 3]


@pytest.mark.parametrize(
    ("cost", "low", "high"), [(0.0, 0.1, 0.4), (0.25, 0.5, 0.8), (9.0, 2.5, 2.8)]
)
async def test_write_coalescing_waits_twice_as_long_as_the_last_write_took(cost, low, high):
    # After a batch that took `cost` seconds to write (set here, as a slow flush of
    # many subscribers would), a push that finds the relay busy waits
    # max(window, 2 * cost), at most 25 windows.
    async with Relay(RelayConfig(write_coalescing=0.1)) as relay:
        async with serving(relay, compression=None) as server, client(server.url) as a:
            await a.subscribe("t")
            loop = asyncio.get_running_loop()
            await relay.push("t", "e", 0)  # the relay is idle: written at once
            assert (await a.recv())["payload"] == 0
            relay._flush_cost = cost
            start = relay._flushed_at = loop.time()  # it has just written
            await relay.push("t", "e", 1)
            assert (await a.recv())["payload"] == 1
            assert low <= loop.time() - start < high


@pytest.mark.parametrize("window", [-0.001, 1.5])
def test_write_coalescing_is_bounded(window):
    with pytest.raises(ValueError, match="write_coalescing"):
        RelayConfig(write_coalescing=window)
