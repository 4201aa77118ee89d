"""Real ASGI servers (uvicorn, hypercorn) run in the test's event loop, and a raw HTTP client."""

import asyncio
import contextlib
import logging
import socket

import hypercorn.asyncio
import hypercorn.config
import uvicorn

from ..utils import until


# uvicorn's WebSocket implementations: "websockets-sansio" is what "auto" picks when
# websockets is installed; "wsproto" is the other one. The legacy "websockets" one is
# deprecated by uvicorn itself and not tested.
UVICORN_WS = ["websockets-sansio", "wsproto"]

SERVERS = [*(f"uvicorn-{ws}" for ws in UVICORN_WS), "hypercorn"]


@contextlib.asynccontextmanager
async def run_uvicorn(app, ws="websockets-sansio"):
    """Serve ``app`` with uvicorn on 127.0.0.1; yield the port."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, ws=ws, lifespan="off", log_level="warning"
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


@contextlib.asynccontextmanager
async def run_hypercorn(app):
    """Serve ``app`` with hypercorn on 127.0.0.1; yield the port.

    The listening socket is bound here and handed over by file descriptor, so the port
    is known at once and connections wait in the backlog until hypercorn accepts them.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    port = sock.getsockname()[1]
    config = hypercorn.config.Config()
    config.bind = [f"fd://{sock.detach()}"]
    config.loglevel = "WARNING"
    config.accesslog = None
    config.graceful_timeout = 2.0
    shutdown = asyncio.Event()
    task = asyncio.create_task(
        hypercorn.asyncio.serve(app, config, shutdown_trigger=shutdown.wait, mode="asgi")
    )
    try:
        yield port
    finally:
        shutdown.set()
        await task


@contextlib.asynccontextmanager
async def run_server(name, app):
    """Serve ``app`` with the server named in :data:`SERVERS`; yield the port."""
    if name == "hypercorn":
        manager = run_hypercorn(app)
    else:
        manager = run_uvicorn(app, ws=name.removeprefix("uvicorn-"))
    async with manager as port:
        yield port


async def http_request(port, method, path, *, body=b"", headers=(), ssl=None):
    """Send one HTTP/1.1 request with ``Connection: close``; return status, headers, body."""
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=ssl, server_hostname="127.0.0.1" if ssl else None
    )
    try:
        lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
        if body or method in ("POST", "PUT"):
            lines.append(f"Content-Length: {len(body)}")
        lines.extend(headers)
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        raw = await reader.read()
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    head, _, payload = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    response_headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        response_headers[name.strip().lower()] = value.strip()
    return int(status_line.split(" ")[1]), response_headers, payload


@contextlib.contextmanager
def quiet(logger_name):
    """Silence an expected error log (a handler failing on purpose)."""
    logger = logging.getLogger(logger_name)
    disabled = logger.disabled
    logger.disabled = True
    try:
        yield
    finally:
        logger.disabled = disabled
