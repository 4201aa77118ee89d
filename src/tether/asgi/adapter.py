"""Run tether WebSocket handlers under any ASGI server (uvicorn, hypercorn, ...).

:class:`ASGIWebSocket` wraps one ASGI ``websocket`` scope and its ``receive`` and
``send`` callables in the API of a tether connection: :meth:`~ASGIWebSocket.recv`,
:meth:`~ASGIWebSocket.send`, ``async for``, :meth:`~ASGIWebSocket.close`, the close code
and reason, and the handshake details. It implements :class:`tether.types.MessageStream`,
so the RPC router and the relay hub run over it unchanged.

:func:`websocket_app` turns a handler ``async def handler(ws)`` (or a mapping from path to
handler) into an ASGI application; plain HTTP goes to an optional ``fallback`` ASGI app,
for example a Starlette or FastAPI application.

Under ASGI the server owns the WebSocket protocol: keepalive pings, size limits and
compression are configured on the server, not here.
"""

from __future__ import annotations

import asyncio
import collections
import http
import logging
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Mapping,
    MutableMapping,
    Sequence,
)
from typing import Any, TypeAlias
from urllib.parse import quote

from ..asyncio.connection import ClosingState
from ..exceptions import (
    ConcurrencyError,
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    InvalidState,
    RejectHandshake,
)
from ..protocol.close import OK_CLOSE_CODES, Close, CloseCode, is_valid_close_code
from ..protocol.connection import State
from ..protocol.handshake import reject
from ..protocol.headers import Headers, HeadersLike
from ..protocol.http11 import Request, Response
from ..types import Data, DataLike, HandshakeInfo, Subprotocol


__all__ = [
    "ASGIApp",
    "ASGIHandler",
    "ASGIProcessRequest",
    "ASGIWebSocket",
    "Message",
    "Receive",
    "Scope",
    "Send",
    "WebSocketApp",
    "websocket_app",
]

logger = logging.getLogger("tether.asgi")

Scope: TypeAlias = MutableMapping[str, Any]
"""An ASGI connection scope."""

Message: TypeAlias = MutableMapping[str, Any]
"""An ASGI event, received or sent."""

Receive: TypeAlias = Callable[[], Awaitable[Message]]
"""The ASGI ``receive`` callable."""

Send: TypeAlias = Callable[[Message], Awaitable[None]]
"""The ASGI ``send`` callable."""

ASGIApp: TypeAlias = Callable[[Scope, Receive, Send], Awaitable[None]]
"""An ASGI 3 application."""

ASGIHandler: TypeAlias = Callable[["ASGIWebSocket"], Awaitable[None]]
"""A coroutine function run once per WebSocket connection."""

ASGIProcessRequest: TypeAlias = Callable[
    ["ASGIWebSocket", Request], "Response | Awaitable[Response | None] | None"
]
"""A hook run before the upgrade; returning a :class:`Response` refuses it."""

# The ASGI extension that lets an application answer a WebSocket request with any HTTP
# response instead of a bare 403.
_HTTP_RESPONSE_EXTENSION = "websocket.http.response"


