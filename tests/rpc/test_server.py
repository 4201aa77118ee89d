"""RpcServer over real loopback WebSockets (tether server and client) and the memory pair."""

import asyncio
import contextlib
import json
import os
import threading

import pytest
from memory import memory_pair, until
from vectors import REPE_VECTORS

from tether.asyncio.client import connect
from tether.exceptions import ConnectionClosed, InvalidStatus
from tether.protocol.handshake import reject
from tether.rpc.client import RpcClient, rpc_connect
from tether.rpc.errors import (
    HandlerCrash,
    HandshakeError,
    OutboundTooLarge,
    PeerConnectionError,
    Saturation,
    ServerError,
)
from tether.rpc.repe import BodyFormat, ErrorCode, Message, decode
from tether.rpc.router import Router
from tether.rpc.server import RpcServer, ShutdownToken


@contextlib.asynccontextmanager
async def running(router, **options):
    events = options.pop("events", None)
    if events is not None:
        options["on_error"] = events.append
    rpc = RpcServer(router, **options)
    server = await rpc.serve("127.0.0.1", 0)
    try:
        yield rpc, f"ws://127.0.0.1:{server.port}/repe"
    finally:
        await rpc.shutdown(2.0)


def request(id, path, value=None, *, notify=False, version=1):
    body = b"" if value is None else json.dumps(value).encode()
    fmt = BodyFormat.RAW if value is None else BodyFormat.JSON
    return Message(id, path.encode(), body, 1, fmt, notify=notify, version=version).encode()


@pytest.fixture
def router():
    router = Router()
    router.add_json("/sum", sum)
    router.add_json("/echo", lambda value: value)
    return router


async def test_vector_v1_over_websocket(router):
    async with running(router) as (_rpc, url), connect(url, compression=None) as ws:
        await ws.send(bytes.fromhex(REPE_VECTORS["V1"][0]))
        response = decode(await ws.recv())
        assert (response.id, bytes(response.body)) == (2, b"6")
        assert response.encode() == bytes.fromhex(REPE_VECTORS["V2"][0])


async def test_offreader_handler_waits_for_ack_on_the_same_socket():
    router = Router()
    acks = {"async": asyncio.Event(), "sync": threading.Event()}

    @router.json("/wait_async", blocking=True)
    async def wait_async(value):
        await acks["async"].wait()
        return "acked"

    @router.json("/wait_sync", blocking=True, context=True)
    def wait_sync(ctx, value):
        # A sync handler on the thread pool: blocks its thread, not the reader.
        assert acks["sync"].wait(5)
        return "acked"

    @router.json("/ack")
    def ack(which):
        acks[which].set()
        return True

    async with running(router) as (_rpc, url), rpc_connect(url) as client:
        for which in ("async", "sync"):
            call = asyncio.ensure_future(client.call_json(f"/wait_{which}"))
            await until(lambda: client.pending == 1)
            assert await client.call_json("/ack", which) is True
            assert await call == "acked"


async def test_offreader_limit_answers_ec8_at_once():
    router = Router()
    release = asyncio.Event()
    started = []

    @router.json("/slow", blocking=True)
    async def slow(value):
        started.append(value)
        await release.wait()
        return value

    events = []
    async with running(router, offreader_limit=2, events=events) as (_rpc, url):
        async with rpc_connect(url) as client:
            first = asyncio.ensure_future(client.call_json("/slow", 1))
            second = asyncio.ensure_future(client.call_json("/slow", 2))
            await until(lambda: len(started) == 2)
            with pytest.raises(ServerError) as info:
                await client.call_json("/slow", 3, timeout=2)
            assert info.value.code == ErrorCode.RESOURCE_EXHAUSTED == 8
            assert info.value.message == "off-reader dispatch limit reached; retry"
            release.set()
            assert [await first, await second] == [1, 2]
            assert await client.call_json("/slow", 4) == 4  # room again
    assert [type(event) for event in events] == [Saturation]
    assert started == [1, 2, 4]


