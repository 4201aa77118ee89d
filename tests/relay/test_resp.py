"""The RESP2 codec, with bytes only."""

import pytest
from hypothesis import given, settings, strategies as st

from tether.relay.backends.resp import (
    MAX_LINE,
    RespError,
    RespParser,
    RespProtocolError,
    encode_command,
)


def test_encode_command():
    assert encode_command(b"PUBLISH", "ch:é", 42) == (
        b"*3\r\n$7\r\nPUBLISH\r\n$5\r\nch:\xc3\xa9\r\n$2\r\n42\r\n"
    )
    assert encode_command(b"PING") == b"*1\r\n$4\r\nPING\r\n"
    assert encode_command(b"SET", b"k", b"") == b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n"


VECTORS = [
    (b"+OK\r\n", b"OK"),
    (b":0\r\n", 0),
    (b":-12\r\n", -12),
    (b"$5\r\nhello\r\n", b"hello"),
    (b"$0\r\n\r\n", b""),
    (b"$-1\r\n", None),
    (b"*-1\r\n", None),
    (b"*0\r\n", []),
    (b"$4\r\na\r\nb\r\n", b"a\r\nb"),  # CRLF inside a bulk string is data
    (
        b"*3\r\n$7\r\nmessage\r\n$4\r\nch:t\r\n$2\r\n{}\r\n",
        [b"message", b"ch:t", b"{}"],
    ),
    (b"*3\r\n$9\r\nsubscribe\r\n$1\r\nc\r\n:1\r\n", [b"subscribe", b"c", 1]),
    (b"*2\r\n*1\r\n:1\r\n$-1\r\n", [[1], None]),
]


@pytest.mark.parametrize(("data", "expected"), VECTORS)
def test_vectors_whole_and_split_everywhere(data, expected):
    assert RespParser().feed(data) == [expected]
    for cut in range(1, len(data)):
        parser = RespParser()
        assert parser.feed(data[:cut]) == []
        assert parser.feed(data[cut:]) == [expected]


def test_error_reply_is_a_value():
    (reply,) = RespParser().feed(b"-NOSCRIPT No matching script.\r\n")
    assert isinstance(reply, RespError)
    assert str(reply) == "NOSCRIPT No matching script."
    assert reply.prefix == "NOSCRIPT"


def test_several_replies_in_one_read_and_a_partial_one():
    parser = RespParser()
    assert parser.feed(b":1\r\n+OK\r\n$3\r\nab") == [1, b"OK"]
    assert parser.feed(b"c\r\n:2\r\n") == [b"abc", 2]


@pytest.mark.parametrize(
    "data",
    [
        b"?what\r\n",
        b":1x\r\n",
        b":\r\n",
        b"$abc\r\n",
        b"$3\r\nabcde\r\n",
        b"*x\r\n",
        b":" + b"9" * 20 + b"\r\n",
        b"$600000000\r\n",
    ],
)
def test_not_resp(data):
    with pytest.raises(RespProtocolError):
        RespParser().feed(data)


def test_endless_line_is_refused():
    parser = RespParser()
    assert parser.feed(b"+" + b"x" * (MAX_LINE - 1)) == []
    with pytest.raises(RespProtocolError):
        parser.feed(b"x")


replies = st.recursive(
    st.one_of(
        st.binary(max_size=20),
        st.integers(-(2**63), 2**63 - 1),
        st.none(),
    ),
    lambda children: st.lists(children, max_size=4),
    max_leaves=12,
)


def encode_reply(value):
    if value is None:
        return b"$-1\r\n"
    if isinstance(value, int):
        return b":%d\r\n" % value
    if isinstance(value, bytes):
        return b"$%d\r\n%s\r\n" % (len(value), value)
    return b"*%d\r\n" % len(value) + b"".join(encode_reply(item) for item in value)


@settings(max_examples=300, deadline=None)
@given(st.lists(replies, min_size=1, max_size=5), st.integers(1, 7))
def test_any_replies_in_any_chunks(values, chunk):
    data = b"".join(encode_reply(value) for value in values)
    parser = RespParser()
    parsed = []
    for start in range(0, len(data), chunk):
        parsed += parser.feed(data[start : start + chunk])
    assert parsed == values
