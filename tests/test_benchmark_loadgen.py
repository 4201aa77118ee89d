"""The load generator's bare-socket counter against a real tether server on loopback."""

import asyncio

import pytest

from tether.asyncio.server import ServerConnection, serve

from .utils import benchmark_module


@pytest.fixture(scope="module")
def loadgen():
    with benchmark_module("loadgen.py", "bench_loadgen") as module:
        yield module


async def echo(ws: ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


@pytest.mark.parametrize("size", [64, 300_000])
async def test_socket_counter_counts_every_echo(loadgen, size):
    async with serve(echo, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        request = loadgen.upgrade_request(port, "/")
        client = loadgen.SocketCounter(request, size)
        await client.open(port, 5.0)
        frames = 6
        client.target = frames
        client.reached = asyncio.get_running_loop().create_future()
        # One write bigger than the socket takes at once: the rest goes out when writable.
        client.write(loadgen.client_frame(loadgen.OP_BINARY, bytes(size)) * frames)
        await asyncio.wait_for(client.reached, 10.0)
        await client.close()
    assert client.count == frames
    assert client.bad == 0
    assert client.received == frames * loadgen.server_frame_length(size)
    assert client.sock.fileno() == -1


async def test_socket_counter_reports_a_wrong_header(loadgen):
    async with serve(echo, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        client = loadgen.SocketCounter(loadgen.upgrade_request(port, "/"), 64)
        await client.open(port, 5.0)
        client.target = 2
        client.reached = asyncio.get_running_loop().create_future()
        # Two echoes of 31 bytes take the room of one 64-byte reply (66 bytes) but the
        # length byte of the first is 31, not 64.
        client.write(loadgen.client_frame(loadgen.OP_BINARY, bytes(31)) * 2)
        client.write(loadgen.client_frame(loadgen.OP_BINARY, bytes(64)))
        await asyncio.wait_for(client.reached, 10.0)
        await client.close()
    assert client.bad > 0


async def test_refused_handshake_is_an_error(loadgen):
    async with serve(echo, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        bad = loadgen.upgrade_request(port, "/").replace(b"Upgrade: websocket", b"Upgrade: h2c")
        client = loadgen.SocketCounter(bad, 64)
        with pytest.raises(ConnectionError, match=r"handshake refused: HTTP/1\.1 4"):
            await client.open(port, 5.0)
    assert loadgen.refusal(b"HTTP/1.1 101 Switching Protocols\r\n\r\n") is None
