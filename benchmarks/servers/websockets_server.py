"""websockets (asyncio API) echo and fan-out server (see ``_common.py``)."""

from __future__ import annotations

import asyncio

from _common import FANOUT_PATH, FANOUT_PAYLOAD, HOST, MAX_MESSAGE, ready, run
from websockets.asyncio.server import ServerConnection, broadcast, serve


subscribers: set[ServerConnection] = set()


async def echo(ws: ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


async def fanout(ws: ServerConnection) -> None:
    subscribers.add(ws)
    try:
        async for message in ws:
            for _ in range(int(message)):
                broadcast(subscribers, FANOUT_PAYLOAD)
    finally:
        subscribers.discard(ws)


async def handler(ws: ServerConnection) -> None:
    if ws.request is not None and ws.request.path == FANOUT_PATH:
        await fanout(ws)
    else:
        await echo(ws)


async def main(port: int) -> None:
    async with serve(handler, HOST, port, compression=None, max_size=MAX_MESSAGE):
        ready()
        await asyncio.Future()


if __name__ == "__main__":
    run(main, __doc__ or "")
