import pytest

from tether.exceptions import InvalidMessage, SecurityError
from tether.protocol.headers import Headers
from tether.protocol.http11 import Request, RequestParser, Response, ResponseParser
from tether.protocol.limits import Limits


TRAILING = b"\x81\x05hello"

UPGRADE_REQUEST = (
    b"GET /chat?room=1 HTTP/1.1\r\n"
    b"Host: server.example.com\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Sec-WebSocket-Version: 13\r\n"
    b"\r\n"
)


def new_parser(kind, limits, method):
    if kind is RequestParser:
        return RequestParser(limits)
    return ResponseParser(limits, method=method)


def parse(data, kind=RequestParser, limits=None, method="GET"):
    """Parse data whole, one byte at a time, and followed by trailing bytes.

    The three runs must return equal messages, complete exactly at the last byte of the
    message, and leave exactly the trailing bytes in leftover.
    """
    limits = limits or Limits()

    whole = new_parser(kind, limits, method)
    message = whole.feed(data)
    assert message is not None
    assert whole.leftover == b""

    bytewise = new_parser(kind, limits, method)
    for index in range(len(data) - 1):
        assert bytewise.feed(data[index : index + 1]) is None
        assert bytewise.leftover == b""
    assert bytewise.feed(data[-1:]) == message

    trailing = new_parser(kind, limits, method)
    assert trailing.feed(data + TRAILING) == message
    assert trailing.leftover == TRAILING
    return message


def feed_bytewise(parser, data):
    for index in range(len(data)):
        parser.feed(data[index : index + 1])


def parse_error(data, kind=RequestParser, limits=None, method="GET"):
    """Check that data fails the same way whole and one byte at a time."""
    limits = limits or Limits()
    with pytest.raises((InvalidMessage, SecurityError)) as whole:
        new_parser(kind, limits, method).feed(data)
    with pytest.raises((InvalidMessage, SecurityError)) as split:
        feed_bytewise(new_parser(kind, limits, method), data)
    assert type(split.value) is type(whole.value)
    assert str(split.value) == str(whole.value)
    assert split.value.status == whole.value.status
    return whole.value


# Request


def test_request_properties():
    request = Request("GET", "/chat?room=1&x=%20", Headers())
    assert request.path == "/chat"
    assert request.query == "room=1&x=%20"
    assert Request("GET", "/", Headers()).query == ""


def test_request_serialize():
    request = Request("POST", "/submit", Headers([("Host", "a"), ("Content-Length", "2")]), b"hi")
    assert request.serialize() == (
        b"POST /submit HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi"
    )


@pytest.mark.parametrize(
    ("method", "target", "error"),
    [
        ("GET /", "/", "invalid method: 'GET /'"),
        ("G\xe9T", "/", "invalid method: 'G\xe9T'"),
        ("GET", "/a b", "invalid request target: '/a b'"),
        ("GET", "/\r\nX: y", "invalid request target: '/\\r\\nX: y'"),
        ("GET", "", "invalid request target: ''"),
    ],
)
def test_request_serialize_rejects_injection(method, target, error):
    with pytest.raises(ValueError) as raised:
        Request(method, target, Headers()).serialize()
    assert str(raised.value) == error


def test_request_round_trip():
    request = parse(UPGRADE_REQUEST)
    assert request.serialize() == UPGRADE_REQUEST


# Response


def test_response_serialize():
    response = Response(404, "Not Found", Headers([("Content-Length", "3")]), b"no\n")
    assert response.serialize() == b"HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nno\n"


def test_response_serialize_errors():
    with pytest.raises(ValueError) as raised:
        Response(42, "Bad", Headers()).serialize()
    assert str(raised.value) == "invalid status code: 42"
    with pytest.raises(ValueError) as raised:
        Response(200, "OK\r\nX: y", Headers()).serialize()
    assert str(raised.value) == "invalid reason phrase: 'OK\\r\\nX: y'"


def test_response_round_trip():
    data = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
    response = parse(data, ResponseParser)
    assert response.serialize() == data


# RequestParser: heads


