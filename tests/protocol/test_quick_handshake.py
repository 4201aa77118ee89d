"""quick_server_handshake must agree with RequestParser + server_handshake, or step aside."""

import pytest
from hypothesis import given, settings, strategies as st

from tether.exceptions import InvalidMessage, SecurityError
from tether.protocol import handshake
from tether.protocol._speedups import scan_head as c_scan_head
from tether.protocol.extensions.permessage_deflate import ServerPerMessageDeflateFactory
from tether.protocol.handshake import py_scan_head, quick_server_handshake, server_handshake
from tether.protocol.http11 import RequestParser
from tether.protocol.limits import Limits
from tether.types import Origin

from .test_handshake import RFC_RESPONSE, XTest, XTestServerFactory


KEY = b"dGhlIHNhbXBsZSBub25jZQ=="
LINES = [
    b"Host: example.com",
    b"Upgrade: websocket",
    b"Connection: Upgrade",
    b"Sec-WebSocket-Key: " + KEY,
    b"Sec-WebSocket-Version: 13",
]


def head(*lines, start=b"GET /chat HTTP/1.1"):
    return b"\r\n".join([start, *lines]) + b"\r\n\r\n"


def full_path(data, limits, extensions, origins):
    """What the full path does with ``data``: (target, response, extensions) or None."""
    parser = RequestParser(limits)
    try:
        request = parser.feed(data)
    except (InvalidMessage, SecurityError):
        return None
    if request is None or parser.leftover:
        return None
    outcome = server_handshake(request, extensions=extensions, origins=origins)
    if outcome.error is not None:
        return None
    return request.target, outcome.response.serialize(), outcome.extensions


def check(data, limits=None, extensions=(), origins=None):
    """Assert agreement (and the C scan's with Python's); return the quick result."""
    assert c_scan_head(data) == py_scan_head(data)
    limits = limits or Limits()
    quick = quick_server_handshake(data, limits, extensions=extensions, origins=origins)
    if quick is not None:
        assert quick == full_path(data, limits, extensions, origins)
    return quick


def test_rfc_sample():
    quick = check(head(*LINES))
    assert quick == ("/chat", RFC_RESPONSE, [])


def test_target_with_query_and_server_header():
    data = head(*LINES, start=b"GET /a/b?x=1&y=%20 HTTP/1.1")
    assert check(data)[0] == "/a/b?x=1&y=%20"
    quick = quick_server_handshake(data, Limits(), server_header=None)
    assert quick is not None
    assert b"Server:" not in quick[1]
    assert quick[1].endswith(b"xOo=\r\n\r\n")


@pytest.mark.parametrize(
    "lines",
    [
        # Case of names and of the Upgrade/Connection values, optional whitespace.
        [b"hOST: x", b"upgrade: WebSocket", b"CONNECTION: upgrade", *LINES[3:]],
        [b"Host:x", b"Upgrade: \t websocket \t", b"Connection:Upgrade", *LINES[3:]],
        [*LINES, b"User-Agent: test/1.0", b"X-Empty:", b"Accept-Language: en, fr;q=0.5"],
        list(reversed(LINES)),
    ],
)
def test_accepted_variants(lines):
    assert check(head(*lines)) is not None


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (head(*LINES[1:]), "no Host"),
        (head(*LINES, b"Host: other"), "Host twice"),
        (head(*LINES, b"X-A: 1", b"x-a: 2"), "a repeated field"),
        (head(*LINES[:2], b"Connection: keep-alive, Upgrade", *LINES[3:]), "a list"),
        (head(LINES[0], b"Upgrade: h2c, websocket", *LINES[2:]), "a list"),
        (head(*LINES[:3], b"Sec-WebSocket-Key: abc", LINES[4]), "a bad key"),
        (head(*LINES[:4], b"Sec-WebSocket-Version: 8"), "another version"),
        (head(*LINES[:4]), "no version"),
        (head(*LINES, b"Sec-WebSocket-Protocol: chat"), "a subprotocol offer"),
        (head(*LINES, b"Content-Length: 0"), "a body length"),
        (head(*LINES, b"Transfer-Encoding: chunked"), "chunked framing"),
        (head(*LINES, start=b"POST /chat HTTP/1.1"), "not GET"),
        (head(*LINES, start=b"GET /chat HTTP/1.0"), "HTTP/1.0"),
        (head(*LINES, b"X-Latin: caf\xe9"), "obs-text"),
        (head(*LINES, b"X-Bad : 1"), "space before the colon"),
        (head(*LINES, b" folded"), "obs-fold"),
        (head(*LINES)[:-2], "incomplete"),
        (head(*LINES) + b"\x81\x80abcd", "bytes after the head"),
    ],
)
def test_declined(data, why):
    assert quick_server_handshake(data, Limits()) is None, why


@pytest.mark.parametrize(
    "limits",
    [
        Limits(max_request_line=60),
        Limits(max_header_line=60),
        Limits(max_headers=4),
    ],
)
def test_declined_near_limits(limits):
    # The full path decides exactly which line is too long (or too many).
    assert quick_server_handshake(head(*LINES), limits) is None


def test_origins():
    allowed = [Origin("https://a.example"), None]
    with_origin = head(*LINES, b"Origin: https://a.example")
    assert check(with_origin, origins=allowed) is not None
    assert check(head(*LINES), origins=allowed) is not None
    assert check(head(*LINES, b"Origin: https://b.example"), origins=allowed) is None
    assert check(head(*LINES), origins=[Origin("https://a.example")]) is None


