"""Interoperability with the ``websockets`` library, both ways, over loopback sockets."""

import asyncio
import contextlib
import json
import os

import pytest
from websockets.asyncio.client import connect as ws_connect
from websockets.asyncio.server import serve as ws_serve
from websockets.exceptions import ConnectionClosed as WSConnectionClosed

from tether.asyncio.client import connect
from tether.asyncio.server import serve
from tether.exceptions import ConnectionClosedError, ConnectionClosedOK

from ..utils import until


LARGE_TEXT = ("tether speaks websockets. " * 20_165)[: 512 * 1024]
LARGE_BINARY = os.urandom(512 * 1024)


async def echo(ws):
    """An echo handler that works with tether and websockets connections alike."""
    with contextlib.suppress(WSConnectionClosed, ConnectionClosedOK):
        async for message in ws:
            await ws.send(message)


@contextlib.asynccontextmanager
async def websockets_server(handler, **kwargs):
    async with ws_serve(handler, "127.0.0.1", 0, **kwargs) as server:
        yield server.sockets[0].getsockname()[1]


@contextlib.asynccontextmanager
async def tether_server(handler, **kwargs):
    async with serve(handler, "127.0.0.1", 0, **kwargs) as server:
        yield server.port


def websockets_client(port, path="/", **kwargs):
    return ws_connect(f"ws://127.0.0.1:{port}{path}", proxy=None, **kwargs)


def tether_client(port, path="/", **kwargs):
    return connect(f"ws://127.0.0.1:{port}{path}", **kwargs)


@contextlib.asynccontextmanager
async def counting_relay(target_port):
    """A TCP relay in front of ``target_port`` that counts the bytes going each way."""
    counts = {"up": 0, "down": 0}
    tasks = set()

    async def pipe(reader, writer, direction):
        try:
            while data := await reader.read(65536):
                counts[direction] += len(data)
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                writer.write_eof()

    async def handle(reader, writer):
        tasks.add(asyncio.current_task())
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", target_port)
        try:
            await asyncio.gather(pipe(reader, up_writer, "up"), pipe(up_reader, writer, "down"))
        except asyncio.CancelledError:
            pass
        finally:
            for w in (writer, up_writer):
                w.close()
                with contextlib.suppress(OSError):
                    await w.wait_closed()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], counts
    finally:
        server.close()
        await server.wait_closed()
        pending = {task for task in tasks if not task.done()}
        if pending:
            _, pending = await asyncio.wait(pending, timeout=1)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)


# tether client -> websockets server


async def test_tether_client_text_and_binary():
    async with websockets_server(echo) as port, tether_client(port) as ws:
        await ws.send("héllo")
        assert await ws.recv() == "héllo"
        await ws.send(b"\x00\xff")
        assert await ws.recv() == b"\x00\xff"
        await ws.send("")
        assert await ws.recv() == ""


async def test_tether_client_sends_fragments():
    async def frames(ws):
        # recv_streaming yields one item per frame: the fragmentation is visible.
        async for message_start in _fragments(ws):
            await ws.send(json.dumps(message_start))

    async with websockets_server(frames) as port, tether_client(port) as ws:
        await ws.send(["he", "llo", " wörld"])
        assert [f for f in json.loads(await ws.recv()) if f] == ["he", "llo", " wörld"]
        await ws.send([b"\x01", b"\x02\x03"])
        assert [f for f in json.loads(await ws.recv()) if f] == ["01", "0203"]


async def _fragments(ws):
    with contextlib.suppress(WSConnectionClosed):
        while True:
            fragments = []
            async for fragment in ws.recv_streaming():
                fragments.append(fragment.hex() if isinstance(fragment, bytes) else fragment)
            yield fragments


async def test_tether_client_receives_fragments():
    async def send_fragments(ws):
        await ws.send(["frag", "ment", "ed"])
        await ws.send([b"\x01", b"\x02"])
        await ws.wait_closed()

    async with websockets_server(send_fragments) as port, tether_client(port) as ws:
        assert await ws.recv() == "fragmented"
        assert await ws.recv() == b"\x01\x02"


