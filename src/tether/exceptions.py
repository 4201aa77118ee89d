"""The tether error tree.

Every error tether raises derives from :class:`TetherError`::

    TetherError
    ├── InvalidURI                       a ws:// or wss:// URL that cannot be used
    ├── InvalidHandshake                 the opening handshake failed
    │   ├── InvalidMessage               malformed HTTP request or response
    │   ├── InvalidHeader                a missing or malformed header
    │   │   ├── InvalidHeaderFormat      header value does not parse
    │   │   ├── InvalidHeaderValue       header parses but has an unacceptable value
    │   │   ├── InvalidOrigin            Origin header not allowed
    │   │   └── InvalidUpgrade           Upgrade/Connection headers wrong
    │   ├── InvalidStatus                a client received a non-101 response
    │   ├── NegotiationError             subprotocol or extension negotiation failed
    │   │   ├── DuplicateParameter
    │   │   ├── InvalidParameterName
    │   │   └── InvalidParameterValue
    │   ├── RejectHandshake              raised by a hook to refuse with an HTTP status
    │   └── ProxyError                   the HTTP proxy refused the CONNECT tunnel
    ├── ProtocolError                    the peer broke RFC 6455/7692 (carries the close code)
    │   └── PayloadTooBig                a message or frame exceeded a limit (1009)
    ├── SecurityError                    a handshake limit was exceeded
    ├── ConnectionClosed                 the connection is closed (carries both close frames)
    │   ├── ConnectionClosedOK           ...with 1000 or 1001 on both sides
    │   └── ConnectionClosedError        ...any other way
    ├── InvalidState (also AssertionError)     an operation is not allowed in this state
    └── ConcurrencyError (also RuntimeError)   two coroutines did what only one may do

Protocol errors carry the close code to send back; limit breaches are
:class:`PayloadTooBig` (close code 1009) or :class:`SecurityError` (HTTP 4xx).
"""

from __future__ import annotations

from typing import TYPE_CHECKING


if TYPE_CHECKING:  # pragma: no cover
    from .protocol.close import Close
    from .protocol.http11 import Response


__all__ = [
    "ConcurrencyError",
    "ConnectionClosed",
    "ConnectionClosedError",
    "ConnectionClosedOK",
    "DuplicateParameter",
    "InvalidHandshake",
    "InvalidHeader",
    "InvalidHeaderFormat",
    "InvalidHeaderValue",
    "InvalidMessage",
    "InvalidOrigin",
    "InvalidParameterName",
    "InvalidParameterValue",
    "InvalidState",
    "InvalidStatus",
    "InvalidURI",
    "InvalidUpgrade",
    "NegotiationError",
    "PayloadTooBig",
    "ProtocolError",
    "ProxyError",
    "RejectHandshake",
    "SecurityError",
    "TetherError",
]


class TetherError(Exception):
    """Base class for every error tether raises."""


class InvalidURI(TetherError):
    """A WebSocket URI that cannot be used."""

    def __init__(self, uri: str, msg: str) -> None:
        self.uri = uri
        self.msg = msg

    def __str__(self) -> str:
        return f"{self.uri} isn't a valid URI: {self.msg}"


class InvalidHandshake(TetherError):
    """The opening handshake failed."""


class InvalidMessage(InvalidHandshake):
    """A malformed HTTP message during the opening handshake.

    Attributes:
        status: the HTTP status a server should answer with (400 unless a more
            precise one applies, e.g. 501 or 505).
    """

    def __init__(self, *args: object, status: int = 400) -> None:
        super().__init__(*args)
        self.status = status


class InvalidHeader(InvalidHandshake):
    """A missing or invalid HTTP header."""

    def __init__(self, name: str, value: str | None = None) -> None:
        self.name = name
        self.value = value

    def __str__(self) -> str:
        if self.value is None:
            return f"missing {self.name} header"
        if self.value == "":
            return f"empty {self.name} header"
        return f"invalid {self.name} header: {self.value}"


class InvalidHeaderFormat(InvalidHeader):
    """A header value that does not follow its grammar."""

    def __init__(self, name: str, error: str, header: str, pos: int) -> None:
        super().__init__(name, f"{error} at {pos} in {header}")


class InvalidHeaderValue(InvalidHeader):
    """A header value that parses but cannot be accepted."""


class InvalidOrigin(InvalidHeader):
    """An Origin header that is not allowed."""

    def __init__(self, origin: str | None) -> None:
        super().__init__("Origin", origin)


