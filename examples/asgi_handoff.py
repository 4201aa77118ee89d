"""tether's own server on one port: WebSockets on its engine, plain HTTP to a Starlette app.

``serve_asgi`` routes WebSocket upgrades at the given paths to tether handlers (with
tether's keepalive, limits and permessage-deflate) and hands every plain HTTP request to
the ASGI application.

Run it: ``python examples/asgi_handoff.py`` serves on a free loopback port, sends a GET,
a POST and a WebSocket message, and stops; ``python examples/asgi_handoff.py serve``
serves on 127.0.0.1:8000 until interrupted.
"""

from __future__ import annotations

import asyncio
import sys

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from tether.asgi import serve_asgi
from tether.asyncio.client import connect
from tether.asyncio.server import ServerConnection


async def echo(ws: ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


async def health(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok\n")


async def notes(request: Request) -> JSONResponse:
    note = (await request.body()).decode()
    return JSONResponse({"saved": note, "client": request.client.host if request.client else None})


app = Starlette(routes=[Route("/health", health), Route("/notes", notes, methods=["POST"])])


async def request(port: int, method: str, path: str, body: bytes = b"") -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n\r\n"
    writer.write(head.encode() + body)
    response = await reader.read()
    writer.close()
    await writer.wait_closed()
    return response.partition(b"\r\n\r\n")[2]


async def demo() -> list[str]:
    """Serve on a free port, use it once over HTTP and WebSocket; return what was seen."""
    seen: list[str] = []
    async with serve_asgi(app, "127.0.0.1", 0, websocket_handlers={"/ws": echo}) as server:
        seen.append((await request(server.port, "GET", "/health")).decode().strip())
        seen.append((await request(server.port, "POST", "/notes", b"buy milk")).decode())
        async with connect(f"ws://127.0.0.1:{server.port}/ws") as ws:
            await ws.send("same port")
            seen.append(str(await ws.recv()))
    return seen


async def serve_forever() -> None:
    async with serve_asgi(app, "127.0.0.1", 8000, websocket_handlers={"/ws": echo}) as server:
        await server.serve_forever()


if __name__ == "__main__":
    if sys.argv[1:] == ["serve"]:
        asyncio.run(serve_forever())
    else:
        for line in asyncio.run(demo()):
            print(line)
