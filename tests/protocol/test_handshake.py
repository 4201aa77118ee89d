import base64

import pytest

from tether.exceptions import (
    InvalidHeader,
    InvalidHeaderFormat,
    InvalidHeaderValue,
    InvalidMessage,
    InvalidOrigin,
    InvalidStatus,
    InvalidUpgrade,
    NegotiationError,
)
from tether.protocol.extensions.base import (
    ClientExtensionFactory,
    Extension,
    ServerExtensionFactory,
)
from tether.protocol.handshake import (
    GUID,
    ServerHandshake,
    accept_key,
    client_request,
    client_validate,
    generate_key,
    reject,
    server_handshake,
)
from tether.protocol.headers import Headers
from tether.protocol.http11 import Request, RequestParser, Response, ResponseParser
from tether.protocol.limits import Limits
from tether.protocol.uri import parse_uri


KEY = "dGhlIHNhbXBsZSBub25jZQ=="
ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
# The 101 answering the RFC's sample key, with the default Server header.
RFC_RESPONSE = (
    b"HTTP/1.1 101 Switching Protocols\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
    b"Server: tether\r\n"
    b"\r\n"
)


# Test-only extension: "x-test" with an optional "level" parameter the server echoes.


class XTest(Extension):
    name = "x-test"

    def __init__(self, level):
        self.level = level

    def __eq__(self, other):
        return isinstance(other, XTest) and other.level == self.level


class XTestServerFactory(ServerExtensionFactory):
    name = "x-test"

    def __init__(self, accept_levels=("1", "2", None)):
        self.accept_levels = accept_levels

    def process_request_params(self, params, accepted_extensions):
        if any(isinstance(extension, XTest) for extension in accepted_extensions):
            raise NegotiationError("x-test already accepted")
        level = dict(params).get("level")
        if level not in self.accept_levels:
            raise NegotiationError(f"unsupported level: {level}")
        return ([("level", level)] if level else []), XTest(level)


class XTestClientFactory(ClientExtensionFactory):
    name = "x-test"

    def __init__(self, level="1"):
        self.level = level

    def get_request_params(self):
        return [("level", self.level)] if self.level else []

    def process_response_params(self, params, accepted_extensions):
        level = dict(params).get("level")
        if level != self.level:
            raise NegotiationError(f"level mismatch: {level}")
        return XTest(level)


class XOther(Extension):
    name = "x-other"

    def __eq__(self, other):
        return isinstance(other, XOther)


class OtherServerFactory(ServerExtensionFactory):
    name = "x-other"

    def process_request_params(self, params, accepted_extensions):
        return [], XOther()


def make_request(*remove, **replace):
    """The RFC 6455 1.2 sample request, with fields removed or replaced."""
    headers = Headers(
        [
            ("Host", "server.example.com"),
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", KEY),
            ("Origin", "http://example.com"),
            ("Sec-WebSocket-Version", "13"),
        ]
    )
    for name in remove:
        del headers[name]
    for name, value in replace.items():
        headers[name.replace("_", "-")] = value
    return Request("GET", "/chat", headers)


def make_response(*remove, **replace):
    headers = Headers(
        [
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Accept", ACCEPT),
        ]
    )
    for name in remove:
        del headers[name]
    for name, value in replace.items():
        headers[name.replace("_", "-")] = value
    return Response(101, "Switching Protocols", headers)


# Keys


def test_accept_key_rfc_sample():
    # RFC 6455 1.3 and 4.2.2.
    assert accept_key(KEY) == ACCEPT


def test_guid():
    assert GUID == "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def test_generate_key():
    key = generate_key()
    assert len(base64.b64decode(key, validate=True)) == 16
    assert generate_key() != key


# reject


def test_reject_with_str_body():
    response = reject(404, "not found\n")
    assert response.serialize() == (
        b"HTTP/1.1 404 Not Found\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n"
        b"Content-Length: 10\r\n"
        b"Connection: close\r\n"
        b"\r\n"
        b"not found\n"
    )


def test_reject_utf8_body_length_counts_bytes():
    response = reject(200, "caf\xe9")
    assert response.body == b"caf\xc3\xa9"
    assert response.headers["Content-Length"] == "5"


