"""RpcClient: correlation, ids, formats, timeouts, errors, notify subscriptions."""

import asyncio
import contextlib
import dataclasses
import gc
import json
import logging

import pytest
from memory import memory_pair, until

from tether.asyncio.server import serve
from tether.rpc.client import RpcClient, rpc_connect
from tether.rpc.errors import (
    AlreadySubscribed,
    CallTimeout,
    MessageTooLarge,
    RpcConnectionClosed,
    ServerError,
)
from tether.rpc.repe import BodyFormat, Message, decode, notify_message
from tether.rpc.router import Router
from tether.rpc.server import RpcServer


@pytest.fixture
def router():
    router = Router()
    router.add_json("/echo", lambda value: value)
    router.add_json("/sum", sum)

    @router.json("/later")
    async def later(value):
        await asyncio.sleep(0)
        return value

    return router


@pytest.fixture
async def url(router):
    rpc = RpcServer(router)
    server = await rpc.serve("127.0.0.1", 0)
    yield f"ws://127.0.0.1:{server.port}/repe"
    await rpc.shutdown(2.0)


async def test_200_concurrent_calls_from_many_tasks(url):
    async with rpc_connect(url) as client:

        async def worker(n):
            return [await client.call_json("/later", [n, i]) for i in range(10)]

        results = await asyncio.gather(*(worker(n) for n in range(20)))
        assert results == [[[n, i] for i in range(10)] for n in range(20)]
        # And 200 in flight at once.
        results = await asyncio.gather(*(client.call_json("/echo", i) for i in range(200)))
        assert results == list(range(200))


async def test_responses_are_handled_in_the_read_callback(url):
    # Over tether's own connection the client's message sink takes every response:
    # none goes through the receive queue, and the calls still resolve in order.
    async with rpc_connect(url) as client:
        stream = client.stream
        results = await asyncio.gather(*(client.call_json("/echo", i) for i in range(100)))
        assert results == list(range(100))
        assert not stream._messages
        assert stream._sink == client._take


async def test_formats(url):
    @dataclasses.dataclass
    class Pair:
        a: int
        b: int

    async with rpc_connect(url) as client:
        assert await client.call_json("/echo") is None
        assert await client.call_beve("/sum", [1, 2, 3]) == 6
        assert await client.call_typed("/echo", Pair(1, 2), Pair) == Pair(1, 2)
        with pytest.raises(ValueError, match="expected int"):
            await client.call_typed("/echo", {"a": "x", "b": 1}, Pair)
        response = await client.call_raw("/echo", b'"raw"', BodyFormat.JSON)
        assert (bytes(response.body), response.body_format) == (b'"raw"', BodyFormat.JSON)
        response = await client.call_raw("/nope", check=False)
        assert response.ec == 6


async def test_batch_json_in_input_order(url):
    async with rpc_connect(url) as client:
        calls = [("/sum", [1, 2]), ("/echo", "x"), ("/missing", 1), ("/later", 4)]
        results = await client.batch_json(calls, return_exceptions=True)
        assert results[:2] == [3, "x"]
        assert results[3] == 4
        assert isinstance(results[2], ServerError)
        assert results[2].code == 6
        with pytest.raises(ServerError, match="method not found"):
            await client.batch_json(calls)


async def test_server_error_with_unknown_code(router, url):
    def fail(value):
        from tether.rpc.errors import RpcError

        raise RpcError(value, "custom")

    router.add_json("/fail", fail)
    async with rpc_connect(url) as client:
        for code, name in [(37, "unknown error 37"), (4200, "application error 4200")]:
            with pytest.raises(ServerError) as info:
                await client.call_json("/fail", code)
            assert (info.value.code, info.value.name) == (code, name)
            assert str(info.value) == f"{name}: custom"
        with pytest.raises(ServerError, match=r"^method not found \(6\): Method not found: /x$"):
            await client.call_json("/x")


