import array
import collections
import dataclasses
import decimal
import enum
import math
import struct
import types

import pytest
from hypothesis import given, strategies as st
from vectors import BEVE_VECTORS, REPE_BEVE_BODIES, REPE_BEVE_SPELLINGS, REPE_VECTORS

from tether.exceptions import TetherError
from tether.rpc import beve, repe
from tether.rpc.beve import (
    BeveDecodeError,
    BeveEncodeError,
    IntKeyMap,
    Number,
    TypedArray,
)


def h(text):
    return bytes.fromhex(text)


def size(n):
    # Spec section 2.1, written independently of the codec for the tests.
    if n < 64:
        return bytes([n << 2])
    if n < 2**14:
        return struct.pack("<H", n << 2 | 1)
    if n < 2**30:
        return struct.pack("<I", n << 2 | 2)
    return struct.pack("<Q", n << 2 | 3)


def assert_decode_error(data, text, **kwargs):
    with pytest.raises(BeveDecodeError) as raised:
        beve.decode(data, **kwargs)
    assert str(raised.value) == text
    return raised.value


def assert_encode_error(value, text, **kwargs):
    with pytest.raises(BeveEncodeError) as raised:
        beve.encode(value, **kwargs)
    assert str(raised.value) == text


# Spec section 9: test vectors.


@pytest.mark.parametrize("number", sorted(BEVE_VECTORS))
def test_vector_decodes(number):
    hex_string, value, _ = BEVE_VECTORS[number]
    assert beve.decode(h(hex_string)) == value


@pytest.mark.parametrize("number", sorted(BEVE_VECTORS))
def test_vector_reencodes_byte_for_byte(number):
    hex_string, _, spelling = BEVE_VECTORS[number]
    assert beve.encode(spelling) == h(hex_string)


@pytest.mark.parametrize("number", sorted(BEVE_VECTORS))
def test_vector_decoded_value_round_trips(number):
    _, value, _ = BEVE_VECTORS[number]
    assert beve.decode(beve.encode(value)) == value


@pytest.mark.parametrize("name", sorted(REPE_BEVE_BODIES))
def test_repe_vector_bodies(name):
    message = repe.decode(h(REPE_VECTORS[name][0]))
    assert message.body_format == repe.BodyFormat.BEVE
    assert beve.decode(message.body) == REPE_BEVE_BODIES[name]
    assert beve.encode(REPE_BEVE_SPELLINGS[name]) == bytes(message.body)


def test_vector_17_bit_order():
    assert beve.encode([True, False, True, True, False, False, False, False, True]) == h("1c240d01")


def test_errors_are_tether_and_value_errors():
    error = BeveDecodeError("bad", 3)
    assert isinstance(error, TetherError)
    assert isinstance(error, ValueError)
    assert (error.msg, error.offset, str(error)) == ("bad", 3, "bad at byte 3")
    assert issubclass(BeveEncodeError, TetherError)
    assert issubclass(BeveEncodeError, ValueError)


# Sizes (spec section 2.1).


@pytest.mark.parametrize("n", [0, 63, 64, 16383, 16384, 2**30 - 1])
def test_string_size_forms(n):
    encoded = beve.encode("a" * n)
    assert encoded == b"\x02" + size(n) + b"a" * n
    assert beve.decode(encoded) == "a" * n


def test_size_eight_byte_form():
    data = bytearray(b"\x02")
    data += size(0)
    assert beve.decode(bytes(data)) == ""
    # A non-minimal 8-byte SIZE is accepted.
    assert beve.decode(b"\x02" + struct.pack("<Q", 2 << 2 | 3) + b"hi") == "hi"
    assert beve.decode(b"\x02" + struct.pack("<H", 2 << 2 | 1) + b"hi") == "hi"


def test_write_size_eight_byte_form():
    # Only reachable with counts of 2**30 and more; checked through the writer directly.
    out = bytearray()
    beve._write_size(out, 2**30)
    assert bytes(out) == size(2**30)


@pytest.mark.parametrize("data", ["0201", "020200", "0203000000", "02070000000000"])
def test_truncated_size(data):
    assert_decode_error(h(data), "truncated size at byte 1")


# Numbers (spec section 3).


