"""Sans-I/O codec for BEVE, the binary body format of REPE (``shared/specs/beve.md``).

Python to BEVE (:func:`encode`, spec section 7):

* ``None`` → null ``00``; ``False``/``True`` → ``08``/``18``;
* :class:`int` → int64 ``69``, or uint64 ``71`` from 2**63 to 2**64 - 1;
* :class:`float` → float64 ``61`` (NaN and infinities are kept);
* :class:`complex` → complex extension ``1e``, float64 parts;
* :class:`str` → string ``02``; :class:`bytes`, :class:`bytearray` → uint8 typed array ``14``;
* :class:`dict` with :class:`str` keys → object ``03``; with :class:`int` keys → object with
  int64 keys ``6b`` (uint64 keys ``73`` when a key needs them);
* dataclass instances → string-key objects, fields in declaration order;
* :class:`list` → typed array when every element has the same type among int, float, bool
  and str (``6c``/``74``, ``64``, ``1c``, ``3c``), else generic array ``05``;
  :class:`tuple` → generic array ``05``;
* :class:`array.array` and numeric :class:`memoryview` → typed array of that element type;
* :class:`Number`, :class:`TypedArray`, :class:`IntKeyMap` → the exact type they name.

BEVE to Python (:func:`decode`): every number (bfloat16, float16, float128 → :class:`float`;
128-bit integers → :class:`int`), strings, objects (integer keys stay :class:`int` unless
``int_keys_as_str``), typed and aligned typed arrays → :class:`list`, generic arrays →
:class:`list`, variants → ``{"index": i, "value": v}``, matrices → ``{"layout": ...,
"extents": [...], "value": [...]}``, complex numbers → :class:`complex`.
"""

from __future__ import annotations

import array
import dataclasses
import math
import struct
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from ..exceptions import TetherError
from ..types import BytesLike


__all__ = [
    "DEFAULT_MAX_DEPTH",
    "NUMBER_KINDS",
    "BeveDecodeError",
    "BeveEncodeError",
    "IntKeyMap",
    "Number",
    "TypedArray",
    "decode",
    "decode_prefix",
    "encode",
]

DEFAULT_MAX_DEPTH = 256
"""Default limit on nested objects and arrays, as Glaze (spec section 7)."""


class BeveDecodeError(TetherError, ValueError):
    """Bytes that are not valid BEVE.

    Attributes:
        offset: the position in the input where the problem was found.
    """

    def __init__(self, msg: str, offset: int) -> None:
        super().__init__(msg, offset)
        self.msg = msg
        self.offset = offset

    def __str__(self) -> str:
        return f"{self.msg} at byte {self.offset}"


class BeveEncodeError(TetherError, ValueError):
    """A value that cannot be written as BEVE."""


# Number kinds (spec section 3): name -> (kind, byte-count code, struct code).
# kind 0 = float, 1 = signed, 2 = unsigned; the element is 2**code bytes wide except
# bfloat16, which uses code 0 for 2 bytes. 128-bit types have no struct code.
NUMBER_KINDS: dict[str, tuple[int, int, str]] = {
    "bfloat16": (0, 0, ""),
    "float16": (0, 1, "e"),
    "float32": (0, 2, "f"),
    "float64": (0, 3, "d"),
    "float128": (0, 4, ""),
    "int8": (1, 0, "b"),
    "int16": (1, 1, "h"),
    "int32": (1, 2, "i"),
    "int64": (1, 3, "q"),
    "int128": (1, 4, ""),
    "uint8": (2, 0, "B"),
    "uint16": (2, 1, "H"),
    "uint32": (2, 2, "I"),
    "uint64": (2, 3, "Q"),
    "uint128": (2, 4, ""),
}
"""Names accepted by :class:`Number`, :class:`TypedArray` and :class:`IntKeyMap`."""

# Kinds the encoder can write (bfloat16 and float128 are read only).
_WRITABLE = frozenset(NUMBER_KINDS) - {"bfloat16", "float128"}
_INT_KINDS = frozenset(name for name, (kind, _, _) in NUMBER_KINDS.items() if kind != 0)


def _check_kind(kind: str, allowed: Iterable[str]) -> None:
    if kind not in allowed:
        raise ValueError(f"unsupported kind: {kind!r}")


@dataclasses.dataclass(frozen=True, slots=True)
class Number:
    """A number written with an explicit BEVE type, e.g. ``Number("int32", 42)``.

    Attributes:
        kind: a key of :data:`NUMBER_KINDS` other than bfloat16 and float128.
        value: the number.
    """

    kind: str
    value: int | float

    def __post_init__(self) -> None:
        _check_kind(self.kind, _WRITABLE)


@dataclasses.dataclass(frozen=True, slots=True)
class TypedArray:
    """A sequence written as a BEVE typed array of one element type.

    Attributes:
        kind: a writable key of :data:`NUMBER_KINDS`, ``"bool"`` or ``"string"``.
        values: the elements.
    """

    kind: str
    values: Sequence[Any]

    def __post_init__(self) -> None:
        _check_kind(self.kind, _WRITABLE | {"bool", "string"})


