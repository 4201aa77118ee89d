"""Sans-I/O codec for REPE version 1 messages (``shared/specs/repe.md``).

A REPE message is a fixed 48-byte little-endian header, then the query, then the body
(spec section 1). Over WebSocket one binary message carries exactly one REPE message and
:func:`decode` parses it; over raw TCP messages follow each other on the byte stream and
:class:`StreamDecoder` splits them.

Zero-copy decoding: when :func:`decode` gets a :class:`bytearray` or a :class:`memoryview`,
the query and body of the returned :class:`Message` are :class:`memoryview` slices of that
buffer. They stay valid only as long as the buffer is not modified; a :class:`bytearray`
cannot be resized while they exist (:class:`BufferError`). Copy them with :func:`bytes` to
keep them after the buffer is reused. For :class:`bytes` input the query is always a
:class:`bytes` slice and so is a body of at most :data:`COPY_THRESHOLD` bytes: slicing a
small :class:`bytes` is about twice as fast as creating memoryview slices (measured: 280 ns
against 600 ns for a 59-byte message); larger bodies are memoryview slices of the immutable
input, which costs the same at any size.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import os
import struct
from collections.abc import Callable, Iterable
from typing import Any, TypeAlias

from ..exceptions import TetherError
from ..types import BytesLike


_c_decode: Callable[[int, int, Any], Any] | None = None
_c_setup: Callable[[type, tuple[str, ...]], None] | None = None
_c_encode_response: Callable[..., bytes] | None = None
_c_plain_calls: Callable[[int, dict[bytes, Any], list[Any]], Callable[[Any], Any]] | None = None
if os.environ.get("TETHER_NO_SPEEDUPS") != "1":
    try:
        from ..protocol import _speedups
    except ImportError:  # pragma: no cover
        pass
    else:
        _c_decode, _c_setup = _speedups.repe_decode, _speedups.repe_setup
        _c_encode_response = _speedups.repe_encode_response
        _c_plain_calls = _speedups.PlainCalls

_I64_LIMIT = 1 << 63


__all__ = [
    "COPY_THRESHOLD",
    "DEFAULT_MAX_SIZE",
    "HEADER_SIZE",
    "SPEC_MAGIC",
    "VERSION",
    "BodyFormat",
    "ErrorCode",
    "Message",
    "QueryFormat",
    "RepeError",
    "StreamDecoder",
    "decode",
    "encode_response",
    "error_name",
    "error_response",
    "escape_segment",
    "join_pointer",
    "notify_message",
    "plain_calls",
    "quick_decoder",
    "split_pointer",
    "unescape_segment",
]

HEADER_SIZE = 48
"""Size of the fixed REPE header in bytes (spec section 1.1)."""

SPEC_MAGIC = 0x1507
"""The ``spec`` field of every REPE message (spec section 1.2)."""

VERSION = 1
"""The REPE version this module speaks."""

DEFAULT_MAX_SIZE = 64 * 1024 * 1024
"""Default limit on a whole message: 64 MiB, as Glaze's TCP server (spec section 1.9)."""

COPY_THRESHOLD = 4096
"""Largest body that :func:`decode` copies out of :class:`bytes` input."""

# Spec section 1.1: length, spec, version, notify, reserved, id, query_length,
# body_length, query_format, body_format, ec.
_HEADER = struct.Struct("<QHBBIQQQHHI")
assert _HEADER.size == HEADER_SIZE
_unpack_header = _HEADER.unpack_from
_pack_header = _HEADER.pack
_unpack_u64 = struct.Struct("<Q").unpack_from
_unpack_u16 = struct.Struct("<H").unpack_from

_U64_LIMIT = 1 << 64
_U32_LIMIT = 1 << 32