async def test_tether_client_large_messages():
    async with websockets_server(echo) as port, tether_client(port) as ws:
        await ws.send(LARGE_TEXT)
        assert await ws.recv() == LARGE_TEXT
        await ws.send(LARGE_BINARY)
        assert await ws.recv() == LARGE_BINARY


async def test_tether_client_deflate_negotiated_and_used():
    negotiated = []

    async def handler(ws):
        negotiated.append([extension.name for extension in ws.protocol.extensions])
        await echo(ws)

    async with websockets_server(handler) as port, counting_relay(port) as (relay, counts):
        async with tether_client(relay) as ws:
            assert [e.name for e in ws.protocol.extensions] == ["permessage-deflate"]
            assert "permessage-deflate" in ws.response_headers["Sec-WebSocket-Extensions"]
            await ws.send(LARGE_TEXT)
            assert await ws.recv() == LARGE_TEXT
            for i in range(20):
                await ws.send(f"message {i} " * 50)
                assert await ws.recv() == f"message {i} " * 50
    assert negotiated == [["permessage-deflate"]]
    # Compressed both ways: far fewer bytes than the 2 x 512 KiB of payload.
    assert 0 < counts["up"] < 64 * 1024
    assert 0 < counts["down"] < 64 * 1024


async def test_tether_client_without_compression():
    async with websockets_server(echo) as port, counting_relay(port) as (relay, counts):
        async with tether_client(relay, compression=None) as ws:
            assert ws.protocol.extensions == []
            assert "Sec-WebSocket-Extensions" not in ws.response_headers
            await ws.send(LARGE_TEXT)
            assert await ws.recv() == LARGE_TEXT
    # The relay sees every byte when nothing is compressed.
    assert counts["up"] > 512 * 1024
    assert counts["down"] > 512 * 1024


async def test_tether_client_sees_websockets_close_code():
    async def bye(ws):
        await ws.close(4001, "bye")

    async with websockets_server(bye) as port, tether_client(port) as ws:
        with pytest.raises(ConnectionClosedError) as info:
            await ws.recv()
        assert info.value.code == 4001
        assert info.value.reason == "bye"
        assert ws.close_code == 4001


async def test_websockets_server_sees_tether_close_code():
    seen = []

    async def record(ws):
        with contextlib.suppress(WSConnectionClosed):
            await ws.recv()
        seen.append((ws.close_code, ws.close_reason))

    async with websockets_server(record) as port:
        async with tether_client(port) as ws:
            await ws.close(4001, "bye")
        assert ws.close_code == 4001  # echoed back by websockets
        await until(lambda: seen)
    assert seen == [(4001, "bye")]


async def test_tether_client_ping_pong():
    async with websockets_server(echo) as port, tether_client(port) as ws:
        waiter = await ws.ping(b"tether")
        latency = await asyncio.wait_for(waiter, 2)
        assert 0 <= latency < 2
        assert ws.latency == latency
        await ws.send("after ping")
        assert await ws.recv() == "after ping"


async def test_websockets_server_pings_tether_client():
    latencies = []

    async def handler(ws):
        pong = await ws.ping(b"from websockets")
        latencies.append(await asyncio.wait_for(pong, 2))
        await ws.send("done")

    async with websockets_server(handler) as port, tether_client(port) as ws:
        assert await ws.recv() == "done"
    assert len(latencies) == 1


# websockets client -> tether server


async def test_websockets_client_text_and_binary():
    async with tether_server(echo) as port, websockets_client(port) as ws:
        await ws.send("héllo")
        assert await ws.recv() == "héllo"
        await ws.send(b"\x00\xff")
        assert await ws.recv() == b"\x00\xff"


async def test_websockets_client_sends_fragments():
    async with tether_server(echo) as port, websockets_client(port) as ws:
        await ws.send(["frag", "ment", "ed"])
        assert await ws.recv() == "fragmented"
        await ws.send([b"\x01", b"\x02"])
        assert await ws.recv() == b"\x01\x02"