@pytest.mark.parametrize(
    ("kind", "header", "value"),
    [
        ("int8", 0x09, -128),
        ("int16", 0x29, -32768),
        ("int32", 0x49, 2**31 - 1),
        ("int64", 0x69, -(2**63)),
        ("int128", 0x89, -(2**127)),
        ("uint8", 0x11, 255),
        ("uint16", 0x31, 65535),
        ("uint32", 0x51, 2**32 - 1),
        ("uint64", 0x71, 2**64 - 1),
        ("uint128", 0x91, 2**128 - 1),
        ("float16", 0x21, -2.5),
        ("float32", 0x41, 0.25),
        ("float64", 0x61, 1e300),
    ],
)
def test_numbers(kind, header, value):
    encoded = beve.encode(Number(kind, value))
    assert encoded[0] == header
    assert len(encoded) == 1 + beve._width(*beve.NUMBER_KINDS[kind][:2])
    decoded = beve.decode(encoded)
    assert decoded == value
    assert type(decoded) is type(value)


def test_bfloat16():
    assert beve.decode(h("01803f")) == 1.0
    assert beve.decode(h("0120c0")) == -2.5
    assert math.isinf(beve.decode(h("01807f")))


def float128(sign, exponent, fraction):
    return (sign << 127 | exponent << 112 | fraction).to_bytes(16, "little")


@pytest.mark.parametrize(
    ("data", "value"),
    [
        (float128(0, 0x3FFF, 0), 1.0),
        (float128(1, 0x4000, 1 << 110), -2.5),
        (float128(0, 0x3FFF, 1), 1.0),  # below float64 precision
        (float128(0, 0, 0), 0.0),
        (float128(0, 0x7FFF, 0), math.inf),
        (float128(1, 0x7FFF, 0), -math.inf),
        (float128(0, 0x7FFE, 0), math.inf),  # overflows float64
        (float128(0, 0x3C01, 0), 2.0**-1022),
        (float128(0, 0, 1), 0.0),  # binary128 subnormal underflows float64
    ],
)
def test_float128(data, value):
    assert beve.decode(b"\x81" + data) == value


def test_float128_nan():
    assert math.isnan(beve.decode(b"\x81" + float128(0, 0x7FFF, 1)))


@pytest.mark.parametrize("header", [0x01, 0x21, 0x41, 0x61, 0x81, 0x09, 0x89, 0x71])
def test_truncated_number(header):
    assert_decode_error(bytes([header]), "truncated number at byte 1")


@pytest.mark.parametrize("header", [0x19, 0x39, 0xA1, 0xA9, 0xE1])
def test_invalid_number_headers(header):
    assert_decode_error(
        bytes([header]) + bytes(32), f"invalid header byte 0x{header:02x} at byte 0"
    )


# Null and booleans (spec section 1).


@pytest.mark.parametrize("header", [0x10, 0x20, 0x28, 0x38, 0x80, 0xF8])
def test_invalid_type_zero_headers(header):
    assert_decode_error(bytes([header]), f"invalid header byte 0x{header:02x} at byte 0")


@pytest.mark.parametrize("header", [0x07, 0x0F, 0xFF])
def test_reserved_type_seven(header):
    assert_decode_error(bytes([header]), "reserved header type 7 at byte 0")


@pytest.mark.parametrize("data", [b"", bytearray(), memoryview(b"")])
def test_empty_input(data):
    assert_decode_error(data, "unexpected end of data at byte 0")


# Strings.


def test_string_invalid_utf8():
    assert_decode_error(h("0208c328"), "invalid utf-8 in string at byte 2")


def test_string_too_long():
    assert_decode_error(h("020c6869"), "string byte count 3 exceeds the 2 bytes left at byte 1")


def test_string_header_bits():
    assert_decode_error(h("0a00"), "invalid header byte 0x0a at byte 0")


# Typed arrays (spec section 4.1).

NUMERIC_KINDS = [kind for kind in beve.NUMBER_KINDS if kind not in ("bfloat16", "float128")]


