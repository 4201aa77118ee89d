"""Let tether's own server hand plain HTTP requests to an ASGI application.

:func:`asgi_http_handler` builds an ``http_handler`` for :func:`tether.asyncio.serve`:
each plain (non-upgrade) HTTP request on the WebSocket port runs an ASGI 3 application,
for example a Starlette or FastAPI app, and its response goes back to the client.
:func:`serve_asgi` starts a server that does this for every path without a WebSocket
handler.

tether's server reads the whole request before calling the handler and answers one
request per connection, so the body is delivered in one ``http.request`` event and the
response is collected whole (up to ``max_body`` bytes) before it is sent: streaming
responses and server-sent events need a real ASGI server.
"""

from __future__ import annotations

import asyncio
import http
import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

from ..asyncio.server import Handler, ServerConnection, serve
from ..protocol.handshake import reject
from ..protocol.headers import Headers
from ..protocol.http11 import Request, Response
from .adapter import ASGIApp, Message, Scope


__all__ = ["ASGIHTTPHandler", "asgi_http_handler", "serve_asgi"]

logger = logging.getLogger("tether.asgi")

# Hop-by-hop headers describe the connection, which tether manages: one response per
# connection, a body sent whole with Content-Length (RFC 7230 section 6.1).
_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "content-length", "upgrade"}
)


class _ResponseTooLarge(Exception):
    """The application's response body exceeded ``max_body``."""


class ASGIHTTPHandler:
    """An ``http_handler`` for :func:`tether.asyncio.serve` running an ASGI app.

    Use :func:`asgi_http_handler` to create one.

    Args:
        app: an ASGI 3 application.
        root_path: the ASGI ``root_path`` (a prefix under which the app is mounted).
        max_body: the largest response body collected, in bytes; beyond it the client
            gets 500.
    """

    def __init__(self, app: ASGIApp, *, root_path: str = "", max_body: int) -> None:
        self.app = app
        self.root_path = root_path
        self.max_body = max_body

    async def __call__(self, request: Request, connection: ServerConnection | None) -> Response:
        """Run the application for ``request`` and return its response.

        Args:
            request: the HTTP request.
            connection: the connection it arrived on, for the client and server
                addresses and the scheme; ``None`` leaves them out of the scope.
        """
        scope = self.scope(request, connection)
        exchange = _Exchange(request.body, self.max_body)
        try:
            await self.app(scope, exchange.receive, exchange.send)
        except _ResponseTooLarge:
            logger.error("ASGI response body larger than %d bytes", self.max_body)
            return reject(http.HTTPStatus.INTERNAL_SERVER_ERROR, "response too large\n")
        except Exception:
            if not exchange.complete:
                logger.exception("ASGI application failed")
                return reject(http.HTTPStatus.INTERNAL_SERVER_ERROR, "internal server error\n")
            # The response was complete: send it, like an ASGI server would have done.
            logger.exception("ASGI application failed after its response")
        finally:
            exchange.finished.set()
        if not exchange.complete:
            logger.error("ASGI application returned without a complete response")
            return reject(http.HTTPStatus.INTERNAL_SERVER_ERROR, "internal server error\n")
        try:
            return exchange.response(request.method)
        except ValueError:
            logger.exception("ASGI application sent an invalid response")
            return reject(http.HTTPStatus.INTERNAL_SERVER_ERROR, "internal server error\n")

    def scope(self, request: Request, connection: ServerConnection | None) -> Scope:
        """Build the ASGI ``http`` scope for ``request``."""
        target = request.target
        if target.startswith(("http://", "https://")):
            # RFC 7230 5.3.2: absolute-form, as sent to proxies.
            parts = urlsplit(target)
            raw_path, query = parts.path or "/", parts.query
        else:
            raw_path, _, query = target.partition("?")
        scheme = "http"
        client: tuple[str, int] | None = None
        server: tuple[str, int | None] | None = None
        if connection is not None and connection.transport is not None:
            transport = connection.transport
            if transport.get_extra_info("sslcontext") is not None:
                scheme = "https"
            client = _address(connection.remote_address)
            server = _address(transport.get_extra_info("sockname"))
        return {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.4"},
            "http_version": "1.1",
            "method": request.method,
            "scheme": scheme,
            "path": self.root_path + unquote(raw_path),
            "raw_path": (self.root_path + raw_path).encode("latin-1"),
            "query_string": query.encode("latin-1"),
            "root_path": self.root_path,
            "headers": [
                (name.lower().encode("latin-1"), value.encode("latin-1"))
                for name, value in request.headers.raw_items()
            ],
            "client": client,
            "server": server,
            "state": {},
        }


def _address(address: Any) -> Any:
    # ASGI: (host, port) for TCP, (path, None) for a Unix socket.
    if isinstance(address, (tuple, list)) and len(address) >= 2:
        return (str(address[0]), int(address[1]))
    if isinstance(address, str) and address:
        return (address, None)
    return None