def test_parse_upgrade_request():
    request = parse(UPGRADE_REQUEST)
    assert request.method == "GET"
    assert request.target == "/chat?room=1"
    assert request.path == "/chat"
    assert request.query == "room=1"
    assert request.headers["upgrade"] == "websocket"
    assert request.headers["Sec-WebSocket-Key"] == "dGhlIHNhbXBsZSBub25jZQ=="
    assert request.body == b""


@pytest.mark.parametrize("method", ["GET", "POST", "HEAD", "OPTIONS", "PUT", "DELETE", "X-CUSTOM"])
def test_parse_any_method(method):
    request = parse(f"{method} / HTTP/1.1\r\nHost: a\r\n\r\n".encode())
    assert request.method == method


def test_parse_strips_optional_whitespace():
    request = parse(b"GET / HTTP/1.1\r\nHost:a\r\nX-A: \t b c \t\r\nX-Empty:\r\n\r\n")
    assert request.headers["Host"] == "a"
    assert request.headers["X-A"] == "b c"
    assert request.headers["X-Empty"] == ""


def test_parse_keeps_repeated_headers_in_order():
    request = parse(b"GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\nY: 2\r\nx: 3\r\n\r\n")
    assert request.headers.get_all("X") == ["1", "3"]
    assert list(request.headers.raw_items()) == [("Host", "a"), ("X", "1"), ("Y", "2"), ("x", "3")]


def test_parse_obs_text_in_value():
    request = parse(b"GET / HTTP/1.1\r\nHost: a\r\nX: caf\xe9\r\n\r\n")
    assert request.headers["X"] == "caf\xe9"


def test_parse_leftover_before_complete_is_empty():
    parser = RequestParser(Limits())
    assert parser.feed(UPGRADE_REQUEST[:-1]) is None
    assert parser.leftover == b""


def test_parse_more_data_after_message_goes_to_leftover():
    parser = RequestParser(Limits())
    assert parser.feed(UPGRADE_REQUEST + b"ab") is not None
    assert parser.feed(b"cd") is None
    assert parser.leftover == b"abcd"


def test_parse_crlf_split_across_feeds():
    parser = RequestParser(Limits())
    assert parser.feed(UPGRADE_REQUEST[:-3]) is None
    assert parser.feed(UPGRADE_REQUEST[-3:-1]) is None
    request = parser.feed(UPGRADE_REQUEST[-1:] + TRAILING)
    assert request is not None
    assert parser.leftover == TRAILING


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"GET /\r\nHost: a\r\n\r\n", "invalid request line: GET /"),
        (b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n", "invalid request line: GET  / HTTP/1.1"),
        (b"GET / HTTP/1.1 x\r\nHost: a\r\n\r\n", "invalid request line: GET / HTTP/1.1 x"),
        (b"GET / FOO/1.1\r\nHost: a\r\n\r\n", "invalid request line: GET / FOO/1.1"),
        (b"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", "invalid request line: "),
        (b"G(T / HTTP/1.1\r\nHost: a\r\n\r\n", "invalid method: G(T"),
        (b"GET /\xe9 HTTP/1.1\r\nHost: a\r\n\r\n", "invalid request target: /\\xe9"),
        (b"GET / HTTP/1.1\r\nHost a\r\n\r\n", "invalid header line: Host a"),
        (b"GET / HTTP/1.1\r\nHost : a\r\n\r\n", "invalid header line: Host : a"),
        (b"GET / HTTP/1.1\r\n: a\r\nHost: a\r\n\r\n", "invalid header line: : a"),
        (b"GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", "invalid header line:  folded"),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n", "invalid character in message head"),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", "invalid character in message head"),
        (b"GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n", "invalid character in message head"),
        (b"GET / HTTP/1.1\r\n\r\n", "missing host header"),
        (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "multiple host headers"),
    ],
)
def test_parse_malformed_request(data, error):
    exc = parse_error(data)
    assert isinstance(exc, InvalidMessage)
    assert str(exc) == error
    assert exc.status == 400


def test_parse_error_message_is_shortened():
    exc = parse_error(b"GET /" + b"a" * 100 + b"\r\nHost: a\r\n\r\n")
    assert str(exc) == "invalid request line: GET /" + "a" * 75 + "..."


