"""The WebSocket opening handshake (RFC 6455 section 4), as values in and values out.

The server side checks a parsed :class:`~tether.protocol.http11.Request` and returns the
:class:`~tether.protocol.http11.Response` to send, with the negotiated subprotocol and
extensions. The client side builds the request and validates the response. Nothing here
performs I/O.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import http
import operator
import os
import re
import secrets
from collections.abc import Callable, Sequence

from ..exceptions import (
    InvalidHeader,
    InvalidHeaderValue,
    InvalidMessage,
    InvalidOrigin,
    InvalidStatus,
    InvalidUpgrade,
    NegotiationError,
)
from ..types import ExtensionName, ExtensionParameter, Origin, Subprotocol
from .extensions.base import ClientExtensionFactory, Extension, ServerExtensionFactory
from .headers import (
    Headers,
    HeadersLike,
    build_extension,
    build_subprotocol_list,
    parse_connection,
    parse_extension,
    parse_subprotocol_list,
    parse_upgrade,
)
from .http11 import Request, Response
from .limits import Limits
from .uri import WebSocketURI


__all__ = [
    "GUID",
    "ServerHandshake",
    "accept_key",
    "client_request",
    "client_validate",
    "generate_key",
    "quick_server_handshake",
    "reject",
    "server_handshake",
]


GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
"""The globally unique identifier RFC 6455 section 1.3 appends to the key."""


def generate_key() -> str:
    """Return a fresh ``Sec-WebSocket-Key``.

    RFC 6455 4.1: "a randomly selected 16-byte value that has been base64-encoded".
    """
    return base64.b64encode(secrets.token_bytes(16)).decode("ascii")


def accept_key(key: str) -> str:
    """Return the ``Sec-WebSocket-Accept`` value that answers ``key``.

    RFC 6455 4.2.2: the base64-encoded SHA-1 of the key concatenated with :data:`GUID`.
    """
    return _accept_value(key.encode("ascii")).decode("ascii")


_GUID_BYTES = GUID.encode("ascii")


def _accept_value(key: bytes) -> bytes:
    sha1 = hashlib.sha1(key + _GUID_BYTES, usedforsecurity=False)
    return binascii.b2a_base64(sha1.digest(), newline=False)


def _valid_key(key: str | bytes) -> bool:
    # RFC 6455 4.2.1 item 5: "a base64-encoded value that, when decoded, is 16 bytes".
    try:
        return len(binascii.a2b_base64(key, strict_mode=True)) == 16
    except ValueError:  # binascii.Error, or a str that isn't ASCII
        return False


def _single(headers: Headers, name: str) -> str:
    """Return the only value of ``name``, raising InvalidHeader if absent or repeated."""
    values = headers.get_all(name)
    if not values:
        raise InvalidHeader(name)
    if len(values) > 1:
        raise InvalidHeader(name, "multiple values")
    return values[0]


def reject(
    status: int,
    body: str | bytes = b"",
    headers: HeadersLike | None = None,
) -> Response:
    """Build a plain HTTP response, e.g. to refuse a handshake.

    ``Content-Type`` defaults to ``text/plain; charset=utf-8`` and ``Connection`` to
    ``close``; ``Content-Length`` is always set from the body (and omitted for the
    statuses that can't have a body).

    Args:
        status: the HTTP status code.
        body: the body; :class:`str` is encoded to UTF-8.
        headers: more header fields, added before the defaults.

    Raises:
        ValueError: an unknown status code, an invalid header, or a body with a status
            that doesn't allow one.
    """
    reason = http.HTTPStatus(status).phrase
    if isinstance(body, str):
        body = body.encode()
    response_headers = Headers(headers) if headers is not None else Headers()
    if "Content-Length" in response_headers:
        del response_headers["Content-Length"]
    # RFC 7230 3.3.2: no Content-Length in 1xx and 204 responses.
    if status < 200 or status in (204, 304):
        if body:
            raise ValueError(f"status {status} can't have a body")
    else:
        if "Content-Type" not in response_headers:
            response_headers["Content-Type"] = "text/plain; charset=utf-8"
        response_headers["Content-Length"] = str(len(body))
    if "Connection" not in response_headers:
        response_headers["Connection"] = "close"
    return Response(status, reason, response_headers, body)


@dataclasses.dataclass
class ServerHandshake:
    """The outcome of :func:`server_handshake`.

    Attributes:
        response: the response to send: 101 on success, an HTTP error otherwise.
        subprotocol: the negotiated subprotocol, or ``None``.
        extensions: the negotiated extensions, in the order they apply.
        error: why the handshake failed, or ``None`` when it succeeded.
    """

    response: Response
    subprotocol: Subprotocol | None = None
    extensions: list[Extension] = dataclasses.field(default_factory=list)
    error: Exception | None = None


class _Refusal(Exception):
    """Private: a check failed; carries the status and extra response headers."""

    def __init__(self, status: int, error: Exception, headers: HeadersLike = ()) -> None:
        self.status = status
        self.error = error
        self.headers = headers


def _check_request(request: Request, origins: Sequence[Origin | None] | None) -> str:
    """Run the RFC 6455 4.2.1 checks and return the key."""
    headers = request.headers
    # RFC 6455 4.2.1 item 1: "An HTTP/1.1 or higher GET request".
    if request.method != "GET":
        error = InvalidMessage(f"unsupported method: {request.method}", status=405)
        raise _Refusal(405, error, [("Allow", "GET")])

    try:
        # Item 3: "An |Upgrade| header field containing the value "websocket", treated
        # as an ASCII case-insensitive value."
        upgrade = headers.get_joined("Upgrade")
        if upgrade is None:
            raise InvalidUpgrade("Upgrade")
        if upgrade.lower() != "websocket" and not any(
            protocol.lower() == "websocket" for protocol in parse_upgrade(upgrade)
        ):
            raise InvalidUpgrade("Upgrade", upgrade)
        # Item 4: "A |Connection| header field that includes the token "Upgrade", treated
        # as an ASCII case-insensitive value."
        connection = headers.get_joined("Connection")
        if connection is None:
            raise InvalidUpgrade("Connection")
        if connection.lower() != "upgrade" and not any(
            option.lower() == "upgrade" for option in parse_connection(connection)
        ):
            raise InvalidUpgrade("Connection", connection)
        # Item 5: "A |Sec-WebSocket-Key| header field with a base64-encoded value that,
        # when decoded, is 16 bytes in length."
        key = _single(headers, "Sec-WebSocket-Key")
        if not _valid_key(key):
            raise InvalidHeaderValue("Sec-WebSocket-Key", key)
    except InvalidHeader as exc:
        raise _Refusal(400, exc) from exc

    # Item 6: "A |Sec-WebSocket-Version| header field, with a value of 13." 4.2.2: else
    # answer with an error such as 426 and the versions the server understands.
    version = headers.get_joined("Sec-WebSocket-Version")
    if version != "13":
        version_error = (
            InvalidHeader("Sec-WebSocket-Version")
            if version is None
            else InvalidHeaderValue("Sec-WebSocket-Version", version)
        )
        # RFC 7231 6.5.15 and RFC 7230 6.7: a 426 carries Upgrade, listed in Connection.
        extra = [
            ("Sec-WebSocket-Version", "13"),
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade, close"),
        ]
        raise _Refusal(426, version_error, extra)

    # RFC 6455 10.2: servers that aren't meant to be reached from any web page should
    # check the Origin header; item 7 makes it optional for non-browser clients.
    if origins is not None:
        try:
            origin = Origin(_single(headers, "Origin"))
        except InvalidHeader as exc:
            if exc.value is not None:
                raise _Refusal(400, exc) from exc
            origin = None
        if origin not in origins:
            raise _Refusal(403, InvalidOrigin(origin))
    return key


def _negotiate_subprotocol(
    request: Request,
    subprotocols: Sequence[Subprotocol] | None,
    select_subprotocol: Callable[[Sequence[Subprotocol]], Subprotocol | None] | None,
) -> Subprotocol | None:
    header = request.headers.get_joined("Sec-WebSocket-Protocol")
    try:
        offered = parse_subprotocol_list(header) if header is not None else []
    except InvalidHeader as exc:
        raise _Refusal(400, exc) from exc
    if select_subprotocol is not None:
        selected = select_subprotocol(offered)
        if selected is not None and selected not in offered:
            error = NegotiationError(f"select_subprotocol returned an unoffered {selected}")
            raise _Refusal(500, error)
        return selected
    # RFC 6455 4.2.2 item 4: the server selects one of the client's values, or none.
    # Without a callback, the server's order of preference decides.
    for subprotocol in subprotocols or ():
        if subprotocol in offered:
            return subprotocol
    return None


def _negotiate_extensions(
    header: str | None,
    factories: Sequence[ServerExtensionFactory],
) -> tuple[list[Extension], list[tuple[ExtensionName, list[ExtensionParameter]]]]:
    accepted: list[Extension] = []
    response_params: list[tuple[ExtensionName, list[ExtensionParameter]]] = []
    if header is None or not factories:
        return accepted, response_params
    try:
        offers = parse_extension(header)
    except InvalidHeader as exc:
        raise _Refusal(400, exc) from exc
    # RFC 6455 9.1: the client lists offers in its order of preference; the server
    # accepts some of them, and its response lists the accepted ones in order.
    for name, params in offers:
        for factory in factories:
            if factory.name != name:
                continue
            try:
                params_out, extension = factory.process_request_params(params, accepted)
            except NegotiationError:
                continue
            accepted.append(extension)
            response_params.append((name, params_out))
            break
    return accepted, response_params


def server_handshake(
    request: Request,
    *,
    subprotocols: Sequence[Subprotocol] | None = None,
    select_subprotocol: Callable[[Sequence[Subprotocol]], Subprotocol | None] | None = None,
    extensions: Sequence[ServerExtensionFactory] = (),
    origins: Sequence[Origin | None] | None = None,
    server_header: str | None = "tether",
) -> ServerHandshake:
    """Check an opening handshake request and build the response (RFC 6455 4.2).

    Failures don't raise: the result holds an error response (400, 403, 405, 426, or
    500 when ``select_subprotocol`` returns a subprotocol the client didn't offer) and
    the error.

    Args:
        request: the parsed request.
        subprotocols: supported subprotocols, in the server's order of preference.
        select_subprotocol: picks a subprotocol from the client's offer, or ``None``;
            replaces the default choice based on ``subprotocols``.
        extensions: the server's extension factories, in order of preference.
        origins: allowed ``Origin`` values (``None`` in the list allows requests
            without one); ``None`` allows every origin.
        server_header: value of the ``Server`` header, or ``None`` to omit it.

    Returns:
        The response, the negotiated subprotocol and extensions, and the error if any.
    """
    extra: list[tuple[str, str]] = []
    if server_header is not None:
        extra.append(("Server", server_header))
    try:
        key = _check_request(request, origins)
        subprotocol = _negotiate_subprotocol(request, subprotocols, select_subprotocol)
        accepted, response_params = _negotiate_extensions(
            request.headers.get_joined("Sec-WebSocket-Extensions"), extensions
        )
    except _Refusal as refusal:
        error_headers = Headers(extra)
        error_headers.update(refusal.headers)
        response = reject(refusal.status, f"{refusal.error}\n", error_headers)
        return ServerHandshake(response, error=refusal.error)

    # RFC 6455 4.2.2 item 5: the 101 response and its header fields (valid by
    # construction: fixed names and values, and a base64 accept key).
    headers = Headers._from_trusted(
        [
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Accept", accept_key(key)),
        ]
    )
    if response_params:
        headers["Sec-WebSocket-Extensions"] = build_extension(response_params)
    if subprotocol is not None:
        headers["Sec-WebSocket-Protocol"] = subprotocol
    if extra:
        headers.update(extra)
    response = Response(101, "Switching Protocols", headers)
    return ServerHandshake(response, subprotocol, accepted)


# The request heads the quick path takes: a GET for HTTP/1.1 whose header lines have
# token names and values of visible ASCII, spaces and tabs (RFC 7230 3.1.1 and 3.2).
# Anything else, such as obs-text or a request with a body, goes to the full parser.
_QUICK_HEAD_RE = re.compile(
    rb"GET ([\x21-\x7e]+) HTTP/1\.1\r\n"
    rb"((?:[-!#$%&'*+.^_`|~0-9a-zA-Z]+:[\t\x20-\x7e]*\r\n)*)\r\n"
)
_split_field = operator.methodcaller("partition", b":")
_OWS = b" \t"  # optional whitespace around a field value (RFC 7230 3.2.3)


def py_scan_head(head: bytes) -> tuple[bytes, dict[bytes, bytes]] | None:
    """Split a request head the quick path takes into its target and its fields.

    ``head`` must be all of a ``GET`` request for HTTP/1.1 whose header lines have token
    names and values of visible ASCII, spaces and tabs, up to and including the empty
    line. The fields map each lowercase name to its value without the whitespace around
    it. ``None`` for anything else, and when a name appears twice.
    """
    match = _QUICK_HEAD_RE.fullmatch(head)
    if match is None:
        return None
    lines = match.group(2).split(b"\r\n")
    lines.pop()  # after the last CRLF
    fields = {name.lower(): value.strip(_OWS) for name, _, value in map(_split_field, lines)}
    if len(fields) != len(lines):
        return None
    return match.group(1), fields


scan_head: Callable[[bytes], tuple[bytes, dict[bytes, bytes]] | None]
if os.environ.get("TETHER_NO_SPEEDUPS") == "1":
    scan_head = py_scan_head
else:
    try:
        from ._speedups import scan_head
    except ImportError:  # pragma: no cover
        scan_head = py_scan_head


def quick_server_handshake(
    head: bytes,
    limits: Limits,
    *,
    extensions: Sequence[ServerExtensionFactory] = (),
    origins: Sequence[Origin | None] | None = None,
    server_header: str | None = "tether",
) -> tuple[str, bytes, list[Extension]] | None:
    """Accept a plain opening handshake in a few passes over its bytes, or return ``None``.

    ``head`` must be exactly one request head, up to and including the empty line. When
    it is a well-formed upgrade request within ``limits`` that :func:`server_handshake`
    would accept, that offers no subprotocol and repeats no header field, the result is
    the request target, the serialized ``101`` response and the negotiated extensions:
    the same response :func:`server_handshake` builds for the parsed request with these
    arguments and no subprotocol options. Every other request gives ``None`` and should
    take the full path (:class:`~tether.protocol.http11.RequestParser` then
    :func:`server_handshake`), which also produces the error responses.
    """
    # Every line is shorter than the head, so within the line limits when the head is.
    if len(head) > limits.max_request_line or len(head) > limits.max_header_line:
        return None
    scanned = scan_head(head)
    if scanned is None:
        return None
    target, fields = scanned
    if len(fields) > limits.max_headers:
        return None
    get = fields.get
    key = get(b"sec-websocket-key", b"")
    if (
        b"host" not in fields
        or get(b"upgrade", b"").lower() != b"websocket"
        or get(b"connection", b"").lower() != b"upgrade"
        or get(b"sec-websocket-version") != b"13"
        or not _valid_key(key)
        or b"sec-websocket-protocol" in fields
        or b"content-length" in fields
        or b"transfer-encoding" in fields
    ):
        return None
    if origins is not None:
        origin = get(b"origin")
        if (None if origin is None else Origin(origin.decode())) not in origins:
            return None
    offer = get(b"sec-websocket-extensions")
    accepted: list[Extension] = []
    lines = [
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: %s\r\n" % _accept_value(key)
    ]
    if offer is not None and extensions:
        try:
            accepted, response_params = _negotiate_extensions(offer.decode(), extensions)
        except _Refusal:
            return None
        if response_params:
            value = build_extension(response_params)
            lines.append(b"Sec-WebSocket-Extensions: %s\r\n" % value.encode("latin-1"))
    if server_header is not None:
        lines.append(b"Server: %s\r\n" % server_header.encode("latin-1"))
    lines.append(b"\r\n")
    return target.decode(), b"".join(lines), accepted


def client_request(
    uri: WebSocketURI,
    *,
    key: str,
    origin: Origin | None = None,
    subprotocols: Sequence[Subprotocol] | None = None,
    extensions: Sequence[ClientExtensionFactory] = (),
    headers: HeadersLike | None = None,
    user_agent: str | None = "tether",
) -> Request:
    """Build the opening handshake request (RFC 6455 4.1).

    Args:
        uri: where to connect.
        key: the ``Sec-WebSocket-Key``, from :func:`generate_key`.
        origin: the ``Origin`` header, if any.
        subprotocols: subprotocols to offer, in order of preference.
        extensions: extension factories whose offers to send, in order of preference.
        headers: more header fields, added after the handshake fields.
        user_agent: value of the ``User-Agent`` header (unless ``headers`` has one),
            or ``None`` to omit it.

    Raises:
        ValueError: a header name or value is invalid.
    """
    # RFC 6455 4.1 item 4: Host is the host and, when it isn't the default, the port.
    host = f"[{uri.host}]" if ":" in uri.host else uri.host
    if not uri.default_port:
        host = f"{host}:{uri.port}"
    request_headers = Headers(
        [
            ("Host", host),
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", key),
            ("Sec-WebSocket-Version", "13"),
        ]
    )
    if origin is not None:
        request_headers["Origin"] = origin
    if extensions:
        offers = [(factory.name, factory.get_request_params()) for factory in extensions]
        request_headers["Sec-WebSocket-Extensions"] = build_extension(offers)
    if subprotocols:
        request_headers["Sec-WebSocket-Protocol"] = build_subprotocol_list(subprotocols)
    if headers is not None:
        request_headers.update(headers)
    if uri.user_info is not None and "Authorization" not in request_headers:
        # RFC 7617 2: Basic credentials are base64("user:password").
        credentials = base64.b64encode(":".join(uri.user_info).encode()).decode("ascii")
        request_headers["Authorization"] = f"Basic {credentials}"
    if user_agent is not None and "User-Agent" not in request_headers:
        request_headers["User-Agent"] = user_agent
    return Request("GET", uri.resource_name, request_headers)


def client_validate(
    response: Response,
    *,
    key: str,
    subprotocols: Sequence[Subprotocol] | None = None,
    extensions: Sequence[ClientExtensionFactory] = (),
) -> tuple[Subprotocol | None, list[Extension]]:
    """Validate the server's answer to the opening handshake (RFC 6455 4.1, 4.2.2).

    Args:
        response: the parsed response.
        key: the ``Sec-WebSocket-Key`` that was sent.
        subprotocols: the subprotocols that were offered.
        extensions: the extension factories whose offers were sent.

    Returns:
        The subprotocol the server selected, or ``None``, and the accepted extensions.

    Raises:
        InvalidStatus: the status isn't 101.
        InvalidUpgrade: ``Upgrade`` or ``Connection`` don't confirm the upgrade.
        InvalidHeader: ``Sec-WebSocket-Accept`` is missing or wrong, or a header doesn't
            parse.
        NegotiationError: the server selected a subprotocol or an extension that wasn't
            offered, or several subprotocols.
    """
    headers = response.headers
    # RFC 6455 4.1: "If the status code received from the server is not 101, the
    # client handles the response per HTTP procedures."
    if response.status_code != 101:
        raise InvalidStatus(response)

    # "If the response lacks an |Upgrade| header field or the |Upgrade| header field
    # contains a value that is not an ASCII case-insensitive match for the value
    # "websocket", the client MUST _Fail the WebSocket Connection_."
    upgrade = headers.get_joined("Upgrade")
    if upgrade is None:
        raise InvalidUpgrade("Upgrade")
    if [protocol.lower() for protocol in parse_upgrade(upgrade)] != ["websocket"]:
        raise InvalidUpgrade("Upgrade", upgrade)

    # "If the response lacks a |Connection| header field or the |Connection| header
    # field doesn't contain a token that is an ASCII case-insensitive match for the
    # value "Upgrade", the client MUST _Fail the WebSocket Connection_."
    connection = headers.get_joined("Connection")
    if connection is None:
        raise InvalidUpgrade("Connection")
    if not any(option.lower() == "upgrade" for option in parse_connection(connection)):
        raise InvalidUpgrade("Connection", connection)

    # "If the response lacks a |Sec-WebSocket-Accept| header field or the
    # |Sec-WebSocket-Accept| contains a value other than the base64-encoded SHA-1 of
    # the concatenation of the |Sec-WebSocket-Key| (as a string, not base64-decoded)
    # with the string "258EAFA5-E914-47DA-95CA-C5AB0DC85B11" [...] the client MUST
    # _Fail the WebSocket Connection_."
    accept = _single(headers, "Sec-WebSocket-Accept")
    if accept != accept_key(key):
        raise InvalidHeaderValue("Sec-WebSocket-Accept", accept)

    accepted = _accept_extensions(headers, extensions)
    return _accept_subprotocol(headers, subprotocols), accepted


def _accept_extensions(
    headers: Headers,
    factories: Sequence[ClientExtensionFactory],
) -> list[Extension]:
    # RFC 6455 4.1: "If the response includes a |Sec-WebSocket-Extensions| header field
    # and this header field indicates the use of an extension that was not present in
    # the client's handshake [...], the client MUST _Fail the WebSocket Connection_."
    accepted: list[Extension] = []
    header = headers.get_joined("Sec-WebSocket-Extensions")
    if header is None:
        return accepted
    for name, params in parse_extension(header):
        candidates = [factory for factory in factories if factory.name == name]
        if not candidates:
            raise NegotiationError(f"unexpected extension: {name}")
        last_error: NegotiationError | None = None
        for factory in candidates:
            try:
                extension = factory.process_response_params(params, accepted)
            except NegotiationError as exc:
                last_error = exc
                continue
            accepted.append(extension)
            break
        else:
            assert last_error is not None
            raise last_error
    return accepted


def _accept_subprotocol(
    headers: Headers,
    subprotocols: Sequence[Subprotocol] | None,
) -> Subprotocol | None:
    # RFC 6455 4.1: "If the response includes a |Sec-WebSocket-Protocol| header field
    # and this header field indicates the use of a subprotocol that was not present in
    # the client's handshake [...], the client MUST _Fail the WebSocket Connection_."
    header = headers.get_joined("Sec-WebSocket-Protocol")
    if header is None:
        return None
    selected = parse_subprotocol_list(header)
    if len(selected) > 1:
        raise NegotiationError(f"multiple subprotocols: {', '.join(selected)}")
    subprotocol = selected[0]
    if subprotocol not in (subprotocols or ()):
        raise NegotiationError(f"unexpected subprotocol: {subprotocol}")
    return subprotocol
