import pytest

from tether.exceptions import InvalidHeaderFormat
from tether.protocol.headers import (
    Headers,
    MultipleValuesError,
    build_extension,
    build_subprotocol_list,
    parse_connection,
    parse_extension,
    parse_subprotocol_list,
    parse_upgrade,
)


# Headers


def test_headers_case_insensitive_lookup():
    headers = Headers([("Content-Type", "text/plain")])
    assert headers["content-type"] == "text/plain"
    assert headers["CONTENT-TYPE"] == "text/plain"
    assert "content-TYPE" in headers
    assert 42 not in headers
    assert headers.get("Missing") is None


def test_headers_missing_key_raises_key_error():
    with pytest.raises(KeyError):
        Headers()["Host"]


def test_headers_multiple_values():
    headers = Headers([("Set-Cookie", "a=1"), ("Host", "x"), ("set-cookie", "b=2")])
    assert headers.get_all("SET-COOKIE") == ["a=1", "b=2"]
    assert headers.get_all("Missing") == []
    assert headers.get_joined("Set-Cookie") == "a=1, b=2"
    assert headers.get_joined("Missing") is None
    with pytest.raises(MultipleValuesError) as raised:
        headers["Set-Cookie"]
    assert isinstance(raised.value, KeyError)
    assert str(raised.value) == "multiple values for header Set-Cookie"


def test_headers_get_all_returns_a_copy():
    headers = Headers(A="1")
    headers.get_all("A").append("2")
    assert headers.get_all("A") == ["1"]


def test_headers_preserve_order_and_case():
    pairs = [("B", "1"), ("a", "2"), ("b", "3")]
    headers = Headers(pairs)
    assert list(headers.raw_items()) == pairs
    assert list(headers) == ["b", "a"]
    assert len(headers) == 2


def test_headers_setitem_replaces_all_values():
    headers = Headers([("A", "1"), ("B", "2"), ("a", "3")])
    headers["A"] = "4"
    assert headers["a"] == "4"
    assert list(headers.raw_items()) == [("B", "2"), ("A", "4")]


def test_headers_setitem_new_key():
    headers = Headers()
    headers["Host"] = "example.com"
    assert list(headers.raw_items()) == [("Host", "example.com")]


def test_headers_delitem_removes_all_values():
    headers = Headers([("A", "1"), ("B", "2"), ("a", "3")])
    del headers["A"]
    assert list(headers.raw_items()) == [("B", "2")]
    assert "a" not in headers
    with pytest.raises(KeyError):
        del headers["A"]


def test_headers_add_appends():
    headers = Headers(A="1")
    headers.add("a", "2")
    assert headers.get_all("A") == ["1", "2"]


def test_headers_constructor_from_mapping_headers_and_pairs():
    from_mapping = Headers({"A": "1", "B": "2"})
    from_pairs = Headers([("A", "1"), ("B", "2")])
    from_headers = Headers(from_pairs)
    from_kwargs = Headers(A="1", B="2")
    assert from_mapping == from_pairs == from_headers == from_kwargs
    # The copy is independent.
    from_headers.add("C", "3")
    assert "C" not in from_pairs


def test_headers_update_appends():
    headers = Headers(A="1")
    headers.update(Headers([("A", "2"), ("A", "3")]), B="4")
    assert headers.get_all("A") == ["1", "2", "3"]
    assert headers["B"] == "4"


def test_headers_update_too_many_arguments():
    with pytest.raises(TypeError) as raised:
        Headers().update({}, {})
    assert str(raised.value) == "update expected at most 1 argument, got 2"


def test_headers_equality():
    assert Headers(A="1") == Headers(a="1")
    assert Headers(A="1") == {"a": "1"}
    assert Headers(A="1") != Headers(A="2")
    assert Headers([("A", "1"), ("A", "2")]) != Headers([("A", "2"), ("A", "1")])
    assert Headers(A="1") != {"bad name": "1"}
    assert Headers(A="1") != 42
    with pytest.raises(TypeError):
        hash(Headers())