def test_reject_custom_headers_win_over_defaults():
    response = reject(
        200,
        b"{}",
        [
            ("Content-Type", "application/json"),
            ("Connection", "keep-alive"),
            ("Content-Length", "9"),
        ],
    )
    assert list(response.headers.raw_items()) == [
        ("Content-Type", "application/json"),
        ("Connection", "keep-alive"),
        ("Content-Length", "2"),
    ]


def test_reject_empty_body():
    response = reject(503)
    assert response.reason_phrase == "Service Unavailable"
    assert response.headers["Content-Length"] == "0"
    assert response.body == b""


def test_reject_bodyless_status():
    response = reject(204)
    assert "Content-Length" not in response.headers
    assert "Content-Type" not in response.headers
    assert response.serialize() == b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n"


def test_reject_bodyless_status_with_body():
    with pytest.raises(ValueError) as raised:
        reject(304, "x")
    assert str(raised.value) == "status 304 can't have a body"


def test_reject_unknown_status():
    with pytest.raises(ValueError):
        reject(299)


def test_reject_response_parses_back():
    response = reject(400, "bad request\n")
    assert ResponseParser(Limits()).feed(response.serialize()) == response


# server_handshake: success


def test_server_handshake_rfc_sample():
    handshake = server_handshake(make_request())
    assert isinstance(handshake, ServerHandshake)
    assert handshake.error is None
    assert handshake.subprotocol is None
    assert handshake.extensions == []
    assert handshake.response.serialize() == RFC_RESPONSE


def test_server_handshake_without_server_header():
    handshake = server_handshake(make_request(), server_header=None)
    assert "Server" not in handshake.response.headers
    handshake = server_handshake(make_request("Upgrade"), server_header=None)
    assert "Server" not in handshake.response.headers


def test_server_handshake_accepts_case_and_lists():
    request = make_request(Upgrade="h2c, WebSocket", Connection="keep-alive, upgrade")
    assert server_handshake(request).error is None


def test_server_handshake_accepts_connection_on_several_lines():
    request = make_request()
    del request.headers["Connection"]
    request.headers.add("Connection", "keep-alive")
    request.headers.add("Connection", "Upgrade")
    assert server_handshake(request).error is None


# server_handshake: failures


def check_refused(handshake, status, error_type, message):
    assert handshake.response.status_code == status
    assert type(handshake.error) is error_type
    assert str(handshake.error) == message
    assert handshake.response.body == f"{message}\n".encode()
    headers = handshake.response.headers
    assert headers["Content-Type"] == "text/plain; charset=utf-8"
    assert headers["Content-Length"] == str(len(handshake.response.body))
    assert "close" in headers["Connection"]
    assert headers["Server"] == "tether"
    assert "Sec-WebSocket-Accept" not in headers
    assert handshake.subprotocol is None
    assert handshake.extensions == []


def test_server_handshake_method_not_get():
    request = make_request()
    request.method = "POST"
    handshake = server_handshake(request)
    check_refused(handshake, 405, InvalidMessage, "unsupported method: POST")
    assert handshake.response.headers["Allow"] == "GET"
    assert handshake.error.status == 405


@pytest.mark.parametrize(
    ("request_", "error_type", "message"),
    [
        (make_request("Upgrade"), InvalidUpgrade, "missing Upgrade header"),
        (make_request(Upgrade="h2c"), InvalidUpgrade, "invalid Upgrade header: h2c"),
        (
            make_request(Upgrade="web socket"),
            InvalidHeaderFormat,
            "invalid Upgrade header: expected comma at 4 in web socket",
        ),
        (make_request("Connection"), InvalidUpgrade, "missing Connection header"),
        (
            make_request(Connection="keep-alive"),
            InvalidUpgrade,
            "invalid Connection header: keep-alive",
        ),
        (make_request("Sec-WebSocket-Key"), InvalidHeader, "missing Sec-WebSocket-Key header"),
        (
            make_request(Sec_WebSocket_Key="not base64!"),
            InvalidHeaderValue,
            "invalid Sec-WebSocket-Key header: not base64!",
        ),
        (
            make_request(Sec_WebSocket_Key=base64.b64encode(b"x" * 15).decode()),
            InvalidHeaderValue,
            "invalid Sec-WebSocket-Key header: eHh4eHh4eHh4eHh4eHh4",
        ),
        (
            make_request(Sec_WebSocket_Key="d\xe9"),
            InvalidHeaderValue,
            "invalid Sec-WebSocket-Key header: d\xe9",
        ),
    ],
)
def test_server_handshake_bad_request(request_, error_type, message):
    check_refused(server_handshake(request_), 400, error_type, message)


