"""Observability hooks: subclass :class:`EventListener` and override what you need.

Listeners run synchronously on the event loop, in registration order, and must not block.
An exception in a listener is a bug in that listener; it propagates like any callback error.
"""

from __future__ import annotations

from typing import TYPE_CHECKING


if TYPE_CHECKING:  # pragma: no cover
    from ..exceptions import ConnectionClosed
    from ..types import Data
    from .connection import Connection


__all__ = ["EventListener"]


class EventListener:
    """Receives connection lifecycle and traffic events. Every method is a no-op here."""

    def opened(self, connection: Connection) -> None:
        """The opening handshake succeeded."""

    def message_received(self, connection: Connection, message: Data) -> None:
        """A whole message arrived (before the application reads it)."""

    def message_sent(self, connection: Connection, message: object) -> None:
        """A message was queued for sending."""

    def ping_received(self, connection: Connection, data: bytes) -> None:
        """A ping arrived (the pong is sent automatically)."""

    def pong_received(self, connection: Connection, data: bytes) -> None:
        """A pong arrived."""

    def closing(self, connection: Connection, code: int, reason: str) -> None:
        """A close frame was sent or received first."""

    def closed(self, connection: Connection, exc: ConnectionClosed) -> None:
        """The connection closed cleanly (1000 or 1001 both ways)."""

    def failed(self, connection: Connection, exc: ConnectionClosed) -> None:
        """The connection closed in any other way; ``exc`` says how."""
