"""The REPE client: many calls in flight on one connection, plus server notifies.

::

    async with rpc_connect("ws://127.0.0.1:8081/repe") as client:
        print(await client.call_json("/sum", [1, 2, 3]))

One reader task per client correlates responses by id (spec section 3.1); it looks at
the ``notify`` flag before the id, so a pushed notify never completes a call (spec
section 3.2). A client is safe to share between tasks.

Notifies from the server go to at most one subscriber (:meth:`RpcClient.subscribe_notifies`)
through a bounded queue. The policy when the subscriber falls behind is **drop-oldest**:
the oldest queued notify is discarded and :attr:`NotifySubscription.dropped` counts it.
Pausing the reader instead would also stall the responses of calls in flight (and
deadlock a consumer that makes calls while it handles notifies); use flow control
(:mod:`tether.rpc.streaming`) for data that must not be lost. Notifies that arrive with
no subscriber are dropped and counted in :attr:`RpcClient.notifies_dropped`.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import logging
import weakref
from collections.abc import Generator, Iterable
from types import TracebackType
from typing import Any, TypeVar

from ..asyncio.client import connect as ws_connect
from ..asyncio.connection import Connection as WsConnection
from ..exceptions import ConnectionClosed
from ..types import BytesLike, Data, MessageStream
from ._convert import converter_for, to_builtins
from ._websocket import BINARY_ONLY_REASON, websocket_options
from .bodies import decode_body, encode_body
from .errors import (
    AlreadySubscribed,
    CallTimeout,
    MessageTooLarge,
    RpcConnectionClosed,
    ServerError,
)
from .repe import (
    DEFAULT_MAX_SIZE,
    HEADER_SIZE,
    BodyFormat,
    ErrorCode,
    Message,
    QueryFormat,
    RepeError,
    decode,
    quick_decoder,
)
from .server import DEFAULT_PEER_FRAME_LIMIT


__all__ = ["NotifySubscription", "RpcClient", "decode_response_body", "rpc_connect"]

logger = logging.getLogger("tether.rpc")

T = TypeVar("T")

_RAW = int(BodyFormat.RAW)
_BEVE = int(BodyFormat.BEVE)
_JSON = int(BodyFormat.JSON)
_UTF8 = int(BodyFormat.UTF8)
_QF_POINTER = int(QueryFormat.JSON_POINTER)


def decode_response_body(message: Message) -> Any:
    """Decode a response body: JSON and UTF-8 as JSON, BEVE as BEVE (spec 3.1).

    An empty body is ``None``; a non-empty raw body is returned as :class:`bytes`.
    """
    fmt = message.body_format
    body = message.body
    if not body:
        return None
    if fmt == _JSON or fmt == _UTF8:
        return decode_body(body, _JSON)
    if fmt == _BEVE:
        return decode_body(body, _BEVE)
    return bytes(body)


class NotifySubscription:
    """Notifies pushed by the server, as an async iterator of whole messages.

    Iteration ends when the connection closes or :meth:`close` is called. At most
    ``maxsize`` notifies wait; beyond that the oldest is dropped (see the module
    docstring) and counted in :attr:`dropped`.
    """

    def __init__(self, client: RpcClient, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError(f"maxsize must be at least 1, got {maxsize}")
        self._client = client
        self.maxsize = maxsize
        self.dropped = 0
        """Notifies discarded because the queue was full."""
        self._items: collections.deque[Message] = collections.deque()
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False
        self._ended = False

    @property
    def live(self) -> bool:
        """Whether this subscriber still holds the client's slot."""
        return not self._closed and not self._ended

    def _push(self, message: Message) -> None:
        items = self._items
        if len(items) >= self.maxsize:
            items.popleft()
            self.dropped += 1
        items.append(message)
        self._wake()

    def _end(self) -> None:
        self._ended = True
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def __aiter__(self) -> NotifySubscription:
        return self

    async def __anext__(self) -> Message:
        items = self._items
        while not items:
            if self._closed or self._ended:
                raise StopAsyncIteration
            waiter = self._waiter = asyncio.get_running_loop().create_future()
            try:
                await waiter
            finally:
                self._waiter = None
        return items.popleft()

    async def recv(self) -> Message:
        """Wait for the next notify.

        Raises:
            RpcConnectionClosed: the subscription or the connection is closed.
        """
        try:
            return await self.__anext__()
        except StopAsyncIteration:
            raise RpcConnectionClosed("notify subscription closed") from None

    def close(self) -> None:
        """Stop receiving and free the client's slot; queued notifies are discarded."""
        if self._closed:
            return
        self._closed = True
        self._items.clear()
        self._client._release(self)
        self._wake()

    async def aclose(self) -> None:
        """Same as :meth:`close`."""
        self.close()

    def __enter__(self) -> NotifySubscription:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class RpcClient:
    """A REPE client over one :class:`~tether.types.MessageStream`.

    Usually made by :func:`rpc_connect`. Request ids start at 1 and increase with every
    call and notify sent (spec section 3.1).

    Args:
        stream: an open connection.
        assumed_peer_frame_limit: larger requests fail locally with
            :class:`~tether.rpc.errors.MessageTooLarge` (spec section 3.6).
        max_message_size: largest inbound message accepted.
        timeout: default per-call timeout in seconds (``None``: wait forever).
    """

    def __init__(
        self,
        stream: MessageStream,
        *,
        assumed_peer_frame_limit: int | None = DEFAULT_PEER_FRAME_LIMIT,
        max_message_size: int = DEFAULT_MAX_SIZE,
        timeout: float | None = None,
    ) -> None:
        self.stream = stream
        self.assumed_peer_frame_limit = assumed_peer_frame_limit
        self.max_message_size = max_message_size
        self._quick_decode = quick_decoder(max_message_size)
        self.timeout = timeout
        self.notifies_dropped = 0
        """Notifies that arrived with no live subscriber."""
        self.loop = asyncio.get_running_loop()
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Message]] = {}
        self._closed_exc: RpcConnectionClosed | None = None
        self._subscriber: weakref.ref[NotifySubscription] | None = None
        self._reader = self.loop.create_task(self._read_loop())

    # Lifecycle

    @property
    def closed(self) -> bool:
        """Whether the connection is closed (every later call fails)."""
        return self._closed_exc is not None

    @property
    def pending(self) -> int:
        """How many calls wait for a response."""
        return len(self._pending)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the connection; pending calls fail with RpcConnectionClosed."""
        try:
            await self.stream.close(code, reason)
        finally:
            if not self._reader.done():
                await asyncio.wait([self._reader])

    async def wait_closed(self) -> None:
        """Wait until the connection is closed."""
        await asyncio.wait([self._reader])

    async def __aenter__(self) -> RpcClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # Calls

    async def call_raw(
        self,
        path: str,
        body: BytesLike = b"",
        body_format: int = BodyFormat.RAW,
        query_format: int = QueryFormat.JSON_POINTER,
        *,
        timeout: float | None = None,
        check: bool = True,
    ) -> Message:
        """Send a request with an encoded body and return the response message.

        Args:
            path: the query, a JSON pointer when ``query_format`` is 1.
            body: the encoded body.
            body_format: its format.
            query_format: the query format.
            timeout: seconds to wait (the client's default when ``None``).
            check: raise :class:`~tether.rpc.errors.ServerError` when ``ec != 0``.

        Raises:
            ServerError: the server answered with an error (when ``check``).
            CallTimeout: no response in time; a late response is dropped.
            MessageTooLarge: the request is above the assumed peer limit (not sent).
            RpcConnectionClosed: the connection closed before the response.
        """
        id = next(self._ids)
        message = Message(id, path.encode(), body, int(query_format), int(body_format))
        data = self._encode_checked(message)
        pending = self._pending
        future: asyncio.Future[Message] = self.loop.create_future()
        pending[id] = future
        try:
            try:
                await self.stream.send(data)
            except ConnectionClosed as exc:
                raise self._connection_closed() from exc
            if timeout is None:
                timeout = self.timeout
            if timeout is None:
                response = await future
            else:
                try:
                    async with asyncio.timeout(timeout):
                        response = await future
                except TimeoutError:
                    raise CallTimeout(
                        f"no response to {path} (id {id}) within {timeout} s"
                    ) from None
        finally:
            pending.pop(id, None)
        if check and response.ec:
            raise ServerError(response.ec, _error_text(response))
        return response

    async def call_json(self, path: str, value: Any = None, *, timeout: float | None = None) -> Any:
        """Call ``path`` with ``value`` as JSON; return the decoded result.

        ``None`` sends an empty body (a registry read or a call without arguments).
        """
        if value is None:
            response = await self.call_raw(path, timeout=timeout)
        else:
            body = encode_body(to_builtins(value), _JSON)
            response = await self.call_raw(path, body, _JSON, timeout=timeout)
        return decode_response_body(response)

    async def call_beve(self, path: str, value: Any = None, *, timeout: float | None = None) -> Any:
        """Call ``path`` with ``value`` as BEVE; return the decoded result."""
        if value is None:
            response = await self.call_raw(path, timeout=timeout)
        else:
            body = encode_body(to_builtins(value), _BEVE)
            response = await self.call_raw(path, body, _BEVE, timeout=timeout)
        return decode_response_body(response)

    async def call_typed(
        self, path: str, value: Any, result_type: type[T], *, timeout: float | None = None
    ) -> T:
        """Call ``path`` with ``value`` (a dataclass, model, struct...) as JSON.

        Returns:
            The result converted to ``result_type``.

        Raises:
            tether.rpc._convert.ConversionError: (a :class:`ValueError`) the result does
                not have the shape of ``result_type``.
        """
        result = await self.call_json(path, value, timeout=timeout)
        converted: T = converter_for(result_type)(result)
        return converted

    async def batch_json(
        self,
        calls: Iterable[tuple[str, Any]],
        *,
        timeout: float | None = None,
        return_exceptions: bool = False,
    ) -> list[Any]:
        """Make several JSON calls concurrently; results come in input order.

        Args:
            calls: ``(path, value)`` pairs.
            timeout: per-call timeout.
            return_exceptions: put each failure in its place in the list instead of
                raising the first one (in input order) once all calls are done.
        """
        results = await asyncio.gather(
            *(self.call_json(path, value, timeout=timeout) for path, value in calls),
            return_exceptions=True,
        )
        if not return_exceptions:
            for result in results:
                if isinstance(result, BaseException):
                    raise result
        return list(results)

    # Notifies to the server: they consume an id and never wait for an answer.

    async def notify_raw(
        self,
        path: str,
        body: BytesLike = b"",
        body_format: int = BodyFormat.RAW,
        query_format: int = QueryFormat.JSON_POINTER,
    ) -> None:
        """Send a notify with an encoded body."""
        message = Message(
            next(self._ids), path.encode(), body, int(query_format), int(body_format), notify=True
        )
        data = self._encode_checked(message)
        try:
            await self.stream.send(data)
        except ConnectionClosed as exc:
            raise self._connection_closed() from exc

    async def notify_json(self, path: str, value: Any = None) -> None:
        """Send a notify with ``value`` as JSON (an empty body for ``None``)."""
        if value is None:
            await self.notify_raw(path)
        else:
            await self.notify_raw(path, encode_body(to_builtins(value), _JSON), _JSON)

    async def notify_beve(self, path: str, value: Any) -> None:
        """Send a notify with ``value`` as BEVE."""
        await self.notify_raw(path, encode_body(to_builtins(value), _BEVE), _BEVE)

    # Notifies from the server (spec section 3.2)

    def subscribe_notifies(self, maxsize: int = 1024) -> NotifySubscription:
        """Receive the notifies the server pushes.

        Args:
            maxsize: most notifies queued; the oldest is dropped beyond it.

        Raises:
            AlreadySubscribed: another subscriber is live. A subscriber that was closed
                or garbage collected is replaced silently.
        """
        current = self._subscriber() if self._subscriber is not None else None
        if current is not None and current.live:
            raise AlreadySubscribed("another notify subscriber is live")
        subscription = NotifySubscription(self, maxsize)
        if self._closed_exc is not None:
            subscription._end()
        self._subscriber = weakref.ref(subscription)
        return subscription

    def unsubscribe_notifies(self) -> None:
        """Close the live subscriber, if any, and free the slot."""
        current = self._subscriber() if self._subscriber is not None else None
        self._subscriber = None
        if current is not None:
            current.close()

    def _release(self, subscription: NotifySubscription) -> None:
        if self._subscriber is not None and self._subscriber() is subscription:
            self._subscriber = None

    # Private

    def _encode_checked(self, message: Message) -> bytes:
        if self._closed_exc is not None:
            raise self._connection_closed()
        limit = self.assumed_peer_frame_limit
        size = HEADER_SIZE + len(message.query) + len(message.body)
        if limit is not None and size > limit:
            raise MessageTooLarge(size, limit)
        return message.encode()

    def _connection_closed(self) -> RpcConnectionClosed:
        if self._closed_exc is not None:
            exc = RpcConnectionClosed(str(self._closed_exc))
            exc.__cause__ = self._closed_exc.__cause__
            return exc
        return RpcConnectionClosed()

    async def _read_loop(self) -> None:
        stream = self.stream
        recv_message = getattr(stream, "recv_message", None)
        pending = self._pending
        # tether's own connections: responses and notifies are handled in the read
        # callback (_take); text and malformed messages come here.
        arm = stream.set_message_sink if isinstance(stream, WsConnection) else None
        take = self._take
        cause: BaseException | None = None
        try:
            while True:
                if arm is not None:
                    arm(take)
                try:
                    if recv_message is not None:
                        message = await recv_message()
                    else:
                        data = await stream.recv()
                        if isinstance(data, str):
                            logger.warning("text message received; closing the rpc connection")
                            await stream.close(1003, BINARY_ONLY_REASON)
                            return
                        message = decode(data, max_size=self.max_message_size)
                except ConnectionClosed as exc:
                    cause = exc
                    return
                except RepeError as exc:
                    if exc.ec == ErrorCode.VERSION_MISMATCH and exc.id is not None:
                        future = None if exc.notify else pending.pop(exc.id, None)
                        if future is not None and not future.done():
                            future.set_exception(ServerError(exc.ec, str(exc)))
                        continue
                    if recv_message is not None:  # a byte stream cannot resynchronize
                        cause = exc
                        return
                    # Spec section 3.2: a malformed message alone does not end the session.
                    logger.warning("dropped a malformed repe message: %s", exc)
                    continue
                self._dispatch(message)
        except Exception as exc:
            cause = exc
            logger.warning("rpc client reader failed", exc_info=True)
        finally:
            if arm is not None:
                arm(None)
            self._fail_all(cause)

    def _take(self, data: Data) -> bool:
        """The message sink: a well-formed response or notify, handled at once."""
        if type(data) is not bytes:
            return False
        message = self._quick_decode(data)
        if message is None:
            return False  # malformed: the reader decodes it again and reports it
        self._dispatch(message)
        return True

    def _dispatch(self, message: Message) -> None:
        # Spec section 3.2: the notify flag first, then the id.
        if message.notify:
            self._deliver_notify(message)
            return
        future = self._pending.pop(message.id, None)
        if future is None or future.done():
            logger.debug("dropped a response to id %d: no call waits for it", message.id)
            return
        future.set_result(message)

    def _deliver_notify(self, message: Message) -> None:
        subscriber = self._subscriber() if self._subscriber is not None else None
        if subscriber is None or not subscriber.live:
            self.notifies_dropped += 1
            return
        subscriber._push(message)

    def _fail_all(self, cause: BaseException | None) -> None:
        pending = list(self._pending.values())
        self._pending.clear()
        exc = RpcConnectionClosed(
            f"rpc connection closed: {cause}" if cause is not None else "rpc connection closed"
        )
        exc.__cause__ = cause
        self._closed_exc = exc
        for future in pending:
            if not future.done():
                failure = RpcConnectionClosed(str(exc))
                failure.__cause__ = cause
                future.set_exception(failure)
        subscriber = self._subscriber() if self._subscriber is not None else None
        if subscriber is not None:
            subscriber._end()


def _error_text(message: Message) -> str:
    # Spec section 1.6: the body, if any, is the message as UTF-8.
    try:
        return str(message.body, "utf-8")
    except UnicodeDecodeError:
        return bytes(message.body).decode("utf-8", "replace")


class rpc_connect:
    """Connect to a REPE WebSocket server; await it or use ``async with``.

    ::

        client = await rpc_connect("ws://127.0.0.1:8081/repe")

    Args:
        url: ``ws://`` or ``wss://`` URL of the REPE endpoint.
        assumed_peer_frame_limit, max_message_size, timeout: see :class:`RpcClient`.
        kwargs: more :func:`tether.asyncio.connect` options; compression is off unless
            asked for, and the WebSocket message limit follows ``max_message_size``.
    """

    def __init__(
        self,
        url: str,
        *,
        assumed_peer_frame_limit: int | None = DEFAULT_PEER_FRAME_LIMIT,
        max_message_size: int = DEFAULT_MAX_SIZE,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> None:
        self._url = url
        self._kwargs = websocket_options(kwargs, max_message_size)
        self._options: dict[str, Any] = dict(
            assumed_peer_frame_limit=assumed_peer_frame_limit,
            max_message_size=max_message_size,
            timeout=timeout,
        )
        self._client: RpcClient | None = None

    async def _connect(self) -> RpcClient:
        connection = await ws_connect(self._url, **self._kwargs)
        return RpcClient(connection, **self._options)

    def __await__(self) -> Generator[Any, None, RpcClient]:
        return self._connect().__await__()

    async def __aenter__(self) -> RpcClient:
        self._client = await self._connect()
        return self._client

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._client is not None
        await self._client.close()