async def test_websockets_client_receives_fragments():
    async def send_fragments(ws):
        await ws.send(["he", "llo"])
        await ws.send([b"\x01", b"\x02\x03"])
        await ws.wait_closed()

    async with tether_server(send_fragments) as port, websockets_client(port) as ws:
        fragments = [f async for f in ws.recv_streaming()]
        assert [f for f in fragments if f] == ["he", "llo"]
        fragments = [f async for f in ws.recv_streaming()]
        assert [f for f in fragments if f] == [b"\x01", b"\x02\x03"]


async def test_websockets_client_large_messages():
    async with tether_server(echo) as port, websockets_client(port) as ws:
        await ws.send(LARGE_TEXT)
        assert await ws.recv() == LARGE_TEXT
        await ws.send(LARGE_BINARY)
        assert await ws.recv() == LARGE_BINARY


async def test_websockets_client_deflate_negotiated_and_used():
    negotiated = []

    async def handler(ws):
        negotiated.append([extension.name for extension in ws.protocol.extensions])
        await echo(ws)

    async with tether_server(handler) as port, counting_relay(port) as (relay, counts):
        async with websockets_client(relay) as ws:
            assert [e.name for e in ws.protocol.extensions] == ["permessage-deflate"]
            await ws.send(LARGE_TEXT)
            assert await ws.recv() == LARGE_TEXT
            for i in range(20):
                await ws.send(f"message {i} " * 50)
                assert await ws.recv() == f"message {i} " * 50
    assert negotiated == [["permessage-deflate"]]
    assert 0 < counts["up"] < 64 * 1024
    assert 0 < counts["down"] < 64 * 1024


async def test_websockets_client_deflate_with_parameters():
    from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory

    factory = ClientPerMessageDeflateFactory(
        server_max_window_bits=10,
        client_max_window_bits=11,
        server_no_context_takeover=True,
        client_no_context_takeover=True,
    )
    async with (
        tether_server(echo) as port,
        websockets_client(port, extensions=[factory], compression=None) as ws,
    ):
        header = ws.response.headers["Sec-WebSocket-Extensions"]
        assert "server_no_context_takeover" in header
        assert "server_max_window_bits=10" in header
        for _ in range(3):
            await ws.send(LARGE_TEXT)
            assert await ws.recv() == LARGE_TEXT


async def test_websockets_client_sees_tether_close_code():
    async def bye(ws):
        await ws.close(4001, "bye")

    async with tether_server(bye) as port, websockets_client(port) as ws:
        with pytest.raises(WSConnectionClosed):
            await ws.recv()
        assert ws.close_code == 4001
        assert ws.close_reason == "bye"


async def test_tether_server_sees_websockets_close_code():
    seen = []

    async def record(ws):
        try:
            await ws.recv()
        except ConnectionClosedError as exc:
            seen.append((exc.code, exc.reason, ws.close_code, ws.close_reason))

    async with tether_server(record) as port:
        async with websockets_client(port) as ws:
            await ws.close(4001, "bye")
        assert ws.close_code == 4001
        await until(lambda: seen)
    assert seen == [(4001, "bye", 4001, "bye")]


async def test_websockets_client_ping_pong():
    async with tether_server(echo) as port, websockets_client(port) as ws:
        pong = await ws.ping(b"websockets")
        latency = await asyncio.wait_for(pong, 2)
        assert 0 <= latency < 2
        await ws.send("after ping")
        assert await ws.recv() == "after ping"


async def test_tether_server_pings_websockets_client():
    latencies = []

    async def handler(ws):
        waiter = await ws.ping(b"from tether")
        latencies.append(await asyncio.wait_for(waiter, 2))
        await ws.send("done")

    async with tether_server(handler) as port, websockets_client(port) as ws:
        assert await ws.recv() == "done"
        await until(lambda: latencies)
    assert len(latencies) == 1


async def test_websockets_client_subprotocol():
    async def handler(ws):
        await ws.send(str(ws.subprotocol))

    async with (
        tether_server(handler, subprotocols=["v2", "v1"]) as port,
        websockets_client(port, subprotocols=["v1", "v2"]) as ws,
    ):
        assert ws.subprotocol == "v2"
        assert await ws.recv() == "v2"