class ErrorCode(enum.IntEnum):
    """REPE error codes carried in the ``ec`` field (spec section 1.5).

    Codes 8 and 9 follow repe-rs; Glaze uses the same numbers for its own errors, so
    a client must accept any code it does not know (see :func:`error_name`).
    """

    OK = 0
    VERSION_MISMATCH = 1
    INVALID_HEADER = 2
    INVALID_QUERY = 3
    INVALID_BODY = 4
    PARSE_ERROR = 5
    METHOD_NOT_FOUND = 6
    TIMEOUT = 7
    RESOURCE_EXHAUSTED = 8
    INTERNAL_ERROR = 9
    APPLICATION_ERROR_BASE = 4096


class QueryFormat(enum.IntEnum):
    """Values of the ``query_format`` field (spec section 1.3)."""

    RAW = 0
    JSON_POINTER = 1


class BodyFormat(enum.IntEnum):
    """Values of the ``body_format`` field (spec section 1.4)."""

    RAW = 0
    BEVE = 1
    JSON = 2
    UTF8 = 3


def error_name(code: int) -> str:
    """Describe an error code in words, including codes this module does not know.

    Args:
        code: a value of the ``ec`` field.

    Returns:
        ``"method not found"`` for a known code, ``"application error 4123"`` for a
        code in the application range (4096 and above), ``"unknown error 57"`` otherwise.
    """
    # Spec section 1.5: 4096 and above are application errors.
    if code >= ErrorCode.APPLICATION_ERROR_BASE:
        return f"application error {code}"
    try:
        return ErrorCode(code).name.lower().replace("_", " ")
    except ValueError:
        return f"unknown error {code}"


class RepeError(TetherError):
    """A REPE message could not be decoded or handled.

    Attributes:
        ec: the REPE error code to answer with (see :class:`ErrorCode`).
        id: the id of the offending message, or ``None`` when it is not known.
        notify: whether the offending message was a notify (then nothing must be sent
            back), or ``None`` when it is not known.
        message: for a version mismatch, the rest of the message, decoded.
    """

    def __init__(
        self,
        msg: str,
        ec: int,
        *,
        id: int | None = None,
        notify: bool | None = None,
        message: Message | None = None,
    ) -> None:
        super().__init__(msg)
        self.ec = ec
        self.id = id
        self.notify = notify
        self.message = message


def _as_bytes_view(data: BytesLike) -> BytesLike:
    # len() of a memoryview counts items, not bytes: flatten other formats to bytes.
    if isinstance(data, memoryview) and (data.format != "B" or data.ndim != 1):
        if not data.c_contiguous:
            raise ValueError("memoryview must be C-contiguous")
        return data.cast("B")
    if isinstance(data, memoryview) and not data.c_contiguous:
        raise ValueError("memoryview must be C-contiguous")
    return data


