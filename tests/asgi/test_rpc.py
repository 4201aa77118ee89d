"""REPE under ASGI: an RpcServer in websocket_app, served by uvicorn, called by RpcClient."""

import asyncio

import pytest

from tether.asgi import websocket_app
from tether.rpc.client import rpc_connect
from tether.rpc.errors import ServerError
from tether.rpc.peers import PeerHandle, SendResult
from tether.rpc.repe import ErrorCode
from tether.rpc.router import Router
from tether.rpc.server import RpcServer

from ..utils import until
from .servers import UVICORN_WS, run_uvicorn


pytestmark = pytest.mark.parametrize("ws", UVICORN_WS)


def make_rpc() -> RpcServer:
    router = Router()

    @router.json("/echo")
    def echo(value):
        return value

    @router.json("/sum")
    async def total(values):
        await asyncio.sleep(0)
        return sum(values)

    @router.json("/fail")
    def fail():
        raise ValueError("internal detail")

    def greet(peer: PeerHandle) -> None:
        peer.send_notify_json("/hello", {"peer": peer.id})

    return RpcServer(router, on_peer_connect=greet, on_error=lambda event: None)


async def test_calls_and_push_over_uvicorn(ws):
    rpc = make_rpc()
    app = websocket_app({"/repe": rpc.handle})
    async with run_uvicorn(app, ws=ws) as port:
        async with rpc_connect(f"ws://127.0.0.1:{port}/repe") as client:
            subscription = client.subscribe_notifies()
            hello = await asyncio.wait_for(subscription.recv(), 10)
            assert bytes(hello.query) == b"/hello"
            assert await client.call_json("/echo", {"a": [1, 2.5, "x", None]}) == {
                "a": [1, 2.5, "x", None]
            }
            assert await client.call_beve("/echo", [1, 2, 3]) == [1, 2, 3]
            # Pipelined calls on the one connection, answered in order of arrival.
            results = await asyncio.gather(*(client.call_json("/sum", [n, n]) for n in range(50)))
            assert results == [2 * n for n in range(50)]
            with pytest.raises(ServerError) as caught:
                await client.call_json("/fail")
            assert caught.value.code == ErrorCode.INTERNAL_ERROR
            with pytest.raises(ServerError) as caught:
                await client.call_json("/missing")
            assert caught.value.code == ErrorCode.METHOD_NOT_FOUND
            # Server push to the ASGI peer through the registry.
            assert len(rpc.peers) == 1
            outcome = rpc.peers.broadcast_notify_json("/news", "hi")
            assert list(outcome.values()) == [SendResult.OK]
            news = await asyncio.wait_for(subscription.recv(), 10)
            assert (bytes(news.query), bytes(news.body)) == (b"/news", b'"hi"')
        await until(lambda: len(rpc.peers) == 0)
