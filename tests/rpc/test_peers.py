"""PeerRegistry and PeerHandle: broadcast, send results, aliases, pushes from threads."""

import asyncio
import json

import pytest
from memory import memory_pair, until

from tether.rpc.client import RpcClient, rpc_connect
from tether.rpc.peers import Outbound, PeerHandle, PeerRegistry, SendResult
from tether.rpc.repe import BodyFormat
from tether.rpc.router import Router
from tether.rpc.server import RpcServer


async def test_broadcast_to_50_peers_over_websockets():
    registry = PeerRegistry()
    rpc = RpcServer(Router(), peers=registry)
    server = await rpc.serve("127.0.0.1", 0)
    url = f"ws://127.0.0.1:{server.port}/repe"
    clients = await asyncio.gather(*(rpc_connect(url) for _ in range(50)))
    subscriptions = [client.subscribe_notifies() for client in clients]
    await until(lambda: len(registry) == 50)
    results = registry.broadcast_notify_json("/news", {"headline": "hi"})
    assert len(results) == 50
    assert all(result is SendResult.OK for result in results.values())
    for subscription in subscriptions:
        message = await subscription.recv()
        assert (bytes(message.query), json.loads(bytes(message.body))) == (
            b"/news",
            {"headline": "hi"},
        )
        assert (message.id, message.notify, message.body_format) == (0, True, BodyFormat.JSON)
    results = registry.broadcast_notify_utf8("/text", "plain")
    assert set(results.values()) == {SendResult.OK}
    assert [bytes((await s.recv()).body) for s in subscriptions] == [b"plain"] * 50
    await asyncio.gather(*(client.close() for client in clients))
    await until(lambda: len(registry) == 0)
    await rpc.shutdown(1.0)


async def test_full_queue_reports_full_and_spares_the_others():
    registry = PeerRegistry()
    rpc = RpcServer(Router(), peers=registry, outbound_capacity=2)
    # A slow consumer: its stream holds one message and nobody reads it.
    slow_client, slow_server = memory_pair(capacity=1)
    fast_client, fast_server = memory_pair()
    served = [
        asyncio.ensure_future(rpc.handle(slow_server)),
        asyncio.ensure_future(rpc.handle(fast_server)),
    ]
    await until(lambda: len(registry) == 2)
    slow_id, fast_id = (peer.id for peer in registry)
    outcomes = []
    for n in range(6):
        outcomes.append(registry.broadcast_notify_beve("/n", n))
        await asyncio.sleep(0)  # let the writers run
    assert all(outcome[fast_id] is SendResult.OK for outcome in outcomes)
    assert SendResult.FULL in [outcome[slow_id] for outcome in outcomes]
    assert not SendResult.FULL
    await until(lambda: fast_client.unread == 6)
    await slow_client.close()
    await fast_client.close()
    await asyncio.gather(*served)


