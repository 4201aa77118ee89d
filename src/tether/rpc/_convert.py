"""Convert decoded bodies to annotated parameter types and results back (sans-I/O).

Supported targets: dataclasses (unknown keys ignored, spec section 3.3), pydantic models
and msgspec types when those libraries are installed, and the builtin JSON types with
their ``list[X]`` / ``dict[str, X]`` / ``X | None`` forms. Anything else passes through.
"""

from __future__ import annotations

import dataclasses
import importlib
import types
import typing
from collections.abc import Callable
from typing import Any


__all__ = ["ConversionError", "converter_for", "to_builtins"]


class ConversionError(ValueError):
    """A decoded body does not have the shape the handler expects (ec 4)."""


Converter = Callable[[Any], Any]


def _identity(value: Any) -> Any:
    return value


def _optional_module(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def _describe(value: Any) -> str:
    return type(value).__name__


def converter_for(tp: Any) -> Converter:
    """Return a function that converts a decoded body to ``tp``.

    The function raises :class:`ConversionError` when the value has the wrong shape.
    """
    if tp is Any or tp is None or tp is object:
        return _identity
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _dataclass_converter(tp)
    if isinstance(tp, type) and hasattr(tp, "model_validate"):
        return _pydantic_converter(tp)
    msgspec = _optional_module("msgspec")
    if msgspec is not None and isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        return _msgspec_converter(tp, msgspec)
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return _union_converter(typing.get_args(tp))
    if origin is list:
        (item_type,) = typing.get_args(tp) or (Any,)
        return _list_converter(converter_for(item_type))
    if origin is dict:
        _, value_type = typing.get_args(tp) or (Any, Any)
        return _dict_converter(converter_for(value_type))
    if tp is type(None):
        return _exact(type(None))
    if tp is bool:
        return _exact(bool)
    if tp is int:
        return _int
    if tp is float:
        return _float
    if tp in (str, list, dict):
        return _exact(tp)
    return _identity


def _exact(tp: type) -> Converter:
    def convert(value: Any) -> Any:
        if not isinstance(value, tp):
            raise ConversionError(f"expected {tp.__name__}, got {_describe(value)}")
        return value

    return convert


def _int(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConversionError(f"expected int, got {_describe(value)}")
    return value


def _float(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConversionError(f"expected float, got {_describe(value)}")
    return float(value)


def _list_converter(item: Converter) -> Converter:
    def convert(value: Any) -> Any:
        if not isinstance(value, list | tuple):
            raise ConversionError(f"expected list, got {_describe(value)}")
        return [item(element) for element in value]

    return convert


def _dict_converter(item: Converter) -> Converter:
    def convert(value: Any) -> Any:
        if not isinstance(value, dict):
            raise ConversionError(f"expected object, got {_describe(value)}")
        return {key: item(element) for key, element in value.items()}

    return convert


def _union_converter(options: tuple[Any, ...]) -> Converter:
    converters = [converter_for(option) for option in options]

    def convert(value: Any) -> Any:
        for converter in converters:
            try:
                return converter(value)
            except ConversionError:
                continue
        raise ConversionError(f"no variant of the union accepts {_describe(value)}")

    return convert


def _dataclass_converter(tp: type) -> Converter:
    hints = typing.get_type_hints(tp)
    fields = [field for field in dataclasses.fields(tp) if field.init]
    converters = {field.name: converter_for(hints.get(field.name, Any)) for field in fields}
    required = {
        field.name
        for field in fields
        if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
    }

    def convert(value: Any) -> Any:
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConversionError(f"expected object for {tp.__name__}, got {_describe(value)}")
        missing = required.difference(value)
        if missing:
            raise ConversionError(f"missing field {sorted(missing)[0]!r} for {tp.__name__}")
        # Spec section 3.3: unknown keys are ignored (forward compatibility).
        kwargs = {}
        for name, converter in converters.items():
            if name in value:
                try:
                    kwargs[name] = converter(value[name])
                except ConversionError as exc:
                    raise ConversionError(f"field {name!r}: {exc}") from None
        return tp(**kwargs)

    return convert


def _pydantic_converter(tp: Any) -> Converter:
    def convert(value: Any) -> Any:
        try:
            return tp.model_validate(value)
        except ValueError as exc:  # pydantic's ValidationError is a ValueError
            raise ConversionError(str(exc)) from None

    return convert


def _msgspec_converter(tp: Any, msgspec: Any) -> Converter:
    def convert(value: Any) -> Any:
        try:
            return msgspec.convert(value, tp)
        except msgspec.ValidationError as exc:
            raise ConversionError(str(exc)) from None

    return convert


def to_builtins(value: Any) -> Any:
    """Turn a handler's result into something the body codecs can encode.

    pydantic models and msgspec structs become plain data; dataclasses and builtin
    values are left to the codecs, which handle them.
    """
    dump = getattr(value, "model_dump", None)
    if dump is not None and not isinstance(value, type):
        return dump(mode="json")
    if hasattr(type(value), "__struct_fields__"):
        msgspec = _optional_module("msgspec")
        if msgspec is not None:
            return msgspec.to_builtins(value)
    return value