def test_headers_copy_is_independent():
    headers = Headers(A="1")
    copy = headers.copy()
    copy.add("A", "2")
    assert headers.get_all("A") == ["1"]
    assert copy.get_all("A") == ["1", "2"]


def test_headers_clear():
    headers = Headers(A="1")
    headers.clear()
    assert len(headers) == 0
    assert list(headers.raw_items()) == []


def test_headers_serialize():
    headers = Headers([("Host", "example.com"), ("X-Tab", "a\tb"), ("X-Latin", "caf\xe9")])
    assert headers.serialize() == b"Host: example.com\r\nX-Tab: a\tb\r\nX-Latin: caf\xe9\r\n"
    assert str(headers) == "Host: example.com\r\nX-Tab: a\tb\r\nX-Latin: caf\xe9\r\n"
    assert Headers().serialize() == b""


def test_headers_repr():
    assert repr(Headers(A="1")) == "Headers([('A', '1')])"


@pytest.mark.parametrize(
    "name",
    ["", "Bad Name", "Bad:Name", "Bad\r\nName", "Bad\x00", "Caf\xe9", "(x)"],
)
def test_headers_reject_invalid_names(name):
    with pytest.raises(ValueError) as raised:
        Headers().add(name, "value")
    assert str(raised.value) == f"invalid header name: {name!r}"
    with pytest.raises(ValueError):
        Headers()[name] = "value"


@pytest.mark.parametrize(
    "value",
    ["a\r\nInjected: yes", "a\nb", "a\rb", "a\x00b", "a\x7fb", "\u20ac"],
)
def test_headers_reject_invalid_values(value):
    with pytest.raises(ValueError) as raised:
        Headers().add("X", value)
    assert str(raised.value) == f"invalid header value: {value!r}"
    with pytest.raises(ValueError):
        Headers({"X": value})


def test_headers_reject_non_string():
    with pytest.raises(ValueError):
        Headers().add("X", 1)
    with pytest.raises(ValueError):
        Headers().add(1, "x")


# Connection and Upgrade


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Upgrade", ["Upgrade"]),
        ("keep-alive, Upgrade", ["keep-alive", "Upgrade"]),
        ("keep-alive,Upgrade", ["keep-alive", "Upgrade"]),
        (" , ,Upgrade , ,", ["Upgrade"]),
        ("a,\tb", ["a", "b"]),
    ],
)
def test_parse_connection(header, expected):
    assert parse_connection(header) == expected


@pytest.mark.parametrize(
    ("header", "error"),
    [
        ("", "invalid Connection header: expected token at 0 in "),
        (",", "invalid Connection header: expected token at 1 in ,"),
        ("a b", "invalid Connection header: expected comma at 2 in a b"),
        ("a;b", "invalid Connection header: expected comma at 1 in a;b"),
        ("a, /", "invalid Connection header: expected token at 3 in a, /"),
    ],
)
def test_parse_connection_errors(header, error):
    with pytest.raises(InvalidHeaderFormat) as raised:
        parse_connection(header)
    assert str(raised.value) == error
    assert raised.value.name == "Connection"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("websocket", ["websocket"]),
        ("HTTP/2.0, WebSocket", ["HTTP/2.0", "WebSocket"]),
        ("h2c, websocket", ["h2c", "websocket"]),
    ],
)
def test_parse_upgrade(header, expected):
    assert parse_upgrade(header) == expected


@pytest.mark.parametrize(
    ("header", "error"),
    [
        ("", "invalid Upgrade header: expected protocol at 0 in "),
        ("/1", "invalid Upgrade header: expected protocol at 0 in /1"),
        ("a/", "invalid Upgrade header: expected comma at 1 in a/"),
    ],
)
def test_parse_upgrade_errors(header, error):
    with pytest.raises(InvalidHeaderFormat) as raised:
        parse_upgrade(header)
    assert str(raised.value) == error


# Sec-WebSocket-Protocol


