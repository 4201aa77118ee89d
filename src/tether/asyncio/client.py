"""The asyncio WebSocket client: :func:`connect` and :class:`ClientConnection`."""

from __future__ import annotations

import asyncio
import base64
import logging
import random
import socket
import ssl as ssl_module
import urllib.parse
from collections.abc import AsyncIterator, Generator, Sequence
from types import TracebackType
from typing import Any

from ..exceptions import (
    InvalidHandshake,
    InvalidMessage,
    InvalidStatus,
    InvalidURI,
    ProxyError,
    SecurityError,
)
from ..protocol.connection import CLIENT, Protocol, State
from ..protocol.extensions.base import ClientExtensionFactory
from ..protocol.extensions.permessage_deflate import ClientPerMessageDeflateFactory
from ..protocol.handshake import client_request, client_validate, generate_key
from ..protocol.headers import Headers
from ..protocol.http11 import Response, ResponseParser
from ..protocol.limits import Limits
from ..protocol.uri import WebSocketURI, parse_uri
from ..types import Origin, Subprotocol
from .connection import Connection, _select_extensions
from .events import EventListener


__all__ = ["ClientConnection", "connect"]

logger = logging.getLogger("tether.client")

HeadersLike = Headers | dict[str, str] | Sequence[tuple[str, str]]


class ClientConnection(Connection):
    """A client-side connection.

    Attributes:
        request: the opening handshake request sent.
        response: the handshake response received.
    """

    def __init__(self, protocol: Protocol, request_bytes: bytes, limits: Limits, **kw: Any):
        super().__init__(protocol, **kw)
        self._request_bytes = request_bytes
        self._parser: ResponseParser | None = ResponseParser(limits)
        self._opening = True
        self._response_waiter: asyncio.Future[Response] = self.loop.create_future()
        self._leftover = b""
        self._key = ""
        self.response: Response | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        assert self.transport is not None
        self.transport.write(self._request_bytes)

    def _opening_data(self, data: bytes) -> None:
        parser = self._parser
        assert parser is not None
        try:
            response = parser.feed(data)
        except (InvalidMessage, SecurityError) as exc:
            self._end_opening()
            self._fail_handshake(exc)
            return
        if response is not None:
            self._end_opening()
            self._leftover = parser.leftover
            assert self.transport is not None
            self.transport.pause_reading()
            if not self._response_waiter.done():
                self._response_waiter.set_result(response)

    def eof_received(self) -> bool | None:
        parser = self._parser
        if parser is not None:
            self._end_opening()
            try:
                response = parser.feed_eof()
            except (InvalidMessage, SecurityError) as exc:
                self._fail_handshake(exc)
                return None
            if response is not None and not self._response_waiter.done():
                self._response_waiter.set_result(response)
            else:
                self._fail_handshake(InvalidMessage("connection closed during handshake"))
            return None
        return super().eof_received()

    def _end_opening(self) -> None:
        """From now on, received bytes are WebSocket frames."""
        self._parser = None
        self._opening = False

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._response_waiter.done():
            error = InvalidMessage("connection lost during handshake")
            error.__cause__ = exc
            self._fail_handshake(error)
        super().connection_lost(exc)

    def _fail_handshake(self, exc: Exception) -> None:
        if not self._response_waiter.done():
            self._response_waiter.set_exception(exc)
        if self.transport is not None:
            self.transport.close()

    def _open(self, extensions: list[Any], subprotocol: Subprotocol | None) -> None:
        self.protocol.open(extensions)
        self.subprotocol = subprotocol
        self._start()
        leftover, self._leftover = self._leftover, b""
        if leftover:
            self.protocol.receive_data(leftover)
            self._process_events()
        assert self.transport is not None
        self.transport.resume_reading()