@dataclasses.dataclass(frozen=True, slots=True)
class IntKeyMap:
    """A mapping written as a BEVE object with integer keys of one type.

    Attributes:
        kind: an integer key of :data:`NUMBER_KINDS`, e.g. ``"int32"``.
        mapping: the members.
    """

    kind: str
    mapping: Mapping[int, Any]

    def __post_init__(self) -> None:
        _check_kind(self.kind, _INT_KINDS)


def _width(kind: int, code: int) -> int:
    # Spec section 2.2: 2**code bytes, except bfloat16 which is 2 bytes with code 0.
    return 2 if kind == 0 and code == 0 else 1 << code


def _pick_typecode(candidates: str, size: int) -> str:
    return next(code for code in candidates if array.array(code).itemsize == size)


# array typecodes with the standard sizes; 'i'/'l' differ between platforms.
_TYPECODES = {
    "b": "b",
    "B": "B",
    "h": "h",
    "H": "H",
    "i": _pick_typecode("il", 4),
    "I": _pick_typecode("IL", 4),
    "q": "q",
    "Q": "Q",
    "f": "f",
    "d": "d",
}

_LITTLE = sys.byteorder == "little"


# Decoding.

_u8 = struct.Struct("<B")
_u16 = struct.Struct("<H")
_u32 = struct.Struct("<I")
_u64 = struct.Struct("<Q")
_f32 = struct.Struct("<f")
_SIZE_STRUCTS = (_u8, _u16, _u32, _u64)

_Reader = Callable[["_Decoder", int, int, int], tuple[Any, int]]
_Convert = Callable[[memoryview, int], list[Any]]


def _bfloat16(raw: int) -> float:
    # A bfloat16 is the high half of a float32.
    value: float = _f32.unpack(_u32.pack(raw << 16))[0]
    return value


def _float128(data: BytesLike) -> float:
    # IEEE 754 binary128: 1 sign bit, 15 exponent bits, 112 fraction bits. The result is
    # the nearest float64 (precision beyond 53 bits is lost, large values become inf).
    bits = int.from_bytes(data, "little")
    negative = bits >> 127
    exponent = (bits >> 112) & 0x7FFF
    fraction = bits & ((1 << 112) - 1)
    if exponent == 0x7FFF:
        value = math.nan if fraction else math.inf
    elif exponent == 0:
        value = math.ldexp(float(fraction), -16382 - 112)
    else:
        try:
            value = math.ldexp(float(fraction | (1 << 112)), exponent - 16383 - 112)
        except OverflowError:
            value = math.inf
    return -value if negative else value


def _array_convert(typecode: str) -> _Convert:
    def convert(buffer: memoryview, count: int) -> list[Any]:
        values = array.array(typecode)
        values.frombytes(buffer)
        if not _LITTLE:  # pragma: no cover
            values.byteswap()
        return values.tolist()

    return convert


def _convert_float16(buffer: memoryview, count: int) -> list[Any]:
    return list(struct.unpack(f"<{count}e", buffer))


def _convert_bfloat16(buffer: memoryview, count: int) -> list[Any]:
    # Widen each bfloat16 to a float32 by placing it in the high half: no per-element
    # Python code.
    widened = bytearray(4 * count)
    widened[2::4] = buffer[0::2]
    widened[3::4] = buffer[1::2]
    return _array_convert("f")(memoryview(widened), count)


def _wide_convert(size: int, element: Callable[[BytesLike], Any]) -> _Convert:
    def convert(buffer: memoryview, count: int) -> list[Any]:
        return [element(buffer[i : i + size]) for i in range(0, size * count, size)]

    return convert


def _int128(signed: bool) -> Callable[[BytesLike], int]:
    def element(data: BytesLike) -> int:
        return int.from_bytes(data, "little", signed=signed)

    return element


def _element_convert(kind: int, code: int, fmt: str) -> _Convert:
    if fmt == "e":
        return _convert_float16
    if fmt:
        return _array_convert(_TYPECODES[fmt])
    if kind == 0 and code == 0:
        return _convert_bfloat16
    if kind == 0:
        return _wide_convert(16, _float128)
    return _wide_convert(16, _int128(kind == 1))


