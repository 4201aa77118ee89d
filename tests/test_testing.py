"""The in-memory MessageStream pair offered to users' tests."""

import asyncio

import pytest

from tether.exceptions import ConnectionClosedError, ConnectionClosedOK
from tether.testing import memory_pair
from tether.types import MessageStream


async def test_messages_flow_both_ways_and_peer_info():
    client, server = memory_pair(path="/room", query="id=1", headers={"X-User": "ann"})
    assert isinstance(client, MessageStream)
    await client.send("hi")
    await client.send(bytearray(b"\x00"))
    assert await server.recv() == "hi"
    assert await server.recv() == b"\x00"
    await server.send(memoryview(b"back"))
    assert await client.recv() == b"back"
    assert (server.peer.path, server.peer.query, server.peer.headers) == (
        "/room",
        "id=1",
        {"X-User": "ann"},
    )
    assert client.sent_count == 2


async def test_capacity_makes_the_sender_wait():
    client, server = memory_pair(capacity=2)
    await client.send(b"a")
    await client.send(b"b")
    blocked = asyncio.create_task(client.send(b"c"))
    await asyncio.sleep(0)
    assert not blocked.done()
    assert server.unread == 2
    assert await server.recv() == b"a"
    await blocked
    assert server.unread == 2


async def test_close_reaches_both_ends_with_the_right_exception():
    client, server = memory_pair()
    waiting = asyncio.create_task(server.recv())
    await asyncio.sleep(0)
    await client.close(1000, "bye")
    with pytest.raises(ConnectionClosedOK) as info:
        await waiting
    assert info.value.code == 1000
    assert info.value.reason == "bye"
    with pytest.raises(ConnectionClosedOK):
        await client.send("late")
    await client.close()  # idempotent
    assert client.closed
    assert server.closed

    client, server = memory_pair()
    await server.close(4000, "custom")
    with pytest.raises(ConnectionClosedError) as info:
        await client.recv()
    assert info.value.code == 4000


async def test_cancelled_receive_leaves_no_waiter_behind():
    client, server = memory_pair()
    waiting = asyncio.create_task(server.recv())
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await client.send("after")
    assert await server.recv() == "after"