def test_parse_subprotocol_list():
    assert parse_subprotocol_list("chat, superchat") == ["chat", "superchat"]
    assert parse_subprotocol_list("chat") == ["chat"]


def test_parse_subprotocol_list_joined_lines():
    assert parse_subprotocol_list(", ".join(["chat", "v2.bin"])) == ["chat", "v2.bin"]


def test_parse_subprotocol_list_error():
    with pytest.raises(InvalidHeaderFormat) as raised:
        parse_subprotocol_list("chat, super chat")
    assert str(raised.value) == (
        "invalid Sec-WebSocket-Protocol header: expected comma at 12 in chat, super chat"
    )


def test_build_subprotocol_list():
    assert build_subprotocol_list(["chat", "superchat"]) == "chat, superchat"
    assert parse_subprotocol_list(build_subprotocol_list(["a", "b"])) == ["a", "b"]


def test_build_subprotocol_list_errors():
    with pytest.raises(ValueError) as raised:
        build_subprotocol_list([])
    assert str(raised.value) == "empty subprotocol list"
    with pytest.raises(ValueError) as raised:
        build_subprotocol_list(["a b"])
    assert str(raised.value) == "invalid subprotocol: 'a b'"


# Sec-WebSocket-Extensions


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("foo", [("foo", [])]),
        ("foo, bar", [("foo", []), ("bar", [])]),
        (
            "permessage-deflate; client_max_window_bits; server_max_window_bits=10",
            [
                (
                    "permessage-deflate",
                    [("client_max_window_bits", None), ("server_max_window_bits", "10")],
                )
            ],
        ),
        ('foo; bar="baz"', [("foo", [("bar", "baz")])]),
        ('foo;bar="b\\az"', [("foo", [("bar", "baz")])]),
        ("foo ; bar = 1 , baz", [("foo", [("bar", "1")]), ("baz", [])]),
        ("foo;a;b=2, foo;a", [("foo", [("a", None), ("b", "2")]), ("foo", [("a", None)])]),
    ],
)
def test_parse_extension(header, expected):
    assert parse_extension(header) == expected


@pytest.mark.parametrize(
    ("header", "error"),
    [
        ("", "expected token at 0 in "),
        ("foo;", "expected token at 4 in foo;"),
        ("foo; =1", "expected token at 5 in foo; =1"),
        ("foo; a=", "expected token at 7 in foo; a="),
        ('foo; a="1', 'expected quoted string at 7 in foo; a="1'),
        ('foo; a="1 2"', 'invalid quoted parameter value at 7 in foo; a="1 2"'),
        ('foo; a=""', 'invalid quoted parameter value at 7 in foo; a=""'),
        ("foo bar", "expected comma at 4 in foo bar"),
    ],
)
def test_parse_extension_errors(header, error):
    with pytest.raises(InvalidHeaderFormat) as raised:
        parse_extension(header)
    assert str(raised.value) == f"invalid Sec-WebSocket-Extensions header: {error}"


def test_build_extension():
    extensions = [
        (
            "permessage-deflate",
            [("client_max_window_bits", None), ("server_max_window_bits", "10")],
        ),
        ("x-test", []),
    ]
    header = build_extension(extensions)
    assert header == (
        "permessage-deflate; client_max_window_bits; server_max_window_bits=10, x-test"
    )
    assert parse_extension(header) == extensions


@pytest.mark.parametrize(
    ("extensions", "error"),
    [
        ([], "empty extension list"),
        ([("a b", [])], "invalid extension name: 'a b'"),
        ([("a", [("b c", None)])], "invalid extension parameter name: 'b c'"),
        ([("a", [("b", "1 2")])], "invalid extension parameter value: '1 2'"),
        ([("a", [("b", "x\r\ny")])], "invalid extension parameter value: 'x\\r\\ny'"),
    ],
)
def test_build_extension_errors(extensions, error):
    with pytest.raises(ValueError) as raised:
        build_extension(extensions)
    assert str(raised.value) == error