class ASGIWebSocket(ClosingState):
    """A WebSocket connection served by an ASGI server, with tether's connection API.

    Create it from the ``scope``, ``receive`` and ``send`` of a ``websocket`` scope, call
    :meth:`accept` (or :meth:`reject`), then use it like a
    :class:`tether.asyncio.connection.Connection`::

        async def app(scope, receive, send):
            ws = ASGIWebSocket(scope, receive, send)
            await ws.accept()
            async for message in ws:
                await ws.send(message)
            await ws.close()

    :func:`websocket_app` does the accepting and closing for you.

    Once accepted, a reader task moves incoming messages into a bounded buffer, so a
    cancelled :meth:`recv` never loses a message and a disconnect is noticed even while
    the application only sends. Above ``max_queue`` buffered bytes it stops pulling from
    the server, which then applies its own flow control.

    The close codes follow tether's rules: :exc:`~tether.exceptions.ConnectionClosedOK`
    when both close frames carry 1000 or 1001, :exc:`~tether.exceptions.ConnectionClosedError`
    otherwise. ASGI only reports the code of a ``websocket.disconnect``: when the peer
    closes, that is its close frame and the server's echo of its code is taken as sent;
    when the application closes first, the code the server reports is taken as received
    (uvicorn reports the application's own code, hypercorn reports 1000).

    Args:
        scope: an ASGI ``websocket`` scope.
        receive: the ASGI ``receive`` callable.
        send: the ASGI ``send`` callable.
        max_queue: high-water mark of the receive buffer in bytes, or a ``(high, low)``
            pair (``high // 4`` by default).
        close_timeout: seconds :meth:`close` waits for the server to report the end of
            the connection.

    Raises:
        ValueError: the scope isn't a ``websocket`` scope.
    """

    def __init__(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        *,
        max_queue: int | tuple[int, int] = 1024 * 1024,
        close_timeout: float = 10.0,
    ) -> None:
        if scope.get("type") != "websocket":
            raise ValueError(f"expected a websocket scope, got {scope.get('type')!r}")
        self.scope = scope
        self._receive = receive
        self._send = send
        if isinstance(max_queue, int):
            max_queue = (max_queue, max_queue // 4)
        self.max_queue_high, self.max_queue_low = max_queue
        self.close_timeout = close_timeout
        self.loop = asyncio.get_running_loop()

        self.subprotocol: Subprotocol | None = None
        """The accepted subprotocol, or ``None``."""
        self.request_headers: Headers = _scope_headers(scope)
        """Headers of the opening handshake request."""
        self.path: str = _scope_path(scope)
        """Path of the opening handshake request, as sent (percent-encoded)."""
        self.query: str = bytes(scope.get("query_string", b"")).decode("latin-1")
        """Query string of the opening handshake request."""
        client = scope.get("client")
        self.remote_address: Any = tuple(client) if client is not None else None
        """The client's address, as the ASGI server reports it."""

        self._state = State.CONNECTING
        self._connect_received = False

        # Receive side.
        self._messages: collections.deque[Data] = collections.deque()
        self._queued_bytes = 0
        self._recv_waiter: asyncio.Future[None] | None = None
        self._resume_reader: asyncio.Future[None] | None = None
        self._reader: asyncio.Task[None] | None = None

        # Closing.
        self._close_rcvd: Close | None = None
        self._close_sent: Close | None = None
        self._close_rcvd_then_sent: bool | None = None
        self._close_exc: ConnectionClosed | None = None
        self._closed: asyncio.Future[None] = self.loop.create_future()

    # Properties

    @property
    def state(self) -> State:
        """The connection's state: CONNECTING until accepted, then OPEN, CLOSING, CLOSED."""
        return self._state

    @property
    def peer(self) -> HandshakeInfo:
        """The peer's handshake and address (implements :class:`tether.types.PeerInfo`)."""
        return HandshakeInfo(self.path, self.query, self.request_headers, self.remote_address)

    @property
    def request(self) -> Request:
        """The opening handshake as a tether :class:`~tether.protocol.http11.Request`."""
        target = f"{self.path}?{self.query}" if self.query else self.path
        return Request("GET", target, self.request_headers.copy())

    @property
    def offered_subprotocols(self) -> list[Subprotocol]:
        """The subprotocols the client offered, in its order."""
        return [Subprotocol(s) for s in self.scope.get("subprotocols", ())]

    # Opening

    async def accept(
        self,
        subprotocol: str | None = None,
        headers: HeadersLike | None = None,
    ) -> None:
        """Accept the WebSocket connection.

        Args:
            subprotocol: the subprotocol to accept; it must be one the client offered.
            headers: extra response headers (ASGI servers may ignore some).

        Raises:
            InvalidState: the connection was already accepted, rejected or closed.
            ValueError: the client didn't offer ``subprotocol``.
            ConnectionClosed: the client went away before the connection was accepted.
        """
        if self._state is not State.CONNECTING:
            raise InvalidState(f"cannot accept in state {self._state.name}")
        if subprotocol is not None and subprotocol not in self.offered_subprotocols:
            raise ValueError(f"the client didn't offer subprotocol {subprotocol}")
        await self._wait_connect()
        message: Message = {"type": "websocket.accept", "subprotocol": subprotocol}
        if headers is not None:
            message["headers"] = _asgi_headers(Headers(headers))
        try:
            await self._send(message)
        except OSError as exc:
            self._disconnected(CloseCode.ABNORMAL_CLOSURE, "", exc)
            raise self._closed_error() from exc
        self._state = State.OPEN
        self.subprotocol = Subprotocol(subprotocol) if subprotocol is not None else None
        self._reader = self.loop.create_task(self._read())

    async def reject(
        self,
        status: int = http.HTTPStatus.FORBIDDEN,
        body: str | bytes = b"",
        headers: HeadersLike | None = None,
    ) -> None:
        """Refuse the WebSocket connection with an HTTP response.

        When the server supports the ASGI ``websocket.http.response`` extension (uvicorn
        and hypercorn do), the client gets ``status``, ``headers`` and ``body``;
        otherwise the server answers 403 Forbidden.

        Raises:
            InvalidState: the connection was already accepted, rejected or closed.
            ValueError: ``status`` isn't a valid HTTP status or can't have a body.
        """
        if self._state is not State.CONNECTING:
            raise InvalidState(f"cannot reject in state {self._state.name}")
        await self._send_response(reject(status, body, headers))

    async def _send_response(self, response: Response) -> None:
        try:
            await self._wait_connect()
        except ConnectionClosed:
            return  # The client is gone: nobody to answer.
        self._state = State.CLOSED
        extensions = self.scope.get("extensions") or {}
        try:
            if _HTTP_RESPONSE_EXTENSION in extensions:
                await self._send(
                    {
                        "type": "websocket.http.response.start",
                        "status": response.status_code,
                        "headers": _asgi_headers(response.headers),
                    }
                )
                await self._send({"type": "websocket.http.response.body", "body": response.body})
            else:
                await self._send({"type": "websocket.close", "code": CloseCode.POLICY_VIOLATION})
        except OSError:
            pass
        self._finish(ConnectionClosedError(None, None))

    async def _wait_connect(self) -> None:
        # ASGI: the first event of a websocket scope is websocket.connect.
        if self._connect_received:
            return
        message = await self._receive()
        self._connect_received = True
        if message["type"] == "websocket.disconnect":
            self._disconnected(message.get("code", CloseCode.ABNORMAL_CLOSURE), "")
            raise self._closed_error()
        if message["type"] != "websocket.connect":
            raise InvalidState(f"expected websocket.connect, got {message['type']}")

    # Receiving

    async def recv(self) -> Data:
        """Receive the next message.

        Returns:
            :class:`str` for a text message, :class:`bytes` for a binary message.

        Raises:
            ConnectionClosed: the connection is closed and no message is left.
            ConcurrencyError: another coroutine is already waiting in :meth:`recv`.
            InvalidState: the connection isn't accepted yet.
        """
        if self._state is State.CONNECTING:
            raise InvalidState("cannot receive before accept()")
        messages = self._messages
        while not messages:
            if self._close_exc is not None:
                raise self._close_exc
            if self._recv_waiter is not None:
                raise ConcurrencyError("another coroutine is already waiting for a message")
            waiter = self._recv_waiter = self.loop.create_future()
            try:
                await waiter
            finally:
                self._recv_waiter = None
        message = messages.popleft()
        self._queued_bytes -= len(message)
        resume = self._resume_reader
        if resume is not None and self._queued_bytes <= self.max_queue_low:
            self._resume_reader = None
            if not resume.done():
                resume.set_result(None)
        return message

    def __aiter__(self) -> AsyncIterator[Data]:
        return self

    async def __anext__(self) -> Data:
        try:
            return await self.recv()
        except ConnectionClosedOK:
            raise StopAsyncIteration from None

    # Sending

    async def send(self, message: DataLike | Iterable[DataLike] | AsyncIterable[DataLike]) -> None:
        """Send a message.

        A :class:`str` is sent as a text message, a bytes-like object as binary. An
        iterable or async iterable of them is joined and sent as one message: ASGI has
        no fragments.

        Raises:
            ConnectionClosed: the connection is closed.
            InvalidState: the connection isn't accepted yet.
            TypeError: the message has an unsupported type.
        """
        if self._state is not State.OPEN:
            if self._state is State.CONNECTING:
                raise InvalidState("cannot send before accept()")
            raise self._closed_error()
        if isinstance(message, str):
            event: Message = {"type": "websocket.send", "text": message}
        elif isinstance(message, (bytes, bytearray, memoryview)):
            event = {"type": "websocket.send", "bytes": bytes(message)}
        elif isinstance(message, AsyncIterable) or isinstance(message, Iterable):
            event = {"type": "websocket.send", **await _join_fragments(message)}
        else:
            raise TypeError(f"message must be str or bytes-like, not {type(message).__name__}")
        try:
            await self._send(event)
        except OSError as exc:
            # ASGI: sending on a closed connection raises a subclass of OSError.
            self._disconnected(CloseCode.ABNORMAL_CLOSURE, "", exc)
            raise self._closed_error() from exc

    # Closing

    async def close(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        """Close the connection and wait until the server reports it closed.

        Before :meth:`accept`, this refuses the connection (HTTP 403). Calling it on a
        closed connection does nothing. After :attr:`close_timeout` seconds without
        news from the server, the connection is considered closed abnormally.

        Raises:
            ValueError: the close code can't be sent or the reason is too long.
        """
        if self._state is State.CONNECTING:
            await self._send_response(reject(http.HTTPStatus.FORBIDDEN))
            return
        if self._state is State.OPEN:
            if code != CloseCode.NORMAL_CLOSURE and not is_valid_close_code(code):
                raise ValueError(f"invalid close code {code}")
            if len(reason.encode()) > 123:
                raise ValueError("close reason too long")
            self._state = State.CLOSING
            self._close_sent = Close(code, reason)
            try:
                await self._send({"type": "websocket.close", "code": code, "reason": reason})
            except OSError as exc:
                self._disconnected(CloseCode.ABNORMAL_CLOSURE, "", exc)
        await self._wait_for_close()

    async def wait_closed(self) -> None:
        """Wait until the server reports the end of the connection."""
        await asyncio.shield(self._closed)

    async def _wait_for_close(self) -> None:
        if self._closed.done():
            return
        try:
            async with asyncio.timeout(self.close_timeout):
                await asyncio.shield(self._closed)
        except TimeoutError:
            self._disconnected(CloseCode.ABNORMAL_CLOSURE, "")

    def _closed_error(self) -> ConnectionClosed:
        if self._close_exc is not None:
            return self._close_exc
        # Closing, but the server hasn't reported the end yet.
        return ConnectionClosedError(self._close_rcvd, self._close_sent, None)

    # Private

    async def _read(self) -> None:
        """Move events from the server into the buffer until the disconnect."""
        messages = self._messages
        try:
            while True:
                if self._queued_bytes > self.max_queue_high:
                    # Flow control: stop pulling; the server buffers or pauses reading.
                    resume = self._resume_reader = self.loop.create_future()
                    await resume
                event = await self._receive()
                kind = event["type"]
                if kind == "websocket.receive":
                    text = event.get("text")
                    message: Data = text if text is not None else bytes(event.get("bytes") or b"")
                    messages.append(message)
                    self._queued_bytes += len(message)
                    waiter = self._recv_waiter
                    if waiter is not None and not waiter.done():
                        waiter.set_result(None)
                elif kind == "websocket.disconnect":
                    code = event.get("code")
                    self._disconnected(
                        CloseCode.NO_STATUS_RCVD if code is None else int(code),
                        event.get("reason") or "",
                    )
                    return
        except Exception as exc:
            self._disconnected(CloseCode.ABNORMAL_CLOSURE, "", exc)

    def _disconnected(self, code: int, reason: str, cause: BaseException | None = None) -> None:
        """Record the end of the connection as the server reported it."""
        if self._closed.done():
            return
        self._state = State.CLOSED
        if code != CloseCode.ABNORMAL_CLOSURE:
            if self._close_sent is None:
                # The peer closed; the server answered, echoing the code (RFC 6455 5.5.1).
                self._close_rcvd = Close(code, reason)
                echo = CloseCode.NO_STATUS_RCVD if code == CloseCode.NO_STATUS_RCVD else code
                self._close_sent = Close(echo, "")
                self._close_rcvd_then_sent = True
            else:
                self._close_rcvd = Close(code, reason)
                self._close_rcvd_then_sent = False
        rcvd, sent = self._close_rcvd, self._close_sent
        ok = (
            rcvd is not None
            and sent is not None
            and rcvd.code in OK_CLOSE_CODES
            and sent.code in OK_CLOSE_CODES
        )
        cls = ConnectionClosedOK if ok else ConnectionClosedError
        exc = cls(rcvd, sent, self._close_rcvd_then_sent)
        if cause is not None:
            exc.__cause__ = cause
        self._finish(exc)

    def _finish(self, exc: ConnectionClosed) -> None:
        self._state = State.CLOSED
        self._close_exc = exc
        if not self._closed.done():
            self._closed.set_result(None)
        waiter = self._recv_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        reader = self._reader
        if reader is not None and reader is not asyncio.current_task() and not reader.done():
            reader.cancel()

    async def _cleanup(self) -> None:
        """Stop the reader task; the application is about to return to the server."""
        reader = self._reader
        if reader is not None and not reader.done():
            reader.cancel()
            try:
                await reader
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise


async def _join_fragments(chunks: Iterable[DataLike] | AsyncIterable[DataLike]) -> Message:
    parts: list[DataLike] = []
    if isinstance(chunks, AsyncIterable):
        async for chunk in chunks:
            parts.append(chunk)
    else:
        parts.extend(chunks)
    if not parts:
        raise TypeError("cannot send an empty fragmented message")
    if all(isinstance(part, str) for part in parts):
        return {"text": "".join(parts)}  # type: ignore[arg-type]
    if any(isinstance(part, str) for part in parts):
        raise TypeError("all fragments must be of the same type")
    for part in parts:
        if not isinstance(part, (bytes, bytearray, memoryview)):
            raise TypeError(f"fragment must be str or bytes-like, not {type(part).__name__}")
    return {"bytes": b"".join(parts)}  # type: ignore[arg-type]


def _scope_headers(scope: Scope) -> Headers:
    headers = Headers()
    for name, value in scope.get("headers", ()):
        try:
            headers.add(bytes(name).decode("latin-1"), bytes(value).decode("latin-1"))
        except ValueError:  # pragma: no cover - the ASGI server validated them
            continue
    return headers


def _scope_path(scope: Scope) -> str:
    raw_path = scope.get("raw_path")
    if raw_path:
        return bytes(raw_path).decode("latin-1").partition("?")[0]
    return quote(str(scope.get("path", "/")), safe="/:@!$&'()*+,;=-._~")


def _route_path(scope: Scope) -> str:
    """The path below ``root_path`` (where a Starlette ``Mount`` put the app)."""
    path = str(scope.get("path", "/"))
    root_path = str(scope.get("root_path", ""))
    if root_path and path.startswith(root_path) and path[len(root_path) :][:1] in ("", "/"):
        return path[len(root_path) :] or "/"
    return path


def _asgi_headers(headers: Headers) -> list[tuple[bytes, bytes]]:
    return [
        (name.lower().encode("latin-1"), value.encode("latin-1"))
        for name, value in headers.raw_items()
    ]


async def _send_plain_response(send: Send, status: int, body: bytes) -> None:
    response = reject(status, body)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": _asgi_headers(response.headers),
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _serve_lifespan(receive: Receive, send: Send) -> None:
    while True:
        event = await receive()
        if event["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif event["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


class WebSocketApp:
    """An ASGI application running tether handlers; see :func:`websocket_app`.

    It's a class instance rather than a function, so Starlette's ``WebSocketRoute``
    treats it as a raw ASGI endpoint.
    """

    def __init__(
        self,
        handler: ASGIHandler | Mapping[str, ASGIHandler],
        *,
        subprotocols: Sequence[str] | None = None,
        process_request: ASGIProcessRequest | None = None,
        fallback: ASGIApp | None = None,
        max_queue: int | tuple[int, int] = 1024 * 1024,
        close_timeout: float = 10.0,
    ) -> None:
        self.handler = handler
        self.subprotocols = [Subprotocol(s) for s in subprotocols] if subprotocols else []
        self.process_request = process_request
        self.fallback = fallback
        self.max_queue = max_queue
        self.close_timeout = close_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "websocket":
            handler = self._route(scope)
            if handler is not None:
                await self.serve_websocket(handler, scope, receive, send)
                return
            if self.fallback is None:
                ws = ASGIWebSocket(scope, receive, send)
                await ws.reject(http.HTTPStatus.NOT_FOUND, "not found\n")
                return
        if self.fallback is not None:
            await self.fallback(scope, receive, send)
        elif kind == "http":
            await _send_plain_response(send, http.HTTPStatus.NOT_FOUND, b"not found\n")
        elif kind == "lifespan":
            await _serve_lifespan(receive, send)
        else:
            raise ValueError(f"unsupported ASGI scope type: {kind}")

    def _route(self, scope: Scope) -> ASGIHandler | None:
        if isinstance(self.handler, Mapping):
            return self.handler.get(_route_path(scope))
        return self.handler

    async def serve_websocket(
        self, handler: ASGIHandler, scope: Scope, receive: Receive, send: Send
    ) -> None:
        """Run the hooks, accept, run ``handler``, close: one WebSocket connection."""
        ws = ASGIWebSocket(
            scope, receive, send, max_queue=self.max_queue, close_timeout=self.close_timeout
        )
        try:
            if self.process_request is not None:
                response = await self._process_request(ws)
                if response is not None:
                    await ws._send_response(response)
                    return
            subprotocol = next((s for s in self.subprotocols if s in ws.offered_subprotocols), None)
            try:
                await ws.accept(subprotocol)
            except ConnectionClosed:
                return
            await _run_handler(handler, ws)
        finally:
            await ws._cleanup()

    async def _process_request(self, ws: ASGIWebSocket) -> Response | None:
        assert self.process_request is not None
        try:
            result = self.process_request(ws, ws.request)
            if isinstance(result, Awaitable):
                result = await result
        except RejectHandshake as exc:
            result = reject(exc.status, exc.body, exc.headers)
        except Exception:
            logger.exception("process_request failed")
            result = reject(http.HTTPStatus.INTERNAL_SERVER_ERROR, "internal server error\n")
        return result


async def _run_handler(handler: ASGIHandler, ws: ASGIWebSocket) -> None:
    code, reason = CloseCode.NORMAL_CLOSURE, ""
    try:
        await handler(ws)
    except ConnectionClosed:
        pass
    except asyncio.CancelledError:
        await asyncio.shield(ws.close(CloseCode.GOING_AWAY))
        raise
    except Exception:
        logger.exception("connection handler failed")
        code = CloseCode.INTERNAL_ERROR
    await ws.close(code, reason)


def websocket_app(
    handler: ASGIHandler | Mapping[str, ASGIHandler],
    *,
    subprotocols: Sequence[str] | None = None,
    process_request: ASGIProcessRequest | None = None,
    fallback: ASGIApp | None = None,
    max_queue: int | tuple[int, int] = 1024 * 1024,
    close_timeout: float = 10.0,
) -> WebSocketApp:
    """Build an ASGI application that runs a tether handler for each WebSocket.

    ::

        async def echo(ws):
            async for message in ws:
                await ws.send(message)

        app = websocket_app(echo)                      # uvicorn module:app
        app = websocket_app({"/ws": echo}, fallback=starlette_app)

    For each WebSocket connection: ``process_request`` may refuse it, the connection is
    accepted with the first of ``subprotocols`` the client offered, the handler runs
    with an :class:`ASGIWebSocket`, and the connection closes with 1000 when the handler
    returns or 1011 when it raises. Everything else (plain HTTP, lifespan, WebSockets
    at paths without a handler) goes to ``fallback``; without one, HTTP and unknown
    WebSocket paths get 404 and lifespan events are acknowledged.

    Args:
        handler: coroutine function run for each connection, or a mapping from path
            (below the scope's ``root_path``) to handler.
        subprotocols: supported subprotocols, in order of preference.
        process_request: hook run before accepting, with the :class:`ASGIWebSocket`
            and the handshake :class:`~tether.protocol.http11.Request`; return a
            :class:`~tether.protocol.http11.Response` (or raise
            :class:`~tether.exceptions.RejectHandshake`) to refuse. Servers with the
            ``websocket.http.response`` extension send that response; others send 403.
        fallback: ASGI application for everything that isn't a handled WebSocket.
        max_queue: receive buffer high-water mark, see :class:`ASGIWebSocket`.
        close_timeout: see :class:`ASGIWebSocket`.

    Returns:
        The ASGI application (also usable as a Starlette ``WebSocketRoute`` endpoint or
        ``Mount`` app).
    """
    return WebSocketApp(
        handler,
        subprotocols=subprotocols,
        process_request=process_request,
        fallback=fallback,
        max_queue=max_queue,
        close_timeout=close_timeout,
    )