def test_server_handshake_repeated_key():
    request = make_request()
    request.headers.add("Sec-WebSocket-Key", KEY)
    handshake = server_handshake(request)
    check_refused(
        handshake, 400, InvalidHeader, "invalid Sec-WebSocket-Key header: multiple values"
    )


@pytest.mark.parametrize(
    ("request_", "error_type", "message"),
    [
        (
            make_request("Sec-WebSocket-Version"),
            InvalidHeader,
            "missing Sec-WebSocket-Version header",
        ),
        (
            make_request(Sec_WebSocket_Version="8"),
            InvalidHeaderValue,
            "invalid Sec-WebSocket-Version header: 8",
        ),
    ],
)
def test_server_handshake_bad_version(request_, error_type, message):
    handshake = server_handshake(request_)
    check_refused(handshake, 426, error_type, message)
    headers = handshake.response.headers
    assert headers["Sec-WebSocket-Version"] == "13"
    assert headers["Upgrade"] == "websocket"
    assert headers["Connection"] == "Upgrade, close"


def test_server_handshake_origin_allowed():
    handshake = server_handshake(make_request(), origins=["http://example.com"])
    assert handshake.error is None


def test_server_handshake_origin_forbidden():
    handshake = server_handshake(make_request(), origins=["https://other.example"])
    check_refused(handshake, 403, InvalidOrigin, "invalid Origin header: http://example.com")


def test_server_handshake_origin_missing():
    handshake = server_handshake(make_request("Origin"), origins=["http://example.com"])
    check_refused(handshake, 403, InvalidOrigin, "missing Origin header")


def test_server_handshake_origin_missing_allowed():
    handshake = server_handshake(make_request("Origin"), origins=[None])
    assert handshake.error is None


def test_server_handshake_origin_repeated():
    request = make_request()
    request.headers.add("Origin", "http://example.com")
    handshake = server_handshake(request, origins=["http://example.com"])
    check_refused(handshake, 400, InvalidHeader, "invalid Origin header: multiple values")


def test_server_handshake_origin_not_checked_by_default():
    assert server_handshake(make_request(Origin="http://evil.example")).error is None


# server_handshake: subprotocols


def test_subprotocol_server_preference():
    request = make_request(Sec_WebSocket_Protocol="chat, superchat")
    handshake = server_handshake(request, subprotocols=["superchat", "chat"])
    assert handshake.subprotocol == "superchat"
    assert handshake.response.headers["Sec-WebSocket-Protocol"] == "superchat"


def test_subprotocol_on_several_lines():
    request = make_request()
    request.headers.add("Sec-WebSocket-Protocol", "chat")
    request.headers.add("Sec-WebSocket-Protocol", "v2")
    handshake = server_handshake(request, subprotocols=["v2"])
    assert handshake.subprotocol == "v2"


def test_subprotocol_none_in_common():
    request = make_request(Sec_WebSocket_Protocol="chat")
    handshake = server_handshake(request, subprotocols=["superchat"])
    assert handshake.error is None
    assert handshake.subprotocol is None
    assert "Sec-WebSocket-Protocol" not in handshake.response.headers


def test_subprotocol_not_offered():
    handshake = server_handshake(make_request(), subprotocols=["chat"])
    assert handshake.error is None
    assert handshake.subprotocol is None


def test_subprotocol_callback():
    offers = []

    def select(offered):
        offers.append(list(offered))
        return offered[-1]

    request = make_request(Sec_WebSocket_Protocol="a, b, c")
    handshake = server_handshake(request, subprotocols=["a"], select_subprotocol=select)
    assert offers == [["a", "b", "c"]]
    assert handshake.subprotocol == "c"
    assert handshake.response.headers["Sec-WebSocket-Protocol"] == "c"


