"""Server work per message, without sockets: the echo handler against the RPC server.

Standalone: ``python benchmarks/micro/bench_server_path.py [--rounds N]``.

Scenarios 1 and 8 of ``benchmarks/run.py`` measure the same two servers over loopback,
where the figures also carry system calls and the scheduling of two processes. Here
each server gets a real :class:`~tether.asyncio.server.ServerConnection` whose transport
only collects the writes: bursts of 64 requests (the scenarios' frames) are fed to it
as one read, and the event loop runs until every answer is written. The result is the
CPU time per message of the Python code alone, stable enough to compare designs.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any


sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from loadgen import (
    OP_BINARY,
    REPE_HEADER,
    RPC_ECHO_BODY,
    client_frame,
    repe_request,
    upgrade_request,
)

from tether.asyncio.server import Server, ServerConnection, serve
from tether.rpc.router import Router
from tether.rpc.server import RpcServer


BURST = 64


class CollectingTransport(asyncio.Transport):
    """Counts written bytes; never pushes back."""

    def __init__(self) -> None:
        super().__init__()
        self.written = 0
        self.closing = False
        self.target = 0
        self.reached: asyncio.Future[None] | None = None

    def write(self, data: Any) -> None:
        self.written += len(data)
        if self.reached is not None and self.written >= self.target:
            self.reached.set_result(None)
            self.reached = None

    def writelines(self, chunks: Any) -> None:
        for chunk in chunks:
            self.write(chunk)

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def abort(self) -> None:
        self.closing = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 1) if name == "peername" else default

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def feed(connection: ServerConnection, data: bytes) -> None:
    """Deliver ``data`` as the transport would, through the buffered-protocol calls."""
    view = memoryview(data)
    while view:
        buffer = connection.get_buffer(len(view))
        size = min(len(buffer), len(view))
        buffer[:size] = view[:size]
        connection.buffer_updated(size)
        view = view[size:]


async def drive(server: Server, path: str, burst: bytes, reply: int, rounds: int) -> float:
    """Seconds of CPU per message over ``rounds`` bursts (after a warm-up)."""
    transport = CollectingTransport()
    connection = ServerConnection(server)
    connection.connection_made(transport)
    feed(connection, upgrade_request(0, path))
    for _ in range(20):  # the handshake answer and the handler task
        await asyncio.sleep(0)
    per_burst = BURST * reply

    async def run(count: int) -> None:
        loop = asyncio.get_running_loop()
        for _ in range(count):
            transport.target = transport.written + per_burst
            reached = transport.reached = loop.create_future()
            feed(connection, burst)
            await reached

    await run(rounds // 10 + 1)
    started = time.process_time()
    await run(rounds)
    elapsed = time.process_time() - started
    transport.close()
    connection.connection_lost(None)
    return elapsed / (rounds * BURST)


async def echo(ws: Any) -> None:
    async for message in ws:
        await ws.send(message)


async def measure(rounds: int) -> tuple[float, float]:
    echo_burst = b"".join([client_frame(OP_BINARY, bytes(64))] * BURST)
    async with serve(echo, "127.0.0.1", 0, compression=None) as server:
        echo_time = await drive(server, "/", echo_burst, 66, rounds)

    router = Router()

    @router.json("/echo")
    def echo_value(value: object) -> object:
        return value

    rpc = RpcServer(router)
    rpc_burst = b"".join(
        client_frame(OP_BINARY, repe_request(i, "/echo", RPC_ECHO_BODY))
        for i in range(1, BURST + 1)
    )
    reply = 2 + REPE_HEADER.size + len(RPC_ECHO_BODY)
    async with rpc.serve("127.0.0.1", 0, path="/repe", compression=None) as server:
        rpc_time = await drive(server, "/repe", rpc_burst, reply, rounds)
    await rpc.shutdown(1.0)
    return echo_time, rpc_time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else "")
    parser.add_argument("--rounds", type=int, default=2000, help="bursts of 64 per figure")
    parser.add_argument("--repeat", type=int, default=5, help="best of this many")
    args = parser.parse_args()
    results = [asyncio.run(measure(args.rounds)) for _ in range(args.repeat)]
    echo_time = min(result[0] for result in results)
    rpc_time = min(result[1] for result in results)
    print(f"{'echo handler, per message':<44} {echo_time * 1e9:>10.0f} ns")
    print(f"{'RPC server call_json /echo, per call':<44} {rpc_time * 1e9:>10.0f} ns")
    print(f"{'ratio (echo time / call time)':<44} {echo_time / rpc_time:>10.2f}")


if __name__ == "__main__":
    main()