class _Decoder:
    __slots__ = ("data", "end", "int_keys_as_str", "max_depth", "uint8_as_bytes", "view")

    def __init__(
        self,
        data: bytes | bytearray,
        max_depth: int,
        int_keys_as_str: bool,
        uint8_as_bytes: bool,
    ) -> None:
        self.data = data
        self.view = memoryview(data)
        self.end = len(data)
        self.max_depth = max_depth
        self.int_keys_as_str = int_keys_as_str
        self.uint8_as_bytes = uint8_as_bytes

    def value(self, pos: int, depth: int) -> tuple[Any, int]:
        try:
            header = self.data[pos]
        except IndexError:
            raise BeveDecodeError("unexpected end of data", pos) from None
        return _READERS[header](self, header, pos + 1, depth)

    def size(self, pos: int) -> tuple[int, int]:
        # Spec section 2.1: the low two bits give the width, the value is shifted by 2.
        try:
            first = self.data[pos]
        except IndexError:
            raise BeveDecodeError("unexpected end of data", pos) from None
        code = first & 3
        if code == 0:
            return first >> 2, pos + 1
        width = 1 << code
        if pos + width > self.end:
            raise BeveDecodeError("truncated size", pos)
        return _SIZE_STRUCTS[code].unpack_from(self.data, pos)[0] >> 2, pos + width

    def count(self, pos: int, per_item: int, what: str) -> tuple[int, int]:
        # Spec section 7: bound every count by the bytes left before allocating.
        count, start = self.size(pos)
        left = self.end - start
        if count * per_item > left:
            raise BeveDecodeError(f"{what} count {count} exceeds the {left} bytes left", pos)
        return count, start

    def string(self, pos: int) -> tuple[str, int]:
        data = self.data
        try:
            first = data[pos]
        except IndexError:
            raise BeveDecodeError("unexpected end of data", pos) from None
        if first & 3:
            length, start = self.count(pos, 1, "string byte")
            end = start + length
        else:
            # Fast path: a 1-byte SIZE (strings under 64 bytes).
            start = pos + 1
            end = start + (first >> 2)
            if end > self.end:
                left = self.end - start
                raise BeveDecodeError(
                    f"string byte count {first >> 2} exceeds the {left} bytes left", pos
                )
        try:
            return data[start:end].decode(), end
        except UnicodeDecodeError:
            raise BeveDecodeError("invalid utf-8 in string", start) from None

    def nest(self, depth: int, pos: int) -> int:
        depth += 1
        if depth > self.max_depth:
            raise BeveDecodeError(f"maximum nesting depth {self.max_depth} exceeded", pos - 1)
        return depth


def _invalid(decoder: _Decoder, header: int, pos: int, depth: int) -> tuple[Any, int]:
    if header & 7 == 7:
        # Spec section 1: type 7 is reserved.
        raise BeveDecodeError("reserved header type 7", pos - 1)
    raise BeveDecodeError(f"invalid header byte 0x{header:02x}", pos - 1)


def _constant(value: Any) -> _Reader:
    def read(decoder: _Decoder, header: int, pos: int, depth: int) -> tuple[Any, int]:
        return value, pos

    return read


def _bfloat16_element(data: BytesLike) -> float:
    return _bfloat16(_u16.unpack(data)[0])


def _number_reader(kind: int, code: int, fmt: str) -> _Reader:
    size = _width(kind, code)
    if fmt:
        unpack_from = struct.Struct("<" + fmt).unpack_from

        def read(decoder: _Decoder, header: int, pos: int, depth: int) -> tuple[Any, int]:
            if pos + size > decoder.end:
                raise BeveDecodeError("truncated number", pos)
            return unpack_from(decoder.data, pos)[0], pos + size

        return read

    element: Callable[[BytesLike], Any]
    if kind == 0:
        element = _bfloat16_element if code == 0 else _float128
    else:
        element = _int128(kind == 1)

    def read_wide(decoder: _Decoder, header: int, pos: int, depth: int) -> tuple[Any, int]:
        end = pos + size
        if end > decoder.end:
            raise BeveDecodeError("truncated number", pos)
        return element(decoder.view[pos:end]), end

    return read_wide


def _read_string(decoder: _Decoder, header: int, pos: int, depth: int) -> tuple[Any, int]:
    return decoder.string(pos)


def _read_string_object(decoder: _Decoder, header: int, pos: int, depth: int) -> tuple[Any, int]:
    depth = decoder.nest(depth, pos)
    # Spec section 5: each member is at least a 1-byte key SIZE and a 1-byte header.
    count, pos = decoder.count(pos, 2, "object member")
    result = {}
    string = decoder.string
    data = decoder.data
    end = decoder.end
    for _ in range(count):
        # Inlined decoder.string() for keys under 64 bytes, the common case.
        try:
            first = data[pos]
        except IndexError:
            raise BeveDecodeError("unexpected end of data", pos) from None
        key_end = pos + 1 + (first >> 2)
        if first & 3 == 0 and key_end <= end:
            try:
                key = data[pos + 1 : key_end].decode()
            except UnicodeDecodeError:
                raise BeveDecodeError("invalid utf-8 in string", pos + 1) from None
            pos = key_end
        else:
            key, pos = string(pos)
        try:
            header = data[pos]
        except IndexError:
            raise BeveDecodeError("unexpected end of data", pos) from None
        result[key], pos = _READERS[header](decoder, header, pos + 1, depth)
    return result, pos