def test_subprotocol_callback_returns_none():
    request = make_request(Sec_WebSocket_Protocol="a")
    handshake = server_handshake(request, select_subprotocol=lambda offered: None)
    assert handshake.error is None
    assert handshake.subprotocol is None


def test_subprotocol_callback_returns_unoffered():
    request = make_request(Sec_WebSocket_Protocol="a")
    handshake = server_handshake(request, select_subprotocol=lambda offered: "z")
    check_refused(handshake, 500, NegotiationError, "select_subprotocol returned an unoffered z")


def test_subprotocol_malformed():
    request = make_request(Sec_WebSocket_Protocol="a b")
    handshake = server_handshake(request, subprotocols=["a"])
    check_refused(
        handshake,
        400,
        InvalidHeaderFormat,
        "invalid Sec-WebSocket-Protocol header: expected comma at 2 in a b",
    )


# server_handshake: extensions


def test_extension_accepted():
    request = make_request(Sec_WebSocket_Extensions="x-test; level=2")
    handshake = server_handshake(request, extensions=[XTestServerFactory()])
    assert handshake.extensions == [XTest("2")]
    assert handshake.response.headers["Sec-WebSocket-Extensions"] == "x-test; level=2"


def test_extension_first_acceptable_offer_wins():
    # The first offer is refused by the factory, the second accepted, the third refused
    # because x-test is already accepted.
    request = make_request(Sec_WebSocket_Extensions="x-test; level=9, x-test, x-test; level=1")
    handshake = server_handshake(request, extensions=[XTestServerFactory()])
    assert handshake.extensions == [XTest(None)]
    assert handshake.response.headers["Sec-WebSocket-Extensions"] == "x-test"


def test_extension_tries_each_factory_with_that_name():
    request = make_request(Sec_WebSocket_Extensions="x-test; level=2")
    factories = [XTestServerFactory(accept_levels=("1",)), XTestServerFactory(accept_levels=("2",))]
    handshake = server_handshake(request, extensions=factories)
    assert handshake.extensions == [XTest("2")]


def test_extension_order_follows_offers():
    request = make_request(Sec_WebSocket_Extensions="x-other, x-unknown, x-test; level=1")
    handshake = server_handshake(request, extensions=[XTestServerFactory(), OtherServerFactory()])
    assert handshake.extensions == [XOther(), XTest("1")]
    assert handshake.response.headers["Sec-WebSocket-Extensions"] == "x-other, x-test; level=1"


def test_extension_none_acceptable():
    request = make_request(Sec_WebSocket_Extensions="x-test; level=9")
    handshake = server_handshake(request, extensions=[XTestServerFactory()])
    assert handshake.error is None
    assert handshake.extensions == []
    assert "Sec-WebSocket-Extensions" not in handshake.response.headers


def test_extension_ignored_without_factories():
    # Without factories, the header isn't even parsed.
    request = make_request(Sec_WebSocket_Extensions="x-test; ;")
    handshake = server_handshake(request)
    assert handshake.error is None
    assert "Sec-WebSocket-Extensions" not in handshake.response.headers


def test_extension_malformed():
    request = make_request(Sec_WebSocket_Extensions="x-test; level=")
    handshake = server_handshake(request, extensions=[XTestServerFactory()])
    check_refused(
        handshake,
        400,
        InvalidHeaderFormat,
        "invalid Sec-WebSocket-Extensions header: expected token at 14 in x-test; level=",
    )


# client_request


def test_client_request():
    request = client_request(parse_uri("ws://example.com/chat?room=1"), key=KEY)
    assert request.serialize() == (
        b"GET /chat?room=1 HTTP/1.1\r\n"
        b"Host: example.com\r\n"
        b"Upgrade: websocket\r\n"
        b"Connection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Sec-WebSocket-Version: 13\r\n"
        b"User-Agent: tether\r\n"
        b"\r\n"
    )


