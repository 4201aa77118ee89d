"""aiohttp echo and fan-out server (see ``_common.py``)."""

from __future__ import annotations

import asyncio

from _common import FANOUT_PATH, FANOUT_PAYLOAD, HOST, MAX_MESSAGE, ready, run
from aiohttp import WSMsgType, web


subscribers: set[web.WebSocketResponse] = set()


async def echo(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(compress=False, max_msg_size=MAX_MESSAGE)
    await ws.prepare(request)
    async for msg in ws:
        if msg.type == WSMsgType.BINARY:
            await ws.send_bytes(msg.data)
        elif msg.type == WSMsgType.TEXT:
            await ws.send_str(msg.data)
    return ws


async def fanout(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(compress=False, max_msg_size=MAX_MESSAGE)
    await ws.prepare(request)
    subscribers.add(ws)
    try:
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                for _ in range(int(msg.data)):
                    for peer in list(subscribers):
                        if not peer.closed:
                            await peer.send_bytes(FANOUT_PAYLOAD)
    finally:
        subscribers.discard(ws)
    return ws


async def main(port: int) -> None:
    app = web.Application()
    app.router.add_get("/", echo)
    app.router.add_get(FANOUT_PATH, fanout)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, HOST, port)
    await site.start()
    ready()
    try:
        await asyncio.Future()
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    run(main, __doc__ or "")
