"""The engine on uvloop, whose transports don't subclass asyncio's."""

import uvloop

from tether.asyncio.client import connect
from tether.asyncio.server import serve


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