@pytest.mark.parametrize("version", [b"HTTP/1.0", b"HTTP/2.0", b"HTTP/0.9"])
def test_parse_unsupported_version(version):
    exc = parse_error(b"GET / " + version + b"\r\nHost: a\r\n\r\n")
    assert isinstance(exc, InvalidMessage)
    assert str(exc) == f"unsupported http version: {version.decode()}"
    assert exc.status == 505


# RequestParser: limits


def test_request_line_limit():
    limits = Limits(max_request_line=20)
    ok = b"GET /123456 HTTP/1.1\r\nHost: a\r\n\r\n"  # 20 bytes before CRLF
    assert parse(ok, limits=limits).target == "/123456"
    exc = parse_error(b"GET /1234567 HTTP/1.1\r\nHost: a\r\n\r\n", limits=limits)
    assert isinstance(exc, SecurityError)
    assert str(exc) == "request line too long"
    assert exc.status == 414


def test_request_line_limit_before_terminator():
    # No CRLF ever arrives: the parser must fail as soon as the limit is passed.
    parser = RequestParser(Limits(max_request_line=20))
    assert parser.feed(b"GET /" + b"a" * 15) is None  # 20 bytes
    assert parser.feed(b"\r") is None  # maybe the start of CRLF
    with pytest.raises(SecurityError) as raised:
        parser.feed(b"a")
    assert str(raised.value) == "request line too long"
    assert raised.value.status == 414


def test_header_line_limit():
    limits = Limits(max_header_line=10)
    assert parse(b"GET / HTTP/1.1\r\nHost: abcd\r\n\r\n", limits=limits).headers["Host"] == "abcd"
    exc = parse_error(b"GET / HTTP/1.1\r\nHost: abcde\r\n\r\n", limits=limits)
    assert isinstance(exc, SecurityError)
    assert str(exc) == "header line too long"
    assert exc.status == 431


def test_header_line_limit_before_terminator():
    parser = RequestParser(Limits(max_header_line=10))
    assert parser.feed(b"GET / HTTP/1.1\r\nHost: abcd") is None
    with pytest.raises(SecurityError) as raised:
        parser.feed(b"e")
    assert str(raised.value) == "header line too long"
    assert raised.value.status == 431


def test_header_count_limit():
    limits = Limits(max_headers=3)
    ok = b"GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n"
    assert len(parse(ok, limits=limits).headers) == 3
    exc = parse_error(b"GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", limits=limits)
    assert isinstance(exc, SecurityError)
    assert str(exc) == "too many headers"
    assert exc.status == 431


def test_header_count_limit_before_terminator():
    parser = RequestParser(Limits(max_headers=3))
    assert parser.feed(b"GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n") is None
    with pytest.raises(SecurityError) as raised:
        parser.feed(b"C")
    assert str(raised.value) == "too many headers"


def test_unterminated_head_stays_bounded():
    # Many short lines and no end of head: the count limit stops the growth.
    parser = RequestParser(Limits(max_headers=100))
    assert parser.feed(b"GET / HTTP/1.1\r\n") is None
    for _ in range(100):
        assert parser.feed(b"X: y\r\n") is None
    with pytest.raises(SecurityError) as raised:
        parser.feed(b"X: y\r\n")
    assert str(raised.value) == "too many headers"


def test_limit_errors_do_not_depend_on_later_lines():
    # A too-long header line after the count limit reports the count, like a stream would.
    limits = Limits(max_headers=2, max_header_line=10)
    exc = parse_error(
        b"GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3456789\r\n\r\n", limits=limits
    )
    assert str(exc) == "too many headers"


# RequestParser: bodies


