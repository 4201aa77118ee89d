"""examples/relay_asgi.py under a real uvicorn server."""

import asyncio
import importlib.util
import json
import pathlib
import socket
import urllib.request

import uvicorn

from tests.relay.helpers import client
from tests.utils import until


def load_example():
    path = pathlib.Path(__file__).parents[2] / "examples" / "relay_asgi.py"
    spec = importlib.util.spec_from_file_location("relay_asgi_example", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def http(method, url, body=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


async def test_relay_asgi_example_under_uvicorn():
    example = load_example()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = uvicorn.Config(
        example.app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="on",
        ws="websockets-sansio",
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        await until(lambda: server.started)
        base = f"http://127.0.0.1:{port}"
        async with client(f"ws://127.0.0.1:{port}/ws?name=ann") as c:
            await c.subscribe("room:1")
            members = await asyncio.to_thread(http, "GET", f"{base}/rooms/1/members")
            assert list(members.values()) == [{"name": "ann"}]
            result = await asyncio.to_thread(http, "POST", f"{base}/rooms/1/announce", {"hi": 1})
            assert await c.recv() == {
                "type": "push",
                "topic": "room:1",
                "event": "announce",
                "payload": {"hi": 1},
                "offset": result["offset"],
            }
        await until(lambda: example.relay.statistics()["connections"] == 0)
    finally:
        server.should_exit = True
        await task
