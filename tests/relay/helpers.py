"""Helpers for relay tests over real sockets."""

import asyncio
import contextlib
import json

from tether.asyncio.client import connect


class Client:
    def __init__(self, ws):
        self.ws = ws

    async def send(self, obj):
        await self.ws.send(obj if isinstance(obj, (str, bytes)) else json.dumps(obj))

    async def recv(self):
        async with asyncio.timeout(5):
            return json.loads(await self.ws.recv())

    async def request(self, obj):
        await self.send(obj)
        return await self.recv()

    async def subscribe(self, topic, **extra):
        reply = await self.request({"type": "subscribe", "topic": topic, **extra})
        assert reply == {"type": "subscribed", "topic": topic}, reply
        return reply

    async def close(self):
        await self.ws.close()


@contextlib.asynccontextmanager
async def serving(relay, **kwargs):
    async with relay.serve("127.0.0.1", 0, **kwargs) as server:
        server.url = f"ws://127.0.0.1:{server.port}{relay.config.path}"
        yield server


@contextlib.asynccontextmanager
async def client(url, **kwargs):
    async with connect(url, **kwargs) as ws:
        yield Client(ws)
