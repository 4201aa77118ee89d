"""An ASGI server shutting down while tether handlers are connected."""

import asyncio

import pytest

from tether.asgi import websocket_app
from tether.asyncio.client import connect
from tether.exceptions import ConnectionClosedError

from .servers import UVICORN_WS, run_uvicorn


@pytest.mark.parametrize("ws_impl", UVICORN_WS)
async def test_uvicorn_shutdown_closes_open_connections_with_1012(ws_impl):
    outcome = asyncio.get_running_loop().create_future()
    accepted = asyncio.Event()

    async def handler(ws):
        accepted.set()
        try:
            await ws.recv()
        except ConnectionClosedError as exc:
            outcome.set_result(exc.code)

    async with run_uvicorn(websocket_app(handler), ws=ws_impl) as port:
        client = await connect(f"ws://127.0.0.1:{port}/")
        await accepted.wait()
    # Leaving the block shut uvicorn down, which closed the connection with 1012.
    await client.wait_closed()
    assert client.close_code == 1012
    assert await outcome == 1012
