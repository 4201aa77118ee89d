"""Bottom layer: aliases, protocol strings and the :class:`MessageStream` protocol.

Everything above this module may import it; it imports only the standard library.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Mapping
from typing import Any, NewType, Protocol, TypeAlias, runtime_checkable


__all__ = [
    "BytesLike",
    "Data",
    "DataLike",
    "ExtensionName",
    "ExtensionParameter",
    "HandshakeInfo",
    "MessageStream",
    "Origin",
    "PeerInfo",
    "Subprotocol",
]

Data: TypeAlias = str | bytes
"""A WebSocket message as received: :class:`str` for text, :class:`bytes` for binary."""

BytesLike: TypeAlias = bytes | bytearray | memoryview
"""Anything accepted where bytes are expected."""

DataLike: TypeAlias = str | bytes | bytearray | memoryview
"""Anything accepted as a message to send."""

Subprotocol = NewType("Subprotocol", str)
"""A subprotocol name from ``Sec-WebSocket-Protocol``."""

Origin = NewType("Origin", str)
"""A value of the ``Origin`` header."""

ExtensionName = NewType("ExtensionName", str)
"""An extension name from ``Sec-WebSocket-Extensions``."""

ExtensionParameter: TypeAlias = tuple[str, str | None]
"""An extension parameter: name and optional value."""


@runtime_checkable
class PeerInfo(Protocol):
    """What a message stream knows about its peer and its opening handshake."""

    @property
    def path(self) -> str:
        """The request path of the opening handshake, without the query string."""

    @property
    def query(self) -> str:
        """The raw query string of the opening handshake ("" when absent)."""

    @property
    def headers(self) -> Mapping[str, str]:
        """The request headers of the opening handshake (case-insensitive keys)."""

    @property
    def remote_address(self) -> Any:
        """The peer's address as the transport reports it, or ``None``."""


@dataclasses.dataclass(frozen=True, slots=True)
class HandshakeInfo:
    """A :class:`PeerInfo` value: the opening handshake and the peer's address."""

    path: str
    query: str
    headers: Mapping[str, str]
    remote_address: Any


@runtime_checkable
class MessageStream(Protocol):
    """A bidirectional stream of whole WebSocket messages.

    The RPC server and the relay talk to peers only through this interface, so they run
    over tether's own connections, over ASGI, and over in-memory pairs alike.
    """

    def send(self, message: DataLike) -> Awaitable[None]:
        """Send one message (text for :class:`str`, binary otherwise); await the result."""

    async def recv(self) -> Data:
        """Receive the next message; raise ConnectionClosed when the stream ends."""

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the stream with a close code and reason."""

    @property
    def peer(self) -> PeerInfo:
        """Information about the peer and the opening handshake."""
