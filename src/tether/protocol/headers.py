"""HTTP header fields: the :class:`Headers` multidict and the WebSocket header grammars.

The grammar helpers follow RFC 7230 section 3.2.6 (tokens, quoted strings), section 7
(comma-separated lists, ``#rule``) and RFC 6455 sections 4.3 and 9.1. A field sent on
several lines is parsed after joining its values with ``", "``, which RFC 7230 section
3.2.2 makes equivalent.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping, Sequence
from typing import TypeAlias, TypeVar

from ..exceptions import InvalidHeaderFormat
from ..types import ExtensionName, ExtensionParameter, Subprotocol


__all__ = [
    "Headers",
    "HeadersLike",
    "MultipleValuesError",
    "build_extension",
    "build_subprotocol_list",
    "parse_connection",
    "parse_extension",
    "parse_subprotocol_list",
    "parse_upgrade",
]


class MultipleValuesError(KeyError):
    """A header field has several values where exactly one was expected."""

    def __str__(self) -> str:
        # KeyError quotes its argument; a plain message reads better.
        if len(self.args) == 1:
            return str(self.args[0])
        return super().__str__()  # pragma: no cover


# RFC 7230 3.2.6: token = 1*tchar; tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" /
# "+" / "-" / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA
_TOKEN_RE = re.compile(r"[-!#$%&'*+.^_`|~0-9a-zA-Z]+")

# RFC 7230 3.2: field-value = *( field-content / obs-fold ), made of VCHAR, obs-text,
# SP and HTAB. Anything else (CR, LF, NUL, other controls) could inject a header.
_VALUE_RE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")

# RFC 7230 3.2.3: OWS = *( SP / HTAB )
_OWS_RE = re.compile(r"[ \t]*")

# RFC 7230 3.2.6: quoted-string = DQUOTE *( qdtext / quoted-pair ) DQUOTE
_QUOTED_RE = re.compile(r'"(?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t\x20-\x7e\x80-\xff])*"')
_UNQUOTE_RE = re.compile(r"\\([\t\x20-\x7e\x80-\xff])")

# RFC 7230 6.7: protocol = protocol-name ["/" protocol-version]
_PROTOCOL_RE = re.compile(r"[-!#$%&'*+.^_`|~0-9a-zA-Z]+(?:/[-!#$%&'*+.^_`|~0-9a-zA-Z]+)?")


def _check_name(name: str) -> str:
    if not isinstance(name, str) or _TOKEN_RE.fullmatch(name) is None:
        raise ValueError(f"invalid header name: {name!r}")
    return name


def _check_value(value: str) -> str:
    if not isinstance(value, str) or _VALUE_RE.fullmatch(value) is None:
        raise ValueError(f"invalid header value: {value!r}")
    return value


class Headers(MutableMapping[str, str]):
    """HTTP header fields: case-insensitive, multi-valued, in arrival order.

    ``headers[name]`` returns the value of a field that appears exactly once; it raises
    :exc:`KeyError` when the field is absent and :exc:`MultipleValuesError` when it
    appears several times. :meth:`get_all` returns every value. Assigning
    ``headers[name] = value`` replaces every previous value; :meth:`add`, the
    constructor and :meth:`update` append, so repeated fields survive.

    Names must be tokens and values must not contain control characters other than
    horizontal tab: :exc:`ValueError` is raised otherwise, which prevents header
    injection through CR or LF.

    Args:
        *args: at most one :class:`Mapping`, :class:`Headers` or iterable of
            ``(name, value)`` pairs.
        **kwargs: more fields, added after ``args``.
    """

    __slots__ = ("_dict", "_list")

    def __init__(self, *args: HeadersLike, **kwargs: str) -> None:
        self._dict: dict[str, list[str]] = {}
        self._list: list[tuple[str, str]] = []
        self.update(*args, **kwargs)

    @classmethod
    def _from_trusted(cls, items: list[tuple[str, str]]) -> Headers:
        # Private: the HTTP parser has validated names and values already.
        headers = cls.__new__(cls)
        headers._list = items
        headers._dict = {}
        for name, value in items:
            headers._dict.setdefault(name.lower(), []).append(value)
        return headers

    def __str__(self) -> str:
        return self.serialize().decode("latin-1")

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self._list!r})"

    def copy(self) -> Headers:
        """Return an independent copy."""
        return self._from_trusted(list(self._list))

    def serialize(self) -> bytes:
        """Return the fields as ``Name: value\\r\\n`` lines, in order."""
        # RFC 7230 3.2: header-field = field-name ":" OWS field-value OWS
        return "".join([f"{name}: {value}\r\n" for name, value in self._list]).encode("latin-1")

    # Mapping interface

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._dict

    def __iter__(self) -> Iterator[str]:
        return iter(self._dict)

    def __len__(self) -> int:
        return len(self._dict)

    def __getitem__(self, key: str) -> str:
        values = self._dict[key.lower()]
        if len(values) == 1:
            return values[0]
        raise MultipleValuesError(f"multiple values for header {key}")

    def __setitem__(self, key: str, value: str) -> None:
        _check_name(key)
        _check_value(value)
        if key in self:
            del self[key]
        self._dict[key.lower()] = [value]
        self._list.append((key, value))

    def __delitem__(self, key: str) -> None:
        lower = key.lower()
        del self._dict[lower]
        self._list = [(name, value) for name, value in self._list if name.lower() != lower]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Headers):
            return self._lowered() == other._lowered()
        if isinstance(other, Mapping):
            try:
                return self == Headers(other)
            except ValueError:
                return False
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def _lowered(self) -> list[tuple[str, str]]:
        return [(name.lower(), value) for name, value in self._list]

    def clear(self) -> None:
        """Remove every field."""
        self._dict = {}
        self._list = []

    def update(self, *args: HeadersLike, **kwargs: str) -> None:  # type: ignore[override]
        """Append fields from a mapping, a :class:`Headers` or ``(name, value)`` pairs.

        Unlike :meth:`dict.update`, existing values are kept: this appends.

        Raises:
            TypeError: more than one positional argument.
            ValueError: an invalid name or value.
        """
        if len(args) > 1:
            raise TypeError(f"update expected at most 1 argument, got {len(args)}")
        if args:
            self._extend(_pairs(args[0]))
        self._extend(kwargs.items())

    def _extend(self, pairs: Iterable[tuple[str, str]]) -> None:
        for name, value in pairs:
            self.add(name, value)

    # Multi-value interface

    def add(self, name: str, value: str) -> None:
        """Append one field, keeping any previous values of the same name.

        Raises:
            ValueError: ``name`` isn't a token or ``value`` contains a control character.
        """
        _check_name(name)
        _check_value(value)
        self._dict.setdefault(name.lower(), []).append(value)
        self._list.append((name, value))

    def get_all(self, name: str) -> list[str]:
        """Return every value of ``name``, in order; an empty list when absent."""
        return list(self._dict.get(name.lower(), ()))

    def get_joined(self, name: str) -> str | None:
        """Return every value of ``name`` joined with ``", "``, or ``None`` when absent.

        RFC 7230 3.2.2 makes this equivalent to the separate lines for list-valued fields.
        """
        values = self._dict.get(name.lower())
        if values is None:
            return None
        return ", ".join(values)

    def raw_items(self) -> Iterator[tuple[str, str]]:
        """Iterate over ``(name, value)`` pairs with their original case and order."""
        return iter(list(self._list))


HeadersLike: TypeAlias = Headers | Mapping[str, str] | Iterable[tuple[str, str]]
"""Anything :class:`Headers` accepts as fields."""


def _pairs(data: HeadersLike) -> Iterable[tuple[str, str]]:
    if isinstance(data, Headers):
        return data.raw_items()
    if isinstance(data, Mapping):
        return data.items()
    return data


# Header grammar

T = TypeVar("T")


def _parse_token(header: str, pos: int, name: str) -> tuple[str, int]:
    match = _TOKEN_RE.match(header, pos)
    if match is None:
        raise InvalidHeaderFormat(name, "expected token", header, pos)
    return match.group(), match.end()


def _parse_protocol(header: str, pos: int, name: str) -> tuple[str, int]:
    match = _PROTOCOL_RE.match(header, pos)
    if match is None:
        raise InvalidHeaderFormat(name, "expected protocol", header, pos)
    return match.group(), match.end()


def _skip_ows(header: str, pos: int) -> int:
    match = _OWS_RE.match(header, pos)
    assert match is not None  # the pattern matches the empty string
    return match.end()


def _parse_list(
    parse_item: Callable[[str, int, str], tuple[T, int]],
    header: str,
    name: str,
) -> list[T]:
    # RFC 7230 7: 1#element => *( "," OWS ) element *( OWS "," [ OWS element ] )
    # Empty list elements are accepted and ignored, but at least one element is required.
    items: list[T] = []
    pos = _skip_ows(header, 0)
    while pos < len(header) and header[pos] == ",":
        pos = _skip_ows(header, pos + 1)
    while True:
        item, pos = parse_item(header, pos, name)
        items.append(item)
        pos = _skip_ows(header, pos)
        if pos == len(header):
            return items
        if header[pos] != ",":
            raise InvalidHeaderFormat(name, "expected comma", header, pos)
        while pos < len(header) and header[pos] == ",":
            pos = _skip_ows(header, pos + 1)
        if pos == len(header):
            return items


def parse_connection(header: str) -> list[str]:
    """Parse a ``Connection`` field value (RFC 7230 6.1: ``1#connection-option``).

    Raises:
        InvalidHeaderFormat: the value doesn't follow the grammar.
    """
    return _parse_list(_parse_token, header, "Connection")


def parse_upgrade(header: str) -> list[str]:
    """Parse an ``Upgrade`` field value (RFC 7230 6.7: ``1#protocol``).

    Raises:
        InvalidHeaderFormat: the value doesn't follow the grammar.
    """
    return _parse_list(_parse_protocol, header, "Upgrade")


def _parse_subprotocol(header: str, pos: int, name: str) -> tuple[Subprotocol, int]:
    token, pos = _parse_token(header, pos, name)
    return Subprotocol(token), pos


def parse_subprotocol_list(header: str) -> list[Subprotocol]:
    """Parse a ``Sec-WebSocket-Protocol`` field value (RFC 6455 4.3: ``1#token``).

    Raises:
        InvalidHeaderFormat: the value doesn't follow the grammar.
    """
    return _parse_list(_parse_subprotocol, header, "Sec-WebSocket-Protocol")


def build_subprotocol_list(subprotocols: Sequence[Subprotocol]) -> str:
    """Build a ``Sec-WebSocket-Protocol`` field value.

    Raises:
        ValueError: the list is empty or a subprotocol isn't a token.
    """
    if not subprotocols:
        raise ValueError("empty subprotocol list")
    for subprotocol in subprotocols:
        if _TOKEN_RE.fullmatch(subprotocol) is None:
            raise ValueError(f"invalid subprotocol: {subprotocol!r}")
    return ", ".join(subprotocols)


def _parse_extension_param(header: str, pos: int, name: str) -> tuple[ExtensionParameter, int]:
    # RFC 6455 9.1: extension-param = token [ "=" (token | quoted-string) ]
    param, pos = _parse_token(header, pos, name)
    pos = _skip_ows(header, pos)
    if pos == len(header) or header[pos] != "=":
        return (param, None), pos
    pos = _skip_ows(header, pos + 1)
    if header.startswith('"', pos):
        match = _QUOTED_RE.match(header, pos)
        if match is None:
            raise InvalidHeaderFormat(name, "expected quoted string", header, pos)
        value = _UNQUOTE_RE.sub(r"\1", match.group()[1:-1])
        # RFC 6455 9.1: "When using the quoted-string syntax variant, the value after
        # quoted-string unescaping MUST conform to the 'token' ABNF."
        if _TOKEN_RE.fullmatch(value) is None:
            raise InvalidHeaderFormat(name, "invalid quoted parameter value", header, pos)
        return (param, value), match.end()
    value, pos = _parse_token(header, pos, name)
    return (param, value), pos


def _parse_extension_item(
    header: str, pos: int, name: str
) -> tuple[tuple[ExtensionName, list[ExtensionParameter]], int]:
    # RFC 6455 9.1: extension = extension-token *( ";" extension-param )
    extension, pos = _parse_token(header, pos, name)
    params: list[ExtensionParameter] = []
    pos = _skip_ows(header, pos)
    while pos < len(header) and header[pos] == ";":
        pos = _skip_ows(header, pos + 1)
        param, pos = _parse_extension_param(header, pos, name)
        params.append(param)
        pos = _skip_ows(header, pos)
    return (ExtensionName(extension), params), pos


def parse_extension(header: str) -> list[tuple[ExtensionName, list[ExtensionParameter]]]:
    """Parse a ``Sec-WebSocket-Extensions`` field value (RFC 6455 9.1).

    Quoted parameter values are unquoted; they must then be tokens.

    Returns:
        ``(name, params)`` for each extension, in order; each param is ``(name, value)``
        with ``None`` for a parameter without a value.

    Raises:
        InvalidHeaderFormat: the value doesn't follow the grammar.
    """
    return _parse_list(_parse_extension_item, header, "Sec-WebSocket-Extensions")


def build_extension(
    extensions: Sequence[tuple[ExtensionName, Sequence[ExtensionParameter]]],
) -> str:
    """Build a ``Sec-WebSocket-Extensions`` field value (RFC 6455 9.1).

    Raises:
        ValueError: the list is empty, or a name or value isn't a token.
    """
    if not extensions:
        raise ValueError("empty extension list")
    parts: list[str] = []
    for name, params in extensions:
        if _TOKEN_RE.fullmatch(name) is None:
            raise ValueError(f"invalid extension name: {name!r}")
        items: list[str] = [name]
        for param, value in params:
            if _TOKEN_RE.fullmatch(param) is None:
                raise ValueError(f"invalid extension parameter name: {param!r}")
            if value is None:
                items.append(param)
            elif _TOKEN_RE.fullmatch(value) is None:
                raise ValueError(f"invalid extension parameter value: {value!r}")
            else:
                items.append(f"{param}={value}")
        parts.append("; ".join(items))
    return ", ".join(parts)
