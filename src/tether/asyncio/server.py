"""The asyncio WebSocket server: :func:`serve`, :class:`Server`, :class:`ServerConnection`.

One task per connection runs the opening handshake and then the application's handler.
The handshake can be refused before the upgrade by a ``process_request`` hook (any HTTP
status), plain HTTP requests on the same port go to an ``http_handler``, and sockets
accepted elsewhere can be handed over with :meth:`Server.handle_socket`.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import socket
import ssl as ssl_module
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, TypeAlias

from ..exceptions import ConnectionClosed, InvalidMessage, RejectHandshake, SecurityError
from ..protocol.close import CloseCode
from ..protocol.connection import SERVER, Protocol, State
from ..protocol.extensions.base import Extension, ServerExtensionFactory
from ..protocol.extensions.permessage_deflate import ServerPerMessageDeflateFactory
from ..protocol.frames import Opcode, serialize_unmasked
from ..protocol.handshake import quick_server_handshake, reject, server_handshake
from ..protocol.headers import Headers
from ..protocol.http11 import Request, RequestParser, Response
from ..protocol.limits import Limits
from ..types import Origin, Subprotocol
from .connection import Connection, _select_extensions
from .events import EventListener
from .transport import Listener, supports_loop


__all__ = [
    "broadcast",
    "Handler",
    "HTTPHandler",
    "ProcessRequest",
    "Server",
    "ServerConnection",
    "peek_request",
    "serve",
]

logger = logging.getLogger("tether.server")

Handler: TypeAlias = Callable[["ServerConnection"], Awaitable[None]]
"""A coroutine function run once per WebSocket connection."""

ProcessRequest: TypeAlias = Callable[
    ["ServerConnection", Request], "Response | Awaitable[Response | None] | None"
]
"""A hook run before the upgrade; returning a :class:`Response` refuses it."""

HTTPHandler: TypeAlias = (
    Callable[[Request], "Response | Awaitable[Response]"]
    | Callable[[Request, "ServerConnection"], "Response | Awaitable[Response]"]
)
"""Answers plain HTTP requests that arrive on the WebSocket port.

