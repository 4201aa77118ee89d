"""The relay mounted in a Starlette application, under any ASGI server.

    uvicorn examples.relay_asgi:app        # or: hypercorn examples.relay_asgi:app

* WebSocket ``/ws`` (a Starlette ``WebSocketRoute``): the relay (see docs/relay.md for the
  wire protocol); subscribing to ``room:NAME`` tracks the client's presence with the
  ``name`` query parameter.
* ``POST /rooms/{room}/announce`` with a JSON body: pushes it to ``room:{room}``.
* ``GET /rooms/{room}/members``: who is in the room.

The HTTP handlers and the WebSocket connections share the one ``relay``; Starlette's
lifespan starts and closes it.
"""

from __future__ import annotations

import contextlib
import urllib.parse
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute

from tether.asgi.adapter import ASGIWebSocket, websocket_app
from tether.relay import Relay, RelayConfig


relay = Relay(RelayConfig())


@relay.channel("room:*")
class Room:
    async def join(self, ctx):  # type: ignore[no-untyped-def]
        await ctx.track({"name": ctx.user or "anonymous"})


async def relay_endpoint(ws: ASGIWebSocket) -> None:
    query = urllib.parse.parse_qs(ws.peer.query)
    await relay.handle(ws, user=query.get("name", [None])[0])


async def announce(request: Request) -> JSONResponse:
    room = request.path_params["room"]
    offset = await relay.push(f"room:{room}", "announce", await request.json())
    return JSONResponse({"offset": offset})


async def members(request: Request) -> JSONResponse:
    room = request.path_params["room"]
    return JSONResponse(await relay.presence(f"room:{room}"))


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    async with relay:
        yield


app = Starlette(
    routes=[
        Route("/rooms/{room}/announce", announce, methods=["POST"]),
        Route("/rooms/{room}/members", members),
        WebSocketRoute("/ws", websocket_app(relay_endpoint)),
    ],
    lifespan=lifespan,
)
