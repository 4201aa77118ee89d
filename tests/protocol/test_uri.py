import dataclasses

import pytest

from tether.exceptions import InvalidURI
from tether.protocol.uri import WebSocketURI, parse_uri


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("ws://example.com", WebSocketURI(False, "example.com", 80, "/")),
        ("wss://example.com", WebSocketURI(True, "example.com", 443, "/")),
        ("ws://example.com:8080/chat", WebSocketURI(False, "example.com", 8080, "/chat")),
        ("wss://example.com:443/", WebSocketURI(True, "example.com", 443, "/")),
        ("WS://Example.COM/Path", WebSocketURI(False, "example.com", 80, "/Path")),
        ("ws://h/a?b=1&c", WebSocketURI(False, "h", 80, "/a", "b=1&c")),
        ("ws://h?x", WebSocketURI(False, "h", 80, "/", "x")),
        ("ws://h/?", WebSocketURI(False, "h", 80, "/", "")),
        ("ws://[::1]:9000/", WebSocketURI(False, "::1", 9000, "/")),
        ("ws://[2001:db8::1]", WebSocketURI(False, "2001:db8::1", 80, "/")),
        ("ws://127.0.0.1:1/", WebSocketURI(False, "127.0.0.1", 1, "/")),
        ("ws://b\xfccher.example/", WebSocketURI(False, "xn--bcher-kva.example", 80, "/")),
        ("ws://h/a b/\xe9", WebSocketURI(False, "h", 80, "/a%20b/%C3%A9")),
        (
            "ws://h/a%20b?q=%2F&r=\xe9 x",
            WebSocketURI(False, "h", 80, "/a%20b", "q=%2F&r=%C3%A9%20x"),
        ),
        ("ws://h/p?a=/b?c", WebSocketURI(False, "h", 80, "/p", "a=/b?c")),
        ("ws://user:p%40ss@h/", WebSocketURI(False, "h", 80, "/", "", ("user", "p@ss"))),
        ("ws://user:@h/", WebSocketURI(False, "h", 80, "/", "", ("user", ""))),
    ],
)
def test_parse_uri(uri, expected):
    assert parse_uri(uri) == expected


@pytest.mark.parametrize(
    ("uri", "error"),
    [
        ("http://example.com/", "scheme isn't ws or wss"),
        ("example.com", "scheme isn't ws or wss"),
        ("ws:///path", "hostname isn't provided"),
        ("ws://", "hostname isn't provided"),
        ("ws://h/#frag", "fragment identifiers aren't allowed"),
        ("ws://h/#", "fragment identifiers aren't allowed"),
        ("ws://h:99999/", "invalid port"),
        ("ws://h:port/", "invalid port"),
        ("ws://h:0/", "invalid port"),
        ("ws://[::1/", "invalid IPv6 address"),
        ("ws://h/\r\nX: y", "contains control characters"),
        ("ws://h/\t", "contains control characters"),
        ("ws://a b/", "invalid hostname"),
        ("ws://a<b>/", "invalid hostname"),
        ("ws://" + "a" * 64 + "\xe9.example/", "invalid hostname"),
        ("ws://user@h/", "username provided without password"),
    ],
)
def test_parse_uri_errors(uri, error):
    with pytest.raises(InvalidURI) as raised:
        parse_uri(uri)
    assert str(raised.value) == f"{uri} isn't a valid URI: {error}"
    assert raised.value.uri == uri


def test_resource_name():
    assert parse_uri("ws://h").resource_name == "/"
    assert parse_uri("ws://h/chat").resource_name == "/chat"
    assert parse_uri("ws://h/chat?room=1").resource_name == "/chat?room=1"
    assert parse_uri("ws://h/chat?").resource_name == "/chat"


def test_default_port():
    assert parse_uri("ws://h").default_port
    assert parse_uri("wss://h:443").default_port
    assert not parse_uri("ws://h:443").default_port
    assert not parse_uri("wss://h:80").default_port


def test_uri_is_frozen():
    uri = parse_uri("ws://h")
    with pytest.raises(dataclasses.FrozenInstanceError):
        uri.port = 81
