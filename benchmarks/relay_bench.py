"""Relay fan-out benchmark: deliveries per second for one topic with many subscribers.

    .venv/bin/python benchmarks/relay_bench.py [--subscribers 1000] [--pushes 50]

Scenarios (loopback only, stops by itself):

* one node (memory backend), every subscriber on it;
* two nodes sharing a redis-server started here on a free port (skipped with a message
  when ``redis-server`` isn't installed), subscribers split between them, pushes from
  node A.

A delivery is one push received by one client. Clients are tether clients in the same
process, so the figure includes the client side's cost too.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import socket
import subprocess
import time

from tether.asyncio.client import connect
from tether.relay import Relay, RelayConfig


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def run(urls: list[str], pusher: Relay, subscribers: int, pushes: int) -> float:
    async with contextlib.AsyncExitStack() as stack:
        clients = []
        for i in range(subscribers):
            ws = await stack.enter_async_context(
                connect(urls[i % len(urls)], compression=None, ping_interval=None)
            )
            clients.append(ws)
        for ws in clients:
            await ws.send(json.dumps({"type": "subscribe", "topic": "bench"}))
        for ws in clients:
            await ws.recv()

        async def drain(ws: object) -> None:
            for _ in range(pushes):
                await ws.recv()  # type: ignore[attr-defined]

        readers = [asyncio.create_task(drain(ws)) for ws in clients]
        start = time.perf_counter()
        for i in range(pushes):
            await pusher.push("bench", "tick", {"i": i})
            await asyncio.sleep(0)
        await asyncio.gather(*readers)
        return subscribers * pushes / (time.perf_counter() - start)


async def one_node(subscribers: int, pushes: int) -> float:
    config = RelayConfig(outbox_capacity=max(1024, pushes * 2))
    async with Relay(config) as relay:
        async with relay.serve("127.0.0.1", 0, compression=None) as server:
            url = f"ws://127.0.0.1:{server.port}/ws"
            return await run([url], relay, subscribers, pushes)


async def two_nodes(subscribers: int, pushes: int) -> float | None:
    binary = shutil.which("redis-server")
    if binary is None:
        print("two nodes over Redis: skipped (redis-server not installed)")
        return None
    from tether.relay.backends.redis import RedisBackend

    port = free_port()
    proc = subprocess.Popen(  # noqa: ASYNC220 - started once, before measuring
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port)):
                break
            await asyncio.sleep(0.01)
        url = f"redis://127.0.0.1:{port}/0"
        config = RelayConfig(outbox_capacity=max(1024, pushes * 2))
        a = Relay(config, backend=RedisBackend(url))
        b = Relay(config, backend=RedisBackend(url))
        async with a, b:
            async with (
                a.serve("127.0.0.1", 0, compression=None) as sa,
                b.serve("127.0.0.1", 0, compression=None) as sb,
            ):
                urls = [f"ws://127.0.0.1:{sa.port}/ws", f"ws://127.0.0.1:{sb.port}/ws"]
                return await run(urls, a, subscribers, pushes)
    finally:
        proc.terminate()
        proc.wait()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--pushes", type=int, default=50)
    args = parser.parse_args()
    rate = await one_node(args.subscribers, args.pushes)
    print(f"one node, {args.subscribers} subscribers: {rate:,.0f} deliveries/s")
    rate2 = await two_nodes(args.subscribers, args.pushes)
    if rate2 is not None:
        print(f"two nodes over Redis, {args.subscribers} subscribers: {rate2:,.0f} deliveries/s")


if __name__ == "__main__":
    asyncio.run(main())