A handler with two positional parameters also gets the :class:`ServerConnection`
(for the client's address, the TLS state, ...).
"""


class ServerConnection(Connection):
    """A server-side connection: runs the handshake, then the handler.

    Attributes:
        response: the HTTP response sent when the handshake was refused or the request
            was plain HTTP; ``None`` after a successful upgrade (the 101 isn't kept).
        server: the :class:`Server` this connection belongs to.
    """

    __slots__ = (
        "_initial_data",
        "_parser",
        "_raw_request",
        "_reading_paused_by_handshake",
        "_request",
        "_task",
        "response",
        "server",
    )

    def __init__(self, server: Server) -> None:
        options = server.options
        super().__init__(
            Protocol(SERVER, state=State.CONNECTING, limits=options.limits),
            ping_interval=options.ping_interval,
            ping_timeout=options.ping_timeout,
            close_timeout=options.close_timeout,
            max_queue=options.max_queue,
            write_limit=options.write_limit,
            listeners=options.listeners,
        )
        self.server = server
        self._request: Request | None = None
        # After the upgrade the request is kept as its raw head (a few hundred bytes) and
        # parsed again only if the application asks for it: idle connections stay small.
        self._raw_request: bytes | None = None
        self.response: Response | None = None
        # The parser is made when the first read isn't a whole plain upgrade request.
        self._parser: RequestParser | None = None
        self._opening = True
        self._initial_data = b""
        self._task: asyncio.Task[None] | None = None
        self._reading_paused_by_handshake = False

    @property
    def request(self) -> Request | None:
        """The opening handshake request, once received."""
        request = self._request
        if request is None and self._raw_request is not None:
            request = RequestParser(self.protocol.limits).feed(self._raw_request)
            self._request = request
        return request

    @request.setter
    def request(self, request: Request | None) -> None:
        self._request = request
        self._raw_request = None

    @property
    def request_headers(self) -> Headers | None:
        """Headers of the opening handshake request."""
        request = self.request
        return None if request is None else request.headers

    @request_headers.setter
    def request_headers(self, headers: Headers | None) -> None:
        # Derived from the request; the base class's initial None is ignored.
        pass

    # Handshake phase: bytes go to the HTTP parser until the request is complete. With
    # synchronous hooks the whole handshake runs inside the read callback: no task, no
    # future and no pause of reading until the handler starts.

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.server._register(self)
        self.server._handshakes.start(self)
        if self._initial_data:
            data, self._initial_data = self._initial_data, b""
            self._opening_data(data)

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        """Run the rest of this connection's life in a task the server can wait for."""
        task = self._task = self.loop.create_task(coroutine)
        # The connection stays registered until the task ends, even after the TCP
        # connection is closed, so that shutdown waits for (or cancels) the handler.
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self.server._unregister(self)

    def _handshake_timeout(self) -> None:
        if self.protocol.state is State.CONNECTING:
            self._abort_handshake()

    def _handshake_done(self) -> None:
        self.server._handshakes.done(self)

    def eof_received(self) -> bool | None:
        if self.protocol.state is State.CONNECTING:
            # The client left during the handshake: nothing to answer.
            self._end_handshake()
            return None
        return super().eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self._end_handshake()
        self._handshake_done()
        super().connection_lost(exc)
        if self._task is None:
            self.server._unregister(self)

    def _end_handshake(self) -> None:
        """From now on, received bytes are WebSocket frames (or ignored)."""
        self._opening = False
        self._parser = None

    def _opening_data(self, data: bytes) -> None:
        parser = self._parser
        if parser is None:
            # The first read; a whole plain upgrade request usually arrives in one.
            if self.server._quick_handshake and self._quick_accept(data):
                return
            parser = self._parser = RequestParser(self.server.options.limits)
        try:
            request = parser.feed(data)
        except (InvalidMessage, SecurityError) as exc:
            self._end_handshake()
            status = getattr(exc, "status", 400)
            self._send_response(reject(status, f"{exc}\n"))
            return
        if request is None:
            return
        self._end_handshake()
        self._initial_data = parser.leftover
        self._request = request
        # After the upgrade the head as received is kept instead of the parsed request,
        # when it is the whole request (no body, no chunked framing).
        if not request.body and "Transfer-Encoding" not in request.headers:
            self._raw_request = parser.raw_head
        if not _is_upgrade(request):
            self._pause_reading()
            self._spawn(self._handle_http(request))
            return
        handler = self.server._route(request.path)
        if handler is None:
            self._send_response(reject(404, "not found\n"))
            return
        hook = self.server.options.process_request
        if hook is not None:
            try:
                result = hook(self, request)
            except Exception as exc:
                self._send_response(_hook_failure(exc))
                return
            if isinstance(result, Awaitable):
                # An async hook: finish the handshake in a task, reading paused meanwhile.
                self._pause_reading()
                self._spawn(self._upgrade_later(request, handler, result))
                return
            if result is not None:
                self._send_response(result)
                return
        if self._accept(request):
            self._spawn(self._run_handler(handler))

    async def _upgrade_later(
        self, request: Request, handler: Handler, pending: Awaitable[Response | None]
    ) -> None:
        try:
            try:
                result = await pending
            except asyncio.CancelledError:
                self._abort_handshake()
                raise
            except Exception as exc:
                self._send_response(_hook_failure(exc))
                return
            if result is not None:
                self._send_response(result)
                return
            if self.transport is None or self.transport.is_closing():
                return
            if not self._accept(request):
                return
            del request  # don't pin the parsed request for the life of the connection
            await self._run_handler(handler)
        except asyncio.CancelledError:
            if self.transport is not None:
                self.transport.abort()
            raise

    def _quick_accept(self, head: bytes) -> bool:
        """Upgrade at once when ``head`` is a plain upgrade request for a route."""
        options = self.server.options
        quick = quick_server_handshake(
            head, options.limits, extensions=options.extensions, origins=options.origins
        )
        if quick is None:
            return False
        target, response, extensions = quick
        path, _, query = target.partition("?")
        handler = self.server._route(path)
        if handler is None:
            return False  # the full path answers 404
        self._end_handshake()
        self._raw_request = head
        self._switch(path, query, None, extensions, response)
        self._spawn(self._run_handler(handler))
        return True

    def _accept(self, request: Request) -> bool:
        """Negotiate, send 101 and switch to the WebSocket protocol; False if refused."""
        options = self.server.options
        outcome = server_handshake(
            request,
            subprotocols=options.subprotocols,
            select_subprotocol=options.select_subprotocol,
            extensions=options.extensions,
            origins=options.origins,
        )
        if outcome.error is not None:
            self._send_response(outcome.response)
            return False
        if self._raw_request is not None:
            # Keep the request as its raw head; the parsed form is rebuilt on demand.
            self._request = None
        self._switch(
            request.path,
            request.query,
            outcome.subprotocol,
            outcome.extensions,
            outcome.response.serialize(),
        )
        return True

    def _switch(
        self,
        path: str,
        query: str,
        subprotocol: Subprotocol | None,
        extensions: list[Extension],
        response: bytes,
    ) -> None:
        """Send the 101 response and switch to the WebSocket protocol."""
        self._handshake_done()
        self.subprotocol = subprotocol
        self.path = path
        self.query = query
        protocol = self.protocol
        protocol.open(extensions)
        transport = self.transport
        assert transport is not None
        transport.write(response)
        self._start()
        leftover, self._initial_data = self._initial_data, b""
        if leftover:
            protocol.receive_data(leftover)
            self._process_events()
        if self._reading_paused_by_handshake:
            self._reading_paused_by_handshake = False
            transport.resume_reading()

    def _pause_reading(self) -> None:
        if self.transport is not None and not self._reading_paused_by_handshake:
            self._reading_paused_by_handshake = True
            self.transport.pause_reading()

    async def _run_handler(self, handler: Handler) -> None:
        code, reason = CloseCode.NORMAL_CLOSURE, ""
        try:
            await handler(self)
        except ConnectionClosed:
            pass
        except asyncio.CancelledError:
            code, reason = CloseCode.GOING_AWAY, ""
            await self._close_quietly(code, reason)
            raise
        except Exception:
            logger.exception("connection handler failed")
            code, reason = CloseCode.INTERNAL_ERROR, ""
        if not self._closed.done():
            await self._close_quietly(code, reason)

    async def _close_quietly(self, code: int, reason: str) -> None:
        try:
            await asyncio.shield(self.close(code, reason))
        except Exception:  # pragma: no cover - close never raises by design
            logger.exception("close failed")

    async def _handle_http(self, request: Request) -> None:
        http_handler = self.server.options.http_handler
        if http_handler is None:
            self._send_response(
                reject(426, "this endpoint only speaks WebSocket\n", [("Upgrade", "websocket")])
            )
            return
        try:
            if self.server.options.http_handler_wants_connection:
                response = http_handler(request, self)  # type: ignore[call-arg]
            else:
                response = http_handler(request)  # type: ignore[call-arg]
            if isinstance(response, Awaitable):
                response = await response
        except asyncio.CancelledError:
            self._abort_handshake()
            raise
        except Exception:
            logger.exception("http_handler failed")
            response = reject(500, "internal server error\n")
        self._send_response(response)

    def _send_response(self, response: Response) -> None:
        self.response = response
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if "Connection" not in response.headers:
            response.headers["Connection"] = "close"
        transport.write(response.serialize())
        transport.close()

    def _abort_handshake(self) -> None:
        if self.transport is not None:
            self.transport.abort()


def _wants_connection(http_handler: HTTPHandler | None) -> bool:
    """Tell whether ``http_handler`` takes ``(request, connection)`` rather than ``(request)``."""
    if http_handler is None:
        return False
    try:
        parameters = inspect.signature(http_handler).parameters.values()
    except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
        return False
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return sum(1 for parameter in parameters if parameter.kind in positional) >= 2


def _hook_failure(exc: Exception) -> Response:
    """The response for a ``process_request`` hook that raised."""
    if isinstance(exc, RejectHandshake):
        return reject(exc.status, exc.body, exc.headers)
    logger.error("process_request failed", exc_info=exc)
    return reject(500, "internal server error\n")


def _is_upgrade(request: Request) -> bool:
    upgrade = request.headers.get("Upgrade", "")
    return "websocket" in upgrade.lower()


class _Options:
    """Server options shared by every connection (one object, not copied per connection)."""

    def __init__(self, **kwargs: Any) -> None:
        self.__dict__.update(kwargs)

    limits: Limits
    ping_interval: float | None
    ping_timeout: float | None
    close_timeout: float
    open_timeout: float
    max_queue: int | tuple[int, int]
    write_limit: int | tuple[int, int]
    listeners: Sequence[EventListener]
    process_request: ProcessRequest | None
    http_handler: HTTPHandler | None
    http_handler_wants_connection: bool
    subprotocols: Sequence[Subprotocol] | None
    select_subprotocol: Callable[[Sequence[Subprotocol]], Subprotocol | None] | None
    extensions: Sequence[ServerExtensionFactory]
    origins: Sequence[Origin | None] | None
    ssl: ssl_module.SSLContext | None


class _HandshakeDeadlines:
    """The open_timeout of every connection still in its opening handshake, one timer.

    Connections start their handshakes in time order and share one timeout, so an
    insertion-ordered dict is ordered by deadline: the timer waits for the oldest, and
    a handshake that ends (the usual case, within a few milliseconds) is one dict
    deletion instead of a cancelled timer handle per connection.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: float) -> None:
        self.loop = loop
        self.timeout = timeout
        self.deadlines: dict[ServerConnection, float] = {}
        self.handle: asyncio.TimerHandle | None = None

    def start(self, connection: ServerConnection) -> None:
        deadline = self.deadlines[connection] = self.loop.time() + self.timeout
        if self.handle is None:
            self.handle = self.loop.call_at(deadline, self.expire)

    def done(self, connection: ServerConnection) -> None:
        self.deadlines.pop(connection, None)

    def expire(self) -> None:
        self.handle = None
        deadlines = self.deadlines
        now = self.loop.time()
        while deadlines:
            connection, deadline = next(iter(deadlines.items()))
            if deadline > now:
                self.handle = self.loop.call_at(deadline, self.expire)
                return
            del deadlines[connection]
            connection._handshake_timeout()


class Server:
    """A running WebSocket server.

    Use :func:`serve` to create one. It's an async context manager: leaving the block
    shuts it down gracefully.
    """

    def __init__(self, handler: Handler | Mapping[str, Handler], options: _Options) -> None:
        self.handler = handler
        self.options = options
        # A hook that sees the parsed request, or a subprotocol callback that runs even
        # when the client offers none, needs the full handshake path.
        self._quick_handshake = (
            options.process_request is None and options.select_subprotocol is None
        )
        self.connections: set[ServerConnection] = set()
        self.server: asyncio.base_events.Server | None = None
        self.loop = asyncio.get_running_loop()
        self._closing = False
        self._closers: set[asyncio.Task[None]] = set()
        self._closed: asyncio.Future[None] = self.loop.create_future()
        # Plain connections on the selector loop are accepted by tether's own listeners
        # (see tether.asyncio.transport); empty when asyncio's server accepts them.
        self._listeners: list[Listener] = []
        self._handshakes = _HandshakeDeadlines(self.loop, options.open_timeout)

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        """The listening sockets."""
        if self.server is None:
            return ()
        return tuple(self.server.sockets)

    @property
    def port(self) -> int:
        """The port of the first listening socket (handy with ``port=0``)."""
        return int(self.sockets[0].getsockname()[1])

    def _route(self, path: str) -> Handler | None:
        if isinstance(self.handler, Mapping):
            return self.handler.get(path)
        return self.handler

    def _register(self, connection: ServerConnection) -> None:
        self.connections.add(connection)

    def _unregister(self, connection: ServerConnection) -> None:
        self.connections.discard(connection)

    def _factory(self) -> ServerConnection:
        return ServerConnection(self)

    def handle_socket(self, sock: socket.socket, initial_data: bytes = b"") -> Awaitable[Any]:
        """Run the WebSocket handshake and handler on a socket accepted elsewhere.

        Args:
            sock: a connected stream socket.
            initial_data: bytes already read from ``sock`` (for example by another
                server that saw an upgrade request); they are parsed first.
        """

        def factory() -> ServerConnection:
            connection = ServerConnection(self)
            connection._initial_data = bytes(initial_data)
            return connection

        return self.loop.connect_accepted_socket(factory, sock, ssl=self.options.ssl)

    def close(self, close_connections: bool = True) -> None:
        """Stop accepting connections and, optionally, close the open ones with 1001.

        Use :meth:`wait_closed` to wait until everything is closed, or :meth:`shutdown`
        for both with a drain timeout.
        """
        if not self._closing:
            self._closing = True
            for listener in self._listeners:
                listener.close()
            if self.server is not None:
                self.server.close()
            if not self._closed.done():
                self._closed.set_result(None)
        if close_connections:
            for connection in list(self.connections):
                if connection.protocol.state is State.OPEN:
                    # Keep a reference: the event loop only holds tasks weakly.
                    task = self.loop.create_task(connection.close(CloseCode.GOING_AWAY))
                    self._closers.add(task)
                    task.add_done_callback(self._closers.discard)
                elif connection.protocol.state is State.CONNECTING:
                    if connection._task is not None:
                        connection._task.cancel()
                    else:
                        connection._abort_handshake()

    async def wait_closed(self) -> None:
        """Wait until the server and every connection are closed."""
        if self.server is not None:
            await self.server.wait_closed()
        # Connections run by a task end with it; those still in the handshake end when
        # their TCP connection does.
        waiting = [c._task or c.wait_closed() for c in list(self.connections)]
        if waiting:
            await asyncio.gather(*waiting, return_exceptions=True)

    async def shutdown(self, drain_timeout: float = 10.0) -> None:
        """Graceful shutdown: stop accepting, close connections with 1001, wait for them.

        Connections still open after ``drain_timeout`` seconds are aborted.
        """
        self.close(close_connections=True)
        try:
            async with asyncio.timeout(drain_timeout):
                await self.wait_closed()
        except TimeoutError:
            for connection in list(self.connections):
                if connection.transport is not None:
                    connection.transport.abort()
                if connection._task is not None:
                    connection._task.cancel()
            await self.wait_closed()

    async def serve_forever(self) -> None:
        """Run until the server is closed, or until cancelled (which closes it)."""
        assert self.server is not None
        if not self._listeners:
            await self.server.serve_forever()
            return
        try:
            await asyncio.shield(self._closed)
        except asyncio.CancelledError:
            self.close()
            await self.wait_closed()
            raise

    async def __aenter__(self) -> Server:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.shutdown(self.options.close_timeout)


class serve:
    """Start a WebSocket server; await it or use it as an async context manager.

    ::

        async def echo(ws):
            async for message in ws:
                await ws.send(message)

        async with serve(echo, "127.0.0.1", 8765) as server:
            await server.serve_forever()

    Args:
        handler: coroutine function run for each connection, or a mapping from request
            path to handler (unknown paths get HTTP 404).
        host: address to listen on.
        port: TCP port; 0 picks a free one (see :attr:`Server.port`).
        sock: an existing listening socket to serve on instead of host/port.
        unix_path: a Unix socket path to serve on instead of host/port.
        ssl: an :class:`ssl.SSLContext` for wss://.
        process_request: hook run before the upgrade, with the connection and the
            request; return a :class:`~tether.protocol.http11.Response` (or raise
            :class:`~tether.exceptions.RejectHandshake`) to refuse.
        http_handler: answers plain HTTP (non-upgrade) requests on the same port;
            without it they get 426 Upgrade Required. Called with the request, or
            with the request and the :class:`ServerConnection` when it takes two
            positional parameters.
        subprotocols: supported subprotocols, in order of preference.
        select_subprotocol: picks a subprotocol from the client's offer instead.
        origins: allowed Origin values (``None`` in the list allows no Origin header).
        compression: ``"deflate"`` (default) to negotiate permessage-deflate, or ``None``.
        extensions: extension factories, instead of ``compression``.
        limits: size limits (:class:`~tether.protocol.limits.Limits`).
        open_timeout: seconds allowed for the opening handshake.
        ping_interval, ping_timeout, close_timeout, max_queue, write_limit: see
            :class:`~tether.asyncio.connection.Connection`.
        listeners: observability hooks for every connection.
        backlog: listen backlog.
        reuse_port: set SO_REUSEPORT (several processes on one port).
    """

    def __init__(
        self,
        handler: Handler | Mapping[str, Handler],
        host: str | None = None,
        port: int | None = None,
        *,
        sock: socket.socket | None = None,
        unix_path: str | None = None,
        ssl: ssl_module.SSLContext | None = None,
        process_request: ProcessRequest | None = None,
        http_handler: HTTPHandler | None = None,
        subprotocols: Sequence[str] | None = None,
        select_subprotocol: Callable[[Sequence[Subprotocol]], Subprotocol | None] | None = None,
        origins: Sequence[str | None] | None = None,
        compression: str | None = "deflate",
        extensions: Sequence[ServerExtensionFactory] | None = None,
        limits: Limits | None = None,
        open_timeout: float = 10.0,
        ping_interval: float | None = 20.0,
        ping_timeout: float | None = 20.0,
        close_timeout: float = 10.0,
        max_queue: int | tuple[int, int] = 1024 * 1024,
        write_limit: int | tuple[int, int] = 64 * 1024,
        listeners: Sequence[EventListener] = (),
        backlog: int = 1024,
        reuse_port: bool = False,
    ) -> None:
        extensions = _select_extensions(compression, extensions, ServerPerMessageDeflateFactory)
        self._options = _Options(
            limits=limits if limits is not None else Limits(),
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            close_timeout=close_timeout,
            open_timeout=open_timeout,
            max_queue=max_queue,
            write_limit=write_limit,
            listeners=list(listeners),
            process_request=process_request,
            http_handler=http_handler,
            http_handler_wants_connection=_wants_connection(http_handler),
            subprotocols=[Subprotocol(s) for s in subprotocols] if subprotocols else None,
            select_subprotocol=select_subprotocol,
            extensions=list(extensions),
            origins=[Origin(o) if o is not None else None for o in origins]
            if origins is not None
            else None,
            ssl=ssl,
        )
        self._handler = handler
        self._host = host
        self._port = port
        self._sock = sock
        self._unix_path = unix_path
        self._backlog = backlog
        self._reuse_port = reuse_port
        self._server: Server | None = None

    async def _start(self) -> Server:
        server = Server(self._handler, self._options)
        loop = server.loop
        ssl = self._options.ssl
        # asyncio binds and listens; without TLS on a selector loop or uvloop, tether accepts.
        own_accept = ssl is None and supports_loop(loop)
        if self._unix_path is not None:
            server.server = await loop.create_unix_server(
                server._factory,
                self._unix_path,
                ssl=ssl,
                backlog=self._backlog,
                start_serving=not own_accept,
            )
        elif self._sock is not None:
            server.server = await loop.create_server(
                server._factory,
                sock=self._sock,
                ssl=ssl,
                backlog=self._backlog,
                start_serving=not own_accept,
            )
        else:
            server.server = await loop.create_server(
                server._factory,
                self._host,
                self._port or 0,
                ssl=ssl,
                backlog=self._backlog,
                reuse_port=self._reuse_port,
                start_serving=not own_accept,
            )
        if own_accept:
            server._listeners = [
                Listener(loop, listening.dup(), server._factory, self._backlog)
                for listening in server.server.sockets
            ]
        self._server = server
        return server

    def __await__(self) -> Any:
        return self._start().__await__()

    async def __aenter__(self) -> Server:
        return await self._start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._server is not None
        await self._server.__aexit__(exc_type, exc, tb)


async def peek_request(
    sock: socket.socket, *, max_size: int = 16384, timeout: float = 10.0
) -> bytes:
    """Read the head of an HTTP request from ``sock`` without consuming it.

    The bytes stay in the kernel's buffer, so whoever reads the socket next (tether's
    handshake, or another HTTP server) sees the request whole. Use it to decide where a
    socket accepted elsewhere should go; :func:`is_upgrade_request` tells the answer.

    Raises:
        TimeoutError: the request head didn't arrive in time.
        SecurityError: the head is longer than ``max_size``.
    """
    loop = asyncio.get_running_loop()
    sock.setblocking(False)
    async with asyncio.timeout(timeout):
        while True:
            ready: asyncio.Future[None] = loop.create_future()
            loop.add_reader(sock.fileno(), ready.set_result, None)
            try:
                await ready
            finally:
                loop.remove_reader(sock.fileno())
            data = sock.recv(max_size, socket.MSG_PEEK)
            if not data:
                raise EOFError("connection closed before the request head")
            if b"\r\n\r\n" in data:
                return data
            if len(data) >= max_size:
                raise SecurityError("request head too large")
            # Not all there yet: wait for more bytes, polling gently.
            await asyncio.sleep(0.001)


def is_upgrade_request(head: bytes) -> bool:
    """Tell whether an HTTP request head asks for a WebSocket upgrade."""
    for line in head.split(b"\r\n")[1:]:
        if not line:
            break
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"upgrade" and b"websocket" in value.lower():
            return True
    return False


def broadcast(connections: Iterable[Connection], message: str | bytes) -> list[Connection]:
    """Send a message to many connections without waiting, encoding the frame once.

    Connections that are not open, or whose write buffer is above its high-water mark
    (slow consumers), are skipped and returned, so the caller decides what to do with
    them; nothing is skipped silently. Connections with a compression context get the
    message encoded for them alone.

    Returns:
        The connections that did not get the message.
    """
    if isinstance(message, str):
        opcode, payload = Opcode.TEXT, message.encode()
    else:
        opcode, payload = Opcode.BINARY, bytes(message)
    prepared = serialize_unmasked(opcode, payload)
    size = len(payload)
    skipped: list[Connection] = []
    for connection in connections:
        protocol = connection.protocol
        if protocol.state is not State.OPEN or connection._writing_paused:
            skipped.append(connection)
            continue
        if not protocol.send_prepared(prepared):
            # A compression context or a fragmented message in progress: encode alone.
            if opcode == Opcode.TEXT:
                protocol.send_text(payload)
            else:
                protocol.send_binary(payload)
        if connection.listeners:
            for listener in connection.listeners:
                listener.message_sent(connection, message)
        connection._schedule_flush(size)
    if skipped:
        logger.debug("broadcast skipped %d connections", len(skipped))
    return skipped
