"""Encode and decode REPE bodies according to their ``body_format`` (spec section 1.4).

JSON uses the standard library unless msgspec is importable: msgspec is several times
faster (``benchmarks/micro/bench_json.py``, numbers in ``docs/rpc.md``). orjson, as fast,
is not used: it reads integers beyond 64 bits as floats, silently. For JSON-like data
(dict, list, tuple, str, int, float, bool, None and dataclasses) the result does not
depend on which library runs:

* encoding writes compact UTF-8 JSON; non-finite floats become ``null`` (JSON has no
  spelling for them); dataclasses become objects; int keys become strings; ints beyond
  64 bits are written exactly;
* decoding accepts what :func:`json.loads` accepts and returns the same values: when
  msgspec refuses a document (``NaN`` tokens, lone surrogate escapes, syntax errors) the
  standard library decides, and reports the error.

msgspec also encodes some types that the standard library refuses (sets, datetimes,
UUIDs, bytes as base64); do not rely on that.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import math
from collections.abc import Callable
from typing import Any

from ..types import BytesLike
from . import beve
from .repe import BodyFormat, ErrorCode, RepeError


__all__ = [
    "decode_body",
    "decode_json_body",
    "encode_body",
    "encode_json_body",
    "json_library",
    "plain_codec",
    "use_json_library",
]

_Dumps = Callable[[Any], bytes]
_Loads = Callable[[BytesLike], Any]


def _default(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: getattr(value, field.name) for field in dataclasses.fields(value)}
    raise TypeError(f"cannot encode object of type {type(value).__name__} to json")


def _finite(value: Any) -> Any:
    # Slow path, only after a non-finite float was found: replace it with None.
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _finite(_default(value))
    return value


def _stdlib_dumps(value: Any) -> bytes:
    try:
        text = json.dumps(
            value, separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=_default
        )
    except ValueError as exc:
        if not str(exc).startswith("Out of range float values"):
            raise
        text = json.dumps(
            _finite(value), separators=(",", ":"), ensure_ascii=False, default=_default
        )
    return text.encode()


def _stdlib_loads(data: BytesLike) -> Any:
    return json.loads(str(data, "utf-8"))


def _load_library(name: str) -> tuple[_Dumps, _Loads]:
    if name == "msgspec":
        # An optional dependency, imported by name so that type checking does not need it.
        msgspec: Any = importlib.import_module("msgspec")
        encoder = msgspec.json.Encoder()
        decoder = msgspec.json.Decoder()
        return encoder.encode, decoder.decode
    raise ValueError(f"unknown json library: {name!r}")


_library = "json"
_dumps: _Dumps | None = None
_loads: _Loads | None = None
# [loads, dumps] of the library in use, changed in place: see plain_codec().
_codec: list[Any] = [_stdlib_loads, _stdlib_dumps]


def use_json_library(name: str) -> None:
    """Choose the JSON library: ``"json"`` (the standard library) or ``"msgspec"``.

    At import, tether picks msgspec when it is installed.

    Raises:
        ImportError: the library is not installed.
        ValueError: the name is unknown.
    """
    global _library, _dumps, _loads
    if name == "json":
        _library, _dumps, _loads = name, None, None
        _codec[:] = [_stdlib_loads, _stdlib_dumps]
    else:
        _dumps, _loads = _load_library(name)
        _library = name
        _codec[:] = [_loads, _dumps]


def plain_codec() -> list[Any]:
    """The ``[loads, dumps]`` pair of the JSON library in use, for the plain-call path.

    The same list object on every call, updated in place by :func:`use_json_library`.
    Either function may refuse a value that :func:`decode_json_body` or
    :func:`encode_json_body` still handles (they fall back on the standard library):
    a refusal sends the call down the general path, which decides.
    """
    return _codec


def json_library() -> str:
    """Return the name of the JSON library in use."""
    return _library


try:
    use_json_library("msgspec")
except ImportError:
    pass


def encode_json_body(value: Any) -> bytes:
    """Encode a JSON body with the library in use (raises TypeError, ValueError)."""
    if _dumps is not None:
        try:
            data = _dumps(value)
        except (TypeError, ValueError, OverflowError):
            pass  # keys of other types...: the stdlib decides
        else:
            return data
    return _stdlib_dumps(value)


def decode_json_body(data: BytesLike) -> Any:
    """Decode a JSON body.

    Raises:
        RepeError: with ``ec`` PARSE_ERROR when it does not parse.
    """
    if _loads is not None:
        try:
            return _loads(data)
        except (ValueError, TypeError, RecursionError):
            pass  # the stdlib decides, and reports the error
    try:
        return _stdlib_loads(data)
    except (ValueError, RecursionError) as exc:
        raise RepeError(f"invalid json body: {exc}", ErrorCode.PARSE_ERROR) from exc


def encode_body(value: Any, fmt: int) -> bytes:
    """Encode a value as a body of the given format.

    Args:
        value: bytes-like for RAW, any BEVE-encodable value for BEVE, any JSON-encodable
            value for JSON, :class:`str` for UTF8.
        fmt: a :class:`~tether.rpc.repe.BodyFormat`.

    Raises:
        TypeError: the value does not suit the format (RAW, UTF8, JSON).
        ValueError: ``fmt`` is not one of the four formats.
        tether.rpc.beve.BeveEncodeError: the value cannot be written as BEVE.
    """
    if fmt == BodyFormat.RAW:
        if isinstance(value, bytes):
            return value
        if isinstance(value, bytearray | memoryview):
            return bytes(value)
        raise TypeError(f"raw body must be bytes-like, got {type(value).__name__}")
    if fmt == BodyFormat.BEVE:
        return beve.encode(value)
    if fmt == BodyFormat.JSON:
        return encode_json_body(value)
    if fmt == BodyFormat.UTF8:
        if isinstance(value, str):
            return value.encode()
        raise TypeError(f"utf-8 body must be str, got {type(value).__name__}")
    raise ValueError(f"unsupported body format: {fmt}")


def decode_body(data: BytesLike, fmt: int) -> Any:
    """Decode a body of the given format.

    Args:
        data: the body bytes.
        fmt: its ``body_format``.

    Returns:
        ``data`` itself for RAW (no copy), the decoded value for BEVE and JSON, a
        :class:`str` for UTF8.

    Raises:
        RepeError: with ``ec`` PARSE_ERROR when the body does not parse, INVALID_BODY
            when ``fmt`` is not one of the four formats.
    """
    if fmt == BodyFormat.RAW:
        return data
    if fmt == BodyFormat.BEVE:
        try:
            return beve.decode(data)
        except beve.BeveDecodeError as exc:
            raise RepeError(f"invalid beve body: {exc}", ErrorCode.PARSE_ERROR) from exc
    if fmt == BodyFormat.JSON:
        return decode_json_body(data)
    if fmt == BodyFormat.UTF8:
        try:
            return str(data, "utf-8")
        except UnicodeDecodeError as exc:
            raise RepeError("invalid utf-8 body", ErrorCode.PARSE_ERROR) from exc
    raise RepeError(f"unsupported body format: {fmt}", ErrorCode.INVALID_BODY)