class connect:
    """Open a WebSocket connection; await it, use it as a context manager, or iterate.

    ::

        async with connect("ws://127.0.0.1:8765/") as ws:
            await ws.send("hello")
            print(await ws.recv())

        # Reconnect forever with exponential backoff and jitter:
        async for ws in connect("ws://127.0.0.1:8765/"):
            try:
                async for message in ws:
                    ...
            except ConnectionClosed:
                continue

    Args:
        uri: ``ws://`` or ``wss://`` URL.
        subprotocols: subprotocols to offer, in order of preference.
        headers: extra request headers.
        origin: value of the Origin header.
        ssl: an SSL context for wss:// (the default context when ``None``).
        server_hostname: host name for TLS verification, if not the URL's.
        open_timeout: seconds allowed for TCP connect, proxy tunnel and handshake.
        proxy: ``http://[user:pass@]host:port`` of an HTTP proxy reached with CONNECT.
        max_redirects: how many 3xx redirects to follow.
        compression: ``"deflate"`` (default) or ``None``.
        extensions: extension factories, instead of ``compression``.
        limits: size limits.
        user_agent: User-Agent header value, or ``None`` for none.
        ping_interval, ping_timeout, close_timeout, max_queue, write_limit, listeners: see
            :class:`~tether.asyncio.connection.Connection`.
        backoff_initial, backoff_factor, backoff_max: reconnect delays in seconds when
            iterating: the n-th consecutive failure waits a random time up to
            ``min(backoff_max, backoff_initial * backoff_factor ** n)``.
        sock: an already connected socket to use instead of opening one.
    """

    def __init__(
        self,
        uri: str,
        *,
        subprotocols: Sequence[str] | None = None,
        headers: HeadersLike | None = None,
        origin: str | None = None,
        ssl: ssl_module.SSLContext | None = None,
        server_hostname: str | None = None,
        open_timeout: float | None = 10.0,
        proxy: str | None = None,
        max_redirects: int = 10,
        compression: str | None = "deflate",
        extensions: Sequence[ClientExtensionFactory] | None = None,
        limits: Limits | None = None,
        user_agent: str | None = "tether",
        ping_interval: float | None = 20.0,
        ping_timeout: float | None = 20.0,
        close_timeout: float = 10.0,
        max_queue: int | tuple[int, int] = 1024 * 1024,
        write_limit: int | tuple[int, int] = 64 * 1024,
        listeners: Sequence[EventListener] = (),
        backoff_initial: float = 1.0,
        backoff_factor: float = 1.6,
        backoff_max: float = 60.0,
        sock: socket.socket | None = None,
    ) -> None:
        extensions = _select_extensions(compression, extensions, ClientPerMessageDeflateFactory)
        self.uri = uri
        self.subprotocols = [Subprotocol(s) for s in subprotocols] if subprotocols else None
        self.headers = headers
        self.origin = Origin(origin) if origin is not None else None
        self.ssl = ssl
        self.server_hostname = server_hostname
        self.open_timeout = open_timeout
        self.proxy = proxy
        self.max_redirects = max_redirects
        self.extensions = list(extensions)
        self.limits = limits if limits is not None else Limits()
        self.user_agent = user_agent
        self.connection_options: dict[str, Any] = dict(
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            close_timeout=close_timeout,
            max_queue=max_queue,
            write_limit=write_limit,
            listeners=listeners,
        )
        self.backoff_initial = backoff_initial
        self.backoff_factor = backoff_factor
        self.backoff_max = backoff_max
        self.sock = sock
        self.connection: ClientConnection | None = None

    async def _connect(self) -> ClientConnection:
        async with asyncio.timeout(self.open_timeout):
            uri = parse_uri(self.uri)
            for _ in range(self.max_redirects + 1):
                connection = await self._connect_once(uri)
                try:
                    response = await connection._response_waiter
                except BaseException:
                    # Timeout, cancellation or a bad response: drop the connection.
                    if connection.transport is not None:
                        connection.transport.abort()
                    raise
                connection.response = response
                location = response.headers.get("Location")
                if response.status_code in (301, 302, 303, 307, 308) and location:
                    connection.transport.abort()  # type: ignore[union-attr]
                    new_uri = urllib.parse.urljoin(uri_to_str(uri), location)
                    try:
                        new = parse_uri(new_uri)
                    except InvalidURI as exc:
                        raise InvalidHandshake(f"invalid redirect: {new_uri}") from exc
                    if uri.secure and not new.secure:
                        raise InvalidHandshake(
                            f"refusing to redirect from wss:// to ws://: {new_uri}"
                        )
                    uri = new
                    continue
                try:
                    subprotocol, extensions = client_validate(
                        response,
                        key=connection._key,
                        subprotocols=self.subprotocols,
                        extensions=self.extensions,
                    )
                except InvalidHandshake:
                    if connection.transport is not None:
                        connection.transport.abort()
                    raise
                connection.response_headers = response.headers
                connection.path = uri.path
                connection.query = uri.query
                connection._open(extensions, subprotocol)
                return connection
            raise InvalidHandshake("too many redirects")

    async def _connect_once(self, uri: WebSocketURI) -> ClientConnection:
        loop = asyncio.get_running_loop()
        key = generate_key()
        request = client_request(
            uri,
            key=key,
            origin=self.origin,
            subprotocols=self.subprotocols,
            extensions=self.extensions,
            headers=self.headers,
            user_agent=self.user_agent,
        )

        def factory() -> ClientConnection:
            connection = ClientConnection(
                Protocol(CLIENT, state=State.CONNECTING, limits=self.limits),
                request.serialize(),
                self.limits,
                **self.connection_options,
            )
            connection._key = key
            connection.request_headers = request.headers
            return connection

        ssl_context: ssl_module.SSLContext | None = None
        if uri.secure:
            ssl_context = self.ssl if self.ssl is not None else ssl_module.create_default_context()
        server_hostname = self.server_hostname or uri.host if ssl_context is not None else None
        sock = self.sock
        if sock is None and self.proxy is not None:
            sock = await _open_tunnel(self.proxy, uri.host, uri.port)
        if sock is not None:
            _, connection = await loop.create_connection(
                factory, sock=sock, ssl=ssl_context, server_hostname=server_hostname
            )
        else:
            _, connection = await loop.create_connection(
                factory, uri.host, uri.port, ssl=ssl_context, server_hostname=server_hostname
            )
        return connection

    def __await__(self) -> Generator[Any, None, ClientConnection]:
        return self._connect().__await__()

    async def __aenter__(self) -> ClientConnection:
        self.connection = await self._connect()
        return self.connection

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self.connection is not None
        await self.connection.close()

    async def __aiter__(self) -> AsyncIterator[ClientConnection]:
        failures = 0
        while True:
            try:
                connection = await self._connect()
            except (OSError, TimeoutError, InvalidHandshake) as exc:
                if isinstance(exc, InvalidStatus) and 400 <= exc.status < 500:
                    # A client error will not fix itself: don't retry.
                    raise
                delay = random.uniform(
                    0, min(self.backoff_max, self.backoff_initial * self.backoff_factor**failures)
                )
                failures += 1
                logger.info("! connect failed (%s); retrying in %.2f s", exc, delay)
                await asyncio.sleep(delay)
                continue
            failures = 0
            try:
                yield connection
            finally:
                if connection.state is not State.CLOSED:
                    await connection.close()