def _int_object_reader(kind: int, code: int, fmt: str) -> _Reader:
    size = 1 << code
    unpack_from = struct.Struct("<" + fmt).unpack_from if fmt else None
    signed = kind == 1

    def read(decoder: _Decoder, header: int, pos: int, depth: int) -> tuple[Any, int]:
        depth = decoder.nest(depth, pos)
        # Spec section 5: integer keys are raw little-endian integers without a header.
        count, pos = decoder.count(pos, size + 1, "object member")
        result: dict[Any, Any] = {}
        data = decoder.data
        value = decoder.value
        as_str = decoder.int_keys_as_str
        for _ in range(count):
            if pos + size > decoder.end:
                raise BeveDecodeError("truncated object key", pos)
            if unpack_from is not None:
                key = unpack_from(data, pos)[0]
            else:
                key = int.from_bytes(decoder.view[pos : pos + size], "little", signed=signed)
            pos += size
            result[str(key) if as_str else key], pos = value(pos, depth)
        return result, pos

    return read


# Numeric typed arrays: header -> (element width, converter).
_TYPED: dict[int, tuple[int, _Convert]] = {}


def _typed_reader(width: int, convert: _Convert) -> _Reader:
    def read(decoder: _Decoder, header: int, pos: int, depth: int) -> tuple[Any, int]:
        # Spec section 4.1: HEADER | SIZE | DATA, count x width bytes.
        count, pos = decoder.count(pos, width, "typed array")
        end = pos + count * width
        if header == 0x14 and decoder.uint8_as_bytes:
            return bytes(decoder.view[pos:end]), end
        return convert(decoder.view[pos:end], count), end

    return read


# ASCII digits "0"/"1" -> bytes 0/1.
_DIGIT_BITS = bytes.maketrans(b"01", b"\x00\x01")


def _read_bool_array(decoder: _Decoder, header: int, pos: int, depth: int) -> tuple[Any, int]:
    # Spec section 4.1: ceil(count / 8) bytes, element i in bit i % 8, LSB first.
    count, pos = decoder.size(pos)
    nbytes = (count + 7) >> 3
    left = decoder.end - pos
    if nbytes > left:
        raise BeveDecodeError(f"bool array count {count} exceeds the {left} bytes left", pos)
    end = pos + nbytes
    if count == 0:
        return [], end
    bits = int.from_bytes(decoder.view[pos:end], "little") & ((1 << count) - 1)
    digits = format(bits, f"0{count}b")[::-1].encode()
    return list(map(bool, digits.translate(_DIGIT_BITS))), end


def _read_string_array(decoder: _Decoder, header: int, pos: int, depth: int) -> tuple[Any, int]:
    # Spec section 4.1: count strings, each SIZE | UTF-8 bytes.
    count, pos = decoder.count(pos, 1, "string array")
    result = []
    string = decoder.string
    for _ in range(count):
        item, pos = string(pos)
        result.append(item)
    return result, pos


def _read_aligned_array(decoder: _Decoder, header: int, pos: int, depth: int) -> tuple[Any, int]:
    # Spec section 4.2: 5c | NUMERIC_HEADER | SIZE | PAD_LEN | padding | DATA.
    if pos >= decoder.end:
        raise BeveDecodeError("unexpected end of data", pos)
    inner = decoder.data[pos]
    if inner not in _TYPED:
        raise BeveDecodeError(f"invalid aligned array element header 0x{inner:02x}", pos)
    width, convert = _TYPED[inner]
    count, pos = decoder.size(pos + 1)
    if pos >= decoder.end:
        raise BeveDecodeError("unexpected end of data", pos)
    start = pos + 1 + decoder.data[pos]
    left = decoder.end - start
    if count * width > left:
        raise BeveDecodeError(
            f"typed array count {count} exceeds the {max(left, 0)} bytes left", pos
        )
    end = start + count * width
    return convert(decoder.view[start:end], count), end


def _read_generic_array(decoder: _Decoder, header: int, pos: int, depth: int) -> tuple[Any, int]:
    depth = decoder.nest(depth, pos)
    # Spec section 4.3: every element is a full VALUE, at least one byte.
    count, pos = decoder.count(pos, 1, "array")
    result: list[Any] = []
    append = result.append
    data = decoder.data
    for _ in range(count):
        try:
            header = data[pos]
        except IndexError:
            raise BeveDecodeError("unexpected end of data", pos) from None
        item, pos = _READERS[header](decoder, header, pos + 1, depth)
        append(item)
    return result, pos


def _read_delimiter(decoder: _Decoder, header: int, pos: int, depth: int) -> tuple[Any, int]:
    # Spec section 6.1: a delimiter separates top-level values; it is never a value.
    raise BeveDecodeError("unexpected delimiter", pos - 1)