@dataclasses.dataclass(frozen=True, slots=True)
class Message:
    """One REPE message (request, response or notify).

    Attributes:
        id: request identifier, echoed in the response (u64).
        query: the query bytes, normally a UTF-8 JSON pointer.
        body: the body bytes, read according to ``body_format``.
        query_format: see :class:`QueryFormat`; unknown values are kept as ints.
        body_format: see :class:`BodyFormat`; unknown values are kept as ints.
        ec: error code, 0 for success (see :class:`ErrorCode`).
        notify: whether the sender wants no response.
        version: REPE version (always 1 when sent by this module).
        reserved: the reserved header field; senders write 0.

    Construction checks that every field fits its header slot and raises
    :class:`ValueError` otherwise.
    """

    id: int
    query: BytesLike
    body: BytesLike
    query_format: int = 1
    body_format: int = 0
    ec: int = 0
    notify: bool = False
    version: int = 1
    reserved: int = 0

    def __post_init__(self) -> None:
        # Fast path: plain ints in range, bytes query and body, bool notify.
        if (
            type(self.id) is int
            and type(self.query_format) is int
            and type(self.body_format) is int
            and type(self.ec) is int
            and type(self.version) is int
            and type(self.reserved) is int
            and 0 <= self.id < _U64_LIMIT
            and 0 <= self.query_format < 0x10000
            and 0 <= self.body_format < 0x10000
            and 0 <= self.ec < _U32_LIMIT
            and 0 <= self.version < 0x100
            and 0 <= self.reserved < _U32_LIMIT
            and type(self.query) is bytes
            and type(self.body) is bytes
            and type(self.notify) is bool
        ):
            return
        self._check_fields()

    def _check_fields(self) -> None:
        # Enum members and other int subclasses are stored as plain ints.
        for name, limit in (
            ("id", _U64_LIMIT),
            ("query_format", 0x10000),
            ("body_format", 0x10000),
            ("ec", _U32_LIMIT),
            ("version", 0x100),
            ("reserved", _U32_LIMIT),
        ):
            value = getattr(self, name)
            if type(value) is not int:
                if not isinstance(value, int) or isinstance(value, bool):
                    raise TypeError(f"{name} must be an int, got {type(value).__name__}")
                value = int(value)
                object.__setattr__(self, name, value)
            if not 0 <= value < limit:
                raise ValueError(f"{name} out of range: {value}")
        object.__setattr__(self, "notify", bool(self.notify))
        for name in ("query", "body"):
            value = getattr(self, name)
            if not isinstance(value, bytes | bytearray | memoryview):
                raise TypeError(f"{name} must be bytes-like, got {type(value).__name__}")
            object.__setattr__(self, name, _as_bytes_view(value))

    @property
    def query_str(self) -> str:
        """The query decoded as UTF-8.

        Raises:
            RepeError: with ``ec`` INVALID_QUERY when the query is not valid UTF-8.
        """
        try:
            return str(self.query, "utf-8")
        except UnicodeDecodeError as exc:
            raise RepeError(
                "query is not valid utf-8",
                ErrorCode.INVALID_QUERY,
                id=self.id,
                notify=self.notify,
            ) from exc

    def encode_parts(self) -> tuple[bytes, BytesLike, BytesLike]:
        """Serialize the header without copying the query and body.

        Returns:
            ``(header, query, body)``; writing the three in order sends the message.
        """
        query, body = self.query, self.body
        header = _pack_header(
            HEADER_SIZE + len(query) + len(body),
            SPEC_MAGIC,
            self.version,
            # Spec section 1.2: send exactly 0 or 1.
            1 if self.notify else 0,
            self.reserved,
            self.id,
            len(query),
            len(body),
            self.query_format,
            self.body_format,
            self.ec,
        )
        return header, query, body

    def encode(self) -> bytes:
        """Serialize the whole message into one :class:`bytes` object."""
        return b"".join(self.encode_parts())


class _Unfrozen:
    """Same slots as :class:`Message`, without the frozen ``__setattr__``.

    The decode hot path fills one of these with plain attribute stores and then gives
    it the :class:`Message` class (same slots, so the layout is the same). It skips
    ``__post_init__`` (the header fields are already range-checked) and the frozen
    setter, about three times faster than ``object.__setattr__`` for nine fields.
    """

    __slots__ = Message.__slots__


_FIELDS = (
    "id",
    "query",
    "body",
    "query_format",
    "body_format",
    "ec",
    "notify",
    "version",
    "reserved",
)
if _c_setup is not None:
    _c_setup(Message, _FIELDS)


def _from_wire(
    id: int,
    query: BytesLike,
    body: BytesLike,
    query_format: int,
    body_format: int,
    ec: int,
    notify: bool,
    version: int,
    reserved: int,
) -> Message:
    message: Any = object.__new__(_Unfrozen)
    message.id = id
    message.query = query
    message.body = body
    message.query_format = query_format
    message.body_format = body_format
    message.ec = ec
    message.notify = notify
    message.version = version
    message.reserved = reserved
    message.__class__ = Message
    result: Message = message
    return result


