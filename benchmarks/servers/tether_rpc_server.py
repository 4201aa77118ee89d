"""tether REPE RPC server for the RPC scenarios (8-10) of ``benchmarks/run.py``.

Run as ``python benchmarks/servers/tether_rpc_server.py PORT [--uvloop]``; it listens on
127.0.0.1 only, prints ``ready`` and runs until terminated. One ``RpcServer`` on the
WebSocket path :data:`RPC_PATH`, the handlers a user would write:

* ``/echo`` (JSON route): returns its argument; scenarios 8 and 9 call it.
* ``/fanout`` (JSON route, sent as a notify): its argument ``N`` makes the server call
  ``broadcast_notify_json(TICK_PATH, TICK_VALUE)`` N times, which queues N notifies for
  every connected peer (scenario 10). A notify that does not fit in a peer's outbound
  queue is counted and reported on stderr; the load generator then misses it.
"""

from __future__ import annotations

import asyncio
import sys

from _common import HOST, ready, run

from tether.rpc.peers import SendResult
from tether.rpc.router import Router
from tether.rpc.server import RpcServer


RPC_PATH = "/repe"
TICK_PATH = "/tick"
TICK_VALUE = "0123456789abcd"  # 16 bytes of JSON: every notify is 69 bytes of REPE
OUTBOUND_CAPACITY = 1024  # room for one whole round of the fan-out scenario


async def main(port: int) -> None:
    router = Router()
    rpc = RpcServer(router, outbound_capacity=OUTBOUND_CAPACITY)
    peers = rpc.peers

    @router.json("/echo")
    def echo(value: object) -> object:
        return value

    @router.json("/fanout")
    def fanout(count: int) -> None:
        failed = 0
        for _ in range(count):
            results = peers.broadcast_notify_json(TICK_PATH, TICK_VALUE)
            failed += len(results) - list(results.values()).count(SendResult.OK)
        if failed:
            print(f"fanout: {failed} notifies not queued", file=sys.stderr, flush=True)

    async with rpc.serve(HOST, port, path=RPC_PATH, compression=None):
        ready()
        await asyncio.Future()


if __name__ == "__main__":
    run(main, __doc__ or "")
