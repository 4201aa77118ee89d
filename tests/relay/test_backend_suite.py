"""One conformance suite for every relay backend: memory and a real redis-server."""

import asyncio

from tether.relay.backends.base import Backend


async def next_delivery(queue):
    async with asyncio.timeout(5):
        return await queue.get()


async def test_implements_the_protocol(backends):
    backend, _ = await backends()
    assert isinstance(backend, Backend)


async def test_publish_reaches_subscribed_nodes_including_this_one(backends):
    a, a_got = await backends()
    b, b_got = await backends()
    await a.subscribe("t")
    await b.subscribe("t")
    await b.subscribe("other")
    await a.publish("t", "hello")
    assert await next_delivery(a_got) == ("t", "hello")
    assert await next_delivery(b_got) == ("t", "hello")
    await b.publish("other", "x")
    assert await next_delivery(b_got) == ("other", "x")
    assert a_got.empty()


async def test_unsubscribe_stops_delivery(backends):
    a, a_got = await backends()
    await a.subscribe("t")
    await a.subscribe("u")
    await a.unsubscribe("t")
    await a.publish("t", "lost")
    await a.publish("u", "kept")  # delivered in order, after "lost" would have been
    assert await next_delivery(a_got) == ("u", "kept")
    assert a_got.empty()


async def test_publish_without_subscribers_is_fine(backends):
    a, a_got = await backends()
    await a.publish("nobody", "x")
    await a.unsubscribe("never-subscribed")
    assert a_got.empty()


async def test_presence_across_nodes(backends):
    a, _ = await backends()
    b, _ = await backends()
    assert await a.presence_set("room", "a1", {"name": "ann"}) is True
    assert await a.presence_set("room", "a1", {"name": "ann2"}) is False
    assert await b.presence_set("room", "b1", {"name": "bob"}) is True
    assert await b.presence_set("other", "b1", {}) is True
    assert await a.presence_list("room") == {"a1": {"name": "ann2"}, "b1": {"name": "bob"}}
    assert await b.presence_count("room") == 2
    assert await b.presence_remove("room", "b1") == {"name": "bob"}
    assert await b.presence_remove("room", "b1") is None
    assert await a.presence_list("room") == {"a1": {"name": "ann2"}}
    assert await a.presence_count("other") == 1
    assert await a.presence_count("empty") == 0
    assert await a.presence_list("empty") == {}


async def test_presence_of_a_dead_node_expires(backends):
    a, _ = await backends(presence_ttl=0.6)
    b, _ = await backends(presence_ttl=0.6)
    await a.presence_set("room", "a1", 1)
    await b.presence_set("room", "b1", 2)
    await b.close()  # stops refreshing, like a node that died
    # a keeps refreshing its own entry past several TTLs; b's entry goes away.
    deadline = asyncio.get_running_loop().time() + 5
    while await a.presence_count("room") != 1:
        assert asyncio.get_running_loop().time() < deadline, "b's presence did not expire"
        await asyncio.sleep(0.05)
    assert await a.presence_list("room") == {"a1": 1}
    await asyncio.sleep(0.7)  # longer than the TTL: a's own entry must survive by refresh
    assert await a.presence_list("room") == {"a1": 1}


async def test_history_offsets_and_reads(backends):
    a, _ = await backends()
    b, _ = await backends()
    assert await a.history_read("t", 0) == []
    assert await a.history_read("t", 1) is None  # beyond the last offset
    assert [await a.publish_recorded("t", f'{{"m":{i}}}', 3) for i in range(1, 4)] == [1, 2, 3]
    assert await b.publish_recorded("t", '{"m":4}', 3) == 4  # one counter across nodes
    assert await a.publish_recorded("u", "{}", 3) == 1  # per topic
    # The ring stores the message as given, without the offset.
    assert await b.history_read("t", 1) == [(2, '{"m":2}'), (3, '{"m":3}'), (4, '{"m":4}')]
    assert await b.history_read("t", 3) == [(4, '{"m":4}')]
    assert await b.history_read("t", 4) == []
    assert await b.history_read("t", 0) is None  # offset 1 fell out of the ring
    assert await b.history_read("t", 5) is None


async def test_recorded_publish_carries_the_offset_to_every_node(backends):
    a, a_got = await backends()
    b, b_got = await backends()
    await a.subscribe("t")
    await b.subscribe("t")
    # Both nodes publish; each subscriber sees every message once, offsets in order.
    for i in range(10):
        node = a if i % 2 else b
        assert await node.publish_recorded("t", f'{{"i":{i}}}', 100) == i + 1
    expected = [("t", f'{{"i":{i},"offset":{i + 1}}}') for i in range(10)]
    assert [await next_delivery(a_got) for _ in range(10)] == expected
    assert [await next_delivery(b_got) for _ in range(10)] == expected
    assert a_got.empty()
    assert b_got.empty()


async def test_close_is_idempotent(backends):
    a, _ = await backends()
    await a.close()
    await a.close()


async def test_many_topics_one_channel_each(backends):
    a, a_got = await backends()
    topics = [f"t{i}" for i in range(20)]
    for topic in topics:
        await a.subscribe(topic)
    for topic in topics:
        await a.publish(topic, topic)
    got = [await next_delivery(a_got) for _ in topics]
    assert got == [(t, t) for t in topics]


async def test_no_events_without_trouble(backends):
    await backends()
    assert backends.events == []