def decode(data: BytesLike, *, max_size: int | None = DEFAULT_MAX_SIZE) -> Message:
    """Decode one complete REPE message, such as one WebSocket binary message.

    Checks, in this order (spec section 1.8), raising :class:`RepeError`:

    1. at least 48 bytes: INVALID_HEADER;
    2. ``spec`` is 0x1507: INVALID_HEADER (``id`` and ``notify`` stay ``None``: the
       bytes are not REPE);
    3. ``length`` is at most ``max_size``: INVALID_HEADER, before anything is sliced or
       copied. RESOURCE_EXHAUSTED (8) is not used because it tells the peer to retry;
    4. ``length == 48 + query_length + body_length``, the sum computed exactly:
       INVALID_HEADER;
    5. the data is exactly ``length`` bytes long: INVALID_HEADER;
    6. ``version`` is 1: VERSION_MISMATCH; the error carries the decoded message in
       ``message`` so that a server can answer with its id.

    From check 3 on, the error carries the message's ``id`` and ``notify``. Any
    non-zero ``notify`` byte means notify. A non-zero ``reserved`` field is accepted.

    Args:
        data: the message bytes. See the module docstring for when the query and body
            are memoryview slices of ``data``.
        max_size: the largest accepted ``length``, or ``None`` for no limit.

    Returns:
        The decoded message.

    Raises:
        RepeError: when a check fails.
    """
    if _c_decode is not None and (max_size is None or 0 <= max_size < _I64_LIMIT):
        # The common case in C: a valid v1 message in a bytes object, small body.
        message = _c_decode(-1 if max_size is None else max_size, COPY_THRESHOLD, data)
        if message is not None:
            return message  # type: ignore[no-any-return]
    return _decode(data, max_size)


def quick_decoder(max_size: int | None) -> Callable[[Any], Message | None]:
    """:func:`decode` for a per-request path: errors become ``None``.

    Returns:
        A function of the message bytes that returns what :func:`decode` would, or
        ``None`` where :func:`decode` raises (decode the bytes again for the error).
        With the C accelerator a valid version 1 message in a :class:`bytes` object with
        a body of at most :data:`COPY_THRESHOLD` bytes costs one C call; everything else
        goes to the Python decoder.
    """

    def slow(data: Any) -> Message | None:
        try:
            return _decode(data, max_size)
        except RepeError:
            return None

    c_decode = _c_decode
    if c_decode is None or not (max_size is None or 0 <= max_size < _I64_LIMIT):
        return slow
    limit = -1 if max_size is None else max_size
    decoder: Callable[[Any], Message | None] = functools.partial(
        c_decode, limit, COPY_THRESHOLD, slow
    )
    return decoder


