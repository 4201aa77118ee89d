"""The ``tether`` command: a demo server and a small interactive client."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Sequence

from .asyncio.client import connect
from .asyncio.connection import Connection
from .asyncio.server import Server, ServerConnection, broadcast, serve
from .exceptions import ConnectionClosed
from .protocol.handshake import reject
from .protocol.http11 import Request, Response


__all__ = ["main"]

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>tether demo</title>
<style>body{font-family:sans-serif;max-width:40em;margin:2em auto}
#log{border:1px solid #ccc;height:20em;overflow-y:auto;padding:.5em}</style></head>
<body><h1>tether chat</h1><div id="log"></div>
<form id="f"><input id="m" autocomplete="off" size="50" autofocus>
<button>send</button></form>
<script>
const log = document.getElementById("log");
const ws = new WebSocket(`ws://${location.host}/chat`);
const add = (t) => { const p = document.createElement("div"); p.textContent = t;
  log.appendChild(p); log.scrollTop = log.scrollHeight; };
ws.onopen = () => add("connected");
ws.onmessage = (e) => add(e.data);
ws.onclose = (e) => add(`closed: ${e.code}`);
document.getElementById("f").onsubmit = (e) => { e.preventDefault();
  const m = document.getElementById("m"); if (m.value) { ws.send(m.value); m.value = ""; } };
</script></body></html>
"""


class Demo:
    """The demo application: ``/echo`` echoes, ``/chat`` relays to everyone."""

    def __init__(self) -> None:
        self.members: set[Connection] = set()

    async def echo(self, ws: ServerConnection) -> None:
        async for message in ws:
            await ws.send(message)

    async def chat(self, ws: ServerConnection) -> None:
        name = f"guest-{ws.remote_address[1] if ws.remote_address else '?'}"
        self.members.add(ws)
        broadcast(self.members, f"{name} joined ({len(self.members)} online)")
        try:
            async for message in ws:
                if isinstance(message, str):
                    broadcast(self.members, f"{name}: {message}")
        finally:
            self.members.discard(ws)
            broadcast(self.members, f"{name} left")

    def http(self, request: Request) -> Response:
        if request.path == "/":
            response = reject(200, PAGE)
            response.headers["Content-Type"] = "text/html; charset=utf-8"
            return response
        if request.path == "/healthz":
            return reject(200, "ok\n")
        return reject(404, "not found\n")


async def run_server(host: str, port: int, ready: asyncio.Event | None = None) -> None:
    """Run the demo server until SIGINT/SIGTERM, then shut down gracefully."""
    demo = Demo()
    server: Server
    async with serve(
        {"/echo": demo.echo, "/chat": demo.chat},
        host,
        port,
        http_handler=demo.http,
    ) as server:
        print(f"tether demo on http://{host}:{server.port}/ (ws: /echo, /chat)", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        signals = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
                signals.append(sig)
        try:
            if ready is not None:
                ready.set()
            await stop.wait()
            print("shutting down", flush=True)
        finally:
            # Give the signals back, so that they work again once the demo is over.
            for sig in signals:
                loop.remove_signal_handler(sig)


async def run_client(uri: str, messages: Sequence[str]) -> int:
    """Send each message and print one answer per message."""
    async with connect(uri) as ws:
        for message in messages:
            await ws.send(message)
            try:
                print(await ws.recv())
            except ConnectionClosed as exc:
                print(f"connection closed: {exc}", file=sys.stderr)
                return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the ``tether`` command line."""
    parser = argparse.ArgumentParser(prog="tether", description="real-time WebSockets")
    parser.add_argument("--version", action="version", version="tether 0.1.0")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    serve_cmd = sub.add_parser("serve", help="run the demo server (echo and chat)")
    serve_cmd.add_argument("--host", default="127.0.0.1")
    serve_cmd.add_argument("--port", type=int, default=8765)
    send_cmd = sub.add_parser("send", help="send messages and print the answers")
    send_cmd.add_argument("uri")
    send_cmd.add_argument("messages", nargs="+")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO)
    try:
        if args.command == "serve":
            asyncio.run(run_server(args.host, args.port))
            return 0
        return asyncio.run(run_client(args.uri, args.messages))
    except KeyboardInterrupt:  # pragma: no cover - interactive
        return 130