def test_parse_content_length_body():
    request = parse(b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello")
    assert request.body == b"hello"


def test_parse_content_length_zero():
    assert parse(b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n").body == b""


def test_parse_repeated_identical_content_length():
    request = parse(
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nhi"
    )
    assert request.body == b"hi"
    request = parse(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2, 2\r\n\r\nhi")
    assert request.body == b"hi"


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (b"-1", "-1"),
        (b"1.0", "1.0"),
        (b"", ""),
        (b"0x10", "0x10"),
        (b"2, 3", "2, 3"),
        (b"\xc2\xb2", "\xc2\xb2"),
    ],
)
def test_parse_invalid_content_length(value, shown):
    exc = parse_error(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: " + value + b"\r\n\r\n")
    assert isinstance(exc, InvalidMessage)
    assert str(exc) == f"invalid content-length: {shown}"
    assert exc.status == 400


def test_parse_conflicting_content_length_lines():
    exc = parse_error(
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"
    )
    assert str(exc) == "invalid content-length: 1, 2"


def test_body_limit_content_length():
    limits = Limits(max_handshake_body=5)
    assert parse(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello", limits=limits)
    exc = parse_error(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\n\r\n", limits=limits)
    assert isinstance(exc, SecurityError)
    assert str(exc) == "body too large"
    assert exc.status == 413


def test_body_limit_huge_content_length():
    exc = parse_error(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: " + b"9" * 5000 + b"\r\n\r\n")
    assert str(exc) == "body too large"
    assert exc.status == 413


CHUNKED_REQUEST = (
    b"POST /upload HTTP/1.1\r\n"
    b"Host: a\r\n"
    b"Transfer-Encoding: chunked\r\n"
    b"\r\n"
    b"5\r\nhello\r\n"
    b"7;name=value\r\n, world\r\n"
    b"000\r\n"
    b"Trailer-Field: x\r\n"
    b"\r\n"
)


def test_parse_chunked_body():
    request = parse(CHUNKED_REQUEST)
    assert request.body == b"hello, world"
    # Trailer fields are discarded.
    assert "Trailer-Field" not in request.headers


def test_parse_chunked_body_without_trailers_and_uppercase_hex():
    data = (
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n"
        b"A\r\n0123456789\r\n0\r\n\r\n"
    )
    assert parse(data).body == b"0123456789"


def test_parse_chunked_empty_body():
    data = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    assert parse(data).body == b""


CHUNKED_HEAD = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"x\r\n", "invalid chunk size: x"),
        (b"\r\n", "invalid chunk size: "),
        (b"-1\r\n", "invalid chunk size: -1"),
        (b"5\r\nhelloXX", "invalid chunk terminator"),
        (b"0\r\nbad trailer\r\n\r\n", "invalid header line: bad trailer"),
    ],
)
def test_parse_malformed_chunked_body(body, error):
    exc = parse_error(CHUNKED_HEAD + body)
    assert isinstance(exc, InvalidMessage)
    assert str(exc) == error
    assert exc.status == 400


def test_body_limit_chunked():
    limits = Limits(max_handshake_body=10)
    ok = CHUNKED_HEAD + b"5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n"
    assert parse(ok, limits=limits).body == b"helloworld"
    exc = parse_error(CHUNKED_HEAD + b"5\r\nhello\r\n6\r\n", limits=limits)
    assert isinstance(exc, SecurityError)
    assert str(exc) == "body too large"
    assert exc.status == 413


def test_body_limit_chunked_huge_size():
    exc = parse_error(CHUNKED_HEAD + b"F" * 40 + b"\r\n")
    assert str(exc) == "body too large"


def test_chunk_size_line_limit():
    # CHUNKED_HEAD's longest header line has 26 bytes.
    limits = Limits(max_header_line=30)
    ok = CHUNKED_HEAD + b"5;" + b"x" * 28 + b"\r\nhello\r\n0\r\n\r\n"
    assert parse(ok, limits=limits).body == b"hello"
    exc = parse_error(CHUNKED_HEAD + b"5;" + b"x" * 29 + b"\r\nhello\r\n0\r\n\r\n", limits=limits)
    assert isinstance(exc, SecurityError)
    assert str(exc) == "chunk size line too long"
    assert exc.status == 400


def test_chunk_size_line_limit_before_terminator():
    parser = RequestParser(Limits(max_header_line=30))
    assert parser.feed(CHUNKED_HEAD + b"5;" + b"x" * 28 + b"\r") is None
    with pytest.raises(SecurityError) as raised:
        parser.feed(b"x")
    assert str(raised.value) == "chunk size line too long"


def test_trailer_line_limit():
    limits = Limits(max_header_line=30)
    exc = parse_error(CHUNKED_HEAD + b"0\r\nX: " + b"x" * 28 + b"\r\n\r\n", limits=limits)
    assert isinstance(exc, SecurityError)
    assert str(exc) == "header line too long"
    assert exc.status == 431


def test_trailer_count_limit():
    limits = Limits(max_headers=2)
    # CHUNKED_HEAD has two header lines; the trailer section has its own count.
    assert parse(CHUNKED_HEAD + b"0\r\nA: 1\r\nB: 2\r\n\r\n", limits=limits).body == b""
    exc = parse_error(CHUNKED_HEAD + b"0\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", limits=limits)
    assert isinstance(exc, SecurityError)
    assert str(exc) == "too many headers"
    assert exc.status == 431


@pytest.mark.parametrize("coding", [b"gzip, chunked", b"chunked, chunked"])
def test_unsupported_transfer_encoding(coding):
    exc = parse_error(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: " + coding + b"\r\n\r\n")
    assert isinstance(exc, InvalidMessage)
    assert str(exc) == f"unsupported transfer-encoding: {coding.decode()}"
    assert exc.status == 501


def test_transfer_encoding_not_ending_with_chunked():
    exc = parse_error(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n")
    assert str(exc) == "transfer-encoding doesn't end with chunked: gzip"
    assert exc.status == 400


def test_transfer_encoding_and_content_length():
    exc = parse_error(
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"
    )
    assert str(exc) == "both transfer-encoding and content-length"
    assert exc.status == 400


# RequestParser: end of connection


def test_request_eof_before_anything():
    assert RequestParser(Limits()).feed_eof() is None


def test_request_eof_in_head():
    parser = RequestParser(Limits())
    parser.feed(b"GET / HTTP/1.1\r\n")
    with pytest.raises(InvalidMessage) as raised:
        parser.feed_eof()
    assert str(raised.value) == "connection closed while reading the message head"


def test_request_eof_in_body():
    parser = RequestParser(Limits())
    parser.feed(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhel")
    with pytest.raises(InvalidMessage) as raised:
        parser.feed_eof()
    assert str(raised.value) == "connection closed while reading the message body"


def test_request_eof_after_message():
    parser = RequestParser(Limits())
    assert parser.feed(UPGRADE_REQUEST) is not None
    assert parser.feed_eof() is None


# ResponseParser


SWITCHING = (
    b"HTTP/1.1 101 Switching Protocols\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
    b"\r\n"
)


def test_parse_101_response_has_no_body():
    # Even with a Content-Length, the bytes after a 101 are WebSocket frames.
    response = parse(
        SWITCHING.replace(b"\r\n\r\n", b"\r\nContent-Length: 5\r\n\r\n"), ResponseParser
    )
    assert response.status_code == 101
    assert response.reason_phrase == "Switching Protocols"
    assert response.headers["Sec-WebSocket-Accept"] == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    assert response.body == b""


@pytest.mark.parametrize("status", [b"100 Continue", b"204 No Content", b"304 Not Modified"])
def test_parse_bodyless_statuses(status):
    response = parse(b"HTTP/1.1 " + status + b"\r\nContent-Length: 5\r\n\r\n", ResponseParser)
    assert response.body == b""


def test_parse_head_response_has_no_body():
    data = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"
    assert parse(data, ResponseParser, method="head").body == b""


def test_parse_connect_response_has_no_body():
    data = b"HTTP/1.1 200 Connection established\r\n\r\n"
    assert parse(data, ResponseParser, method="CONNECT").body == b""


def test_parse_connect_error_response_has_a_body():
    data = b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 2\r\n\r\nno"
    assert parse(data, ResponseParser, method="CONNECT").body == b"no"


def test_parse_response_content_length():
    data = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 9\r\n\r\nforbidden"
    response = parse(data, ResponseParser)
    assert response.status_code == 403
    assert response.body == b"forbidden"


def test_parse_response_chunked():
    data = (
        b"HTTP/1.1 500 Internal Server Error\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\n0\r\n\r\n"
    )
    assert parse(data, ResponseParser).body == b"abc"


def test_parse_response_http10_and_empty_reason():
    response = parse(b"HTTP/1.0 404 \r\nContent-Length: 0\r\n\r\n", ResponseParser)
    assert (response.status_code, response.reason_phrase) == (404, "")
    response = parse(b"HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n", ResponseParser)
    assert (response.status_code, response.reason_phrase) == (404, "")


def test_parse_response_until_eof():
    parser = ResponseParser(Limits())
    assert parser.feed(b"HTTP/1.1 400 Bad Request\r\n\r\nbad ") is None
    assert parser.feed(b"request") is None
    response = parser.feed_eof()
    assert response.body == b"bad request"
    assert parser.leftover == b""
    assert parser.feed_eof() is None


def test_parse_response_until_eof_with_unknown_coding():
    parser = ResponseParser(Limits())
    assert (
        parser.feed(b"HTTP/1.1 400 Bad Request\r\nTransfer-Encoding: gzip\r\n\r\n\x1f\x8b") is None
    )
    assert parser.feed_eof().body == b"\x1f\x8b"


def test_parse_response_until_eof_limit():
    parser = ResponseParser(Limits(max_handshake_body=4))
    assert parser.feed(b"HTTP/1.1 400 Bad Request\r\n\r\nabcd") is None
    with pytest.raises(SecurityError) as raised:
        parser.feed(b"e")
    assert str(raised.value) == "body too large"
    assert raised.value.status == 413


def test_parse_response_eof_before_anything():
    with pytest.raises(InvalidMessage) as raised:
        ResponseParser(Limits()).feed_eof()
    assert str(raised.value) == "connection closed before any response"


def test_parse_response_eof_in_chunked_body():
    parser = ResponseParser(Limits())
    parser.feed(b"HTTP/1.1 400 Bad Request\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab")
    with pytest.raises(InvalidMessage) as raised:
        parser.feed_eof()
    assert str(raised.value) == "connection closed while reading the message body"


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"HTTP/1.1\r\n\r\n", "invalid status code: "),
        (b"HTTP/1.1 20 OK\r\n\r\n", "invalid status code: 20"),
        (b"HTTP/1.1 2000 OK\r\n\r\n", "invalid status code: 2000"),
        (b"HTTP/1.1 099 Low\r\n\r\n", "invalid status code: 099"),
        (b"HTTP/1.1 abc OK\r\n\r\n", "invalid status code: abc"),
        (b"ICY 200 OK\r\n\r\n", "invalid status line: ICY 200 OK"),
        (b"HTTP/1.1 200 OK\r\nX\r\n\r\n", "invalid header line: X"),
        (b"HTTP/1.1 200 O\x00K\r\n\r\n", "invalid character in message head"),
    ],
)
def test_parse_malformed_response(data, error):
    exc = parse_error(data, ResponseParser)
    assert isinstance(exc, InvalidMessage)
    assert str(exc) == error


def test_parse_response_unsupported_version():
    exc = parse_error(b"HTTP/2.0 200 OK\r\n\r\n", ResponseParser)
    assert str(exc) == "unsupported http version: HTTP/2.0"
    assert exc.status == 505


def test_status_line_limit():
    limits = Limits(max_request_line=16)
    assert parse(b"HTTP/1.1 200 OKO\r\n\r\n", ResponseParser, limits=limits, method="HEAD")
    exc = parse_error(b"HTTP/1.1 200 OKOK\r\n\r\n", ResponseParser, limits=limits)
    assert isinstance(exc, SecurityError)
    assert str(exc) == "status line too long"
    assert exc.status == 400


def test_response_header_limits():
    limits = Limits(max_headers=1, max_header_line=8)
    exc = parse_error(b"HTTP/1.1 101 OK\r\nA: 1\r\nB: 2\r\n\r\n", ResponseParser, limits=limits)
    assert str(exc) == "too many headers"
    exc = parse_error(b"HTTP/1.1 101 OK\r\nA: 1234567\r\n\r\n", ResponseParser, limits=limits)
    assert str(exc) == "header line too long"


def test_raw_head_is_the_head_as_received():
    parser = RequestParser(Limits())
    assert parser.raw_head == b""
    assert parser.feed(UPGRADE_REQUEST[:10]) is None
    assert parser.raw_head == b""
    request = parser.feed(UPGRADE_REQUEST[10:] + b"frames")
    assert parser.raw_head == UPGRADE_REQUEST
    again = RequestParser(Limits()).feed(parser.raw_head)
    assert again == request
