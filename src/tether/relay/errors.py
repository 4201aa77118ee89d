"""Errors raised by the relay.

::

    TetherError
    └── RelayError                     base class for relay errors
        ├── InvalidTopic (also ValueError)   a topic or pattern that cannot be used
        ├── EnvelopeError              a client message that breaks the wire protocol
        ├── Reject                     raised by a channel handler to refuse a join or message
        └── BackendError               the backend (e.g. Redis) could not do what was asked
"""

from __future__ import annotations

from ..exceptions import TetherError


__all__ = ["BackendError", "EnvelopeError", "InvalidTopic", "Reject", "RelayError"]


class RelayError(TetherError):
    """Base class for relay errors."""


class InvalidTopic(RelayError, ValueError):
    """A topic name or channel pattern that cannot be used."""


class EnvelopeError(RelayError):
    """A client message that breaks the relay wire protocol.

    The relay answers it with ``{"type":"error","message":...}`` (plus ``"topic"`` when
    the message named a valid one) and keeps the connection open.

    Attributes:
        message: the lowercase error text sent to the client.
        topic: the topic the message was about, if it named a valid one.
    """

    def __init__(self, message: str, topic: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.topic = topic


class Reject(RelayError):
    """Raised by a channel handler's ``join`` or ``message`` to refuse the request.

    The client gets ``{"type":"error","message":reason,"topic":T}``.

    Args:
        reason: the text sent to the client.
    """

    def __init__(self, reason: str = "rejected") -> None:
        super().__init__(reason)
        self.reason = reason


class BackendError(RelayError):
    """The backend failed (for Redis: the server is unreachable); the cause is chained."""