async def test_socket_fast_path_keeps_order_and_fills_the_queue_of_a_stalled_peer():
    # Over tether's own server a notify is written at once while the socket keeps up;
    # a peer that stops reading still ends with a full, bounded queue and FULL results.
    registry = PeerRegistry()
    rpc = RpcServer(Router(), peers=registry, outbound_capacity=4)
    server = await rpc.serve("127.0.0.1", 0)
    url = f"ws://127.0.0.1:{server.port}/repe"
    reader_client = await rpc_connect(url)
    subscription = reader_client.subscribe_notifies(maxsize=1000)
    await until(lambda: len(registry) == 1)
    (fast_id,) = registry.ids()
    # The stalled peer: a raw socket that does the upgrade and then never reads.
    stalled_reader, stalled_writer = await asyncio.open_connection("127.0.0.1", server.port)
    stalled_writer.write(
        b"GET /repe HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Sec-WebSocket-Version: 13\r\n\r\n"
    )
    assert (await stalled_reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 101")
    await until(lambda: len(registry) == 2)
    (stalled_id,) = set(registry.ids()) - {fast_id}
    body = bytes(256 * 1024)
    outcome: dict[int, SendResult] = {}
    for _ in range(400):
        outcome = registry.broadcast_notify_raw("/big", body)
        assert outcome[fast_id] is SendResult.OK
        # Let the fast client read (its messages leave in order, one at a time).
        message = await subscription.recv()
        assert bytes(message.query) == b"/big"
        if outcome[stalled_id] is SendResult.FULL:
            break
    assert outcome[stalled_id] is SendResult.FULL, "the stalled peer never filled its queue"
    stalled = registry.get(stalled_id)
    assert stalled is not None
    assert stalled.queued == 4
    # The fast path keeps order: numbered notifies arrive in sequence.
    for n in range(100):
        assert registry.get(fast_id).send_notify_json("/n", n) is SendResult.OK
    assert [json.loads(bytes((await subscription.recv()).body)) for _ in range(100)] == list(
        range(100)
    )
    stalled_writer.close()
    await reader_client.close()
    await until(lambda: len(registry) == 0)
    await rpc.shutdown(1.0)


async def test_disconnected_peer_reports_disconnected():
    rpc = RpcServer(Router())
    client_end, server_end = memory_pair()
    served = asyncio.ensure_future(rpc.handle(server_end))
    await until(lambda: len(rpc.peers) == 1)
    (peer,) = rpc.peers
    assert peer.connected
    assert peer.send_notify("/x", b"1", BodyFormat.JSON) is SendResult.OK
    await client_end.close()
    await served
    assert not peer.connected
    assert peer.send_notify_json("/x", 1) is SendResult.DISCONNECTED
    # The registry forgot it; a handle kept by the application still answers.
    assert rpc.peers.get(peer.id) is None


async def test_targeted_push_by_alias_and_from_a_thread():
    router = Router()
    registry = PeerRegistry()

    @router.json("/login", context=True)
    def login(ctx, name):
        return registry.alias(ctx.peer.id, name)

    @router.json("/work", blocking=True, context=True)
    def work(ctx, value):
        # Pushed from the thread pool.
        return ctx.peer.send_notify_json("/progress", value).value

    rpc = RpcServer(router, peers=registry)
    server = await rpc.serve("127.0.0.1", 0)
    url = f"ws://127.0.0.1:{server.port}/repe"
    async with rpc_connect(url) as alice, rpc_connect(url) as bob:
        assert await alice.call_json("/login", "alice") is True
        assert await bob.call_json("/login", "bob") is True
        inbox = bob.subscribe_notifies()
        assert registry.get_by("bob").send_notify_utf8("/dm", "hello bob") is SendResult.OK
        message = await inbox.recv()
        assert (bytes(message.query), bytes(message.body)) == (b"/dm", b"hello bob")
        assert await bob.call_json("/work", 42) == "ok"
        assert json.loads(bytes((await inbox.recv()).body)) == 42
    await rpc.shutdown(1.0)


def make_peer(outbound, id):
    return PeerHandle(id, None, outbound)


async def test_alias_semantics():
    registry = PeerRegistry()
    outbound = Outbound(4)
    one, two = make_peer(outbound, 101), make_peer(outbound, 102)
    registry.insert(one)
    registry.insert(two)
    assert registry.alias(101, "a")
    assert registry.alias(101, "b")
    assert registry.aliases_for(101) == ["a", "b"]
    assert registry.key_for(101) == "a"
    assert registry.get_by("b") is one
    # Re-aliasing moves the key.
    assert registry.alias(102, "a")
    assert registry.get_by("a") is two
    assert registry.aliases_for(101) == ["b"]
    assert registry.key_for(102) == "a"
    assert registry.alias(102, "a")  # idempotent
    assert registry.aliases_for(102) == ["a"]
    # Unknown peers cannot be aliased.
    assert not registry.alias(999, "c")
    assert registry.get_by("c") is None
    assert registry.unalias("b")
    assert not registry.unalias("b")
    assert registry.key_for(101) is None
    assert registry.aliases_for(101) == []
    # Removal drops the peer's keys.
    registry.alias(102, "z")
    assert registry.remove(102) is two
    assert registry.get_by("a") is None
    assert registry.get_by("z") is None
    assert registry.aliases_for(102) == []
    assert 102 not in registry
    assert registry.ids() == [101]
    assert registry.remove(102) is None


async def test_outbound_queue_rules():
    with pytest.raises(ValueError):
        Outbound(0)
    outbound = Outbound(1)
    assert outbound.try_put(b"a") is SendResult.OK
    assert outbound.try_put(b"b") is SendResult.FULL
    put = asyncio.ensure_future(outbound.put(b"c"))
    await asyncio.sleep(0)
    assert not put.done()
    assert await outbound.get_all() == [b"a"]
    assert await put is True
    outbound.close()
    assert await outbound.get_all() == [b"c"]
    assert await outbound.get_all() == []
    assert outbound.try_put(b"d") is SendResult.DISCONNECTED
    assert await outbound.put(b"e") is False


async def test_oversized_notify_is_dropped_for_that_peer_only():
    registry = PeerRegistry()
    events = []
    rpc = RpcServer(Router(), peers=registry, assumed_peer_frame_limit=100, on_error=events.append)
    client_end, server_end = memory_pair()
    served = asyncio.ensure_future(rpc.handle(server_end))
    client = RpcClient(client_end)
    await until(lambda: len(registry) == 1)
    results = registry.broadcast_notify_raw("/blob", b"x" * 100)
    assert list(results.values()) == [SendResult.TOO_LARGE]
    assert "notify /blob of 153 bytes dropped: 53 bytes over" in str(events[0])
    await client.close()
    await served


async def test_outbound_is_watched_exactly_while_not_idle():
    watcher, other = set(), set()
    outbound = Outbound(4)
    outbound.watch(watcher)
    outbound.watch(watcher)  # once only
    outbound.watch(other)
    assert watcher == other == set()
    assert outbound.try_put(b"a") is SendResult.OK  # no direct writer: queued
    assert outbound in watcher
    assert outbound in other
    batch = await outbound.get_all()
    assert batch == [b"a"]
    assert outbound in watcher  # the writer holds the batch
    outbound.batch_written()
    assert outbound not in watcher
    assert await outbound.put(b"b") is True
    assert outbound in watcher
    await outbound.get_all()
    outbound.watch(other, stop=True)
    outbound.batch_written()
    assert outbound not in watcher
    outbound.close()
    assert outbound in watcher  # closed is never idle
    assert other == set()


async def test_registry_watches_the_peers_it_holds():
    registry = PeerRegistry()
    first = PeerHandle(1, None, Outbound(4))
    second = PeerHandle(1, None, Outbound(4))
    registry.insert(first)
    first._outbound.try_put(b"x")
    assert first._outbound in registry._not_idle
    registry.insert(second)  # the same id: the old peer is no longer watched
    assert first._outbound not in registry._not_idle
    second._outbound.close()
    assert second._outbound in registry._not_idle
    assert registry.remove(1) is second
    assert registry._not_idle == set()
    assert registry.remove(1) is None


async def test_broadcast_goes_behind_what_is_queued_for_a_peer():
    # Peer 1 has a message queued; peer 2 is idle. A broadcast is written at once to 2
    # and queued behind the earlier message for 1.
    written = []

    def direct(targets, data):
        written.extend((target, data) for target in targets)
        return []

    registry = PeerRegistry()
    busy = Outbound(4, direct=direct, target="t1")
    idle = Outbound(4, direct=direct, target="t2")
    registry.insert(PeerHandle(1, None, busy))
    registry.insert(PeerHandle(2, None, idle))
    busy.enqueue(b"earlier")
    results = registry.broadcast_notify_raw("/n", b"1")
    assert results == {1: SendResult.OK, 2: SendResult.OK}
    assert [target for target, _ in written] == ["t2"]
    assert len(busy) == 2
    assert (await busy.get_all())[0] == b"earlier"
    busy.batch_written()
    written.clear()
    registry.broadcast_notify_raw("/n", b"2")  # both idle now: one direct call
    assert [target for target, _ in written] == ["t1", "t2"]
