"""A Starlette app served by uvicorn, with tether WebSocket handlers mounted in it.

The same handler code runs on tether's own server and under an ASGI server: here
``echo`` is a Starlette ``WebSocketRoute`` endpoint and ``chat`` lives in a ``Mount``,
next to an ordinary HTTP route.

Run it: ``python examples/asgi_starlette.py`` starts uvicorn on a free loopback port,
calls the HTTP route and both WebSocket endpoints with tether's client, and stops;
``python examples/asgi_starlette.py serve`` serves on 127.0.0.1:8000 until interrupted.
"""

from __future__ import annotations

import asyncio
import sys

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route, WebSocketRoute

from tether.asgi import ASGIWebSocket, websocket_app
from tether.asyncio.client import connect


async def echo(ws: ASGIWebSocket) -> None:
    async for message in ws:
        await ws.send(message)


async def chat(ws: ASGIWebSocket) -> None:
    name = ws.query.removeprefix("name=") or "anonymous"
    async for message in ws:
        await ws.send(f"{name}: {message}")


async def hello(request: Request) -> PlainTextResponse:
    return PlainTextResponse("hello from starlette\n")


app = Starlette(
    routes=[
        Route("/hello", hello),
        # A WebSocketApp is a class instance, so Starlette treats it as a raw ASGI endpoint.
        WebSocketRoute("/echo", websocket_app(echo)),
        # Paths in the mapping are relative to the mount point.
        Mount("/rooms", app=websocket_app({"/chat": chat})),
    ]
)


async def get(port: int, path: str) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
    response = await reader.read()
    writer.close()
    await writer.wait_closed()
    return response.partition(b"\r\n\r\n")[2]


async def demo() -> list[str]:
    """Start uvicorn on a free port, use every endpoint once, stop; return what was seen."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="off", log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    seen: list[str] = []
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        seen.append((await get(port, "/hello")).decode().strip())
        async with connect(f"ws://127.0.0.1:{port}/echo") as ws:
            await ws.send("ping")
            seen.append(str(await ws.recv()))
        async with connect(f"ws://127.0.0.1:{port}/rooms/chat?name=ann") as ws:
            await ws.send("hi")
            seen.append(str(await ws.recv()))
    finally:
        server.should_exit = True
        await task
    return seen


if __name__ == "__main__":
    if sys.argv[1:] == ["serve"]:
        uvicorn.run(app, host="127.0.0.1", port=8000)
    else:
        for line in asyncio.run(demo()):
            print(line)