@pytest.mark.parametrize(
    ("uri", "host"),
    [
        ("ws://example.com:80/", "example.com"),
        ("ws://example.com:8080/", "example.com:8080"),
        ("wss://example.com:443/", "example.com"),
        ("wss://example.com:80/", "example.com:80"),
        ("ws://[::1]/", "[::1]"),
        ("wss://[2001:db8::1]:8443/", "[2001:db8::1]:8443"),
        ("ws://b\xfccher.example/", "xn--bcher-kva.example"),
    ],
)
def test_client_request_host(uri, host):
    assert client_request(parse_uri(uri), key=KEY).headers["Host"] == host


def test_client_request_options():
    request = client_request(
        parse_uri("ws://example.com/"),
        key=KEY,
        origin="https://example.com",
        subprotocols=["chat", "superchat"],
        extensions=[XTestClientFactory("2"), XTestClientFactory(None)],
        headers={"X-Token": "abc", "User-Agent": "custom"},
        user_agent="ignored",
    )
    headers = request.headers
    assert headers["Origin"] == "https://example.com"
    assert headers["Sec-WebSocket-Protocol"] == "chat, superchat"
    assert headers["Sec-WebSocket-Extensions"] == "x-test; level=2, x-test"
    assert headers["X-Token"] == "abc"
    assert headers["User-Agent"] == "custom"


def test_client_request_without_user_agent():
    request = client_request(parse_uri("ws://example.com/"), key=KEY, user_agent=None)
    assert "User-Agent" not in request.headers


def test_client_request_basic_auth():
    request = client_request(parse_uri("ws://alice:s3cr%3At@example.com/"), key=KEY)
    assert request.headers["Authorization"] == "Basic " + base64.b64encode(b"alice:s3cr:t").decode()
    request = client_request(
        parse_uri("ws://alice:x@example.com/"), key=KEY, headers=[("Authorization", "Bearer t")]
    )
    assert request.headers.get_all("Authorization") == ["Bearer t"]


def test_client_request_rejects_header_injection():
    with pytest.raises(ValueError):
        client_request(parse_uri("ws://example.com/"), key=KEY, origin="http://a\r\nX: y")


# client_validate


def test_client_validate_rfc_sample():
    assert client_validate(make_response(), key=KEY) == (None, [])


def test_client_validate_accepts_case_and_lists():
    response = make_response(Upgrade="WebSocket", Connection="keep-alive, upgrade")
    assert client_validate(response, key=KEY) == (None, [])


def test_client_validate_status():
    response = reject(403, "forbidden\n")
    with pytest.raises(InvalidStatus) as raised:
        client_validate(response, key=KEY)
    assert raised.value.response is response
    assert str(raised.value) == "server rejected WebSocket connection: HTTP 403"


@pytest.mark.parametrize(
    ("response", "error_type", "message"),
    [
        (make_response("Upgrade"), InvalidUpgrade, "missing Upgrade header"),
        (make_response(Upgrade="h2c"), InvalidUpgrade, "invalid Upgrade header: h2c"),
        (
            make_response(Upgrade="websocket, h2c"),
            InvalidUpgrade,
            "invalid Upgrade header: websocket, h2c",
        ),
        (
            make_response(Upgrade="/"),
            InvalidHeaderFormat,
            "invalid Upgrade header: expected protocol at 0 in /",
        ),
        (make_response("Connection"), InvalidUpgrade, "missing Connection header"),
        (make_response(Connection="close"), InvalidUpgrade, "invalid Connection header: close"),
        (
            make_response("Sec-WebSocket-Accept"),
            InvalidHeader,
            "missing Sec-WebSocket-Accept header",
        ),
        (
            make_response(Sec_WebSocket_Accept=accept_key(generate_key())),
            InvalidHeaderValue,
            None,
        ),
    ],
)
def test_client_validate_errors(response, error_type, message):
    with pytest.raises(InvalidHeader) as raised:
        client_validate(response, key=KEY)
    assert type(raised.value) is error_type
    if message is None:
        accept = response.headers["Sec-WebSocket-Accept"]
        message = f"invalid Sec-WebSocket-Accept header: {accept}"
    assert str(raised.value) == message


def test_client_validate_repeated_accept():
    response = make_response()
    response.headers.add("Sec-WebSocket-Accept", ACCEPT)
    with pytest.raises(InvalidHeader) as raised:
        client_validate(response, key=KEY)
    assert str(raised.value) == "invalid Sec-WebSocket-Accept header: multiple values"