def _decode(data: BytesLike, max_size: int | None) -> Message:
    """:func:`decode` in Python: every check, every error."""
    if isinstance(data, memoryview):
        data = _as_bytes_view(data)
    size = len(data)
    # Spec section 1.8: fewer than 48 bytes cannot hold a header.
    if size < HEADER_SIZE:
        raise RepeError(
            f"message too short: {size} bytes, header needs {HEADER_SIZE}",
            ErrorCode.INVALID_HEADER,
        )
    (
        length,
        spec,
        version,
        notify_byte,
        reserved,
        id,
        query_length,
        body_length,
        query_format,
        body_format,
        ec,
    ) = _unpack_header(data)
    # Spec section 1.2: anything other than 0x1507 is not REPE.
    if spec != SPEC_MAGIC:
        raise RepeError(f"invalid spec magic: 0x{spec:04x}", ErrorCode.INVALID_HEADER)
    # Spec section 1.2: treating any non-zero value as notify is the safe reading.
    notify = notify_byte != 0
    # Spec sections 1.8 and 1.9: refuse a message above the local limit before
    # allocating anything for it.
    if max_size is not None and length > max_size:
        raise RepeError(
            f"message too large: {length} bytes, limit is {max_size}",
            ErrorCode.INVALID_HEADER,
            id=id,
            notify=notify,
        )
    # Spec section 1.2: both lengths are attacker-controlled u64 values; a sum that
    # needs more than 64 bits can never equal a u64 length.
    expected = HEADER_SIZE + query_length + body_length
    if expected >= _U64_LIMIT:
        raise RepeError(
            "query_length + body_length overflows",
            ErrorCode.INVALID_HEADER,
            id=id,
            notify=notify,
        )
    if length != expected:
        raise RepeError(
            f"REPE length mismatch: expected {expected}, got {length}",
            ErrorCode.INVALID_HEADER,
            id=id,
            notify=notify,
        )
    # Spec section 2.2: the WebSocket message length must equal the header's length.
    if size != length:
        raise RepeError(
            f"frame length mismatch: header says {length} bytes, got {size}",
            ErrorCode.INVALID_HEADER,
            id=id,
            notify=notify,
        )
    body_start = HEADER_SIZE + query_length
    query: BytesLike
    body: BytesLike
    if type(data) is bytes:
        query = data[HEADER_SIZE:body_start]
        if body_length <= COPY_THRESHOLD:
            body = data[body_start:]
        else:
            body = memoryview(data)[body_start:]
    else:
        view = memoryview(data)
        query = view[HEADER_SIZE:body_start]
        body = view[body_start:]
    message = _from_wire(id, query, body, query_format, body_format, ec, notify, version, reserved)
    # Spec section 1.2: endpoints must answer an unsupported version with ec = 1.
    if version != VERSION:
        raise RepeError(
            f"REPE version mismatch: expected {VERSION}, got {version}",
            ErrorCode.VERSION_MISMATCH,
            id=id,
            notify=notify,
            message=message,
        )
    return message


class StreamDecoder:
    """Split a byte stream of back-to-back REPE messages (raw TCP, spec section 2.1).

    Each decoded message owns its bytes: nothing refers to the internal buffer or to
    the data passed to :meth:`feed`.

    After an error the decoder is broken: :meth:`feed` raises the same error again.

    Args:
        max_size: the largest accepted message ``length``, or ``None`` for no limit.
    """

    def __init__(self, max_size: int | None = DEFAULT_MAX_SIZE) -> None:
        self.max_size = max_size
        self._buffer = bytearray()
        self._error: RepeError | None = None

    @property
    def buffered(self) -> int:
        """Number of bytes held for an incomplete message."""
        return len(self._buffer)

    def feed(self, data: BytesLike) -> list[Message]:
        """Add bytes from the stream and return every message they complete.

        When a malformed message follows complete ones in the same call, the complete
        ones are returned and the error is raised by the next call.

        Args:
            data: the next bytes read from the stream.

        Returns:
            The messages completed by ``data``, in stream order.

        Raises:
            RepeError: the stream is malformed; it cannot be read further.
        """
        if self._error is not None:
            raise self._error
        buffer = self._buffer
        buffer += data
        messages: list[Message] = []
        pos = 0
        available = len(buffer)
        try:
            while available - pos >= 8:
                # Spec section 2.1: read the length first and check it before
                # waiting for (and buffering) the rest of the message.
                (length,) = _unpack_u64(buffer, pos)
                if length < HEADER_SIZE:
                    raise RepeError(
                        f"message length {length} is shorter than the header",
                        ErrorCode.INVALID_HEADER,
                    )
                if self.max_size is not None and length > self.max_size:
                    raise RepeError(
                        f"message too large: {length} bytes, limit is {self.max_size}",
                        ErrorCode.INVALID_HEADER,
                    )
                if available - pos >= 10:
                    (spec,) = _unpack_u16(buffer, pos + 8)
                    if spec != SPEC_MAGIC:
                        raise RepeError(
                            f"invalid spec magic: 0x{spec:04x}", ErrorCode.INVALID_HEADER
                        )
                if available - pos < length:
                    break
                end = pos + length
                with memoryview(buffer) as view:
                    chunk = view[pos:end].tobytes()
                messages.append(decode(chunk, max_size=self.max_size))
                pos = end
        except RepeError as exc:
            self._error = exc
            buffer.clear()
            if not messages:
                raise
            return messages
        del buffer[:pos]
        return messages

    def feed_eof(self) -> None:
        """Signal the end of the stream.

        Raises:
            RepeError: the stream ended inside a message, or was already broken.
        """
        if self._error is not None:
            raise self._error
        if self._buffer:
            self._error = RepeError(
                f"stream ended inside a message: {len(self._buffer)} bytes buffered",
                ErrorCode.INVALID_HEADER,
            )
            self._buffer.clear()
            raise self._error


