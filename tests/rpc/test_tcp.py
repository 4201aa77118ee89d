"""REPE over raw TCP: framing by length, the same router and server, client calls."""

import asyncio
import contextlib

import pytest
from vectors import REPE_VECTORS

from tether.rpc.errors import PeerConnectionError, RpcConnectionClosed, ServerError
from tether.rpc.repe import Message, StreamDecoder
from tether.rpc.router import Router
from tether.rpc.server import RpcServer
from tether.rpc.tcp import rpc_connect_tcp, serve_tcp


@contextlib.asynccontextmanager
async def tcp_server(**options):
    router = Router()
    router.add_json("/sum", sum)

    @router.json("/push", context=True)
    def push(ctx, n):
        for i in range(n):
            ctx.peer.send_notify_json("/tick", i)
        return n

    rpc = RpcServer(router, **options)
    async with await serve_tcp(rpc, "127.0.0.1", 0) as server:
        yield rpc, server


async def read_messages(reader, count):
    decoder = StreamDecoder()
    messages = []
    while len(messages) < count:
        data = await reader.read(65536)
        assert data, "connection closed early"
        messages.extend(decoder.feed(data))
    return messages


async def test_vectors_back_to_back_in_one_write():
    async with tcp_server() as (_rpc, server):
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        v1 = bytes.fromhex(REPE_VECTORS["V1"][0])
        v4 = bytes.fromhex(REPE_VECTORS["V4"][0])  # a notify to an unknown path: silence
        # Two requests and a notify in one write, the last split across two writes.
        writer.write(v1 + v4 + v1[:20])
        await writer.drain()
        writer.write(v1[20:])
        (first, second) = await read_messages(reader, 2)
        assert first.encode() == bytes.fromhex(REPE_VECTORS["V2"][0])
        assert second.encode() == first.encode()
        writer.close()
        await writer.wait_closed()


async def test_malformed_stream_closes_without_reply():
    events = []
    async with tcp_server(on_error=events.append) as (_rpc, server):
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"\x10" + bytes(15))  # length 16 < 48
        assert await reader.read() == b""
        writer.close()
        await writer.wait_closed()
    assert isinstance(events[0], PeerConnectionError)


async def test_client_over_tcp():
    async with tcp_server() as (rpc, server):
        client = await rpc_connect_tcp("127.0.0.1", server.port)
        async with client:
            results = await asyncio.gather(*(client.call_json("/sum", [i, 1]) for i in range(50)))
            assert results == [i + 1 for i in range(50)]
            with pytest.raises(ServerError, match="Method not found: /nope"):
                await client.call_json("/nope")
            notifies = client.subscribe_notifies()
            assert await client.call_json("/push", 3) == 3
            ticks = [int(bytes((await notifies.recv()).body)) for _ in range(3)]
            assert ticks == [0, 1, 2]
            assert len(rpc.peers) == 1
            (peer,) = rpc.peers
            assert peer.info.path == ""
            assert peer.info.remote_address is not None
        with pytest.raises(RpcConnectionClosed):
            await client.call_json("/sum", [1])


async def test_server_shutdown_drains_tcp_connections():
    started = asyncio.Event()
    router = Router()

    @router.json("/wait", blocking=True, context=True)
    async def wait(ctx, value):
        started.set()
        await ctx.wait_cancelled()
        return "drained"

    rpc = RpcServer(router)
    server = await serve_tcp(rpc, "127.0.0.1", 0)
    client = await rpc_connect_tcp("127.0.0.1", server.port)
    call = asyncio.ensure_future(client.call_json("/wait"))
    await started.wait()
    await server.shutdown(2.0)
    assert await call == "drained"
    await client.wait_closed()
    with pytest.raises(RpcConnectionClosed):
        await client.call_json("/wait")
    await client.close()


async def test_text_cannot_be_sent_over_tcp():
    async with tcp_server() as (_rpc, server):
        client = await rpc_connect_tcp("127.0.0.1", server.port)
        with pytest.raises(TypeError):
            await client.stream.send("text")
        await client.stream.send(Message(999, b"/sum", b"[1]", 1, 2).encode())
        assert (await client.call_json("/sum", [2])) == 2
        await client.close()