async def test_ids_start_at_1_and_notifies_consume_ids():
    client_end, server_end = memory_pair()
    client = RpcClient(client_end)
    call = asyncio.ensure_future(client.call_json("/a", 1))
    await until(lambda: client.pending == 1)
    await client.notify_json("/n", {"x": 1})
    await client.notify_beve("/n", [1])
    await client.notify_raw("/n", b"t", BodyFormat.UTF8)
    call2 = asyncio.ensure_future(client.call_json("/b"))
    received = [decode(await server_end.recv()) for _ in range(5)]
    assert [(m.id, m.notify) for m in received] == [
        (1, False),
        (2, True),
        (3, True),
        (4, True),
        (5, False),
    ]
    assert received[0].query_format == 1
    # Answer out of order: correlation is by id.
    await server_end.send(Message(5, b"", b'"b"', 0, 2).encode())
    await server_end.send(Message(1, b"", b'"a"', 0, 2).encode())
    assert (await call, await call2) == ("a", "b")
    await client.close()


async def test_notify_flag_checked_before_id():
    client_end, server_end = memory_pair()
    client = RpcClient(client_end)
    subscription = client.subscribe_notifies()
    call = asyncio.ensure_future(client.call_json("/a"))
    request = decode(await server_end.recv())
    # A notify that carries the pending call's id must not complete the call.
    push = Message(request.id, b"/tick", b"1", 1, 2, notify=True)
    await server_end.send(push.encode())
    notify = await subscription.recv()
    assert (notify.id, bytes(notify.query)) == (request.id, b"/tick")
    assert not call.done()
    await server_end.send(Message(request.id, b"", b"2", 0, 2).encode())
    assert await call == 2
    await client.close()


async def test_timeout_then_late_response_is_dropped(caplog):
    client_end, server_end = memory_pair()
    client = RpcClient(client_end)
    with pytest.raises(CallTimeout, match="no response to /slow"):
        await client.call_json("/slow", timeout=0.01)
    assert isinstance(CallTimeout("x"), TimeoutError)
    request = decode(await server_end.recv())
    with caplog.at_level(logging.DEBUG, logger="tether.rpc"):
        await server_end.send(Message(request.id, b"", b"1", 0, 2).encode())
        call = asyncio.ensure_future(client.call_json("/next"))
        request = decode(await server_end.recv())
        await server_end.send(Message(request.id, b"", b"2", 0, 2).encode())
        assert await call == 2
    assert "dropped a response to id 1" in caplog.text
    await client.close()


async def test_closed_socket_fails_pending_calls_at_once():
    client_end, server_end = memory_pair()
    client = RpcClient(client_end)
    calls = [asyncio.ensure_future(client.call_json("/x", i)) for i in range(5)]
    await until(lambda: client.pending == 5)
    await server_end.close(1011, "bye")
    for call in calls:
        with pytest.raises(RpcConnectionClosed, match="rpc connection closed"):
            await call
    with pytest.raises(RpcConnectionClosed):
        await client.call_json("/x")
    with pytest.raises(RpcConnectionClosed):
        await client.notify_json("/x", 1)
    assert client.closed


async def test_server_shutdown_fails_pending_calls(router):
    stop = asyncio.Event()

    @router.json("/never", blocking=True)
    async def never(value):
        await stop.wait()

    rpc = RpcServer(router)
    server = await rpc.serve("127.0.0.1", 0)
    client = await rpc_connect(f"ws://127.0.0.1:{server.port}/repe")
    call = asyncio.ensure_future(client.call_json("/never"))
    await until(lambda: client.pending == 1)
    await rpc.shutdown(0.05)
    with pytest.raises(RpcConnectionClosed):
        await call
    await client.close()


async def test_request_too_large_fails_locally():
    client_end, _server_end = memory_pair()
    client = RpcClient(client_end, assumed_peer_frame_limit=100)
    with pytest.raises(MessageTooLarge, match="message of 158 bytes is over"):
        await client.call_raw("/x", b"x" * 108)
    with pytest.raises(MessageTooLarge):
        await client.notify_raw("/x", b"x" * 108)
    assert client_end.sent_count == 0
    await client.close()