def test_client_validate_subprotocol():
    response = make_response(Sec_WebSocket_Protocol="chat")
    assert client_validate(response, key=KEY, subprotocols=["superchat", "chat"]) == ("chat", [])


def test_client_validate_unexpected_subprotocol():
    response = make_response(Sec_WebSocket_Protocol="chat")
    with pytest.raises(NegotiationError) as raised:
        client_validate(response, key=KEY, subprotocols=["superchat"])
    assert str(raised.value) == "unexpected subprotocol: chat"
    with pytest.raises(NegotiationError):
        client_validate(response, key=KEY)


def test_client_validate_multiple_subprotocols():
    response = make_response(Sec_WebSocket_Protocol="chat, superchat")
    with pytest.raises(NegotiationError) as raised:
        client_validate(response, key=KEY, subprotocols=["chat", "superchat"])
    assert str(raised.value) == "multiple subprotocols: chat, superchat"


def test_client_validate_extensions():
    response = make_response(Sec_WebSocket_Extensions="x-test; level=2")
    factories = [XTestClientFactory("1"), XTestClientFactory("2")]
    assert client_validate(response, key=KEY, extensions=factories) == (None, [XTest("2")])


def test_client_validate_unexpected_extension():
    response = make_response(Sec_WebSocket_Extensions="x-other")
    with pytest.raises(NegotiationError) as raised:
        client_validate(response, key=KEY, extensions=[XTestClientFactory()])
    assert str(raised.value) == "unexpected extension: x-other"
    with pytest.raises(NegotiationError):
        client_validate(response, key=KEY)


def test_client_validate_extension_rejected_by_factories():
    response = make_response(Sec_WebSocket_Extensions="x-test; level=3")
    with pytest.raises(NegotiationError) as raised:
        client_validate(response, key=KEY, extensions=[XTestClientFactory("1")])
    assert str(raised.value) == "level mismatch: 3"


def test_client_validate_malformed_extensions():
    response = make_response(Sec_WebSocket_Extensions="x-test;")
    with pytest.raises(InvalidHeaderFormat):
        client_validate(response, key=KEY, extensions=[XTestClientFactory()])


# Round trip through bytes


def test_round_trip():
    key = generate_key()
    uri = parse_uri("wss://example.com:8443/chat?room=1")
    request = client_request(
        uri,
        key=key,
        origin="https://example.com",
        subprotocols=["v1.chat", "v2.chat"],
        extensions=[XTestClientFactory("2")],
    )
    server_parser = RequestParser(Limits())
    received = server_parser.feed(request.serialize())
    assert received == request
    assert received.path == "/chat"
    assert received.query == "room=1"
    assert received.headers["Host"] == "example.com:8443"

    handshake = server_handshake(
        received,
        subprotocols=["v2.chat", "v1.chat"],
        extensions=[XTestServerFactory()],
        origins=["https://example.com"],
    )
    assert handshake.error is None
    assert handshake.subprotocol == "v2.chat"
    assert handshake.extensions == [XTest("2")]

    frame = b"\x81\x02hi"
    client_parser = ResponseParser(Limits())
    response = client_parser.feed(handshake.response.serialize() + frame)
    assert client_parser.leftover == frame
    subprotocol, extensions = client_validate(
        response, key=key, subprotocols=["v1.chat", "v2.chat"], extensions=[XTestClientFactory("2")]
    )
    assert subprotocol == "v2.chat"
    assert extensions == [XTest("2")]


def test_round_trip_refused():
    request = client_request(parse_uri("ws://example.com/"), key=generate_key())
    del request.headers["Sec-WebSocket-Version"]
    received = RequestParser(Limits()).feed(request.serialize())
    handshake = server_handshake(received)
    response = ResponseParser(Limits()).feed(handshake.response.serialize())
    assert response.status_code == 426
    assert response.body == b"missing Sec-WebSocket-Version header\n"
    with pytest.raises(InvalidStatus) as raised:
        client_validate(response, key=request.headers["Sec-WebSocket-Key"])
    assert raised.value.status == 426