def uri_to_str(uri: WebSocketURI) -> str:
    scheme = "wss" if uri.secure else "ws"
    default = 443 if uri.secure else 80
    host = f"[{uri.host}]" if ":" in uri.host else uri.host
    port = "" if uri.port == default else f":{uri.port}"
    return f"{scheme}://{host}{port}{uri.resource_name}"


async def _open_tunnel(proxy: str, host: str, port: int) -> socket.socket:
    """Open a TCP tunnel through an HTTP proxy with CONNECT (RFC 9110 section 9.3.6)."""
    parsed = urllib.parse.urlsplit(proxy)
    if parsed.scheme != "http" or not parsed.hostname:
        raise InvalidURI(proxy, "only http:// proxies are supported")
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(parsed.hostname, parsed.port or 8080, type=socket.SOCK_STREAM)
    family, type_, proto, _, address = infos[0]
    sock = socket.socket(family, type_, proto)
    sock.setblocking(False)
    try:
        await loop.sock_connect(sock, address)
        target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        lines = [f"CONNECT {target} HTTP/1.1", f"Host: {target}"]
        if parsed.username is not None:
            credentials = f"{urllib.parse.unquote(parsed.username)}:"
            credentials += urllib.parse.unquote(parsed.password or "")
            token = base64.b64encode(credentials.encode()).decode()
            lines.append(f"Proxy-Authorization: Basic {token}")
        await loop.sock_sendall(sock, ("\r\n".join(lines) + "\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = await loop.sock_recv(sock, 4096)
            if not chunk:
                raise ProxyError("proxy closed the connection")
            head += chunk
            if len(head) > 16384:
                raise ProxyError("proxy response too large")
        status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[1].isdigit():
            raise ProxyError(f"invalid proxy response: {status_line}")
        if not 200 <= int(parts[1]) < 300:
            raise ProxyError(f"proxy refused the tunnel: {status_line}")
        if head.index(b"\r\n\r\n") + 4 != len(head):
            raise ProxyError("proxy sent data after its response")
        return sock
    except BaseException:
        sock.close()
        raise
