"""examples/relay_asgi.py (the relay mounted in Starlette) under real uvicorn and hypercorn.

A WebSocket client subscribes, HTTP handlers of the same application push to the topic
and list its presence, and the relay is started and closed by the application's lifespan.
"""

import asyncio
import contextlib
import importlib.util
import json
import pathlib

import pytest
import uvicorn

from tests.asgi.servers import UVICORN_WS, http_request, run_hypercorn
from tests.relay.helpers import client
from tests.utils import until


SERVERS = [*(f"uvicorn-{ws}" for ws in UVICORN_WS), "hypercorn"]


def load_example():
    path = pathlib.Path(__file__).parents[2] / "examples" / "relay_asgi.py"
    spec = importlib.util.spec_from_file_location("relay_asgi_example", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextlib.asynccontextmanager
async def run_uvicorn_with_lifespan(app, ws):
    """uvicorn on 127.0.0.1 with the lifespan protocol on; yield the port."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, ws=ws, lifespan="on", log_level="warning"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        await until(lambda: server.started or task.done())
        if task.done():
            task.result()
            raise RuntimeError("uvicorn stopped during startup")
        yield server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        await task


def serve(name, app):
    if name == "hypercorn":
        return run_hypercorn(app)  # hypercorn always runs the lifespan protocol
    return run_uvicorn_with_lifespan(app, name.removeprefix("uvicorn-"))


async def http_json(port, method, path, body=None):
    payload = json.dumps(body).encode() if body is not None else b""
    headers = ["Content-Type: application/json"] if body is not None else []
    status, _, data = await http_request(port, method, path, body=payload, headers=headers)
    assert status == 200, (status, data)
    return json.loads(data)


@pytest.mark.parametrize("server", SERVERS)
async def test_relay_asgi_example(server):
    example = load_example()
    async with serve(server, example.app) as port:
        url = f"ws://127.0.0.1:{port}/ws"
        async with client(f"{url}?name=ann") as ann, client(f"{url}?name=bob") as bob:
            await ann.subscribe("room:1")
            await bob.subscribe("room:1", presence=True)
            state = await bob.recv()
            assert state["event"] == "presence_state"
            assert sorted(m["name"] for m in state["payload"].values()) == ["ann", "bob"]

            members = await http_json(port, "GET", "/rooms/1/members")
            assert sorted(m["name"] for m in members.values()) == ["ann", "bob"]
            assert await http_json(port, "GET", "/rooms/2/members") == {}

            result = await http_json(port, "POST", "/rooms/1/announce", {"hi": 1})
            push = {
                "type": "push",
                "topic": "room:1",
                "event": "announce",
                "payload": {"hi": 1},
                "offset": result["offset"],
            }
            assert result["offset"] == 1
            assert await ann.recv() == push
            assert await bob.recv() == push

            await ann.close()
            diff = await bob.recv()
            assert diff["event"] == "presence_diff"
            assert [m["name"] for m in diff["payload"]["leaves"].values()] == ["ann"]
            members = await http_json(port, "GET", "/rooms/1/members")
            assert [m["name"] for m in members.values()] == ["bob"]
        await until(lambda: example.relay.statistics()["connections"] == 0)
    # The application's lifespan closed the relay when the server stopped.
    assert example.relay._closed