@pytest.mark.parametrize("kind", NUMERIC_KINDS)
def test_typed_arrays(kind):
    values = [1, 2, 100] if not kind.startswith("float") else [1.5, -0.25, 64.0]
    encoded = beve.encode(TypedArray(kind, values))
    number_kind, code, _ = beve.NUMBER_KINDS[kind]
    assert encoded[0] == 4 | number_kind << 3 | code << 5
    assert encoded[1] == 3 << 2
    assert len(encoded) == 2 + 3 * beve._width(number_kind, code)
    assert beve.decode(encoded) == values


def test_bfloat16_typed_array():
    assert beve.decode(h("040c803f20c00000")) == [1.0, -2.5, 0.0]


def test_float128_typed_array():
    data = b"\x84" + size(2) + float128(0, 0x3FFF, 0) + float128(1, 0x4000, 0)
    assert beve.decode(data) == [1.0, -2.0]


def test_int128_typed_arrays():
    assert beve.decode(beve.encode(TypedArray("int128", [-1, 2**100]))) == [-1, 2**100]
    assert beve.decode(beve.encode(TypedArray("uint128", [2**128 - 1]))) == [2**128 - 1]


@pytest.mark.parametrize(
    "values",
    [[], [True], [False] * 8, [True] * 8, [True, False] * 8 + [True], [False] * 63 + [True]],
)
def test_bool_arrays(values):
    encoded = beve.encode(TypedArray("bool", values))
    assert encoded[0] == 0x1C
    assert len(encoded) == 1 + len(size(len(values))) + (len(values) + 7) // 8
    assert beve.decode(encoded) == values


def test_bool_array_ignores_unused_bits():
    assert beve.decode(h("1c0cff")) == [True, True, True]


def test_bool_array_truncated():
    assert_decode_error(h("1c24ff"), "bool array count 9 exceeds the 1 bytes left at byte 2")


def test_string_arrays():
    assert beve.decode(beve.encode(["", "é", "x" * 70])) == ["", "é", "x" * 70]
    assert beve.encode(TypedArray("string", ("a",))) == h("3c040461")


def test_string_array_errors():
    assert_decode_error(h("3c08"), "string array count 2 exceeds the 0 bytes left at byte 1")
    assert_decode_error(h("3c0804ff00"), "invalid utf-8 in string at byte 3")


@pytest.mark.parametrize("header", [0x7C, 0x9C, 0xFC, 0xBC])
def test_invalid_typed_array_headers(header):
    assert_decode_error(bytes([header, 0]), f"invalid header byte 0x{header:02x} at byte 0")


def test_typed_array_count_checked_before_allocating():
    # 9 bytes that claim 2**40 int64 elements must fail at once.
    data = b"\x6c" + size(2**40)
    assert len(data) == 9
    assert_decode_error(data, f"typed array count {2**40} exceeds the 0 bytes left at byte 1")


def test_generic_array_count_checked_before_allocating():
    data = b"\x05" + size(2**29)
    assert len(data) == 5
    assert_decode_error(data, f"array count {2**29} exceeds the 0 bytes left at byte 1")


def test_typed_array_truncated_data():
    assert_decode_error(
        h("4c0c0100000002000000"), "typed array count 3 exceeds the 8 bytes left at byte 1"
    )


def test_uint8_as_bytes():
    assert beve.decode(h("140801ff"), uint8_as_bytes=True) == b"\x01\xff"
    assert beve.decode(h("140801ff")) == [1, 255]
    assert beve.decode(beve.encode(b"abc"), uint8_as_bytes=True) == b"abc"


# Aligned typed arrays (spec section 4.2).


def test_aligned_array():
    data = h("5c 6c 08 03 000000") + struct.pack("<2q", -1, 7)
    assert beve.decode(data) == [-1, 7]
    assert beve.decode(h("5c 44 04 00") + struct.pack("<f", 0.5)) == [0.5]


@pytest.mark.parametrize(
    ("data", "text"),
    [
        ("5c", "unexpected end of data at byte 1"),
        ("5c 69 04 00", "invalid aligned array element header 0x69 at byte 1"),
        ("5c 1c 04 00", "invalid aligned array element header 0x1c at byte 1"),
        ("5c 6c", "unexpected end of data at byte 2"),
        ("5c 6c 04", "unexpected end of data at byte 3"),
        ("5c 6c 04 02 0000 01", "typed array count 1 exceeds the 1 bytes left at byte 3"),
        ("5c 6c 04 09 00", "typed array count 1 exceeds the 0 bytes left at byte 3"),
    ],
)
def test_aligned_array_errors(data, text):
    assert_decode_error(h(data), text)