def _read_variant(decoder: _Decoder, header: int, pos: int, depth: int) -> tuple[Any, int]:
    # Spec section 6.2: 0e | SIZE (alternative index) | VALUE.
    depth = decoder.nest(depth, pos)
    index, pos = decoder.size(pos)
    value, pos = decoder.value(pos, depth)
    return {"index": index, "value": value}, pos


def _read_typed_part(decoder: _Decoder, pos: int, integers: bool) -> tuple[list[Any], int]:
    if pos >= decoder.end:
        raise BeveDecodeError("unexpected end of data", pos)
    header = decoder.data[pos]
    if header not in _TYPED or (integers and (header >> 3) & 3 == 0):
        raise BeveDecodeError(f"invalid matrix part header 0x{header:02x}", pos)
    width, convert = _TYPED[header]
    count, pos = decoder.count(pos + 1, width, "typed array")
    end = pos + count * width
    return convert(decoder.view[pos:end], count), end


def _read_matrix(decoder: _Decoder, header: int, pos: int, depth: int) -> tuple[Any, int]:
    # Spec section 6.3: 16 | MATRIX_HEADER | EXTENTS | VALUE.
    if pos >= decoder.end:
        raise BeveDecodeError("unexpected end of data", pos)
    matrix_header = decoder.data[pos]
    if matrix_header > 1:
        raise BeveDecodeError(f"invalid matrix header 0x{matrix_header:02x}", pos)
    extents, pos = _read_typed_part(decoder, pos + 1, integers=True)
    value, pos = _read_typed_part(decoder, pos, integers=False)
    layout = "layout_left" if matrix_header else "layout_right"
    return {"layout": layout, "extents": extents, "value": value}, pos


def _read_complex(decoder: _Decoder, header: int, pos: int, depth: int) -> tuple[Any, int]:
    # Spec section 6.4: bits 0-2 single (0) or array (1), bits 3-4 kind, 5-7 width code.
    if pos >= decoder.end:
        raise BeveDecodeError("unexpected end of data", pos)
    complex_header = decoder.data[pos]
    shape = complex_header & 7
    number = 1 | (complex_header & 0xF8)
    if shape > 1 or number not in _NUMBERS:
        raise BeveDecodeError(f"invalid complex header 0x{complex_header:02x}", pos)
    pos += 1
    if shape == 0:
        read = _READERS[number]
        real, pos = read(decoder, number, pos, depth)
        imag, pos = read(decoder, number, pos, depth)
        return complex(real, imag), pos
    width, convert = _TYPED[number + 3]
    count, pos = decoder.count(pos, 2 * width, "complex array")
    end = pos + 2 * count * width
    parts = iter(convert(decoder.view[pos:end], 2 * count))
    return [complex(real, imag) for real, imag in zip(parts, parts)], end


def _unknown_extension(decoder: _Decoder, header: int, pos: int, depth: int) -> tuple[Any, int]:
    raise BeveDecodeError(f"unknown extension {header >> 3}", pos - 1)


def _build_readers() -> tuple[list[_Reader], set[int]]:
    readers: list[_Reader] = [_invalid] * 256
    numbers = set()
    # Spec section 1: null and booleans.
    readers[0x00] = _constant(None)
    readers[0x08] = _constant(False)
    readers[0x18] = _constant(True)
    readers[0x02] = _read_string
    readers[0x03] = _read_string_object
    for kind, code, fmt in NUMBER_KINDS.values():
        bits = kind << 3 | code << 5
        # Spec section 3: numbers; section 4.1: numeric typed arrays.
        readers[1 | bits] = _number_reader(kind, code, fmt)
        numbers.add(1 | bits)
        width = _width(kind, code)
        convert = _element_convert(kind, code, fmt)
        _TYPED[4 | bits] = (width, convert)
        readers[4 | bits] = _typed_reader(width, convert)
        # Spec section 5: integer-key objects.
        if kind != 0:
            readers[3 | bits] = _int_object_reader(kind, code, fmt)
    readers[0x1C] = _read_bool_array
    readers[0x3C] = _read_string_array
    readers[0x5C] = _read_aligned_array
    readers[0x05] = _read_generic_array
    # Spec section 6: extensions, number in bits 3-7.
    for header in range(0x06, 0x100, 8):
        readers[header] = _unknown_extension
    readers[0x06] = _read_delimiter
    readers[0x0E] = _read_variant
    readers[0x16] = _read_matrix
    readers[0x1E] = _read_complex
    return readers, numbers


_READERS, _NUMBERS = _build_readers()