def error_response(request_or_id: Message | int, ec: int, text: str = "") -> Message:
    """Build an error response the way Glaze's registry does (spec section 1.6).

    The query is empty with ``query_format`` RAW and the body is ``text`` in UTF-8 with
    ``body_format`` UTF8. Never send a response to a notify.

    Args:
        request_or_id: the request being answered, or its id.
        ec: the non-zero error code.
        text: the error message; may be empty.

    Raises:
        ValueError: ``ec`` is 0.
    """
    if ec == ErrorCode.OK:
        raise ValueError("an error response needs a non-zero error code")
    id = request_or_id.id if isinstance(request_or_id, Message) else request_or_id
    return Message(
        id=id,
        query=b"",
        body=text.encode(),
        query_format=QueryFormat.RAW,
        body_format=BodyFormat.UTF8,
        ec=ec,
    )


def py_encode_response(id: int, body: BytesLike, body_format: int, ec: int = 0) -> bytes:
    """Encode a response in Glaze's shape (empty raw query) straight to bytes.

    The same bytes as ``Message(id, b"", body, QueryFormat.RAW, body_format, ec).encode()``
    without building the :class:`Message`: the server's per-call path. A field out of
    range raises :class:`struct.error`; ``id`` comes from a decoded request. The C
    accelerator's version (the one in use when built) gives the same bytes.
    """
    size = len(body)
    header = _pack_header(
        HEADER_SIZE + size, SPEC_MAGIC, VERSION, 0, 0, id, 0, size, 0, body_format, ec
    )
    return header + body


encode_response = py_encode_response if _c_encode_response is None else _c_encode_response

PLAIN_RESULT_TYPES = frozenset({type(None), bool, int, float, str, list, dict, tuple, bytes})
"""The result types a plain call encodes itself (exact types: never awaitable)."""

PlainOutcome: TypeAlias = "bytes | tuple[Any, Exception | None] | None"
"""What a plain call returns; see :func:`py_plain_call`."""

_JSON_BODY = 2


def py_plain_call(
    max_size: int, routes: dict[bytes, Callable[[Any], Any]], codec: list[Any], data: Any
) -> PlainOutcome:
    """Answer a plain JSON call in one step: the server's per-request path.

    A plain call is a request (not a notify, ec 0) in a :class:`bytes` object holding
    one valid version 1 message of at most ``max_size`` bytes (``max_size < 0``: no
    limit), with a JSON pointer query that is a key of ``routes`` and a JSON body that
    ``codec[0]`` (loads) decodes. Then the handler ``routes[query]`` is called with the
    value, and the result:

    * ``bytes``: the response (ec 0, JSON body ``codec[1](result)``, empty raw query)
      when the result is of one of :data:`PLAIN_RESULT_TYPES` and dumps encoded it;
    * ``(result, None)``: any other result, or dumps raised; ``(None, exc)``: the
      handler raised ``exc``. The caller finishes the request.

    ``None`` when the request is not a plain call, or ``codec`` is not ``[loads,
    dumps]``, or loads raised: nothing but loads ran; the caller's general path decodes
    the message and reports what is wrong with it. Exceptions that are not
    :class:`Exception` subclasses propagate. ``routes`` and ``codec`` are read on every
    call. The C accelerator's ``PlainCalls`` (see :func:`plain_calls`) gives the same
    results.
    """
    if type(data) is not bytes or len(codec) != 2:
        return None
    try:
        message = _decode(data, None if max_size < 0 else max_size)
    except RepeError:
        return None
    if message.notify or message.ec or message.query_format != QueryFormat.JSON_POINTER:
        return None
    func = routes.get(bytes(message.query)) if message.body_format == _JSON_BODY else None
    if func is None:
        return None
    loads, dumps = codec
    try:
        value = loads(bytes(message.body))
    except Exception:
        return None
    try:
        result = func(value)
    except Exception as exc:
        return (None, exc)
    if type(result) not in PLAIN_RESULT_TYPES:
        return (result, None)
    try:
        body = dumps(result)
    except Exception:
        return (result, None)
    return py_encode_response(message.id, body, _JSON_BODY)