# Generic arrays (spec section 4.3) and objects (spec section 5).


def test_generic_array():
    assert beve.decode(h("05 0c 00 18 02 04 61")) == [None, True, "a"]


def test_string_key_object_errors():
    assert_decode_error(h("03 04 04 61"), "unexpected end of data at byte 4")
    assert_decode_error(h("03 04 04 ff 00"), "invalid utf-8 in string at byte 3")
    assert_decode_error(
        h("03 08 00 00"), "object member count 2 exceeds the 2 bytes left at byte 1"
    )


@pytest.mark.parametrize("kind", sorted(beve._INT_KINDS))
def test_int_key_objects(kind):
    keys = [0, 1, 100] if kind.startswith("u") else [-5, 0, 100]
    value = IntKeyMap(kind, dict.fromkeys(keys, None))
    encoded = beve.encode(value)
    number_kind, code, _ = beve.NUMBER_KINDS[kind]
    assert encoded[0] == 3 | number_kind << 3 | code << 5
    assert beve.decode(encoded) == dict.fromkeys(keys, None)
    assert beve.decode(encoded, int_keys_as_str=True) == {str(k): None for k in keys}


def test_int_key_object_errors():
    assert_decode_error(h("4b 04 ffff"), "object member count 1 exceeds the 2 bytes left at byte 1")
    assert_decode_error(h("0b 08 01 02 04 61"), "truncated object key at byte 6")
    assert_decode_error(
        h("8b 04") + bytes(16), "object member count 1 exceeds the 16 bytes left at byte 1"
    )
    assert beve.decode(h("8b 04") + bytes(17)) == {0: None}


@pytest.mark.parametrize("header", [0x1B, 0x3B, 0x5B, 0xAB, 0x23])
def test_invalid_object_headers(header):
    assert_decode_error(bytes([header, 0]), f"invalid header byte 0x{header:02x} at byte 0")


# Extensions (spec section 6).


def test_delimiter_is_not_a_value():
    assert_decode_error(h("06"), "unexpected delimiter at byte 0")
    assert_decode_error(h("05 08 00 06"), "unexpected delimiter at byte 3")


def test_variant():
    assert beve.decode(h("0e 04 02 04 61")) == {"index": 1, "value": "a"}
    assert_decode_error(h("0e 04"), "unexpected end of data at byte 2")


@pytest.mark.parametrize(("flag", "layout"), [(0, "layout_right"), (1, "layout_left")])
def test_matrix(flag, layout):
    data = (
        bytes([0x16, flag])
        + b"\x74"
        + size(2)
        + struct.pack("<2Q", 2, 3)
        + b"\x64"
        + size(6)
        + struct.pack("<6d", *range(6))
    )
    assert beve.decode(data) == {
        "layout": layout,
        "extents": [2, 3],
        "value": [0.0, 1.0, 2.0, 3.0, 4.0, 5.0],
    }


@pytest.mark.parametrize(
    ("data", "text"),
    [
        ("16", "unexpected end of data at byte 1"),
        ("16 02", "invalid matrix header 0x02 at byte 1"),
        ("16 00", "unexpected end of data at byte 2"),
        ("16 00 64 00", "invalid matrix part header 0x64 at byte 2"),
        ("16 00 05 00", "invalid matrix part header 0x05 at byte 2"),
        ("16 00 54 04 02000000 69", "invalid matrix part header 0x69 at byte 8"),
        ("16 00 54 08 02000000", "typed array count 2 exceeds the 4 bytes left at byte 3"),
    ],
)
def test_matrix_errors(data, text):
    assert_decode_error(h(data), text)


def test_complex():
    assert beve.decode(h("1e 60") + struct.pack("<2d", 1.5, -2.0)) == complex(1.5, -2.0)
    assert beve.decode(h("1e 48") + struct.pack("<2i", 3, 4)) == complex(3, 4)
    array_data = h("1e 41") + size(2) + struct.pack("<4f", 1, 2, 3, 4)
    assert beve.decode(array_data) == [complex(1, 2), complex(3, 4)]


