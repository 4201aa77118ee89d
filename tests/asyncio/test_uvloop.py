"""The engine on uvloop: servers on tether's socket transport, clients on uvloop's own."""

import uvloop

from tether.asyncio.client import connect
from tether.asyncio.server import serve
from tether.asyncio.transport import SocketTransport
from tether.protocol.limits import Limits


async def echo(ws):
    async for message in ws:
        await ws.send(message)


async def scenario():
    async with serve(echo, "127.0.0.1", 0) as server:
        async with connect(f"ws://127.0.0.1:{server.port}/") as ws:
            await ws.send("text")
            assert await ws.recv() == "text"
            payload = bytes(range(256)) * 1000
            await ws.send(payload)
            assert await ws.recv() == payload
            assert await (await ws.ping()) >= 0
        return ws.close_code


def test_echo_on_uvloop():
    assert uvloop.run(scenario()) == 1000


async def large_messages_with_backpressure():
    # Frames of more than one piece (a header, then a large payload) go to uvloop's
    # writelines; the client reads nothing until the server has queued them all.
    messages = [bytes([n]) * 3_000_000 for n in range(4)]
    queued = []

    async def handler(ws):
        for message in messages:
            await ws.send(message)
            queued.append(len(message))
        await ws.wait_closed()

    unlimited = Limits(max_message_size=None, max_frame_size=None)
    async with serve(handler, "127.0.0.1", 0, compression=None, limits=unlimited) as server:
        async with connect(
            f"ws://127.0.0.1:{server.port}/",
            compression=None,
            limits=unlimited,
            max_queue=(65536, 16384),
        ) as ws:
            received = [await ws.recv() for _ in messages]
    return received == messages, len(queued)


def test_large_messages_on_uvloop():
    assert uvloop.run(large_messages_with_backpressure()) == (True, 4)


async def large_echo_in_place():
    # Both ends read large binary payloads straight into the messages they deliver,
    # while uvloop still holds the buffer it read into.
    messages = [bytes(range(n, 256)) * 4096 for n in range(3)]
    async with serve(echo, "127.0.0.1", 0, compression=None) as server:
        async with connect(f"ws://127.0.0.1:{server.port}/", compression=None) as ws:
            for message in messages:
                await ws.send(message)
            return [await ws.recv() for _ in messages] == messages


def test_large_messages_are_read_in_place_on_uvloop():
    assert uvloop.run(large_echo_in_place())


async def transports():
    kinds = []

    async def handler(ws):
        kinds.append(type(ws.transport))
        await ws.send("hello")

    async with serve(handler, "127.0.0.1", 0) as server:
        async with connect(f"ws://127.0.0.1:{server.port}/") as ws:
            assert await ws.recv() == "hello"
            kinds.append(type(ws.transport))
    return kinds


def test_servers_run_on_the_socket_transport_and_clients_on_uvloops():
    server_side, client_side = uvloop.run(transports())
    assert server_side is SocketTransport
    assert client_side.__module__.startswith("uvloop")
