import dataclasses
import importlib.util
import math
import sys
import types

import pytest
from hypothesis import given, strategies as st

from tether.rpc import beve, bodies
from tether.rpc.bodies import decode_body, encode_body
from tether.rpc.repe import BodyFormat, ErrorCode, RepeError


HAVE_MSGSPEC = importlib.util.find_spec("msgspec") is not None


def assert_parse_error(data, fmt, text, ec=ErrorCode.PARSE_ERROR):
    with pytest.raises(RepeError) as raised:
        decode_body(data, fmt)
    assert str(raised.value) == text
    assert raised.value.ec == ec
    assert raised.value.id is None
    return raised.value


# RAW.


def test_raw_encode():
    data = b"\x00\x01"
    assert encode_body(data, BodyFormat.RAW) is data
    assert encode_body(bytearray(data), BodyFormat.RAW) == data
    assert type(encode_body(memoryview(data), BodyFormat.RAW)) is bytes


def test_raw_encode_wrong_type():
    with pytest.raises(TypeError) as raised:
        encode_body("text", BodyFormat.RAW)
    assert str(raised.value) == "raw body must be bytes-like, got str"


def test_raw_decode_is_passthrough():
    view = memoryview(b"abc")
    assert decode_body(view, BodyFormat.RAW) is view


# BEVE.


def test_beve():
    assert encode_body([1, 2, 3], BodyFormat.BEVE) == bytes.fromhex(
        "6c0c010000000000000002000000000000000300000000000000"
    )
    assert decode_body(bytes.fromhex("690600000000000000"), BodyFormat.BEVE) == 6
    assert decode_body(memoryview(b"\x00"), BodyFormat.BEVE) is None


def test_beve_parse_error():
    error = assert_parse_error(
        b"", BodyFormat.BEVE, "invalid beve body: unexpected end of data at byte 0"
    )
    assert isinstance(error.__cause__, beve.BeveDecodeError)
    assert_parse_error(
        b"\x00\x00",
        BodyFormat.BEVE,
        "invalid beve body: 1 trailing bytes after the value at byte 1",
    )


def test_beve_encode_error():
    with pytest.raises(beve.BeveEncodeError):
        encode_body({1, 2}, BodyFormat.BEVE)


# JSON.


@dataclasses.dataclass
class Reading:
    name: str
    value: float


@pytest.fixture(params=["json", "msgspec"])
def library(request):
    if request.param == "msgspec":
        assert HAVE_MSGSPEC, "msgspec is a dev dependency: `make test` installs it"
    previous = bodies.json_library()
    bodies.use_json_library(request.param)
    yield request.param
    bodies.use_json_library(previous)


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        ({"a": "é", "b": [1, 2]}, '{"a":"é","b":[1,2]}'),
        ([1.5, None, True, "x"], '[1.5,null,true,"x"]'),
        ((1, 2), "[1,2]"),
        ({1: "a"}, '{"1":"a"}'),
        (2**70, str(2**70)),
        ("\u2028\n", '"\u2028\\n"'),
        (Reading("t", 1.5), '{"name":"t","value":1.5}'),
    ],
)
def test_json_encode(library, value, encoded):
    assert encode_body(value, BodyFormat.JSON) == encoded.encode()


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (math.nan, "null"),
        ([math.inf, 1.0], "[null,1.0]"),
        ({"a": (-math.inf,)}, '{"a":[null]}'),
        (Reading("t", math.nan), '{"name":"t","value":null}'),
        ({"s": "x", "n": None, "b": True}, '{"s":"x","n":null,"b":true}'),
    ],
)
def test_json_non_finite_floats_become_null(library, value, encoded):
    # JSON has no spelling for NaN and infinities (and Glaze refuses the NaN token).
    assert encode_body(value, BodyFormat.JSON) == encoded.encode()


def test_json_encode_unsupported(library):
    with pytest.raises(TypeError) as raised:
        encode_body({"a": [object()]}, BodyFormat.JSON)
    assert str(raised.value) == "cannot encode object of type object to json"


def test_json_encode_circular():
    value = []
    value.append(value)
    previous = bodies.json_library()
    bodies.use_json_library("json")
    try:
        with pytest.raises(ValueError) as raised:
            encode_body(value, BodyFormat.JSON)
    finally:
        bodies.use_json_library(previous)
    assert str(raised.value) == "Circular reference detected"


@pytest.mark.parametrize("wrap", [bytes, bytearray, memoryview])
def test_json_decode(library, wrap):
    assert decode_body(wrap(b'{"a":[1,2.5,"\xc3\xa9"]}'), BodyFormat.JSON) == {"a": [1, 2.5, "é"]}


def test_json_decode_like_stdlib(library):
    assert decode_body(str(2**70).encode(), BodyFormat.JSON) == 2**70
    assert math.isnan(decode_body(b"NaN", BodyFormat.JSON))
    assert decode_body(b'"\\ud800"', BodyFormat.JSON) == "\ud800"
    assert decode_body(b' {"a":1,"a":2} ', BodyFormat.JSON) == {"a": 2}


