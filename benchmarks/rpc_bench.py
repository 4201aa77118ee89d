"""REPE RPC throughput on loopback: calls/s and broadcast deliveries/s.

Measures, against one in-process RpcServer (client and server share the event loop,
so the figures are a lower bound for a real deployment with separate processes):

1. pipelined ``call_json`` on one connection (``--inflight`` calls outstanding);
2. the same on ``--connections`` connections at once;
3. ``broadcast_notify_json`` to ``--peers`` subscribed peers, counting deliveries.

Quick by default (about ``--seconds`` per phase, plus connection setup) and it stops by
itself. ``python benchmarks/rpc_bench.py --seconds 2 --peers 1000``.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from tether.rpc.client import RpcClient, rpc_connect
from tether.rpc.peers import PeerHandle, PeerRegistry, SendResult
from tether.rpc.router import Router
from tether.rpc.server import RpcServer


async def pipelined(client: RpcClient, inflight: int, deadline: float) -> int:
    """Keep ``inflight`` calls outstanding until the deadline; return calls done."""
    done = 0

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await client.call_json("/echo", 1)
            done += 1

    await asyncio.gather(*(worker() for _ in range(inflight)))
    return done


async def bench_calls(url: str, connections: int, inflight: int, seconds: float) -> float:
    clients = await asyncio.gather(*(rpc_connect(url) for _ in range(connections)))
    try:
        for client in clients:  # warm up
            await client.call_json("/echo", 0)
        start = time.perf_counter()
        deadline = start + seconds
        counts = await asyncio.gather(
            *(pipelined(client, inflight, deadline) for client in clients)
        )
        return sum(counts) / (time.perf_counter() - start)
    finally:
        await asyncio.gather(*(client.close() for client in clients))


async def bench_broadcast(
    url: str,
    registry: PeerRegistry,
    all_connected: asyncio.Event,
    peers: int,
    seconds: float,
    burst: int,
) -> tuple[float, int]:
    clients: list[RpcClient] = []
    for start in range(0, peers, 100):  # connect in batches
        clients += await asyncio.gather(*(rpc_connect(url) for _ in range(min(100, peers - start))))
    subscriptions = [client.subscribe_notifies(maxsize=burst * 2) for client in clients]
    await all_connected.wait()
    delivered = 0
    full = 0
    try:
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            for n in range(burst):
                results = registry.broadcast_notify_json("/tick", {"n": n})
                full += sum(1 for result in results.values() if result is not SendResult.OK)
            # Wait until every peer got the whole burst.
            for subscription in subscriptions:
                for _ in range(burst):
                    await subscription.recv()
                    delivered += 1
        elapsed = time.perf_counter() - start
    finally:
        await asyncio.gather(*(client.close() for client in clients))
    return delivered / elapsed, full


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="duration of each phase")
    parser.add_argument("--inflight", type=int, default=64, help="calls outstanding per connection")
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--peers", type=int, default=1000)
    parser.add_argument("--burst", type=int, default=20, help="broadcasts between checks")
    args = parser.parse_args()

    router = Router()
    router.add_json("/echo", lambda value: value)
    registry = PeerRegistry()
    all_connected = asyncio.Event()

    def on_connect(peer: PeerHandle) -> None:
        if len(registry) >= args.peers:
            all_connected.set()

    rpc = RpcServer(router, peers=registry, on_peer_connect=on_connect)
    async with rpc.serve("127.0.0.1", 0, ping_interval=None) as server:
        url = f"ws://127.0.0.1:{server.port}/repe"
        rate = await bench_calls(url, 1, args.inflight, args.seconds)
        print(f"call_json, 1 connection, {args.inflight} in flight: {rate:,.0f} calls/s")
        rate = await bench_calls(url, args.connections, max(1, args.inflight // 8), args.seconds)
        print(
            f"call_json, {args.connections} connections, {max(1, args.inflight // 8)} in flight "
            f"each: {rate:,.0f} calls/s"
        )
        rate, full = await bench_broadcast(
            url, registry, all_connected, args.peers, args.seconds, args.burst
        )
        print(
            f"broadcast_notify_json to {args.peers} peers: {rate:,.0f} deliveries/s "
            f"({full} not queued)"
        )


if __name__ == "__main__":
    asyncio.run(main())