async def test_offreader_crash_is_ec9_and_the_connection_survives():
    router = Router()

    @router.json("/crash", blocking=True)
    def crash(value):
        raise ValueError("secret detail")

    @router.json("/crash_async", blocking=True)
    async def crash_async(value):
        raise ValueError("another")

    router.add_json("/ok", lambda value: "fine")
    events = []
    async with running(router, events=events) as (_rpc, url), rpc_connect(url) as client:
        for path in ("/crash", "/crash_async"):
            with pytest.raises(ServerError) as info:
                await client.call_json(path, 1)
            assert (info.value.code, info.value.message) == (9, "handler panicked")
            assert await client.call_json("/ok") == "fine"
        await until(lambda: len(events) == 2)
    assert all(isinstance(event, HandlerCrash) for event in events)
    assert isinstance(events[0].__cause__, ValueError)
    assert events[0].path == "/crash"


async def test_notifies_are_never_answered(router):
    router.add_json("/crash", lambda value: 1 / 0)
    async with running(router, events=[]) as (_rpc, url), connect(url, compression=None) as ws:
        await ws.send(request(1, "/missing", 1, notify=True))
        await ws.send(request(2, "/crash", 1, notify=True))
        await ws.send(request(3, "/sum", "not a list", notify=True))
        await ws.send(request(4, "/sum", [1], notify=True, version=2))
        await ws.send(b"\x30" + bytes(7) + b"\x07\x15\x01\x01" + bytes(36))  # fine notify, no path
        await ws.send(request(5, "/echo", "answer me"))
        response = decode(await ws.recv())
        assert (response.id, bytes(response.body)) == (5, b'"answer me"')


async def test_errors_are_answered_in_order(router):
    async with running(router) as (_rpc, url), connect(url, compression=None) as ws:
        await ws.send(request(1, "/missing", 1))
        await ws.send(request(2, "/sum", [1], version=2))
        await ws.send(Message(3, b"/sum", b"[1]", 0, 2).encode())
        await ws.send(request(4, "/sum", [1, 2]))
        responses = [decode(await ws.recv()) for _ in range(4)]
        assert [(r.id, r.ec) for r in responses] == [(1, 6), (2, 1), (3, 3), (4, 0)]
        assert bytes(responses[0].body) == b"Method not found: /missing"
        assert bytes(responses[1].body) == b"REPE version mismatch: expected 1, got 2"


async def test_text_message_fails_the_connection_with_1003(router):
    events = []
    async with running(router, events=events) as (_rpc, url), connect(url, compression=None) as ws:
        await ws.send("hello")
        with pytest.raises(ConnectionClosed):
            await ws.recv()
        assert ws.close_code == 1003
    assert isinstance(events[0], PeerConnectionError)


async def test_malformed_binary_closes_without_reply(router):
    events = []
    async with running(router, events=events) as (_rpc, url), connect(url, compression=None) as ws:
        bad_length = bytearray(request(1, "/sum", [1]))
        bad_length[0] += 1
        await ws.send(bytes(bad_length))
        with pytest.raises(ConnectionClosed):
            await ws.recv()  # no REPE reply before the close
        assert ws.close_code == 1007
    assert isinstance(events[0], PeerConnectionError)


async def test_connect_hook_notify_arrives_before_first_response(router):
    def on_connect(peer):
        assert peer.send_notify_json("/welcome", {"peer": peer.id})

    async with running(router, on_peer_connect=on_connect) as (_rpc, url):
        async with connect(url, compression=None) as ws:
            await ws.send(request(1, "/sum", [1, 2]))
            first, second = decode(await ws.recv()), decode(await ws.recv())
            assert (first.notify, first.id, bytes(first.query)) == (True, 0, b"/welcome")
            assert (second.notify, second.id, bytes(second.body)) == (False, 1, b"3")