class _Exchange:
    """The ASGI ``receive`` and ``send`` of one request, collecting the response."""

    def __init__(self, body: bytes, max_body: int) -> None:
        self.body = body
        self.max_body = max_body
        self.body_sent = False
        self.start: Message | None = None
        self.chunks: list[bytes] = []
        self.size = 0
        self.complete = False
        self.finished = asyncio.Event()

    async def receive(self) -> Message:
        if not self.body_sent:
            self.body_sent = True
            return {"type": "http.request", "body": self.body, "more_body": False}
        # The body is all there is; the client "disconnects" once the response is done.
        await self.finished.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            if self.start is not None:
                raise RuntimeError("http.response.start sent twice")
            self.start = message
        elif kind == "http.response.body":
            if self.start is None:
                raise RuntimeError("http.response.body sent before http.response.start")
            if self.complete:
                raise OSError("the response is complete")
            body = bytes(message.get("body", b""))
            self.size += len(body)
            if self.size > self.max_body:
                raise _ResponseTooLarge
            self.chunks.append(body)
            if not message.get("more_body", False):
                self.complete = True
                self.finished.set()
        else:
            raise RuntimeError(f"unexpected ASGI message {kind!r}")

    def response(self, method: str) -> Response:
        assert self.start is not None
        status = int(self.start["status"])
        headers = Headers()
        for name, value in self.start.get("headers", ()):
            name = bytes(name).decode("latin-1")
            if name.lower() not in _HOP_BY_HOP:
                headers.add(name, bytes(value).decode("latin-1"))
            elif name.lower() == "content-length" and method == "HEAD":
                headers.add("Content-Length", bytes(value).decode("latin-1"))
        body = b"".join(self.chunks)
        if method == "HEAD":
            body = b""
        elif status >= 200 and status not in (204, 304):
            headers["Content-Length"] = str(len(body))
        headers["Connection"] = "close"
        try:
            reason = http.HTTPStatus(status).phrase
        except ValueError:
            reason = ""
        return Response(status, reason, headers, body)


def asgi_http_handler(
    app: ASGIApp,
    *,
    root_path: str = "",
    max_body: int = 16 * 1024 * 1024,
) -> ASGIHTTPHandler:
    """Build an ``http_handler`` that answers plain HTTP with an ASGI application.

    ::

        async with serve(echo, "127.0.0.1", 8000, http_handler=asgi_http_handler(app)):
            ...

    The ASGI ``http`` scope carries the method, path (percent-decoded, prefixed with
    ``root_path``), ``raw_path``, query string, headers (lowercase names), HTTP version
    1.1, scheme (``https`` over TLS), and the client and server addresses. The request
    body arrives in one ``http.request`` event; ``http.disconnect`` follows once the
    response is complete. Lifespan events aren't sent.

    The response is collected, then sent with ``Content-Length`` and
    ``Connection: close``. An exception in the application before its response is
    complete, a missing response, or an invalid one gives 500.

    Args:
        app: an ASGI 3 application.
        root_path: the ASGI ``root_path``.
        max_body: the largest response body collected, in bytes (16 MiB by default).

    Returns:
        A handler for ``serve(..., http_handler=...)``; it takes the request and the
        connection.
    """
    return ASGIHTTPHandler(app, root_path=root_path, max_body=max_body)


def serve_asgi(
    app: ASGIApp,
    host: str | None = None,
    port: int | None = None,
    *,
    websocket_handlers: Mapping[str, Handler] | None = None,
    root_path: str = "",
    max_body: int = 16 * 1024 * 1024,
    **kwargs: Any,
) -> serve:
    """Serve tether WebSocket handlers and an ASGI application on one port.

    ::

        async with serve_asgi(starlette_app, "127.0.0.1", 8000,
                              websocket_handlers={"/ws": echo}) as server:
            await server.serve_forever()

    WebSocket upgrades at the paths of ``websocket_handlers`` run on tether's engine;
    other upgrades get 404; plain HTTP requests go to ``app`` through
    :func:`asgi_http_handler`.

    Args:
        app: an ASGI 3 application for plain HTTP.
        host: address to listen on.
        port: TCP port; 0 picks a free one.
        websocket_handlers: mapping from request path to tether handler.
        root_path: the ASGI ``root_path``.
        max_body: the largest response body collected from ``app``, in bytes.
        **kwargs: any other :func:`tether.asyncio.serve` option, except ``http_handler``.

    Returns:
        The :class:`tether.asyncio.serve` object: await it or use ``async with``.
    """
    handlers = dict(websocket_handlers or {})
    return serve(
        handlers,
        host,
        port,
        http_handler=asgi_http_handler(app, root_path=root_path, max_body=max_body),
        **kwargs,
    )