class InvalidUpgrade(InvalidHeader):
    """Upgrade or Connection headers that do not ask for a WebSocket."""


class InvalidStatus(InvalidHandshake):
    """A client received an HTTP response other than 101 Switching Protocols."""

    def __init__(self, response: Response) -> None:
        self.response = response

    @property
    def status(self) -> int:
        """The HTTP status code of the response."""
        return self.response.status_code

    def __str__(self) -> str:
        return f"server rejected WebSocket connection: HTTP {self.response.status_code:d}"


class NegotiationError(InvalidHandshake):
    """Subprotocol or extension negotiation failed."""


class DuplicateParameter(NegotiationError):
    """An extension parameter appears twice."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __str__(self) -> str:
        return f"duplicate parameter: {self.name}"


class InvalidParameterName(NegotiationError):
    """An unknown extension parameter."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __str__(self) -> str:
        return f"invalid parameter name: {self.name}"


class InvalidParameterValue(NegotiationError):
    """An extension parameter with an unacceptable value."""

    def __init__(self, name: str, value: str | None) -> None:
        self.name = name
        self.value = value

    def __str__(self) -> str:
        if self.value is None:
            return f"missing value for parameter {self.name}"
        if self.value == "":
            return f"empty value for parameter {self.name}"
        return f"invalid value for parameter {self.name}: {self.value}"


class RejectHandshake(InvalidHandshake):
    """Raised by a server hook to refuse the upgrade with an HTTP status."""

    def __init__(
        self,
        status: int,
        body: str | bytes = b"",
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        self.status = status
        self.body = body.encode() if isinstance(body, str) else body
        self.headers = headers or []

    def __str__(self) -> str:
        return f"handshake rejected with HTTP {self.status:d}"


class ProxyError(InvalidHandshake):
    """An HTTP proxy refused to open a tunnel."""


class ProtocolError(TetherError):
    """The peer violated the protocol.

    Attributes:
        code: the close code to send to the peer (1002 unless a more precise one applies).
    """

    def __init__(self, msg: str, code: int = 1002) -> None:
        super().__init__(msg)
        self.code = code


class PayloadTooBig(ProtocolError):
    """A frame or message exceeded a size limit (close code 1009)."""

    def __init__(self, msg: str) -> None:
        super().__init__(msg, 1009)


class SecurityError(InvalidHandshake):
    """A handshake limit was exceeded (line length, header count, body size).

    Attributes:
        status: the HTTP status a server should answer with (413, 414 or 431; 400
            when no more precise status applies).
    """

    def __init__(self, *args: object, status: int = 400) -> None:
        super().__init__(*args)
        self.status = status


class ConnectionClosed(TetherError):
    """The connection is closed.

    Attributes:
        rcvd: the close frame received from the peer, or ``None``.
        sent: the close frame sent to the peer, or ``None``.
        rcvd_then_sent: whether the peer's close frame came first, when both exist.
    """

    def __init__(
        self,
        rcvd: Close | None,
        sent: Close | None,
        rcvd_then_sent: bool | None = None,
    ) -> None:
        self.rcvd = rcvd
        self.sent = sent
        self.rcvd_then_sent = rcvd_then_sent

    @property
    def code(self) -> int:
        """The close code the application should see (1006 when none was received)."""
        if self.rcvd is None:
            return 1006
        return self.rcvd.code

    @property
    def reason(self) -> str:
        """The close reason received from the peer ("" when none was received)."""
        if self.rcvd is None:
            return ""
        return self.rcvd.reason

    def __str__(self) -> str:
        if self.rcvd is None:
            if self.sent is None:
                return "no close frame received or sent"
            return f"sent {self.sent}; no close frame received"
        if self.sent is None:
            return f"received {self.rcvd}; no close frame sent"
        if self.rcvd_then_sent:
            return f"received {self.rcvd}; then sent {self.sent}"
        return f"sent {self.sent}; then received {self.rcvd}"


class ConnectionClosedOK(ConnectionClosed):
    """The connection closed normally (1000 or 1001 on both sides)."""


class ConnectionClosedError(ConnectionClosed):
    """The connection closed abnormally or with an error code."""


class InvalidState(TetherError, AssertionError):
    """An operation is not allowed in the connection's current state."""


class ConcurrencyError(TetherError, RuntimeError):
    """Two coroutines attempted an operation that only one may do at a time."""