def plain_calls(
    max_size: int | None, routes: dict[bytes, Callable[[Any], Any]], codec: list[Any]
) -> Callable[[Any], PlainOutcome]:
    """:func:`py_plain_call` bound to its tables: one C call per request when built."""
    limit = -1 if max_size is None else max_size
    if _c_plain_calls is not None and limit < _I64_LIMIT:
        return _c_plain_calls(limit, routes, codec)
    return functools.partial(py_plain_call, limit, routes, codec)


def notify_message(path: str, body: BytesLike, body_format: int) -> Message:
    """Build a server-pushed notify (spec section 3.4): id 0, notify set, JSON pointer.

    Args:
        path: the method path, a JSON pointer such as ``"/tick"``.
        body: the encoded body.
        body_format: how the body is encoded (see :class:`BodyFormat`).
    """
    return Message(
        id=0,
        query=path.encode(),
        body=body,
        query_format=QueryFormat.JSON_POINTER,
        body_format=body_format,
        notify=True,
    )


# JSON pointers (RFC 6901), the query format of spec section 1.3.


def escape_segment(segment: str) -> str:
    """Escape one reference token: ``~`` becomes ``~0`` and ``/`` becomes ``~1``."""
    # RFC 6901 section 3: escape "~" first so that the "~" of "~1" stays intact.
    return segment.replace("~", "~0").replace("/", "~1")


def unescape_segment(segment: str) -> str:
    """Undo :func:`escape_segment`.

    Raises:
        RepeError: with ``ec`` INVALID_QUERY when ``~`` is not followed by 0 or 1.
    """
    if "~" not in segment:
        return segment
    # RFC 6901 section 3: escaped = "~" ( "0" / "1" ).
    parts = segment.split("~")
    for part in parts[1:]:
        if not part or part[0] not in "01":
            raise RepeError(
                f"invalid escape in json pointer segment: {segment!r}",
                ErrorCode.INVALID_QUERY,
            )
    # RFC 6901 section 4: replace "~1" before "~0" so "~01" yields "~1".
    return segment.replace("~1", "/").replace("~0", "~")


def join_pointer(segments: Iterable[str]) -> str:
    """Build a JSON pointer from unescaped segments; no segments give ``""``."""
    return "".join("/" + escape_segment(segment) for segment in segments)


def split_pointer(pointer: str) -> list[str]:
    """Split a JSON pointer into unescaped segments; ``""`` gives ``[]``.

    Raises:
        RepeError: with ``ec`` INVALID_QUERY for a non-empty pointer that does not start
            with ``/`` or that holds an invalid escape.
    """
    if pointer == "":
        return []
    if pointer[0] != "/":
        raise RepeError(f"json pointer must start with '/': {pointer!r}", ErrorCode.INVALID_QUERY)
    return [unescape_segment(segment) for segment in pointer[1:].split("/")]