@pytest.mark.parametrize(
    ("data", "text"),
    [
        ("1e", "unexpected end of data at byte 1"),
        ("1e 62", "invalid complex header 0x62 at byte 1"),
        ("1e 78", "invalid complex header 0x78 at byte 1"),
        ("1e a0", "invalid complex header 0xa0 at byte 1"),
        ("1e 60 0000", "truncated number at byte 2"),
        ("1e 61 08 00", "complex array count 2 exceeds the 1 bytes left at byte 2"),
    ],
)
def test_complex_errors(data, text):
    assert_decode_error(h(data), text)


@pytest.mark.parametrize("number", [4, 5, 17, 31])
def test_unknown_extensions(number):
    assert_decode_error(bytes([6 | number << 3]), f"unknown extension {number} at byte 0")


# Depth and trailing data.


def nested_arrays(depth):
    return b"\x05\x04" * depth + b"\x00"


def test_max_depth():
    assert beve.decode(nested_arrays(256)) is not None
    assert_decode_error(nested_arrays(257), "maximum nesting depth 256 exceeded at byte 512")
    assert_decode_error(nested_arrays(3), "maximum nesting depth 2 exceeded at byte 4", max_depth=2)
    assert_decode_error(
        h("03 04 04 61 03 00"), "maximum nesting depth 1 exceeded at byte 4", max_depth=1
    )
    assert_decode_error(
        h("0e 00 0e 00 00"), "maximum nesting depth 1 exceeded at byte 2", max_depth=1
    )


def test_interpreter_recursion_limit():
    assert_decode_error(
        nested_arrays(100_000),
        "nesting too deep for the interpreter at byte 0",
        max_depth=10**6,
    )


def test_trailing_bytes():
    assert_decode_error(h("00 00 00"), "2 trailing bytes after the value at byte 1")
    assert beve.decode(h("18 00"), allow_trailing=True) is True
    assert beve.decode_prefix(h("02 04 61 ff")) == ("a", 3)


@pytest.mark.parametrize("wrap", [bytes, bytearray, memoryview])
def test_buffer_inputs(wrap):
    hex_string, value, _ = BEVE_VECTORS[25]
    assert beve.decode(wrap(h(hex_string))) == value


def test_memoryview_of_other_format():
    data = memoryview(h("4c0c010000000200000003000000")[:12]).cast("i")
    assert_decode_error(data, "typed array count 3 exceeds the 10 bytes left at byte 1")
    assert beve.decode(memoryview(b"\x02\x04a\x00")[:3]) == "a"
    assert beve.decode(memoryview(b"\x02_\x04_a")[::2]) == "a"


# Encoding (spec section 7).


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (2**63 - 1, "69 ffffffffffffff7f"),
        (-(2**63), "69 0000000000000080"),
        (2**63, "71 0000000000000080"),
        (2**64 - 1, "71 ffffffffffffffff"),
        (0.0, "61 0000000000000000"),
        (math.inf, "61 000000000000f07f"),
        (complex(1, -1), "1e 60 000000000000f03f 000000000000f0bf"),
        (bytearray(b"\x07"), "14 04 07"),
        ({}, "03 00"),
        ([], "05 00"),
        ((), "05 00"),
        ({1: None}, "6b 04 0100000000000000 00"),
        ({2**63: None}, "73 04 0000000000000080 00"),
    ],
)
def test_encode_values(value, encoded):
    assert beve.encode(value) == h(encoded)


def test_encode_nan_is_kept():
    assert math.isnan(beve.decode(beve.encode(math.nan)))


@pytest.mark.parametrize("value", [2**64, -(2**63) - 1])
def test_encode_int_out_of_range(value):
    assert_encode_error(value, f"int out of range for int64 and uint64: {value}")


def test_encode_int_keys_out_of_range():
    assert_encode_error({-1: 0, 2**63: 0}, "int keys out of range for int64 and uint64")


def test_encode_mixed_keys():
    assert_encode_error({1: 0, "a": 0}, "object keys must be all str or all int, got int, str")
    assert_encode_error({True: 0}, "object keys must be all str or all int, got bool")
    assert_encode_error({None: 0}, "object keys must be all str or all int, got NoneType")