async def test_handshake_hook_sees_path_query_headers(router):
    seen = []

    async def on_connect(peer, path, query, headers):
        seen.append((path, query, headers.get("X-Token")))

    async with running(router, on_peer_connect_with_handshake=on_connect) as (_rpc, url):
        async with rpc_connect(url + "?room=7", headers={"X-Token": "abc"}) as client:
            assert await client.call_json("/sum", [1]) == 1
    assert seen == [("/repe", "room=7", "abc")]


async def test_oversized_response_and_notify():
    router = Router()
    router.add_json("/big", lambda n: "x" * n)

    @router.json("/push", context=True)
    def push(ctx, n):
        return ctx.peer.send_notify_utf8("/big", "y" * n).value

    events = []
    async with running(router, assumed_peer_frame_limit=1000, events=events) as (_rpc, url):
        async with rpc_connect(url) as client:
            assert len(await client.call_json("/big", 100)) == 100
            with pytest.raises(ServerError) as info:
                await client.call_json("/big", 2000)
            assert info.value.code == 9
            # 48 header + 2002 body bytes = 2050, 1050 over.
            assert info.value.message == (
                "response is 1050 bytes over the peer frame limit of 1000 bytes"
            )
            assert await client.call_json("/push", 2000) == "too_large"
    assert [(type(e), e.kind) for e in events] == [
        (OutboundTooLarge, "response"),
        (OutboundTooLarge, "notify"),
    ]


async def test_disconnect_hook_once_on_clean_close_abort_and_shutdown(router):
    disconnects = []
    connects = []
    async with running(
        router, on_peer_connect=connects.append, on_peer_disconnect=disconnects.append
    ) as (rpc, url):
        async with rpc_connect(url) as client:
            await client.call_json("/sum", [1])
        await until(lambda: len(disconnects) == 1)
        client = await rpc_connect(url)
        await client.call_json("/sum", [1])
        client.stream.transport.abort()
        await client.wait_closed()
        await until(lambda: len(disconnects) == 2)
        client = await rpc_connect(url)
        await client.call_json("/sum", [1])
        await rpc.shutdown(2.0)
        assert len(disconnects) == 3
        await client.wait_closed()
        assert client.stream.close_code == 1001
    assert [peer.id for peer in disconnects] == [peer.id for peer in connects]
    assert len(rpc.peers) == 0


async def test_drain_cancels_offreader_handlers():
    router = Router()
    seen = []
    started = []

    @router.json("/long", blocking=True, context=True)
    async def long(ctx, value):
        started.append("async")
        await ctx.wait_cancelled()
        seen.append(ctx.cancelled)
        return "stopped"

    @router.json("/long_sync", blocking=True, context=True)
    def long_sync(ctx, value):
        started.append("sync")
        seen.append(ctx.wait_cancelled_sync(5))
        return "stopped too"

    rpc = RpcServer(router)
    server = await rpc.serve("127.0.0.1", 0)
    client = await rpc_connect(f"ws://127.0.0.1:{server.port}/repe")
    call = asyncio.ensure_future(client.call_json("/long"))
    call_sync = asyncio.ensure_future(client.call_json("/long_sync"))
    await until(lambda: len(started) == 2)
    await rpc.shutdown(3.0)
    # The responses were flushed before the close.
    assert await call == "stopped"
    assert await call_sync == "stopped too"
    assert seen == [True, True]
    await client.close()


async def test_drain_aborts_after_the_timeout():
    router = Router()

    @router.json("/stubborn", blocking=True)
    async def stubborn(value):
        await asyncio.Event().wait()  # ignores cancellation of its context

    disconnects = []
    rpc = RpcServer(router, on_peer_disconnect=disconnects.append)
    server = await rpc.serve("127.0.0.1", 0)
    client = await rpc_connect(f"ws://127.0.0.1:{server.port}/repe")
    call = asyncio.ensure_future(client.call_json("/stubborn"))
    await until(lambda: client.pending == 1)
    await rpc.shutdown(0.1)
    assert len(disconnects) == 1
    with pytest.raises(ConnectionClosed):
        await call
    await client.close()