def test_extensions():
    factories = [XTestServerFactory()]
    quick = check(head(*LINES, b"Sec-WebSocket-Extensions: x-test; level=2"), extensions=factories)
    assert quick is not None
    assert quick[2] == [XTest("2")]
    assert b"\r\nSec-WebSocket-Extensions: x-test; level=2\r\nServer: tether\r\n" in quick[1]
    # An offer without factories is ignored, as by the full path.
    assert check(head(*LINES, b"Sec-WebSocket-Extensions: x-test"))[2] == []
    # Nothing acceptable: no header in the response.
    quick = check(head(*LINES, b"Sec-WebSocket-Extensions: x-test; level=9"), extensions=factories)
    assert quick is not None
    assert quick[2] == []
    assert b"Extensions" not in quick[1]
    # A malformed offer gets the full path's 400.
    bad = head(*LINES, b"Sec-WebSocket-Extensions: ;;")
    assert quick_server_handshake(bad, Limits(), extensions=factories) is None


def test_permessage_deflate_offer():
    offer = b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits"
    data = head(*LINES, offer)
    factories = [ServerPerMessageDeflateFactory()]
    quick = quick_server_handshake(data, Limits(), extensions=factories)
    expected = full_path(data, Limits(), factories, None)
    assert quick is not None
    assert expected is not None
    assert quick[:2] == expected[:2]
    assert b"permessage-deflate" in quick[1]
    assert [type(e) for e in quick[2]] == [type(e) for e in expected[2]]


# Arbitrary requests built from valid and invalid pieces: whenever the quick path
# answers, the full path gives the same answer.

LINE_POOL = [
    *LINES,
    b"host: example.com:8080",
    b"Upgrade: WebSocket ",
    b"Upgrade: h2c",
    b"Connection: keep-alive, Upgrade",
    b"Connection: close",
    b"Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==",
    b"Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA=",
    b"Sec-WebSocket-Version: 13 ",
    b"Sec-WebSocket-Version: 12",
    b"Sec-WebSocket-Extensions: x-test; level=1",
    b"Sec-WebSocket-Extensions: x-test, x-test; level=2",
    b"Sec-WebSocket-Protocol: chat",
    b"Origin: https://a.example",
    b"Origin: null",
    b"Content-Length: 0",
    b"Cookie: a=b; c=d",
    b"X-Tab:\tvalue\t",
    b"X-Obs: \xff",
    b"Bad Name: 1",
    b"X-Ctl: a\x01b",
    b":empty-name",
]
# Lines that keep a valid request valid (none repeats a field of LINES).
EXTRA_POOL = [
    b"Sec-WebSocket-Extensions: x-test; level=1",
    b"Origin: https://a.example",
    b"Cookie: a=b; c=d",
    b"X-Tab:\tvalue\t",
    b"User-Agent: test",
]
START_POOL = [
    b"GET / HTTP/1.1",
    b"GET /chat?room=1 HTTP/1.1",
    b"GET http://example.com/ HTTP/1.1",
    b"get / HTTP/1.1",
    b"GET  / HTTP/1.1",
    b"GET / HTTP/1.2",
    b"OPTIONS * HTTP/1.1",
]


LIMITS = st.one_of(
    st.just(Limits()),
    st.builds(
        lambda headers, line: Limits(
            max_headers=headers, max_request_line=line, max_header_line=line
        ),
        st.integers(1, 12),
        st.integers(10, 300),
    ),
)


@settings(max_examples=500, deadline=None)
@given(
    start=st.sampled_from(START_POOL),
    base=st.booleans(),
    extra=st.lists(st.sampled_from(EXTRA_POOL), max_size=3, unique=True),
    lines=st.lists(st.sampled_from(LINE_POOL), max_size=2),
    limits=LIMITS,
    use_extensions=st.booleans(),
    use_origins=st.booleans(),
)
def test_agrees_with_full_path(start, base, extra, lines, limits, use_extensions, use_origins):
    # With ``base``, the pieces are added to a valid request (the quick path's domain).
    extensions = [XTestServerFactory()] if use_extensions else ()
    origins = [Origin("https://a.example"), None] if use_origins else None
    data = head(*(LINES if base else []), *extra, *lines, start=start)
    check(data, limits, extensions, origins)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 200), st.binary(min_size=1, max_size=3))
def test_agrees_with_full_path_on_damaged_bytes(position, junk):
    data = bytearray(head(*LINES, b"Sec-WebSocket-Extensions: x-test"))
    position %= len(data)
    data[position : position + len(junk)] = junk
    check(bytes(data), extensions=[XTestServerFactory()])


def test_every_line_pool_request_is_reachable():
    # The property tests above are only meaningful if both outcomes happen.
    assert check(head(*LINES)) is not None
    assert check(head(*LINES, LINE_POOL[-1])) is None


def test_speedups_selected():
    assert handshake.scan_head is c_scan_head


@pytest.mark.parametrize(
    "data",
    [
        head(*LINES),
        head(b"X-" + b"n" * 1000 + b": v", *LINES),  # a long name
        head(b"A:", b"b: \t x y \t", b"C:\t"),
        b"GET / HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\n\r",
        b"GET  HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nA: 1\r\na: 2\r\n\r\n",
        b"GET / HTTP/1.1\r\nA 1\r\n\r\n",
        b"GET / HTTP/1.1\r\nA: 1\n\r\n",
        b"GET / HTTP/1.1\r\n\r\n\r\n",
        b"GET",
        b"",
    ],
)
def test_scan_head_c_and_python_agree(data):
    assert c_scan_head(data) == py_scan_head(data)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=80))
def test_scan_head_c_and_python_agree_on_any_bytes(tail):
    for data in (tail, b"GET / HTTP/1.1\r\n" + tail, head(*LINES[:2]) + tail):
        assert c_scan_head(data) == py_scan_head(data)