def test_encode_lone_surrogate():
    assert_encode_error("\ud800", "string is not valid unicode (lone surrogate)")
    assert_encode_error({"\ud800": 1}, "string is not valid unicode (lone surrogate)")
    assert_encode_error(["\ud800"], "string is not valid unicode (lone surrogate)")


class Color(enum.IntEnum):
    RED = 1


class Name(str):
    pass


def test_encode_subclasses():
    assert beve.encode(Color.RED) == beve.encode(1)
    assert beve.encode(Name("a")) == beve.encode("a")
    assert beve.encode({Name("a"): 1}) == beve.encode({"a": 1})
    assert beve.encode({Color.RED: 1}) == beve.encode({1: 1})
    assert beve.encode(collections.OrderedDict(a=1)) == beve.encode({"a": 1})
    assert beve.encode(types.MappingProxyType({"a": 1})) == beve.encode({"a": 1})
    point = collections.namedtuple("point", "x y")(1, 2)
    assert beve.encode(point) == beve.encode((1, 2))


@pytest.mark.parametrize(
    ("value", "header"),
    [
        ([1, -2], 0x6C),
        ([1, 2**63], 0x74),
        ([1.5], 0x64),
        ([True, False], 0x1C),
        (["a"], 0x3C),
        ([-1, 2**63], 0x05),
        ([1, 1.5], 0x05),
        ([1, True], 0x05),
        ([None], 0x05),
        ([[1]], 0x05),
        ((1, 2), 0x05),
    ],
)
def test_typed_array_rule(value, header):
    encoded = beve.encode(value)
    assert encoded[0] == header
    assert beve.decode(encoded) == list(value)
    untyped = beve.encode(value, typed_arrays=False)
    assert untyped[0] == 0x05
    assert beve.decode(untyped) == list(value)


def test_list_with_int_out_of_range():
    assert_encode_error([2**64], f"int out of range for int64 and uint64: {2**64}")


@pytest.mark.parametrize(
    ("typecode", "header"),
    [
        ("b", 0x0C),
        ("B", 0x14),
        ("h", 0x2C),
        ("H", 0x34),
        ("i", 0x4C),
        ("I", 0x54),
        ("q", 0x6C),
        ("Q", 0x74),
        ("f", 0x44),
        ("d", 0x64),
    ],
)
def test_encode_array_module(typecode, header):
    values = array.array(typecode, [1, 2, 3])
    encoded = beve.encode(values)
    assert encoded[:2] == bytes([header, 0x0C])
    assert beve.decode(encoded) == values.tolist()
    assert beve.encode(memoryview(values)) == encoded


def test_encode_array_of_native_long():
    values = array.array("l", [-1])
    encoded = beve.encode(values)
    assert encoded[0] == (0x6C if values.itemsize == 8 else 0x4C)
    assert beve.decode(encoded) == [-1]


def test_encode_unsupported_arrays():
    assert_encode_error(array.array("u", "ab"), "cannot encode array of typecode 'u'")
    assert_encode_error(memoryview(b"ab").cast("c"), "cannot encode memoryview of format 'c'")
    view = memoryview(bytes(4)).cast("B", (2, 2))
    assert_encode_error(view, "cannot encode memoryview of format 'B'")


def test_encode_memoryview_of_bytes():
    assert beve.encode(memoryview(b"\x01\xff")) == h("140801ff")


def test_number_wrapper_errors():
    assert_encode_error(
        Number("int8", 128),
        "cannot encode values as int8: byte format requires -128 <= number <= 127",
    )
    assert_encode_error(
        Number("uint128", -1),
        "cannot encode values as uint128: can't convert negative int to unsigned",
    )
    assert_encode_error(
        Number("float16", 1e10),
        "cannot encode values as float16: float too large to pack with e format",
    )
    with pytest.raises(ValueError) as raised:
        Number("bfloat16", 1.0)
    assert str(raised.value) == "unsupported kind: 'bfloat16'"
    with pytest.raises(ValueError):
        TypedArray("object", [])
    with pytest.raises(ValueError):
        IntKeyMap("float32", {})


