"""The REPE server runtime: one reader, one writer and a bounded queue per connection.

:meth:`RpcServer.handle` runs one connection over any
:class:`~tether.types.MessageStream` (tether's own server, ASGI, an in-memory pair,
raw TCP through :mod:`tether.rpc.tcp`); :meth:`RpcServer.serve` listens on a WebSocket
path with tether's server, plain HTTP on the same port going to an ``http_handler``.

Per connection (spec sections 2.2 and 3.3-3.6):

* the reader decodes one REPE message per binary WebSocket message; a text message
  fails the connection with 1003, a malformed message (bad magic, bad length) closes it
  with 1007 and no REPE reply; a version mismatch is answered with ec 1;
* inline handlers run on the reader, one at a time, in order; ``blocking`` handlers run
  off the reader (sync ones on a thread pool, async ones as tasks), at most
  ``offreader_limit`` at once, beyond which a request is answered at once with ec 8;
* responses and pushed notifies go through one bounded outbound queue
  (``outbound_capacity``) drained by one writer task, in FIFO order; a full queue makes
  the reader wait before queueing a response (backpressure) and makes a pushed notify
  fail with :attr:`~tether.rpc.peers.SendResult.FULL`. On tether's own connections a
  message that finds the queue empty and the socket below its write high-water mark
  is written at once (:func:`tether.asyncio.server.broadcast`, one WebSocket frame for
  every peer of a broadcast), so the queue fills only while the socket is slow;
* messages above ``assumed_peer_frame_limit``: a response is replaced by an ec 9 error
  with the same id, a notify is dropped; both are reported to ``on_error``.

Requests carrying a non-zero ``ec`` (responses or errors sent to the server) are
dropped: the server makes no calls of its own, and echoing errors back could loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import itertools
import logging
from collections.abc import Awaitable, Callable, Coroutine, Generator, Mapping
from types import TracebackType
from typing import Any, TypeAlias

from ..asyncio.connection import Connection as WsConnection
from ..asyncio.server import HTTPHandler, Server, ServerConnection, broadcast, serve as ws_serve
from ..exceptions import ConnectionClosed
from ..protocol.handshake import reject
from ..protocol.http11 import Request, Response
from ..types import BytesLike, Data, MessageStream
from ._websocket import BINARY_ONLY_REASON, websocket_options
from .context import CallContext, CancelToken, context_for
from .errors import (
    HandlerCrash,
    HandshakeError,
    OutboundTooLarge,
    PeerConnectionError,
    RpcServerEvent,
    Saturation,
)
from .peers import Outbound, PeerHandle, PeerRegistry
from .repe import (
    DEFAULT_MAX_SIZE,
    ErrorCode,
    Message,
    RepeError,
    decode,
    error_response,
    quick_decoder,
)
from .router import Route, Router


__all__ = [
    "DEFAULT_PEER_FRAME_LIMIT",
    "OFFREADER_LIMIT_REACHED",
    "ErrorHook",
    "PeerHook",
    "RpcServer",
    "ShutdownToken",
]

logger = logging.getLogger("tether.rpc")

DEFAULT_PEER_FRAME_LIMIT = 16 * 1024 * 1024
"""What a peer is assumed to accept in one message: 16 MiB, as repe-rs (spec 3.6)."""

OFFREADER_LIMIT_REACHED = "off-reader dispatch limit reached; retry"
"""Body of the ec 8 answer when the off-reader limit is hit (spec section 3.5)."""

PeerHook: TypeAlias = Callable[[PeerHandle], "Awaitable[None] | None"]
"""``on_peer_connect`` / ``on_peer_disconnect``: sync or async."""

HandshakeHook: TypeAlias = Callable[
    [PeerHandle, str, str, Mapping[str, str]], "Awaitable[None] | None"
]
"""``on_peer_connect_with_handshake(peer, path, query, headers)``: sync or async."""

ErrorHook: TypeAlias = Callable[[RpcServerEvent], None]
"""``on_error(event)``: see :mod:`tether.rpc.errors` for the event types."""

_peer_ids = itertools.count(1)

# Close codes (RFC 6455 section 7.4.1).
_UNSUPPORTED_DATA = 1003
_INVALID_PAYLOAD = 1007
_GOING_AWAY = 1001
_INTERNAL_ERROR = 1011


async def _maybe_await(result: Awaitable[None] | None) -> None:
    if result is not None:
        await result


class ShutdownToken:
    """Drains every RPC connection registered with it (spec section 3.8).

    Each :class:`RpcServer` has one (:attr:`RpcServer.shutdown_token`); pass your own to
    :meth:`RpcServer.handle` to drain connections that run under another server.
    """

    def __init__(self) -> None:
        self._connections: set[_Connection] = set()
        self._draining = False

    @property
    def draining(self) -> bool:
        """Whether :meth:`shutdown` was called."""
        return self._draining

    def __len__(self) -> int:
        return len(self._connections)

    async def shutdown(self, drain_timeout: float = 10.0) -> None:
        """Drain: cancel in-flight off-reader handlers, let them finish, close with 1001.

        Handlers see ``ctx.cancelled``. Connections still running after
        ``drain_timeout`` seconds are aborted. New connections are closed at once.
        """
        self._draining = True
        connections = list(self._connections)
        for connection in connections:
            connection.start_drain()
        finished = [connection.finished for connection in connections]
        if not finished:
            return
        _, pending = await asyncio.wait(finished, timeout=drain_timeout)
        if pending:
            for connection in connections:
                if not connection.finished.done():
                    connection.abort()
            await asyncio.wait(finished)


class RpcServer:
    """Serve a :class:`~tether.rpc.router.Router` over REPE.

    Args:
        router: the handlers.
        peers: a registry that gets every connected peer (one is made when ``None``).
        offreader_limit: most off-reader handlers running at once per connection;
            0 for no limit (spec section 3.5).
        outbound_capacity: most messages in a connection's outbound queue.
        max_message_size: largest inbound REPE message accepted.
        assumed_peer_frame_limit: largest message sent; ``None`` for no check.
        executor: runs sync off-reader handlers (the loop's default executor when
            ``None``; its size caps how many run in parallel).
        on_peer_connect: called with the peer before its first message is read.
        on_peer_connect_with_handshake: same, with the handshake path, query, headers.
        on_peer_disconnect: called once per connection, on every exit path.
        on_error: called with each :class:`~tether.rpc.errors.RpcServerEvent`; without
            it events are logged to the ``tether.rpc`` logger.
        handler_grace: seconds off-reader handlers get to finish after their connection
            ended (they see ``ctx.cancelled``) before async ones are cancelled.
        flush_timeout: seconds the writer gets to flush at the end of a connection.
    """

    def __init__(
        self,
        router: Router,
        *,
        peers: PeerRegistry | None = None,
        offreader_limit: int = 16,
        outbound_capacity: int = 256,
        max_message_size: int = DEFAULT_MAX_SIZE,
        assumed_peer_frame_limit: int | None = DEFAULT_PEER_FRAME_LIMIT,
        executor: concurrent.futures.Executor | None = None,
        on_peer_connect: PeerHook | None = None,
        on_peer_connect_with_handshake: HandshakeHook | None = None,
        on_peer_disconnect: PeerHook | None = None,
        on_error: ErrorHook | None = None,
        handler_grace: float = 5.0,
        flush_timeout: float = 5.0,
    ) -> None:
        if offreader_limit < 0:
            raise ValueError(f"offreader_limit must be >= 0, got {offreader_limit}")
        if outbound_capacity < 1:
            raise ValueError(f"outbound_capacity must be >= 1, got {outbound_capacity}")
        self.router = router
        self.peers = peers if peers is not None else PeerRegistry()
        self.offreader_limit = offreader_limit
        self.outbound_capacity = outbound_capacity
        self.max_message_size = max_message_size
        self.assumed_peer_frame_limit = assumed_peer_frame_limit
        self.executor = executor
        self.on_peer_connect = on_peer_connect
        self.on_peer_connect_with_handshake = on_peer_connect_with_handshake
        self.on_peer_disconnect = on_peer_disconnect
        self.on_error = on_error
        self.handler_grace = handler_grace
        self.flush_timeout = flush_timeout
        self.shutdown_token = ShutdownToken()
        self._ws_servers: list[Server] = []

    # Running connections

    async def handle(self, stream: MessageStream, *, shutdown: ShutdownToken | None = None) -> None:
        """Serve one connection until it closes; never raises for connection errors.

        Args:
            stream: the connection, after its opening handshake.
            shutdown: the token that can drain it (:attr:`shutdown_token` by default).
        """
        token = shutdown if shutdown is not None else self.shutdown_token
        if token.draining:
            await _close_quietly(stream, _GOING_AWAY, "server shutting down")
            return
        connection = _Connection(self, stream, token)
        await connection.run()

    def emit(self, event: RpcServerEvent) -> None:
        """Report an event to ``on_error``, or log it when there is no hook."""
        hook = self.on_error
        if hook is None:
            cause = event.__cause__
            logger.error("%s", event, exc_info=cause if isinstance(cause, Exception) else None)
            return
        try:
            hook(event)
        except Exception:
            logger.exception("on_error hook failed")

    # Listening with tether's WebSocket server

    def serve(
        self,
        host: str | None = None,
        port: int | None = None,
        *,
        path: str = "/repe",
        http_handler: HTTPHandler | None = None,
        **kwargs: Any,
    ) -> _Serving:
        """Listen for REPE over WebSocket on ``path`` (spec section 2.2).

        Upgrades to any other path get HTTP 404 (reported as a
        :class:`~tether.rpc.errors.HandshakeError`); plain HTTP requests go to
        ``http_handler`` (426 without one). Await the result for the
        :class:`~tether.asyncio.server.Server`, or use it as an async context manager
        that calls :meth:`shutdown` on exit.

        Args:
            host: address to listen on.
            port: TCP port, 0 for any.
            path: the WebSocket path.
            http_handler: answers plain HTTP on the same port.
            kwargs: more :func:`tether.asyncio.serve` options; compression is off
                unless asked for, and the WebSocket message limit follows
                ``max_message_size`` unless ``limits`` is given.
        """
        return _Serving(self, host, port, path, http_handler, kwargs)

    async def _start(
        self,
        host: str | None,
        port: int | None,
        path: str,
        http_handler: HTTPHandler | None,
        kwargs: dict[str, Any],
    ) -> Server:
        def process_request(connection: ServerConnection, request: Request) -> Response | None:
            if request.path != path:
                self.emit(HandshakeError(f"upgrade to {request.path} refused: not found"))
                return reject(404, "not found\n")
            return None

        async def handler(connection: ServerConnection) -> None:
            await self.handle(connection)

        websocket_options(kwargs, self.max_message_size)
        server: Server = await ws_serve(
            handler,
            host,
            port,
            process_request=process_request,
            http_handler=http_handler,
            **kwargs,
        )
        self._ws_servers.append(server)
        return server

    async def shutdown(self, drain_timeout: float = 10.0) -> None:
        """Stop accepting, drain connections (see :meth:`ShutdownToken.shutdown`).

        Args:
            drain_timeout: seconds before the remaining connections are aborted.
        """
        servers, self._ws_servers = self._ws_servers, []
        for server in servers:
            server.close(close_connections=False)
        await self.shutdown_token.shutdown(drain_timeout)
        for server in servers:
            await server.shutdown(drain_timeout)

    # Events

    def _report_crash(self, exc: BaseException, ctx: CallContext) -> None:
        peer_id = ctx.peer.id if ctx.peer is not None else None
        try:
            path = ctx.method
        except RepeError:  # pragma: no cover - the path was looked up already
            path = ""
        event = HandlerCrash(
            f"handler for {path} raised {type(exc).__name__}: {exc}", peer_id, path
        )
        event.__cause__ = exc
        self.emit(event)

    def _notify_too_large(self, peer: PeerHandle, size: int, path: str) -> None:
        limit = self.assumed_peer_frame_limit or 0
        self.emit(
            OutboundTooLarge(
                f"notify {path} of {size} bytes dropped: {size - limit} bytes over "
                f"the peer frame limit of {limit} bytes",
                peer.id,
                kind="notify",
                size=size,
                limit=limit,
            )
        )


class _Serving:
    """What :meth:`RpcServer.serve` returns: awaitable, or an async context manager."""

    def __init__(
        self,
        rpc: RpcServer,
        host: str | None,
        port: int | None,
        path: str,
        http_handler: HTTPHandler | None,
        kwargs: dict[str, Any],
    ) -> None:
        self._rpc = rpc
        self._args = (host, port, path, http_handler, kwargs)

    def __await__(self) -> Generator[Any, None, Server]:
        return self._rpc._start(*self._args).__await__()

    async def __aenter__(self) -> Server:
        return await self._rpc._start(*self._args)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._rpc.shutdown(self._rpc.flush_timeout)


async def _close_quietly(stream: MessageStream, code: int, reason: str) -> None:
    try:
        await stream.close(code, reason)
    except Exception:  # pragma: no cover - close should not raise
        logger.debug("close failed", exc_info=True)


def _abort_stream(stream: MessageStream) -> bool:
    # tether's Connection (and asyncio streams) expose their transport: abort it so
    # that a reader blocked in recv() wakes up now rather than after a close timeout.
    transport = getattr(stream, "transport", None)
    abort = getattr(transport, "abort", None)
    if abort is None:
        return False
    abort()
    return True


class _Connection:
    """One peer's reader, writer, outbound queue and off-reader handlers."""

    def __init__(self, server: RpcServer, stream: MessageStream, token: ShutdownToken) -> None:
        self.server = server
        self.router = server.router
        self.stream = stream
        self.token = token
        self.loop = asyncio.get_running_loop()
        self.info = stream.peer
        if isinstance(stream, WsConnection):
            # Write without the writer task while the socket keeps up (see peers.py).
            self.outbound = Outbound(
                server.outbound_capacity, direct=broadcast, target=stream, reply=stream.send_nowait
            )
        else:
            self.outbound = Outbound(server.outbound_capacity)
        # Looked up once for the per-call path.
        self._write_now = self.outbound.write_now
        self._frame_limit = server.assumed_peer_frame_limit
        self._report_crash = server._report_crash
        self.cancel = CancelToken()
        self.peer = PeerHandle(
            next(_peer_ids),
            self.info,
            self.outbound,
            limit=server.assumed_peer_frame_limit,
            too_large=server._notify_too_large,
        )
        self.offreader: set[asyncio.Task[None]] = set()
        self.finished: asyncio.Future[None] = self.loop.create_future()
        self.reader: asyncio.Task[None] | None = None
        self.writer: asyncio.Task[None] | None = None
        self.drainer: asyncio.Task[None] | None = None
        self.aborted = False
        # A request the message sink started but could not finish without awaiting:
        # the reader awaits it when the request comes out of recv() (see _take).
        self._started: Coroutine[Any, Any, None] | None = None
        self._max_size = server.max_message_size
        self._quick_decode = quick_decoder(self._max_size)
        self._plain = self.router.plain_calls(self._max_size)
        self._context = functools.partial(
            context_for, peer=self.peer, token=self.cancel, info=self.info
        )

    async def run(self) -> None:
        server = self.server
        self.token._connections.add(self)
        server.peers.insert(self.peer)
        try:
            try:
                # Spec section 3.4: notifies queued by the connect hooks are in the
                # outbound queue before any response can be.
                if server.on_peer_connect is not None:
                    await _maybe_await(server.on_peer_connect(self.peer))
                if server.on_peer_connect_with_handshake is not None:
                    info = self.info
                    await _maybe_await(
                        server.on_peer_connect_with_handshake(
                            self.peer, info.path, info.query, info.headers
                        )
                    )
            except Exception as exc:
                event = HandlerCrash(
                    f"connect hook raised {type(exc).__name__}: {exc}", self.peer.id
                )
                event.__cause__ = exc
                server.emit(event)
                await _close_quietly(self.stream, _INTERNAL_ERROR, "connect hook failed")
                return
            self.writer = self.loop.create_task(self._write_loop())
            self.reader = self.loop.create_task(self._read_loop())
            try:
                # wait() rather than await: abort() cancels the reader, which must not
                # look like a cancellation of our caller.
                await asyncio.wait([self.reader])
            except asyncio.CancelledError:
                # Our caller (e.g. the WebSocket server aborting) is going away.
                self.abort()
                raise
            if not self.reader.cancelled() and self.reader.exception() is not None:
                self._peer_error("reader failed", self.reader.exception())
        finally:
            await self._cleanup()

    # Reading

    async def _read_loop(self) -> None:
        stream = self.stream
        # tether's own connections: requests are handled in the read callback by the
        # message sink (_take) while they can be answered without awaiting; the rest,
        # and everything after them, come through async iteration.
        arm: Callable[[Callable[[Data], bool]], bool] | None = None
        if isinstance(stream, WsConnection):
            recv = stream.__anext__
            arm = stream.set_message_sink
        else:
            recv = stream.recv
        recv_message: Callable[[], Awaitable[Message]] | None = getattr(
            stream, "recv_message", None
        )
        max_size = self._max_size
        dispatch = self._dispatch
        take = self._take
        while True:
            if arm is not None:
                arm(take)
            try:
                if recv_message is not None:
                    message = await recv_message()
                else:
                    data = await recv()
                    if self._started is not None:
                        message = None  # the sink began this request and handed it back
                    elif isinstance(data, str):
                        # Spec section 2.2: text messages are a protocol violation.
                        self._peer_error("text message received; repe needs binary messages")
                        await _close_quietly(stream, _UNSUPPORTED_DATA, BINARY_ONLY_REASON)
                        return
                    else:
                        message = decode(data, max_size=max_size)
            except (ConnectionClosed, StopAsyncIteration):
                return
            except RepeError as exc:
                if exc.ec == ErrorCode.VERSION_MISMATCH and exc.id is not None:
                    # Spec section 1.2: answer an unsupported version with ec 1.
                    if not exc.notify:
                        await self._respond(exc.id, error_response(exc.id, exc.ec, str(exc)))
                    continue
                # Spec section 2.2: malformed binary -> close, no REPE reply.
                self._peer_error(f"malformed repe message: {exc}", exc)
                await _close_quietly(stream, _INVALID_PAYLOAD, "malformed repe message")
                return
            except Exception as exc:
                self._peer_error(f"receive failed: {exc}", exc)
                return
            if message is None:
                pending, self._started = self._started, None
            else:
                pending = dispatch(message)
            if pending is not None:
                await pending

    def _take(self, data: Data) -> bool:
        """The message sink: handle a request inside the read callback.

        Returns ``True`` when the request is done (answered or queued). Otherwise the
        engine queues the message for the reader: either untouched (text, malformed:
        the reader reports it) or begun, with the rest of its work in ``_started`` for
        the reader to await, so that later requests wait for it as they would there.
        """
        if type(data) is not bytes:
            return False
        # A plain call is answered in one step; anything else takes the general path.
        outcome = self._plain(data)
        if outcome is None:
            message = self._quick_decode(data)
            if message is None:
                return False  # malformed: the reader decodes it again and reports it
            pending = self._dispatch(message)
        elif isinstance(outcome, bytes):
            pending = self._deliver(outcome)
        else:
            pending = self._complete(data, outcome)
        if pending is None:
            return True
        self._started = pending
        return False

    def _dispatch(self, message: Message) -> Coroutine[Any, Any, None] | None:
        """Handle one request; an awaitable when the reader must wait for it."""
        if message.ec:
            logger.debug("dropped a message with ec %d sent to the server", message.ec)
            return None
        router = self.router
        try:
            route = router.lookup(message)
        except RepeError as exc:
            # Spec section 1.8: never reply to a notify.
            if message.notify:
                return None
            return self._respond(message.id, error_response(message, exc.ec, str(exc)))
        if route.blocking:
            return self._dispatch_offreader(route, message, self._context(message))
        return self._answer(
            message.id, router.call(route, message, self._context, self._report_crash)
        )

    def _complete(
        self, data: bytes, outcome: tuple[Any, Exception | None]
    ) -> Coroutine[Any, Any, None] | None:
        # A plain call whose handler raised or returned what the plain path leaves to
        # the router (a coroutine, a dataclass...). The request is valid: it parsed.
        message = decode(data)
        return self._answer(
            message.id, self.router.complete(message, outcome, self._context, self._report_crash)
        )

    def _answer(
        self, id: int, response: bytes | Awaitable[bytes | None] | None
    ) -> Coroutine[Any, Any, None] | None:
        if isinstance(response, bytes):
            return self._deliver(response, id)
        if response is None:
            return None
        return self._respond_later(id, response)

    def _deliver(self, response: bytes, id: int | None = None) -> Coroutine[Any, Any, None] | None:
        """Write a response now when nothing is queued ahead and the socket keeps up."""
        limit = self._frame_limit
        if (limit is None or len(response) <= limit) and self._write_now(response):
            return None
        if id is None:
            id = int.from_bytes(response[16:24], "little")  # the header's id field
        return self._respond(id, response)

    async def _respond_later(self, id: int, pending: Awaitable[bytes | None]) -> None:
        response = await pending
        if response is not None:
            await self._respond(id, response)

    async def _dispatch_offreader(self, route: Route, message: Message, ctx: CallContext) -> None:
        # Spec section 3.5: off-reader dispatch with a per-connection cap, no queueing.
        limit = self.server.offreader_limit
        if limit and len(self.offreader) >= limit:
            self.server.emit(
                Saturation(
                    f"off-reader limit of {limit} reached; {route.path} refused with ec 8",
                    self.peer.id,
                    route.path,
                )
            )
            if not message.notify:
                await self._respond(
                    message.id,
                    error_response(message, ErrorCode.RESOURCE_EXHAUSTED, OFFREADER_LIMIT_REACHED),
                )
            return
        task = self.loop.create_task(self._run_offreader(route, message, ctx))
        self.offreader.add(task)
        task.add_done_callback(self._offreader_done)

    def _offreader_done(self, task: asyncio.Task[None]) -> None:
        self.offreader.discard(task)
        if not task.cancelled() and task.exception() is not None:  # pragma: no cover
            logger.error("off-reader task failed", exc_info=task.exception())

    async def _run_offreader(self, route: Route, message: Message, ctx: CallContext) -> None:
        router = self.router
        server = self.server
        if route.is_async:
            response = await router.run(route, message, ctx, report=server._report_crash)
        else:
            loop = self.loop

            def report(exc: BaseException, ctx: CallContext) -> None:
                loop.call_soon_threadsafe(server._report_crash, exc, ctx)

            async def on_thread(c: CallContext, m: Message) -> Message | None:
                return await loop.run_in_executor(
                    server.executor, router.run_sync, route, m, c, report
                )

            response = await router.run(
                route, message, ctx, report=server._report_crash, innermost=on_thread
            )
        if response is not None:
            await self._respond(message.id, response)

    # Writing

    async def _respond(self, id: int, response: Message | bytes) -> None:
        data: BytesLike = response.encode() if isinstance(response, Message) else response
        limit = self.server.assumed_peer_frame_limit
        if limit is not None and len(data) > limit:
            # Spec section 3.6: replace an oversized response with ec 9, same id.
            over = len(data) - limit
            self.server.emit(
                OutboundTooLarge(
                    f"response to id {id} is {over} bytes over the peer frame "
                    f"limit of {limit} bytes",
                    self.peer.id,
                    kind="response",
                    size=len(data),
                    limit=limit,
                )
            )
            data = error_response(
                id,
                ErrorCode.INTERNAL_ERROR,
                f"response is {over} bytes over the peer frame limit of {limit} bytes",
            ).encode()
        await self.outbound.put(data)

    async def _write_loop(self) -> None:
        outbound = self.outbound
        send = self.stream.send
        direct, target = outbound.direct, (outbound.target,)
        try:
            while True:
                batch = await outbound.get_all()
                if not batch:
                    return
                for data in batch:
                    # direct() queues the frame and flushes once at the end of the loop
                    # turn; when it cannot (slow socket, closing), send() waits or raises.
                    if direct is None or type(data) is not bytes or direct(target, data):
                        await send(data)
                outbound.batch_written()
        except ConnectionClosed:
            pass
        except Exception as exc:
            self._peer_error(f"send failed: {exc}", exc)
        finally:
            outbound.close()

    # Ending

    def start_drain(self) -> None:
        """Spec section 3.8: cancel handlers, let them finish, flush, close with 1001."""
        self.cancel.cancel("server shutting down")
        if self.drainer is None and not self.finished.done():
            self.drainer = self.loop.create_task(self._drain())

    async def _drain(self) -> None:
        if self.offreader:
            await asyncio.wait(set(self.offreader))
        self.outbound.close()
        if self.writer is not None:
            await asyncio.wait([self.writer], timeout=self.server.flush_timeout)
        await _close_quietly(self.stream, _GOING_AWAY, "server shutting down")

    def abort(self) -> None:
        """Stop everything now: handlers, reader, writer, transport."""
        self.aborted = True
        self.cancel.cancel("connection aborted")
        for task in list(self.offreader):
            task.cancel()
        self._stop_sink()
        if self.drainer is not None:
            self.drainer.cancel()
        if self.reader is not None:
            self.reader.cancel()
        if self.writer is not None:
            self.writer.cancel()
        self.outbound.close()
        _abort_stream(self.stream)

    async def _cleanup(self) -> None:
        server = self.server
        self._stop_sink()
        try:
            self.cancel.cancel("peer disconnected")
            server.peers.remove(self.peer.id)
            if self.offreader:
                _, pending = await asyncio.wait(set(self.offreader), timeout=server.handler_grace)
                for task in pending:
                    task.cancel()
                if pending:
                    await asyncio.wait(pending)
            self.outbound.close()
            if self.writer is not None:
                _, pending = await asyncio.wait([self.writer], timeout=server.flush_timeout)
                for task in pending:
                    task.cancel()
                    await asyncio.wait(pending)
            if self.drainer is not None:
                await asyncio.wait([self.drainer])
            if self.aborted:
                _abort_stream(self.stream)
            else:
                await _close_quietly(self.stream, 1000, "")
        finally:
            self.token._connections.discard(self)
            try:
                if server.on_peer_disconnect is not None:
                    await _maybe_await(server.on_peer_disconnect(self.peer))
            except Exception as exc:
                event = HandlerCrash(
                    f"disconnect hook raised {type(exc).__name__}: {exc}", self.peer.id
                )
                event.__cause__ = exc
                server.emit(event)
            finally:
                if not self.finished.done():
                    self.finished.set_result(None)

    def _stop_sink(self) -> None:
        """No more requests in the read callback.

        A request the sink began and the reader never came to is finished as an
        off-reader handler in flight at disconnect: it sees ``ctx.cancelled`` and gets
        ``handler_grace`` seconds before it is cancelled (see :meth:`_cleanup`).
        """
        if isinstance(self.stream, WsConnection):
            self.stream.set_message_sink(None)
        started, self._started = self._started, None
        if started is not None:
            task = self.loop.create_task(started)
            self.offreader.add(task)
            task.add_done_callback(self._offreader_done)

    def _peer_error(self, text: str, exc: BaseException | None = None) -> None:
        event = PeerConnectionError(text, self.peer.id)
        event.__cause__ = exc
        self.server.emit(event)
