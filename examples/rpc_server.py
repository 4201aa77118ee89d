"""A REPE server and plain HTTP on one port, with server push.

* ``ws://127.0.0.1:8081/repe`` — REPE over WebSocket: ``/sum``, ``/login`` (aliases the
  caller), ``/say`` (pushes a ``/message`` notify to a user by alias);
* ``GET /healthz`` — ``ok``; ``GET /api/peers`` — JSON with the connected peer count.

Run ``python examples/rpc_server.py`` and ``python examples/rpc_client.py``.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from tether.protocol.handshake import reject
from tether.protocol.http11 import Request, Response
from tether.rpc.context import CallContext
from tether.rpc.errors import ApplicationError
from tether.rpc.peers import PeerHandle, PeerRegistry
from tether.rpc.router import Router
from tether.rpc.server import RpcServer


peers = PeerRegistry()
router = Router()


@router.json("/sum")
def total(values: list[float]) -> float:
    return sum(values)


@router.json("/login", context=True)
def login(ctx: CallContext, name: str) -> dict[str, Any]:
    assert ctx.peer is not None
    peers.alias(ctx.peer.id, name)
    return {"peer": ctx.peer.id, "name": name}


@router.json("/say", context=True)
def say(ctx: CallContext, request: dict[str, str]) -> str:
    target = peers.get_by(request["to"])
    if target is None:
        raise ApplicationError(f"no user named {request['to']}")
    sender = peers.key_for(ctx.peer.id) if ctx.peer is not None else None
    return target.send_notify_json("/message", {"from": sender, "text": request["text"]}).value


def http_handler(request: Request) -> Response:
    if request.path == "/healthz":
        return reject(200, "ok\n")
    if request.path == "/api/peers":
        body = json.dumps({"peers": len(peers)})
        return reject(200, body, [("Content-Type", "application/json")])
    return reject(404, "not found\n")


def welcome(peer: PeerHandle) -> None:
    # Queued before any response on this connection.
    peer.send_notify_utf8("/welcome", f"you are peer {peer.id}")


async def main() -> None:
    rpc = RpcServer(router, peers=peers, on_peer_connect=welcome)
    async with rpc.serve("127.0.0.1", 8081, path="/repe", http_handler=http_handler):
        print("REPE on ws://127.0.0.1:8081/repe, HTTP on http://127.0.0.1:8081/healthz")
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