def test_typed_array_wrapper_errors():
    assert_encode_error(
        TypedArray("int32", ["a"]),
        "cannot encode values as int32: required argument is not an integer",
    )
    assert_encode_error(
        TypedArray("int128", [1.5]),
        "cannot encode values as int128: 'float' object has no attribute 'to_bytes'",
    )


@dataclasses.dataclass
class Inner:
    name: str
    tags: list


@dataclasses.dataclass(frozen=True)
class Outer:
    inner: Inner
    ratio: float = 0.5


def test_encode_dataclasses():
    value = Outer(Inner("x", ["a"]))
    expected = {"inner": {"name": "x", "tags": ["a"]}, "ratio": 0.5}
    assert beve.encode(value) == beve.encode(expected)
    assert beve.decode(beve.encode(value)) == expected
    assert beve.encode(value) == beve.encode(expected)  # cached field names


def test_encode_unsupported_types():
    assert_encode_error(decimal.Decimal(1), "cannot encode object of type Decimal")
    assert_encode_error({"a": [object()]}, "cannot encode object of type object")
    assert_encode_error(Outer, "cannot encode object of type type")
    assert_encode_error({1, 2}, "cannot encode object of type set")


def test_encode_max_depth():
    value = []
    for _ in range(255):
        value = [value]
    assert beve.decode(beve.encode(value)) == value
    assert_encode_error([value], "maximum nesting depth 256 exceeded")
    assert_encode_error({"a": {"b": 1}}, "maximum nesting depth 1 exceeded", max_depth=1)
    assert_encode_error(
        IntKeyMap("int8", {1: IntKeyMap("int8", {})}),
        "maximum nesting depth 1 exceeded",
        max_depth=1,
    )


def test_encode_cycle():
    value = []
    value.append(value)
    assert_encode_error(value, "maximum nesting depth 256 exceeded")


def test_encode_interpreter_recursion_limit():
    value = []
    for _ in range(100_000):
        value = [value]
    assert_encode_error(value, "nesting too deep for the interpreter", max_depth=10**6)


# Properties.

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=8)
        | st.dictionaries(st.text(max_size=8), children, max_size=8)
        | st.dictionaries(st.integers(-(2**63), 2**63 - 1), children, max_size=4)
    ),
    max_leaves=40,
)


@given(json_values, st.booleans())
def test_round_trip(value, typed_arrays):
    encoded = beve.encode(value, typed_arrays=typed_arrays)
    assert beve.decode(encoded) == value


@given(
    st.lists(st.integers(-(2**63), 2**64 - 1), min_size=1)
    | st.lists(st.floats(allow_nan=False), min_size=1)
)
def test_homogeneous_lists_are_typed(values):
    assert beve.encode(values)[0] in (0x6C, 0x74, 0x64, 0x05)
    assert beve.decode(beve.encode(values)) == values


def decode_or_error(data):
    try:
        beve.decode(data, max_depth=32)
    except BeveDecodeError as exc:
        assert 0 <= exc.offset <= len(data)  # noqa: PT017


@given(st.binary(max_size=64))
def test_decode_any_bytes(data):
    decode_or_error(data)


interesting = sorted(h(hex_string) for hex_string, _, _ in BEVE_VECTORS.values())


@given(
    st.sampled_from(interesting),
    st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)), max_size=4),
    st.integers(0, 200),
)
def test_decode_mutated_vectors(data, changes, cut):
    data = bytearray(data)
    for position, byte in changes:
        if data:
            data[position % len(data)] = byte
    decode_or_error(bytes(data[: cut or None]))


def test_object_truncated_after_member():
    assert_decode_error(h("03 08 04 61 02 04 62"), "unexpected end of data at byte 7")
    assert_decode_error(h("03 08 04 61 00 0d"), "truncated size at byte 5")


def test_truncated_after_string_or_element():
    assert_decode_error(h("02"), "unexpected end of data at byte 1")
    assert_decode_error(h("3c 08 04 61"), "unexpected end of data at byte 4")
    assert_decode_error(h("05 08 02 04 61"), "unexpected end of data at byte 5")


def test_long_keys():
    value = {"k" * 64: 1, "é" * 100: [True]}
    assert beve.decode(beve.encode(value)) == value
