"""REPE over raw TCP (spec section 2.1): messages back to back, framed by their length.

:class:`TcpMessageStream` adapts an asyncio stream pair to the
:class:`~tether.types.MessageStream` shape the RPC server and client use, so the same
:class:`~tether.rpc.router.Router`, :class:`~tether.rpc.server.RpcServer` and
:class:`~tether.rpc.client.RpcClient` run over it. As with Glaze's TCP server, any
malformed input (length below 48 or above the limit, bad magic, wrong version) closes
the connection without a REPE reply: a byte stream cannot resynchronize.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Mapping
from typing import Any

from ..types import Data, DataLike
from .client import RpcClient
from .errors import RpcConnectionClosed
from .repe import DEFAULT_MAX_SIZE, ErrorCode, Message, RepeError, StreamDecoder
from .server import DEFAULT_PEER_FRAME_LIMIT, RpcServer


__all__ = ["TcpMessageStream", "TcpServer", "rpc_connect_tcp", "serve_tcp"]

_READ_SIZE = 256 * 1024


class _TcpPeerInfo:
    __slots__ = ("remote_address",)

    path = ""
    query = ""
    headers: Mapping[str, str] = {}

    def __init__(self, remote_address: Any) -> None:
        self.remote_address = remote_address


class TcpMessageStream:
    """One REPE message per :meth:`recv`, over a TCP byte stream.

    Args:
        reader: the connection's :class:`asyncio.StreamReader`.
        writer: its :class:`asyncio.StreamWriter`.
        max_message_size: largest message accepted, checked from its first 8 bytes.
    """

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        max_message_size: int = DEFAULT_MAX_SIZE,
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.transport = writer.transport
        self._decoder = StreamDecoder(max_message_size)
        self._messages: collections.deque[Message] = collections.deque()
        self._peer = _TcpPeerInfo(writer.get_extra_info("peername"))
        self._failed = False

    @property
    def peer(self) -> _TcpPeerInfo:
        """The remote address; the handshake fields are empty (TCP has no handshake)."""
        return self._peer

    async def recv_message(self) -> Message:
        """Receive the next message, decoded.

        Raises:
            RpcConnectionClosed: the stream ended (or broke earlier).
            RepeError: the stream is malformed (reported once, then closed).
        """
        messages = self._messages
        while not messages:
            if self._failed:
                raise RpcConnectionClosed("tcp connection closed")
            try:
                data = await self.reader.read(_READ_SIZE)
            except ConnectionError as exc:
                self._failed = True
                raise RpcConnectionClosed(f"tcp connection lost: {exc}") from exc
            try:
                if not data:
                    self._failed = True
                    self._decoder.feed_eof()
                    raise RpcConnectionClosed("tcp connection closed")
                messages.extend(self._decoder.feed(data))
            except RepeError as exc:
                self._failed = True
                # Without an id the server treats it as malformed and closes.
                raise RepeError(str(exc), ErrorCode.INVALID_HEADER) from exc
        return messages.popleft()

    async def recv(self) -> Data:
        """Receive the next message as bytes (the :class:`MessageStream` shape)."""
        return (await self.recv_message()).encode()

    async def send(self, message: DataLike) -> None:
        """Write one encoded REPE message.

        Raises:
            TypeError: ``message`` is text.
            RpcConnectionClosed: the connection is closed.
        """
        if isinstance(message, str):
            raise TypeError("repe over tcp sends bytes only")
        if self.writer.is_closing():
            raise RpcConnectionClosed("tcp connection closed")
        self.writer.write(message)
        try:
            await self.writer.drain()
        except ConnectionError as exc:
            raise RpcConnectionClosed(f"tcp connection lost: {exc}") from exc

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the connection (TCP has no close code; they are ignored)."""
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except ConnectionError:
            pass


class TcpServer:
    """A listening REPE-over-TCP server (see :func:`serve_tcp`)."""

    def __init__(self, rpc: RpcServer, server: asyncio.Server) -> None:
        self.rpc = rpc
        self.server = server

    @property
    def port(self) -> int:
        """The port of the first listening socket."""
        return int(self.server.sockets[0].getsockname()[1])

    async def shutdown(self, drain_timeout: float = 10.0) -> None:
        """Stop accepting, then drain the RPC server's connections."""
        self.server.close()
        await self.rpc.shutdown_token.shutdown(drain_timeout)
        await self.server.wait_closed()

    async def __aenter__(self) -> TcpServer:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.shutdown(self.rpc.flush_timeout)


async def serve_tcp(rpc: RpcServer, host: str | None, port: int, **kwargs: Any) -> TcpServer:
    """Serve ``rpc`` over raw TCP.

    Args:
        rpc: the server (its router, limits, hooks, peers apply).
        host: address to listen on.
        port: TCP port, 0 for any.
        kwargs: more :func:`asyncio.start_server` options.
    """

    async def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        stream = TcpMessageStream(reader, writer, max_message_size=rpc.max_message_size)
        await rpc.handle(stream)

    server = await asyncio.start_server(on_connection, host, port, **kwargs)
    return TcpServer(rpc, server)


async def rpc_connect_tcp(
    host: str,
    port: int,
    *,
    assumed_peer_frame_limit: int | None = DEFAULT_PEER_FRAME_LIMIT,
    max_message_size: int = DEFAULT_MAX_SIZE,
    timeout: float | None = None,
) -> RpcClient:
    """Connect an :class:`~tether.rpc.client.RpcClient` to a REPE-over-TCP server."""
    reader, writer = await asyncio.open_connection(host, port)
    stream = TcpMessageStream(reader, writer, max_message_size=max_message_size)
    return RpcClient(
        stream,
        assumed_peer_frame_limit=assumed_peer_frame_limit,
        max_message_size=max_message_size,
        timeout=timeout,
    )
