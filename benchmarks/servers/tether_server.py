"""tether echo and fan-out server (see ``_common.py`` for the endpoints)."""

from __future__ import annotations

import asyncio

from _common import FANOUT_PATH, FANOUT_PAYLOAD, HOST, MAX_MESSAGE, ready, run

from tether.asyncio.server import ServerConnection, broadcast, serve
from tether.protocol.limits import Limits


subscribers: set[ServerConnection] = set()


async def echo(ws: ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


async def fanout(ws: ServerConnection) -> None:
    subscribers.add(ws)
    try:
        async for message in ws:
            for _ in range(int(message)):
                # broadcast() never waits; a connection above its write high-water mark
                # is skipped and returned, so it gets the message with backpressure.
                for slow in broadcast(subscribers, FANOUT_PAYLOAD):
                    if not slow.closed:
                        await slow.send(FANOUT_PAYLOAD)
    finally:
        subscribers.discard(ws)


async def main(port: int) -> None:
    limits = Limits(
        max_message_size=MAX_MESSAGE,
        max_frame_size=MAX_MESSAGE,
        max_decompressed_size=MAX_MESSAGE,
    )
    handlers = {"/": echo, FANOUT_PATH: fanout}
    async with serve(handlers, HOST, port, compression=None, limits=limits):
        ready()
        await asyncio.Future()


if __name__ == "__main__":
    run(main, __doc__ or "")