async def test_subscription_rules():
    client_end, server_end = memory_pair()
    client = RpcClient(client_end)
    first = client.subscribe_notifies()
    with pytest.raises(AlreadySubscribed):
        client.subscribe_notifies()
    client.unsubscribe_notifies()
    assert not first.live
    second = client.subscribe_notifies()
    # A dropped subscriber is replaced silently.
    del second
    gc.collect()
    third = client.subscribe_notifies()
    third.close()
    with client.subscribe_notifies(maxsize=2) as sub:
        for n in range(5):
            await server_end.send(notify_message("/n", str(n).encode(), 2).encode())
        await server_end.send(Message(0, b"", b"", 0, 0).encode())  # unmatched response
        await until(lambda: sub.dropped == 3)
        assert [json.loads(bytes((await sub.recv()).body)) for _ in range(2)] == [3, 4]
    # No subscriber: dropped and counted, not logged one by one.
    await server_end.send(notify_message("/n", b"9", 2).encode())
    await until(lambda: client.notifies_dropped == 1)
    live = client.subscribe_notifies()
    await server_end.close()
    assert [m async for m in live] == []
    await client.close()


async def test_pushed_notifies_over_websocket(router):
    @router.json("/subscribe", context=True)
    def subscribe(ctx, count):
        for n in range(count):
            ctx.peer.send_notify_json("/tick", {"n": n})
        return "done"

    rpc = RpcServer(router)
    server = await rpc.serve("127.0.0.1", 0)
    async with rpc_connect(f"ws://127.0.0.1:{server.port}/repe") as client:
        subscription = client.subscribe_notifies()
        assert await client.call_json("/subscribe", 3) == "done"
        ticks = [json.loads(bytes((await subscription.recv()).body)) for _ in range(3)]
        assert ticks == [{"n": 0}, {"n": 1}, {"n": 2}]
    await rpc.shutdown(1.0)


async def test_malformed_message_does_not_end_the_session():
    client_end, server_end = memory_pair()
    client = RpcClient(client_end)
    call = asyncio.ensure_future(client.call_json("/a"))
    request = decode(await server_end.recv())
    await server_end.send(b"garbage")
    await server_end.send(Message(request.id, b"", b"1", 0, 2).encode())
    assert await call == 1
    await client.close()


# A misbehaving peer over a real WebSocket: what the message sink hands back to the reader.


@contextlib.asynccontextmanager
async def peer_doing(answer):
    """A WebSocket server that answers each REPE request with ``answer(request, ws)``."""

    async def handler(ws):
        async for data in ws:
            await answer(decode(data), ws)

    async with serve(handler, "127.0.0.1", 0, compression=None) as server:
        yield f"ws://127.0.0.1:{server.port}/"


async def test_garbage_then_a_response_over_websocket(caplog):
    async def answer(request, ws):
        await ws.send(b"garbage")
        await ws.send(Message(request.id, b"", b"7", 0, 2).encode())

    async with peer_doing(answer) as url, rpc_connect(url) as client:
        assert await client.call_json("/x") == 7
        assert await client.call_json("/y") == 7
    assert "dropped a malformed repe message" in caplog.text


async def test_a_version_mismatch_answer_fails_its_call_over_websocket():
    async def answer(request, ws):
        await ws.send(Message(request.id, b"", b"", 0, 0, version=2).encode())

    async with peer_doing(answer) as url, rpc_connect(url) as client:
        with pytest.raises(ServerError) as raised:
            await client.call_json("/x")
        assert raised.value.code == 1


async def test_a_text_message_closes_the_client_with_1003():
    async def answer(request, ws):
        await ws.send("not repe")

    async with peer_doing(answer) as url, rpc_connect(url) as client:
        with pytest.raises(RpcConnectionClosed):
            await client.call_json("/x")
        assert client.stream.close_code == 1003
