"""python-socketio server for ``benchmarks/relay_run.py`` (aiohttp, its own web server).

    python benchmarks/servers/relay_socketio.py PORT

Engine.IO v4 / Socket.IO v5 on ``/socket.io/`` (127.0.0.1 only), default settings. A client
emits ``join`` with a room name (acknowledged with ``true``) to enter the room; a client
that emits ``burst`` with N makes the server call ``sio.emit("tick", {"i": i},
room="bench")`` N times. Prints ``ready`` once listening and runs until terminated.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

import socketio
from _common import HOST, raise_nofile_limit, ready
from aiohttp import web


ROOM = "bench"


def make_app() -> web.Application:
    """The aiohttp application with the Socket.IO server attached."""
    sio = socketio.AsyncServer(async_mode="aiohttp")
    app = web.Application()
    sio.attach(app)

    @sio.event
    async def join(sid: str, room: str) -> bool:
        await sio.enter_room(sid, room)
        return True

    @sio.event
    async def burst(sid: str, n: int) -> None:
        for i in range(int(n)):
            await sio.emit("tick", {"i": i}, room=ROOM)

    return app


async def main(port: int) -> None:
    """Serve until the process is terminated."""
    runner = web.AppRunner(make_app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, HOST, port, backlog=2048)
    await site.start()
    ready()
    try:
        await asyncio.Future()
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("port", type=int)
    args = parser.parse_args()
    raise_nofile_limit()
    try:
        asyncio.run(main(args.port))
    except KeyboardInterrupt:
        sys.exit(0)