@pytest.mark.parametrize(
    ("data", "text"),
    [
        (b"", "invalid json body: Expecting value: line 1 column 1 (char 0)"),
        (b"[1,", "invalid json body: Expecting value: line 1 column 4 (char 3)"),
        (b"[1] x", "invalid json body: Extra data: line 1 column 5 (char 4)"),
        (
            b'"\xff"',
            "invalid json body: 'utf-8' codec can't decode byte 0xff in position 1: "
            "invalid start byte",
        ),
    ],
)
def test_json_parse_errors(library, data, text):
    assert_parse_error(data, BodyFormat.JSON, text)


def test_json_too_deep(library):
    error = assert_parse_error(
        b"[" * 100_000,
        BodyFormat.JSON,
        "invalid json body: maximum recursion depth exceeded "
        "while decoding a JSON array from a unicode string",
    )
    assert isinstance(error.__cause__, RecursionError)


def test_json_library_selection():
    assert bodies.json_library() in ("json", "msgspec")
    with pytest.raises(ValueError) as raised:
        bodies.use_json_library("simplejson")
    assert str(raised.value) == "unknown json library: 'simplejson'"


def test_json_library_missing(monkeypatch):
    previous = bodies.json_library()
    bodies.use_json_library("json")
    try:
        # None in sys.modules makes the import fail as if msgspec weren't installed.
        monkeypatch.setitem(sys.modules, "msgspec", None)
        with pytest.raises(ImportError):
            bodies.use_json_library("msgspec")
        assert bodies.json_library() == "json"
    finally:
        monkeypatch.undo()
        bodies.use_json_library(previous)


def test_msgspec_loader(monkeypatch):
    # A stand-in module with msgspec's API shape: msgspec.json.Encoder/Decoder.
    class Encoder:
        def encode(self, value):
            return b"encoded"

    class Decoder:
        def decode(self, data):
            return "decoded"

    fake = types.ModuleType("msgspec")
    fake.json = types.SimpleNamespace(Encoder=Encoder, Decoder=Decoder)
    monkeypatch.setitem(sys.modules, "msgspec", fake)
    previous = bodies.json_library()
    bodies.use_json_library("msgspec")
    try:
        assert bodies.json_library() == "msgspec"
        assert encode_body(1, BodyFormat.JSON) == b"encoded"
        assert decode_body(b"1", BodyFormat.JSON) == "decoded"
    finally:
        monkeypatch.undo()
        bodies.use_json_library(previous)


class FakeLibrary:
    """A fast library stand-in: refuses what it is told to, records calls."""

    def __init__(self, refuse):
        self.refuse = refuse
        self.calls = []

    def dumps(self, value):
        self.calls.append(("dumps", value))
        if self.refuse:
            raise TypeError("refused")
        return b"fast"

    def loads(self, data):
        self.calls.append(("loads", bytes(data)))
        if self.refuse:
            raise ValueError("refused")
        return "fast"


@pytest.mark.parametrize("refuse", [False, True])
def test_fast_library_dispatch(monkeypatch, refuse):
    fake = FakeLibrary(refuse)
    monkeypatch.setattr(bodies, "_dumps", fake.dumps)
    monkeypatch.setattr(bodies, "_loads", fake.loads)
    assert encode_body([1], BodyFormat.JSON) == (b"[1]" if refuse else b"fast")
    assert decode_body(b"[1]", BodyFormat.JSON) == ([1] if refuse else "fast")
    assert fake.calls == [("dumps", [1]), ("loads", b"[1]")]
    if refuse:
        assert_parse_error(
            b"[", BodyFormat.JSON, "invalid json body: Expecting value: line 1 column 2 (char 1)"
        )


# UTF-8.


def test_utf8():
    assert encode_body("é", BodyFormat.UTF8) == b"\xc3\xa9"
    assert decode_body(memoryview(b"\xc3\xa9"), BodyFormat.UTF8) == "é"


def test_utf8_wrong_type():
    with pytest.raises(TypeError) as raised:
        encode_body(b"x", BodyFormat.UTF8)
    assert str(raised.value) == "utf-8 body must be str, got bytes"


def test_utf8_parse_error():
    error = assert_parse_error(b"\xc3", BodyFormat.UTF8, "invalid utf-8 body")
    assert isinstance(error.__cause__, UnicodeDecodeError)


# Other formats (spec section 1.4).


@pytest.mark.parametrize("fmt", [4, 4096, 65535])
def test_unsupported_formats(fmt):
    with pytest.raises(ValueError) as raised:
        encode_body(b"", fmt)
    assert str(raised.value) == f"unsupported body format: {fmt}"
    assert_parse_error(b"", fmt, f"unsupported body format: {fmt}", ErrorCode.INVALID_BODY)


# Properties.

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=6), children, max_size=6)
    ),
    max_leaves=30,
)


@given(json_values)
def test_json_round_trip(value):
    assert decode_body(encode_body(value, BodyFormat.JSON), BodyFormat.JSON) == value


@given(json_values.filter(lambda v: not isinstance(v, int) or -(2**63) <= v < 2**64))
def test_beve_round_trip(value):
    try:
        encoded = encode_body(value, BodyFormat.BEVE)
    except beve.BeveEncodeError:
        return  # ints beyond 64 bits inside containers
    assert decode_body(encoded, BodyFormat.BEVE) == value


@given(st.binary(max_size=64), st.sampled_from(list(BodyFormat)))
def test_decode_any_bytes(data, fmt):
    ec = None
    try:
        decode_body(data, fmt)
    except RepeError as exc:
        ec = exc.ec
    assert ec in (None, ErrorCode.PARSE_ERROR)