def decode_prefix(
    data: BytesLike,
    *,
    max_depth: int = DEFAULT_MAX_DEPTH,
    int_keys_as_str: bool = False,
    uint8_as_bytes: bool = False,
) -> tuple[Any, int]:
    """Decode the BEVE value at the start of ``data``.

    Args:
        data: the encoded bytes.
        max_depth: the deepest nesting of objects, generic arrays and variants accepted.
        int_keys_as_str: render integer object keys in decimal, as JSON needs.
        uint8_as_bytes: return uint8 typed arrays as :class:`bytes` instead of lists.

    Returns:
        The value and the number of bytes it occupies.

    Raises:
        BeveDecodeError: the bytes are not a valid value; no other exception is raised
            for any input bytes.
    """
    if isinstance(data, memoryview):
        # One copy, so that strings decode from bytes slices (faster than views).
        data = data.tobytes()
    decoder = _Decoder(data, max_depth, int_keys_as_str, uint8_as_bytes)
    try:
        return decoder.value(0, 0)
    except RecursionError:
        raise BeveDecodeError("nesting too deep for the interpreter", 0) from None


def decode(
    data: BytesLike,
    *,
    max_depth: int = DEFAULT_MAX_DEPTH,
    allow_trailing: bool = False,
    int_keys_as_str: bool = False,
    uint8_as_bytes: bool = False,
) -> Any:
    """Decode one BEVE value.

    Args:
        data: the encoded bytes.
        max_depth: the deepest nesting of objects, generic arrays and variants accepted.
        allow_trailing: ignore bytes after the value, as Glaze does (spec section 7).
        int_keys_as_str: render integer object keys in decimal, as JSON needs.
        uint8_as_bytes: return uint8 typed arrays as :class:`bytes` instead of lists.

    Returns:
        The decoded value (see the module docstring for the mapping).

    Raises:
        BeveDecodeError: the bytes are not exactly one valid value; no other exception
            is raised for any input bytes.
    """
    value, end = decode_prefix(
        data,
        max_depth=max_depth,
        int_keys_as_str=int_keys_as_str,
        uint8_as_bytes=uint8_as_bytes,
    )
    if end != len(data) and not allow_trailing:
        raise BeveDecodeError(f"{len(data) - end} trailing bytes after the value", end)
    return value


# Encoding.

_INT64_MIN = -(1 << 63)
_INT64_LIMIT = 1 << 63
_UINT64_LIMIT = 1 << 64

_pack_int64 = struct.Struct("<Bq").pack
_pack_uint64 = struct.Struct("<BQ").pack
_pack_float64 = struct.Struct("<Bd").pack
_pack_complex = struct.Struct("<BBdd").pack
_pack_u16 = _u16.pack
_pack_u32 = _u32.pack
_pack_u64 = _u64.pack

# Spec section 4.1: typed-array headers of the automatic list encodings.
_INT64_ARRAY = 0x6C
_UINT64_ARRAY = 0x74
_FLOAT64_ARRAY = 0x64
_UINT8_ARRAY = 0x14
_BOOL_ARRAY = 0x1C
_STRING_ARRAY = 0x3C

# bytes of 0/1 -> the ASCII digits "0"/"1".
_BIT_DIGITS = bytes.maketrans(b"\x00\x01", b"01")

# array / memoryview format -> (kind, byte-count code).
_FORMAT_KINDS: dict[str, tuple[int, int]] = {}
for _fmt in "bBhHiIlLqQfd":
    _FORMAT_KINDS[_fmt] = (
        0 if _fmt in "fd" else 1 if _fmt.islower() else 2,
        array.array(_fmt).itemsize.bit_length() - 1,
    )
del _fmt


def _write_size(out: bytearray, n: int) -> None:
    # Spec section 2.1: the smallest of 1, 2, 4 or 8 bytes, value << 2 | width code.
    if n < 0x40:
        out.append(n << 2)
    elif n < 0x4000:
        out += _pack_u16(n << 2 | 1)
    elif n < 0x40000000:
        out += _pack_u32(n << 2 | 2)
    else:
        out += _pack_u64(n << 2 | 3)


def _array_bytes(values: array.array[Any]) -> bytes:
    if not _LITTLE:  # pragma: no cover
        values = array.array(values.typecode, values)
        values.byteswap()
    return values.tobytes()


def _pack_bools(values: Iterable[Any]) -> bytes:
    return _pack_flags(bytes(map(bool, values)))


def _pack_flags(flags: bytes) -> bytes:
    # Spec section 4.1: element i in bit i % 8 of byte i // 8. Built with C loops only:
    # 0/1 bytes -> "0"/"1" digits -> reversed -> one int -> little-endian bytes.
    if not flags:
        return b""
    bits = int(flags.translate(_BIT_DIGITS)[::-1], 2)
    return bits.to_bytes((len(flags) + 7) >> 3, "little")


def _pack_numbers(kind_name: str, values: Sequence[Any]) -> bytes:
    kind, _, fmt = NUMBER_KINDS[kind_name]
    try:
        if fmt:
            return struct.pack(f"<{len(values)}{fmt}", *values)
        return b"".join(v.to_bytes(16, "little", signed=kind == 1) for v in values)
    except (struct.error, OverflowError, AttributeError, TypeError) as exc:
        raise BeveEncodeError(f"cannot encode values as {kind_name}: {exc}") from None


