"""Errors of the RPC runtime: handler errors, client errors and server events.

::

    TetherError
    ├── RpcError                  an error with a REPE code (``ec``) and a message
    │   ├── ApplicationError      ...code 4096, an ordinary application failure
    │   └── ServerError           the peer answered a call with ``ec != 0``
    ├── RpcConnectionClosed       (a ConnectionClosed) the RPC connection ended
    ├── CallTimeout               (also TimeoutError) no response within the timeout
    ├── MessageTooLarge           an outbound request is above the assumed peer limit
    ├── AlreadySubscribed         a second live notify subscriber
    ├── CreditTimeout             streaming: no credit before the deadline
    ├── CreditCancelled           streaming: the transfer was cancelled
    └── RpcServerEvent            what a server reports through ``on_error``
        ├── HandshakeError        an upgrade was refused (wrong path...)
        ├── PeerConnectionError   a peer broke the transport rules (text, bad frame)
        ├── HandlerCrash          a handler raised something other than RpcError
        ├── Saturation            a request was refused with ec 8
        └── OutboundTooLarge      a response or notify above the peer frame limit
"""

from __future__ import annotations

from ..exceptions import ConnectionClosed, TetherError
from .repe import ErrorCode, error_name


__all__ = [
    "AlreadySubscribed",
    "ApplicationError",
    "CallTimeout",
    "CreditCancelled",
    "CreditTimeout",
    "HandlerCrash",
    "HandshakeError",
    "MessageTooLarge",
    "OutboundTooLarge",
    "PeerConnectionError",
    "RpcConnectionClosed",
    "RpcError",
    "RpcServerEvent",
    "Saturation",
    "ServerError",
]


class RpcError(TetherError):
    """An error with a REPE error code.

    Raise it in a handler to answer with that code: application codes are 4096 and
    above (spec section 1.5); codes below 4096 are REPE's own.

    Attributes:
        code: the ``ec`` value.
        message: the error text, sent as the UTF-8 body of the error response.
    """

    def __init__(self, code: int, message: str = "") -> None:
        if not 0 < code < 1 << 32:
            raise ValueError(f"error code out of range: {code}")
        super().__init__(code, message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return self.message or error_name(self.code)


class ApplicationError(RpcError):
    """An ordinary application failure: code 4096 (``ApplicationErrorBase``)."""

    def __init__(self, message: str = "", code: int = ErrorCode.APPLICATION_ERROR_BASE) -> None:
        super().__init__(code, message)


class ServerError(RpcError):
    """The peer answered a call with a non-zero ``ec``.

    Unknown codes (Glaze's own numbering, application codes) are kept as they are;
    :attr:`name` describes them in words.
    """

    @property
    def name(self) -> str:
        """The code in words, e.g. ``"method not found"`` or ``"unknown error 37"``."""
        return error_name(self.code)

    def __str__(self) -> str:
        name = self.name
        if str(self.code) not in name:
            name = f"{name} ({self.code})"
        return f"{name}: {self.message}" if self.message else name


class RpcConnectionClosed(ConnectionClosed):
    """The RPC connection is closed; pending calls fail with this error.

    The WebSocket close frames, when known, are in ``rcvd`` and ``sent`` and the
    transport's own error is ``__cause__``.
    """

    def __init__(self, msg: str = "rpc connection closed") -> None:
        super().__init__(None, None)
        self.msg = msg

    def __str__(self) -> str:
        return self.msg


class CallTimeout(TetherError, TimeoutError):
    """No response arrived within the call's timeout (a late response is dropped)."""


class MessageTooLarge(TetherError):
    """An outbound message is larger than the peer is assumed to accept (spec 3.6).

    Attributes:
        size: the encoded message size in bytes.
        limit: the assumed peer frame limit in bytes.
    """

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(size, limit)
        self.size = size
        self.limit = limit

    def __str__(self) -> str:
        return f"message of {self.size} bytes is over the assumed peer limit of {self.limit} bytes"


class AlreadySubscribed(TetherError):
    """:meth:`RpcClient.subscribe_notifies` while another subscriber is live (spec 3.2)."""


class CreditTimeout(TetherError, TimeoutError):
    """Streaming: no ACK made room in the window before the deadline (spec 3.7)."""


class CreditCancelled(TetherError):
    """Streaming: the transfer was cancelled while waiting for credit (spec 3.7).

    Attributes:
        reason: the reason given to :meth:`TransferControl.cancel`.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return f"transfer cancelled: {self.reason}"


class RpcServerEvent(TetherError):
    """Something went wrong on a server connection; passed to the ``on_error`` hook.

    Attributes:
        peer_id: the connection's peer id, or ``None`` before it has one.
    """

    def __init__(self, msg: str, peer_id: int | None = None) -> None:
        super().__init__(msg)
        self.peer_id = peer_id


class HandshakeError(RpcServerEvent):
    """An upgrade was refused before a peer existed (unknown path, failed hook)."""


class PeerConnectionError(RpcServerEvent):
    """A peer broke the transport rules (a text message, a malformed REPE message)."""


class HandlerCrash(RpcServerEvent):
    """A handler raised an exception other than :class:`RpcError` (answered with ec 9).

    The exception is ``__cause__``.

    Attributes:
        path: the method path.
    """

    def __init__(self, msg: str, peer_id: int | None = None, path: str = "") -> None:
        super().__init__(msg, peer_id)
        self.path = path


class Saturation(RpcServerEvent):
    """A request was refused with ec 8: the off-reader limit was reached (spec 3.5).

    Attributes:
        path: the method path.
    """

    def __init__(self, msg: str, peer_id: int | None = None, path: str = "") -> None:
        super().__init__(msg, peer_id)
        self.path = path


class OutboundTooLarge(RpcServerEvent):
    """A response or notify was above the assumed peer frame limit (spec 3.6).

    A response is replaced by an ec 9 error; a notify is dropped.

    Attributes:
        kind: ``"response"`` or ``"notify"``.
        size: the encoded size in bytes.
        limit: the assumed peer frame limit.
    """

    def __init__(
        self, msg: str, peer_id: int | None = None, *, kind: str, size: int, limit: int
    ) -> None:
        super().__init__(msg, peer_id)
        self.kind = kind
        self.size = size
        self.limit = limit
