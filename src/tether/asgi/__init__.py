"""HTTP handoff both ways between tether and ASGI.

- :func:`websocket_app` runs tether handlers under any ASGI server (uvicorn, hypercorn)
  or inside a Starlette/FastAPI application, through :class:`ASGIWebSocket`.
- :func:`asgi_http_handler` and :func:`serve_asgi` let tether's own server hand plain
  HTTP requests to an ASGI application on the WebSocket port.
"""

from __future__ import annotations

from .adapter import (
    ASGIApp,
    ASGIHandler,
    ASGIProcessRequest,
    ASGIWebSocket,
    WebSocketApp,
    websocket_app,
)
from .handoff import ASGIHTTPHandler, asgi_http_handler, serve_asgi


__all__ = [
    "ASGIApp",
    "ASGIHTTPHandler",
    "ASGIHandler",
    "ASGIProcessRequest",
    "ASGIWebSocket",
    "WebSocketApp",
    "asgi_http_handler",
    "serve_asgi",
    "websocket_app",
]