class _Encoder:
    __slots__ = ("max_depth", "out", "typed_arrays")

    def __init__(self, typed_arrays: bool, max_depth: int) -> None:
        self.out = bytearray()
        self.typed_arrays = typed_arrays
        self.max_depth = max_depth

    def write(self, value: Any, depth: int) -> None:
        writer = _WRITERS.get(type(value))
        if writer is None:
            writer = _resolve_writer(value)
        writer(self, value, depth)

    def nest(self, depth: int) -> int:
        depth += 1
        if depth > self.max_depth:
            raise BeveEncodeError(f"maximum nesting depth {self.max_depth} exceeded")
        return depth

    def write_none(self, value: None, depth: int) -> None:
        self.out.append(0x00)

    def write_bool(self, value: bool, depth: int) -> None:
        self.out.append(0x18 if value else 0x08)

    def write_int(self, value: int, depth: int) -> None:
        # Spec section 7: int64, or uint64 above the int64 range.
        if _INT64_MIN <= value < _INT64_LIMIT:
            self.out += _pack_int64(0x69, value)
        elif _INT64_LIMIT <= value < _UINT64_LIMIT:
            self.out += _pack_uint64(0x71, value)
        else:
            raise BeveEncodeError(f"int out of range for int64 and uint64: {value}")

    def write_float(self, value: float, depth: int) -> None:
        self.out += _pack_float64(0x61, value)

    def write_complex(self, value: complex, depth: int) -> None:
        # Spec section 6.4: 1e | complex header (single, float64 = 0x60) | re | im.
        self.out += _pack_complex(0x1E, 0x60, value.real, value.imag)

    def write_str(self, value: str, depth: int) -> None:
        data = value.encode()
        out = self.out
        out.append(0x02)
        _write_size(out, len(data))
        out += data

    def write_bytes(self, value: bytes | bytearray, depth: int) -> None:
        out = self.out
        out.append(_UINT8_ARRAY)
        _write_size(out, len(value))
        out += value

    def write_dict(self, value: Mapping[Any, Any], depth: int) -> None:
        depth = self.nest(depth)
        key_types = set(map(type, value))
        if key_types <= {str}:
            # Spec section 5: string-key object.
            out = self.out
            out.append(0x03)
            _write_size(out, len(value))
            write = self.write
            writers = _WRITERS
            for key, item in value.items():
                data = key.encode()
                n = len(data)
                if n < 0x40:
                    out.append(n << 2)
                else:
                    _write_size(out, n)
                out += data
                writer = writers.get(type(item))
                if writer is None:
                    write(item, depth)
                else:
                    writer(self, item, depth)
        elif all(issubclass(t, int) and not issubclass(t, bool) for t in key_types):
            low, high = min(value), max(value)
            if low >= _INT64_MIN and high < _INT64_LIMIT:
                self.write_int_keys("int64", value, depth)
            elif low >= 0 and high < _UINT64_LIMIT:
                self.write_int_keys("uint64", value, depth)
            else:
                raise BeveEncodeError("int keys out of range for int64 and uint64")
        elif all(issubclass(t, str) for t in key_types):
            self.write_dict({str(key): item for key, item in value.items()}, depth - 1)
        else:
            names = ", ".join(sorted(t.__name__ for t in key_types))
            raise BeveEncodeError(f"object keys must be all str or all int, got {names}")

    def write_int_keys(self, kind_name: str, value: Mapping[int, Any], depth: int) -> None:
        kind, code, _ = NUMBER_KINDS[kind_name]
        # Spec section 5: header 3 | key kind << 3 | byte-count code << 5.
        out = self.out
        out.append(3 | kind << 3 | code << 5)
        _write_size(out, len(value))
        write = self.write
        for key, item in value.items():
            out += _pack_numbers(kind_name, [key])
            write(item, depth)

    def write_list(self, value: list[Any], depth: int) -> None:
        if self.typed_arrays and value:
            types = set(map(type, value))
            if len(types) == 1:
                element_type = types.pop()
                if element_type is int:
                    # Spec section 7: Glaze needs typed arrays for numeric vectors.
                    for header, typecode in ((_INT64_ARRAY, "q"), (_UINT64_ARRAY, "Q")):
                        try:
                            data = _array_bytes(array.array(typecode, value))
                        except OverflowError:
                            continue
                        self.write_typed(header, len(value), data)
                        return
                elif element_type is float:
                    data = _array_bytes(array.array("d", value))
                    self.write_typed(_FLOAT64_ARRAY, len(value), data)
                    return
                elif element_type is bool:
                    self.write_typed(_BOOL_ARRAY, len(value), _pack_flags(bytes(value)))
                    return
                elif element_type is str:
                    self.write_strings(value)
                    return
        self.write_sequence(value, depth)

    def write_sequence(self, value: Sequence[Any], depth: int) -> None:
        # Spec section 4.3: generic array.
        depth = self.nest(depth)
        out = self.out
        out.append(0x05)
        _write_size(out, len(value))
        write = self.write
        for item in value:
            write(item, depth)

    def write_typed(self, header: int, count: int, data: BytesLike) -> None:
        out = self.out
        out.append(header)
        _write_size(out, count)
        out += data

    def write_strings(self, values: Iterable[Any]) -> None:
        encoded = [value.encode() for value in values]
        out = self.out
        out.append(_STRING_ARRAY)
        _write_size(out, len(encoded))
        for data in encoded:
            _write_size(out, len(data))
            out += data

    def write_array(self, value: array.array[Any], depth: int) -> None:
        if value.typecode not in _FORMAT_KINDS:
            raise BeveEncodeError(f"cannot encode array of typecode {value.typecode!r}")
        kind, code = _FORMAT_KINDS[value.typecode]
        self.write_typed(4 | kind << 3 | code << 5, len(value), _array_bytes(value))

    def write_memoryview(self, value: memoryview, depth: int) -> None:
        fmt = value.format.lstrip("@")
        if fmt not in _FORMAT_KINDS or value.ndim != 1:
            raise BeveEncodeError(f"cannot encode memoryview of format {value.format!r}")
        values = array.array(fmt)
        values.frombytes(value.tobytes())
        self.write_array(values, depth)

    def write_number(self, value: Number, depth: int) -> None:
        kind, code, _ = NUMBER_KINDS[value.kind]
        self.out.append(1 | kind << 3 | code << 5)
        self.out += _pack_numbers(value.kind, [value.value])

    def write_typed_array(self, value: TypedArray, depth: int) -> None:
        values = value.values
        if value.kind == "bool":
            self.write_typed(_BOOL_ARRAY, len(values), _pack_bools(values))
        elif value.kind == "string":
            self.write_strings(values)
        else:
            kind, code, _ = NUMBER_KINDS[value.kind]
            data = _pack_numbers(value.kind, values)
            self.write_typed(4 | kind << 3 | code << 5, len(values), data)

    def write_int_key_map(self, value: IntKeyMap, depth: int) -> None:
        self.write_int_keys(value.kind, value.mapping, self.nest(depth))

    def write_dataclass(self, value: Any, depth: int) -> None:
        names = _FIELDS.get(type(value))
        if names is None:
            names = _FIELDS[type(value)] = tuple(f.name for f in dataclasses.fields(value))
        self.write_dict({name: getattr(value, name) for name in names}, depth)