async def test_shutdown_token_drains_cohosted_connections(router):
    seen = []
    started = asyncio.Event()

    @router.json("/wait", blocking=True, context=True)
    async def wait(ctx, value):
        started.set()
        await ctx.wait_cancelled()
        seen.append("cancelled")
        return "bye"

    token = ShutdownToken()
    rpc = RpcServer(router)
    client_end, server_end = memory_pair()
    served = asyncio.ensure_future(rpc.handle(server_end, shutdown=token))
    client = RpcClient(client_end)
    call = asyncio.ensure_future(client.call_json("/wait"))
    await started.wait()
    assert len(token) == 1
    await token.shutdown(2.0)
    assert await call == "bye"
    await served
    assert seen == ["cancelled"]
    await client.wait_closed()
    assert client.closed
    # A connection handed over while draining is closed at once.
    client_end, server_end = memory_pair()
    await rpc.handle(server_end, shutdown=token)
    assert client_end.closed


async def test_one_port_http_and_404_for_other_paths(router):
    def http_handler(request):
        if request.path == "/healthz":
            return reject(200, "ok\n")
        if request.path == "/api/status":
            return reject(200, '{"peers":0}', [("Content-Type", "application/json")])
        return reject(404, "not found\n")

    events = []
    rpc = RpcServer(router, on_error=events.append)
    async with rpc.serve("127.0.0.1", 0, http_handler=http_handler) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        head = await reader.read()
        writer.close()
        await writer.wait_closed()
        assert head.startswith(b"HTTP/1.1 200")
        assert head.endswith(b"ok\n")
        with pytest.raises(InvalidStatus) as info:
            await connect(f"ws://127.0.0.1:{server.port}/other")
        assert info.value.status == 404
        async with rpc_connect(f"ws://127.0.0.1:{server.port}/repe") as client:
            assert await client.call_json("/sum", [2, 3]) == 5
    assert [type(event) for event in events] == [HandshakeError]


async def test_responses_from_the_peer_are_dropped(router):
    client_end, server_end = memory_pair()
    rpc = RpcServer(router)
    served = asyncio.ensure_future(rpc.handle(server_end))
    await client_end.send(Message(1, b"", b"oops", 0, 3, ec=4096).encode())
    await client_end.send(request(2, "/sum", [2]))
    assert decode(await client_end.recv()).id == 2
    await client_end.close()
    await served


async def test_hooks_errors_are_logged_without_on_error(router, caplog):
    def on_connect(peer):
        raise RuntimeError("hook bug")

    rpc = RpcServer(router, on_peer_connect=on_connect)
    client_end, server_end = memory_pair()
    with caplog.at_level("ERROR", logger="tether.rpc"):
        await rpc.handle(server_end)
    assert client_end.closed
    assert "connect hook raised RuntimeError: hook bug" in caplog.text


async def test_requests_behind_one_that_must_wait_are_answered_after_it():
    # All in one write: a sync route that returns an awaitable, an async route, then
    # plain routes. Requests are handled in the read callback until one must wait;
    # it and everything behind it keep their order.
    router = Router()
    gate = asyncio.Event()
    order = []

    async def later(value):
        await gate.wait()
        order.append(value)
        return value

    @router.json("/deferred")
    def deferred(value):
        return later(value)  # a plain function returning an awaitable

    @router.json("/async")
    async def run_async(value):
        order.append(value)
        return value

    @router.json("/plain")
    def plain(value):
        order.append(value)
        return value

    async with running(router) as (_rpc, url), connect(url, compression=None) as ws:
        # A reply proves the connection is up before the burst.
        await ws.send(request(1, "/plain", "first"))
        assert decode(await ws.recv()).id == 1
        ws.send_nowait(request(2, "/deferred", "deferred"))
        ws.send_nowait(request(3, "/plain", "a"))
        ws.send_nowait(request(4, "/async", "b"))
        ws.send_nowait(request(5, "/plain", "c"))
        await until(lambda: order == ["first"])  # the deferred one holds the rest
        gate.set()
        responses = [decode(await ws.recv()) for _ in range(4)]
        assert [r.id for r in responses] == [2, 3, 4, 5]
        assert order == ["first", "deferred", "a", "b", "c"]


