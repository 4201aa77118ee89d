"""Disconnects leave nothing behind: no task, no subscription, no presence."""

import asyncio
import json

from tests.relay.helpers import client, serving
from tests.relay.memory import memory_pair
from tests.utils import until
from tether.relay import Relay, RelayConfig


def clean(relay):
    return relay.statistics() == {
        "connections": 0,
        "local_topics": 0,
        "subscriptions": 0,
        "background_tasks": 0,
    }


async def test_thousand_cycles_over_memory_pairs():
    async with Relay(RelayConfig()) as relay:

        @relay.channel("room:*")
        class Room:
            async def join(self, ctx):
                await ctx.track({"n": 1})

            async def leave(self, ctx):
                pass

        baseline = len(asyncio.all_tasks())
        for i in range(1000):
            c, s = memory_pair()
            task = asyncio.create_task(relay.handle(s))
            for topic in (f"room:{i % 7}", "shared"):
                await c.send(json.dumps({"type": "subscribe", "topic": topic, "presence": True}))
                assert json.loads(await c.recv())["type"] == "subscribed"
                await c.recv()  # presence_state
            await c.close()
            await task
        await until(lambda: clean(relay))
        assert len(asyncio.all_tasks()) == baseline
        assert await relay.presence_count("room:0") == 0
        assert relay.backend.broker.subscribers == {}


async def test_cycles_over_real_sockets():
    async with Relay(RelayConfig()) as relay, serving(relay) as server:
        baseline = len(asyncio.all_tasks())
        for _ in range(50):
            async with client(server.url) as c:
                await c.subscribe("a")
                await c.subscribe("b", presence=True)
                await c.recv()
        await until(lambda: clean(relay) and len(asyncio.all_tasks()) == baseline)