_Writer = Callable[[_Encoder, Any, int], None]

_WRITERS: dict[type, _Writer] = {
    type(None): _Encoder.write_none,
    bool: _Encoder.write_bool,
    int: _Encoder.write_int,
    float: _Encoder.write_float,
    complex: _Encoder.write_complex,
    str: _Encoder.write_str,
    bytes: _Encoder.write_bytes,
    bytearray: _Encoder.write_bytes,
    dict: _Encoder.write_dict,
    list: _Encoder.write_list,
    tuple: _Encoder.write_sequence,
    array.array: _Encoder.write_array,
    memoryview: _Encoder.write_memoryview,
    Number: _Encoder.write_number,
    TypedArray: _Encoder.write_typed_array,
    IntKeyMap: _Encoder.write_int_key_map,
}

_FIELDS: dict[type, tuple[str, ...]] = {}


def _resolve_writer(value: Any) -> _Writer:
    # Subclasses (IntEnum, StrEnum, OrderedDict, namedtuple...) use their base's writer.
    for base in (bool, int, float, str, bytes, bytearray, dict, list, tuple, array.array):
        if isinstance(value, base):
            return _WRITERS[base]
    if isinstance(value, Mapping):
        return _Encoder.write_dict
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _Encoder.write_dataclass
    raise BeveEncodeError(f"cannot encode object of type {type(value).__name__}")


def encode(value: Any, *, typed_arrays: bool = True, max_depth: int = DEFAULT_MAX_DEPTH) -> bytes:
    """Encode a value as BEVE.

    Args:
        value: the value; see the module docstring for the supported types.
        typed_arrays: write lists whose elements all have the same type among int,
            float, bool and str as typed arrays (Glaze needs this for numeric vectors);
            with ``False`` every list is a generic array.
        max_depth: the deepest nesting of containers accepted (this also stops
            reference cycles).

    Returns:
        The encoded bytes.

    Raises:
        BeveEncodeError: the value, or something inside it, cannot be encoded; the
            message names the type.
    """
    encoder = _Encoder(typed_arrays, max_depth)
    try:
        encoder.write(value, 0)
    except RecursionError:
        raise BeveEncodeError("nesting too deep for the interpreter") from None
    except UnicodeEncodeError:
        raise BeveEncodeError("string is not valid unicode (lone surrogate)") from None
    return bytes(encoder.out)