async def test_a_request_begun_in_the_read_callback_is_dropped_cleanly_on_abort():
    # The connection is aborted in the same loop turn as a request was begun in the
    # read callback, before the reader could await the rest: the begun work runs as an
    # off-reader handler at disconnect would (it sees the cancellation, gets the grace
    # period, then is cancelled), not left as a never-awaited coroutine (warnings are
    # errors in this suite).
    router = Router()
    rpc = RpcServer(router, handler_grace=0.05)
    loop = asyncio.get_running_loop()
    begun = []

    outcome = []

    async def never_finishes(ctx):
        try:
            await asyncio.Future()
        except asyncio.CancelledError:
            outcome.append(("cancelled", ctx.cancelled))
            raise

    @router.json("/deferred", context=True)
    def deferred(ctx, value):
        (connection,) = rpc.shutdown_token._connections
        loop.call_soon(connection.abort)  # runs before the reader's next step
        work = never_finishes(ctx)
        begun.append(work)
        return work

    server = await rpc.serve("127.0.0.1", 0)
    try:
        async with connect(f"ws://127.0.0.1:{server.port}/repe", compression=None) as ws:
            await ws.send(request(1, "/deferred", 1))
            with pytest.raises(ConnectionClosed):
                await ws.recv()
        await until(lambda: len(rpc.shutdown_token) == 0)
        await until(lambda: outcome)
        assert outcome == [("cancelled", True)]
        assert begun[0].cr_frame is None  # finished
    finally:
        await rpc.shutdown(1.0)


async def test_plain_calls_answer_crashes_results_and_awaitables_alike():
    # Sync JSON handlers of one argument are answered in one step (Router.plain_calls);
    # what that step leaves (a crash, a result it does not encode, an awaitable) is
    # finished by the router, with the same answers as the general path.
    import dataclasses

    from tether.protocol._speedups import PlainCalls

    @dataclasses.dataclass
    class Point:
        x: int

    async def later(value):
        return {"later": value}

    router = Router()
    router.add_json("/echo", lambda value: value)
    router.add_json("/crash", lambda value: 1 / 0)
    router.add_json("/point", lambda value: Point(value))
    router.add_json("/deferred", lambda value: later(value))
    router.add_json("/huge", lambda value: 2**70 + value)  # beyond what msgspec writes
    events = []
    async with running(router, events=events) as (rpc, url), rpc_connect(url) as client:
        assert await client.call_json("/echo", [1, "a"]) == [1, "a"]
        (connection,) = rpc.shutdown_token._connections
        in_c = os.environ.get("TETHER_NO_SPEEDUPS") != "1"
        assert isinstance(connection._plain, PlainCalls) == in_c
        with pytest.raises(ServerError) as info:
            await client.call_json("/crash", 1)
        assert (info.value.code, info.value.message) == (9, "handler panicked")
        assert await client.call_json("/point", 3) == {"x": 3}
        assert await client.call_json("/deferred", 4) == {"later": 4}
        assert await client.call_json("/huge", 1) == 2**70 + 1
        router.add_json("/added", lambda value: value * 2)  # after the connection began
        assert await client.call_json("/added", 21) == 42
        await until(lambda: len(events) == 1)
    (event,) = events
    assert isinstance(event, HandlerCrash)
    assert event.path == "/crash"
    assert isinstance(event.__cause__, ZeroDivisionError)
    assert event.__cause__.__traceback__ is not None
