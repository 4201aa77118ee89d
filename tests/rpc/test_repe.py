import dataclasses
import functools
import os
import struct

import pytest
from hypothesis import given, strategies as st
from vectors import REPE_VECTORS

from tether.exceptions import TetherError
from tether.rpc import repe
from tether.rpc.repe import (
    BodyFormat,
    ErrorCode,
    Message,
    QueryFormat,
    RepeError,
    StreamDecoder,
)


HEADER = struct.Struct("<QHBBIQQQHHI")


def header(
    length=None,
    spec=0x1507,
    version=1,
    notify=0,
    reserved=0,
    id=1,
    query_length=0,
    body_length=0,
    query_format=1,
    body_format=0,
    ec=0,
):
    if length is None:
        length = 48 + query_length + body_length
    return HEADER.pack(
        length,
        spec,
        version,
        notify,
        reserved,
        id,
        query_length,
        body_length,
        query_format,
        body_format,
        ec,
    )


def vector(name):
    hex_string, fields = REPE_VECTORS[name]
    return bytes.fromhex(hex_string), fields


# Spec section 4: test vectors.


@pytest.mark.parametrize("name", sorted(REPE_VECTORS))
def test_vector_decodes_to_fields(name):
    data, fields = vector(name)
    assert len(data) == fields["length"]
    message = repe.decode(data)
    for field, value in fields.items():
        if field != "length":
            assert getattr(message, field) == value, field
    assert message.version == 1
    assert message.reserved == 0


@pytest.mark.parametrize("name", sorted(REPE_VECTORS))
def test_vector_reencodes_byte_for_byte(name):
    data, _ = vector(name)
    assert repe.decode(data).encode() == data


@pytest.mark.parametrize("name", sorted(REPE_VECTORS))
def test_vector_built_from_fields(name):
    data, fields = vector(name)
    if "body" not in fields:
        fields = {**fields, "body": data[48 + len(fields["query"]) :]}
    kwargs = {k: v for k, v in fields.items() if k != "length"}
    assert Message(**kwargs).encode() == data


@pytest.mark.parametrize("name", sorted(REPE_VECTORS))
@pytest.mark.parametrize("wrap", [bytearray, memoryview])
def test_vector_decodes_from_buffers(name, wrap):
    data, _ = vector(name)
    message = repe.decode(wrap(data))
    assert message == repe.decode(data)
    assert message.encode() == data


def test_v5_is_error_response_shape():
    data, _ = vector("V5")
    message = repe.error_response(3, ErrorCode.METHOD_NOT_FOUND, "invalid_query: /missing")
    assert message.encode() == data


def test_v6_is_error_response_to_request():
    data, _ = vector("V6")
    request = Message(id=17, query=b"/x", body=b"", version=2)
    message = repe.error_response(
        request, ErrorCode.VERSION_MISMATCH, "REPE version mismatch: expected 1, got 2"
    )
    assert message.encode() == data


def test_v3_is_notify_message_shape():
    data, _ = vector("V3")
    message = repe.notify_message("/tick", b'{"n":0}', BodyFormat.JSON)
    assert message.encode() == data


# Error codes and formats (spec sections 1.3 to 1.5).


def test_error_code_values():
    assert [int(code) for code in ErrorCode] == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 4096]
    assert QueryFormat.RAW == 0
    assert QueryFormat.JSON_POINTER == 1
    assert [int(fmt) for fmt in BodyFormat] == [0, 1, 2, 3]


@pytest.mark.parametrize(
    ("code", "name"),
    [
        (0, "ok"),
        (1, "version mismatch"),
        (6, "method not found"),
        (8, "resource exhausted"),
        (9, "internal error"),
        (4096, "application error 4096"),
        (4123, "application error 4123"),
        (57, "unknown error 57"),
        (10, "unknown error 10"),
        (-1, "unknown error -1"),
    ],
)
def test_error_name(code, name):
    assert repe.error_name(code) == name


def test_repe_error_attributes():
    error = RepeError("boom", ErrorCode.TIMEOUT, id=4, notify=True)
    assert isinstance(error, TetherError)
    assert str(error) == "boom"
    assert (error.ec, error.id, error.notify, error.message) == (7, 4, True, None)
    error = RepeError("boom", 2)
    assert (error.id, error.notify) == (None, None)


# Message construction.


def test_message_defaults():
    message = Message(id=1, query=b"/a", body=b"")
    assert (message.query_format, message.body_format, message.ec) == (1, 0, 0)
    assert (message.notify, message.version, message.reserved) == (False, 1, 0)


def test_message_is_frozen():
    message = Message(id=1, query=b"/a", body=b"")
    with pytest.raises(AttributeError):
        message.id = 2
    assert not hasattr(message, "__dict__")


def test_decoded_message_is_a_frozen_message():
    built = Message(id=7, query=b"/a", body=b"[1]", body_format=BodyFormat.JSON, notify=True)
    decoded = repe.decode(built.encode())
    assert type(decoded) is Message
    assert decoded == built
    assert hash(decoded) == hash(built)
    with pytest.raises(AttributeError):
        decoded.id = 2
    assert not hasattr(decoded, "__dict__")


def test_message_stores_plain_ints():
    message = Message(
        id=1, query=b"", body=b"", query_format=QueryFormat.RAW, body_format=BodyFormat.BEVE
    )
    assert type(message.query_format) is int
    assert type(message.body_format) is int
    assert repr(message).endswith(
        "query_format=0, body_format=1, ec=0, notify=False, version=1, reserved=0)"
    )


def test_message_keeps_unknown_formats():
    message = Message(id=1, query=b"", body=b"", query_format=5000, body_format=65535, ec=70)
    decoded = repe.decode(message.encode())
    assert (decoded.query_format, decoded.body_format, decoded.ec) == (5000, 65535, 70)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("id", -1),
        ("id", 2**64),
        ("query_format", 2**16),
        ("body_format", -1),
        ("ec", 2**32),
        ("version", 256),
        ("reserved", 2**32),
    ],
)
def test_message_field_out_of_range(field, value):
    with pytest.raises(ValueError) as raised:
        Message(**{"id": 1, "query": b"", "body": b"", field: value})
    assert str(raised.value) == f"{field} out of range: {value}"


def test_message_field_not_int():
    with pytest.raises(TypeError) as raised:
        Message(id=1.0, query=b"", body=b"")
    assert str(raised.value) == "id must be an int, got float"
    with pytest.raises(TypeError) as raised:
        Message(id=1, query=b"", body=b"", ec=True)
    assert str(raised.value) == "ec must be an int, got bool"


def test_message_query_not_bytes():
    with pytest.raises(TypeError) as raised:
        Message(id=1, query="/a", body=b"")
    assert str(raised.value) == "query must be bytes-like, got str"


def test_message_notify_is_bool():
    assert Message(id=1, query=b"", body=b"", notify=1).notify is True


def test_message_flattens_memoryview_formats():
    body = memoryview(struct.pack("<3i", 1, 2, 3)).cast("i")
    message = Message(id=1, query=b"", body=body)
    assert len(message.body) == 12
    assert repe.decode(message.encode()).body == struct.pack("<3i", 1, 2, 3)


@pytest.mark.parametrize(
    "body",
    [memoryview(b"abcdef")[::2], memoryview(struct.pack("<4h", 1, 2, 3, 4)).cast("h")[::2]],
)
def test_message_rejects_non_contiguous_memoryview(body):
    with pytest.raises(ValueError) as raised:
        Message(id=1, query=b"", body=body)
    assert str(raised.value) == "memoryview must be C-contiguous"


def test_query_str():
    assert Message(id=1, query=b"/caf\xc3\xa9", body=b"").query_str == "/café"
    assert Message(id=1, query=memoryview(b"/a"), body=b"").query_str == "/a"


def test_query_str_invalid_utf8():
    message = Message(id=9, query=b"/\xff", body=b"", notify=True)
    with pytest.raises(RepeError) as raised:
        _ = message.query_str
    assert str(raised.value) == "query is not valid utf-8"
    assert raised.value.ec == ErrorCode.INVALID_QUERY
    assert (raised.value.id, raised.value.notify) == (9, True)


def test_encode_parts_does_not_copy():
    body = bytearray(b"x" * 10000)
    message = Message(id=1, query=b"/a", body=body, body_format=BodyFormat.RAW)
    head, query, payload = message.encode_parts()
    assert len(head) == 48
    assert query is message.query
    assert payload is body
    assert head + query + payload == message.encode()


def test_encode_writes_notify_as_one():
    data = Message(id=1, query=b"", body=b"", notify=True).encode()
    assert data[11] == 1


# decode(): validation rules in order (spec section 1.8).


def assert_repe_error(data, ec, text, id=None, notify=None, **kwargs):
    with pytest.raises(RepeError) as raised:
        repe.decode(data, **kwargs)
    assert str(raised.value) == text
    assert raised.value.ec == ec
    assert raised.value.id == id
    assert raised.value.notify == notify
    return raised.value


@pytest.mark.parametrize("size", [0, 1, 8, 47])
def test_decode_too_short(size):
    assert_repe_error(
        header()[:size],
        ErrorCode.INVALID_HEADER,
        f"message too short: {size} bytes, header needs 48",
    )


def test_decode_bad_magic():
    assert_repe_error(
        header(spec=0x0715, id=5),
        ErrorCode.INVALID_HEADER,
        "invalid spec magic: 0x0715",
    )


def test_decode_bad_magic_checked_before_length():
    assert_repe_error(
        header(spec=0, length=7) + b"xx",
        ErrorCode.INVALID_HEADER,
        "invalid spec magic: 0x0000",
    )


def test_decode_too_large():
    data = header(id=3, notify=1, body_length=100) + bytes(100)
    assert_repe_error(
        data,
        ErrorCode.INVALID_HEADER,
        "message too large: 148 bytes, limit is 147",
        id=3,
        notify=True,
        max_size=147,
    )
    assert repe.decode(data, max_size=148).body == bytes(100)
    assert repe.decode(data, max_size=None).body == bytes(100)


def test_decode_too_large_checked_before_anything_else():
    # A 48-byte input that claims 2**63 bytes fails on the limit, not on its lengths.
    assert_repe_error(
        header(length=2**63, id=1),
        ErrorCode.INVALID_HEADER,
        f"message too large: {2**63} bytes, limit is {repe.DEFAULT_MAX_SIZE}",
        id=1,
        notify=False,
    )


def test_decode_length_sum_overflows():
    assert_repe_error(
        header(length=2**64 - 1, query_length=2**63, body_length=2**63),
        ErrorCode.INVALID_HEADER,
        "query_length + body_length overflows",
        id=1,
        notify=False,
        max_size=None,
    )


def test_decode_length_sum_wraps_to_length():
    # 48 + (2**64 - 48) + 5 wraps to 5 in 64-bit arithmetic; exact arithmetic rejects it.
    assert_repe_error(
        header(length=53, query_length=2**64 - 48, body_length=5) + bytes(5),
        ErrorCode.INVALID_HEADER,
        "query_length + body_length overflows",
        id=1,
        notify=False,
    )


def test_decode_length_mismatch():
    # Glaze's text for the same case (spec section 1.8).
    assert_repe_error(
        header(length=64, query_length=5) + bytes(16),
        ErrorCode.INVALID_HEADER,
        "REPE length mismatch: expected 53, got 64",
        id=1,
        notify=False,
    )


def test_decode_frame_shorter_than_length():
    assert_repe_error(
        header(query_length=5) + b"/a",
        ErrorCode.INVALID_HEADER,
        "frame length mismatch: header says 53 bytes, got 50",
        id=1,
        notify=False,
    )


def test_decode_frame_longer_than_length():
    assert_repe_error(
        header(query_length=2, notify=1) + b"/a" + b"extra",
        ErrorCode.INVALID_HEADER,
        "frame length mismatch: header says 50 bytes, got 55",
        id=1,
        notify=True,
    )


def test_decode_version_mismatch():
    data = header(version=2, id=17, query_length=2) + b"/a"
    error = assert_repe_error(
        data,
        ErrorCode.VERSION_MISMATCH,
        "REPE version mismatch: expected 1, got 2",
        id=17,
        notify=False,
    )
    assert error.message == Message(id=17, query=b"/a", body=b"", version=2)


def test_decode_version_checked_after_lengths():
    assert_repe_error(
        header(version=2, length=49),
        ErrorCode.INVALID_HEADER,
        "REPE length mismatch: expected 48, got 49",
        id=1,
        notify=False,
    )


def test_decode_version_mismatch_answer_matches_v6():
    data = header(version=2, id=17)
    with pytest.raises(RepeError) as raised:
        repe.decode(data)
    reply = repe.error_response(raised.value.id, raised.value.ec, str(raised.value))
    assert reply.encode() == vector("V6")[0]


@pytest.mark.parametrize("flag", [1, 2, 255])
def test_decode_nonzero_notify_is_notify(flag):
    message = repe.decode(header(notify=flag))
    assert message.notify is True
    assert message.encode()[11] == 1


def test_decode_ignores_reserved():
    message = repe.decode(header(reserved=7))
    assert message.reserved == 7


# decode(): zero-copy slices.


def test_decode_small_bytes_gives_bytes():
    data, _ = vector("V1")
    message = repe.decode(data)
    assert type(message.query) is bytes
    assert type(message.body) is bytes


def test_decode_large_bytes_gives_memoryview_body():
    body = bytes(range(256)) * 20
    data = header(query_length=2, body_length=len(body)) + b"/a" + body
    message = repe.decode(data)
    assert type(message.query) is bytes
    assert type(message.body) is memoryview
    assert message.body.obj is data
    assert message.body == body


def test_decode_threshold_is_inclusive():
    body = bytes(repe.COPY_THRESHOLD)
    message = repe.decode(header(body_length=len(body)) + body)
    assert type(message.body) is bytes


def test_decode_bytearray_is_zero_copy():
    data = bytearray(header(query_length=2, body_length=3) + b"/a" + b"abc")
    message = repe.decode(data)
    assert type(message.query) is memoryview
    assert type(message.body) is memoryview
    data[-1] = ord("z")
    assert message.body == b"abz"
    with pytest.raises(BufferError):
        data.append(0)


def test_decode_memoryview_of_other_format():
    data = header(body_length=2) + b"hi"
    message = repe.decode(memoryview(data).cast("H"))
    assert message.body == b"hi"


# StreamDecoder (spec section 2.1).


ALL_VECTORS = b"".join(vector(name)[0] for name in sorted(REPE_VECTORS))
ALL_MESSAGES = [repe.decode(vector(name)[0]) for name in sorted(REPE_VECTORS)]


def test_stream_back_to_back():
    decoder = StreamDecoder()
    assert decoder.feed(ALL_VECTORS) == ALL_MESSAGES
    assert decoder.buffered == 0
    decoder.feed_eof()


def test_stream_byte_by_byte():
    decoder = StreamDecoder()
    messages = []
    for i in range(len(ALL_VECTORS)):
        messages.extend(decoder.feed(ALL_VECTORS[i : i + 1]))
    assert messages == ALL_MESSAGES


@given(st.lists(st.integers(min_value=0, max_value=len(ALL_VECTORS)), max_size=20))
def test_stream_any_split(cuts):
    cuts = sorted(cuts)
    decoder = StreamDecoder()
    messages = []
    for start, end in zip([0, *cuts], [*cuts, len(ALL_VECTORS)]):
        messages.extend(decoder.feed(memoryview(ALL_VECTORS)[start:end]))
    assert messages == ALL_MESSAGES


def test_stream_messages_own_their_bytes():
    decoder = StreamDecoder()
    data = bytearray(ALL_VECTORS)
    messages = decoder.feed(data)
    data[:] = bytes(len(data))
    assert messages == ALL_MESSAGES
    decoder.feed(b"\x00")  # the internal buffer can still be resized


def test_stream_keeps_partial_message():
    decoder = StreamDecoder()
    data, _ = vector("V1")
    assert decoder.feed(data + data[:30]) == [repe.decode(data)]
    assert decoder.buffered == 30
    assert decoder.feed(data[30:]) == [repe.decode(data)]
    assert decoder.buffered == 0


def assert_stream_error(decoder, data, text):
    with pytest.raises(RepeError) as raised:
        decoder.feed(data)
    assert str(raised.value) == text
    assert raised.value.ec == ErrorCode.INVALID_HEADER
    return raised.value


def test_stream_length_below_header_fails_after_8_bytes():
    decoder = StreamDecoder()
    assert_stream_error(
        decoder, struct.pack("<Q", 47), "message length 47 is shorter than the header"
    )


def test_stream_too_large_fails_after_8_bytes():
    decoder = StreamDecoder(max_size=1000)
    assert decoder.feed(struct.pack("<Q", 1001)[:7]) == []
    assert_stream_error(
        decoder, struct.pack("<Q", 1001)[7:], "message too large: 1001 bytes, limit is 1000"
    )


def test_stream_without_limit():
    decoder = StreamDecoder(max_size=None)
    assert decoder.feed(struct.pack("<Q", 2**63) + b"\x07\x15") == []
    assert decoder.buffered == 10


def test_stream_bad_magic_fails_after_10_bytes():
    decoder = StreamDecoder()
    assert_stream_error(decoder, struct.pack("<QH", 100, 0xFFFF), "invalid spec magic: 0xffff")


def test_stream_invalid_message_is_reported_by_decode():
    decoder = StreamDecoder()
    error = assert_stream_error(
        decoder,
        header(length=60, query_length=2) + bytes(12),
        "REPE length mismatch: expected 50, got 60",
    )
    assert error.id == 1


def test_stream_version_mismatch():
    decoder = StreamDecoder()
    with pytest.raises(RepeError) as raised:
        decoder.feed(header(version=3))
    assert raised.value.ec == ErrorCode.VERSION_MISMATCH


def test_stream_error_after_messages_is_deferred():
    decoder = StreamDecoder()
    data, _ = vector("V9")
    bad = struct.pack("<Q", 12)
    assert decoder.feed(data + data + bad) == [repe.decode(data)] * 2
    error = assert_stream_error(decoder, b"", "message length 12 is shorter than the header")
    assert decoder.buffered == 0
    # The stream stays broken.
    assert assert_stream_error(decoder, data, str(error)) is error
    with pytest.raises(RepeError):
        decoder.feed_eof()


def test_stream_eof_inside_message():
    decoder = StreamDecoder()
    decoder.feed(vector("V1")[0][:20])
    with pytest.raises(RepeError) as raised:
        decoder.feed_eof()
    assert str(raised.value) == "stream ended inside a message: 20 bytes buffered"
    assert raised.value.ec == ErrorCode.INVALID_HEADER
    with pytest.raises(RepeError):
        decoder.feed(b"")


# Helpers.


def test_error_response_from_request():
    request = Message(id=42, query=b"/a", body=b"{}", body_format=BodyFormat.JSON)
    reply = repe.error_response(request, ErrorCode.INVALID_BODY, "bad body")
    assert reply == Message(id=42, query=b"", body=b"bad body", query_format=0, body_format=3, ec=4)


def test_error_response_without_text():
    reply = repe.error_response(1, ErrorCode.TIMEOUT)
    assert reply.body == b""


def test_error_response_needs_error_code():
    with pytest.raises(ValueError) as raised:
        repe.error_response(1, ErrorCode.OK, "fine")
    assert str(raised.value) == "an error response needs a non-zero error code"


def test_notify_message():
    message = repe.notify_message("/chunk", b"\x00", BodyFormat.BEVE)
    assert (message.id, message.notify, message.query_format) == (0, True, 1)
    assert (message.query, message.body_format, message.ec) == (b"/chunk", 1, 0)


# JSON pointers (RFC 6901).


@pytest.mark.parametrize(
    ("segment", "escaped"),
    [("a", "a"), ("a/b", "a~1b"), ("m~n", "m~0n"), ("~1", "~01"), ("/~", "~1~0"), ("", "")],
)
def test_escape_segment(segment, escaped):
    assert repe.escape_segment(segment) == escaped
    assert repe.unescape_segment(escaped) == segment


@pytest.mark.parametrize("segment", ["~", "a~", "~2", "a~b"])
def test_unescape_invalid(segment):
    with pytest.raises(RepeError) as raised:
        repe.unescape_segment(segment)
    assert str(raised.value) == f"invalid escape in json pointer segment: {segment!r}"
    assert raised.value.ec == ErrorCode.INVALID_QUERY


@pytest.mark.parametrize(
    ("pointer", "segments"),
    [
        ("", []),
        ("/", [""]),
        ("/api/v1/counter", ["api", "v1", "counter"]),
        ("/a~1b/m~0n", ["a/b", "m~n"]),
        ("//x", ["", "x"]),
    ],
)
def test_pointers(pointer, segments):
    assert repe.split_pointer(pointer) == segments
    assert repe.join_pointer(segments) == pointer


def test_split_pointer_needs_leading_slash():
    with pytest.raises(RepeError) as raised:
        repe.split_pointer("api")
    assert str(raised.value) == "json pointer must start with '/': 'api'"
    assert raised.value.ec == ErrorCode.INVALID_QUERY


def test_split_pointer_invalid_escape():
    with pytest.raises(RepeError):
        repe.split_pointer("/a~")


@given(st.lists(st.text()))
def test_pointer_round_trip(segments):
    assert repe.split_pointer(repe.join_pointer(segments)) == segments


# Properties.

messages = st.builds(
    Message,
    id=st.integers(0, 2**64 - 1),
    query=st.binary(max_size=64),
    body=st.binary(max_size=256),
    query_format=st.integers(0, 2**16 - 1),
    body_format=st.integers(0, 2**16 - 1),
    ec=st.integers(0, 2**32 - 1),
    notify=st.booleans(),
    reserved=st.integers(0, 2**32 - 1),
)


@given(messages)
def test_round_trip(message):
    data = message.encode()
    assert len(data) == 48 + len(message.query) + len(message.body)
    assert repe.decode(data) == message
    assert repe.decode(bytearray(data)) == message
    assert StreamDecoder().feed(data) == [message]


@given(st.binary(max_size=200))
def test_decode_any_bytes(data):
    ec = None
    try:
        repe.decode(data)
    except RepeError as exc:
        ec = exc.ec
    assert ec in (None, ErrorCode.INVALID_HEADER, ErrorCode.VERSION_MISMATCH)


header_like = st.builds(
    header,
    length=st.integers(0, 200),
    spec=st.sampled_from([0x1507, 0x1507, 0]),
    version=st.sampled_from([1, 1, 2]),
    query_length=st.integers(0, 100),
    body_length=st.integers(0, 100),
)


@given(st.lists(st.one_of(st.binary(max_size=64), header_like), max_size=8))
def test_stream_any_chunks(chunks):
    decoder = StreamDecoder(max_size=1000)
    ec = None
    try:
        for chunk in chunks:
            for message in decoder.feed(chunk):
                assert isinstance(message, Message)
        decoder.feed_eof()
    except RepeError as exc:
        ec = exc.ec
    assert ec in (None, ErrorCode.INVALID_HEADER, ErrorCode.VERSION_MISMATCH)


# The C decoder (protocol/_speedups.c) against the pure-Python one: same message or the
# same error for every input.


def _outcome(decoder, data, max_size):
    try:
        message = decoder(data, max_size)
    except RepeError as exc:
        return ("error", exc.ec, str(exc), exc.id, exc.notify)
    return ("ok", type(message), message, type(message.query), type(message.body))


def _c_then_python(data, max_size):
    return repe.decode(data, max_size=max_size)


def _quick_then_python(data, max_size):
    message = repe.quick_decoder(max_size)(data)
    if message is None:
        repe.decode(data, max_size=max_size)  # must raise: that is the error to compare
        raise AssertionError("the quick decoder refused what decode() accepts")
    return message


def test_the_quick_decoder_is_one_c_call_where_it_can_be():
    in_c = isinstance(repe.quick_decoder(None), functools.partial)
    assert in_c == (repe._c_decode is not None)
    # Limits the C decoder cannot take: the Python decoder alone.
    assert not isinstance(repe.quick_decoder(-1), functools.partial)
    assert not isinstance(repe.quick_decoder(1 << 63), functools.partial)


def test_the_c_decoder_is_in_use_unless_turned_off():
    turned_off = os.environ.get("TETHER_NO_SPEEDUPS") == "1"
    assert (repe._c_decode is None) == turned_off


MAX_SIZES = [None, 0, 47, 48, 64, 100, repe.DEFAULT_MAX_SIZE, -1, 1 << 63, 1 << 64]


@pytest.mark.parametrize("name", sorted(REPE_VECTORS))
@pytest.mark.parametrize("max_size", MAX_SIZES)
def test_c_decoder_matches_python_on_the_vectors(name, max_size):
    data = bytes.fromhex(REPE_VECTORS[name][0])
    expected = _outcome(repe._decode, data, max_size)
    assert _outcome(_c_then_python, data, max_size) == expected
    assert _outcome(_quick_then_python, data, max_size) == expected


wire_messages = st.builds(
    Message,
    id=st.integers(0, 2**64 - 1),
    query=st.binary(max_size=40),
    body=st.one_of(st.binary(max_size=64), st.binary(min_size=4090, max_size=4200)),
    query_format=st.integers(0, 0xFFFF),
    body_format=st.integers(0, 0xFFFF),
    ec=st.integers(0, 2**32 - 1),
    notify=st.booleans(),
    version=st.integers(0, 255),
    reserved=st.integers(0, 2**32 - 1),
)


@given(
    message=wire_messages,
    flips=st.lists(st.tuples(st.integers(0, 47), st.integers(0, 255)), max_size=3),
    cut=st.integers(-3, 3),
    max_size=st.sampled_from(MAX_SIZES),
)
def test_c_decoder_matches_python_on_tampered_messages(message, flips, cut, max_size):
    data = bytearray(message.encode())
    for index, value in flips:
        data[index] = value
    if cut < 0:
        data = data[:cut]
    elif cut > 0:
        data += b"x" * cut
    data = bytes(data)
    expected = _outcome(repe._decode, data, max_size)
    assert _outcome(_c_then_python, data, max_size) == expected
    assert _outcome(_quick_then_python, data, max_size) == expected


@given(data=st.binary(max_size=200), max_size=st.sampled_from(MAX_SIZES))
def test_c_decoder_matches_python_on_any_bytes(data, max_size):
    expected = _outcome(repe._decode, data, max_size)
    assert _outcome(_c_then_python, data, max_size) == expected
    assert _outcome(_quick_then_python, data, max_size) == expected


def test_c_decoder_leaves_other_buffers_to_python():
    data = Message(id=3, query=b"/q", body=b"{}").encode()
    for wrapped in (bytearray(data), memoryview(data)):
        assert repe.decode(wrapped) == repe._decode(data, None)


def test_c_decoder_setup_accepts_only_object_slots():
    from tether.protocol import _speedups

    class NoSlots:
        pass

    class FewSlots:
        __slots__ = ("id",)

    names = tuple(field.name for field in dataclasses.fields(Message))
    with pytest.raises(ValueError, match="nine field names"):
        _speedups.repe_setup(Message, names[:8])
    with pytest.raises(AttributeError):
        _speedups.repe_setup(NoSlots, names)
    with pytest.raises(AttributeError):
        _speedups.repe_setup(FewSlots, names)
    with pytest.raises(TypeError, match="not a writable object slot"):
        _speedups.repe_setup(type("Props", (), dict.fromkeys(names, property(lambda s: 0))), names)
    # The failed calls left the decoder as it was.
    data = Message(id=5, query=b"/x", body=b"[1]").encode()
    assert repe.decode(data) == repe._decode(data, None)


def test_the_c_response_encoder_is_in_use_unless_turned_off():
    turned_off = os.environ.get("TETHER_NO_SPEEDUPS") == "1"
    assert (repe.encode_response is repe.py_encode_response) == turned_off


def _both_encoders():
    encoders = [repe.py_encode_response]
    if repe._c_encode_response is not None:
        encoders.append(repe._c_encode_response)
    return encoders


@given(
    id=st.integers(0, 2**64 - 1),
    body=st.one_of(st.binary(max_size=64), st.binary(min_size=4090, max_size=4200)),
    body_format=st.integers(0, 0xFFFF),
    ec=st.integers(0, 2**32 - 1),
    as_view=st.booleans(),
)
def test_response_encoders_give_the_message_bytes(id, body, body_format, ec, as_view):
    expected = Message(
        id=id, query=b"", body=body, query_format=0, body_format=body_format, ec=ec
    ).encode()
    data = memoryview(body) if as_view else body
    for encode in _both_encoders():
        assert encode(id, data, body_format, ec) == expected
        if ec == 0:
            assert encode(id, data, body_format) == expected


@pytest.mark.parametrize(
    ("id", "body_format", "ec"),
    [(-1, 0, 0), (2**64, 0, 0), (1, -1, 0), (1, 0x10000, 0), (1, 0, 2**32), (1.5, 0, 0)],
)
def test_response_encoders_refuse_the_same_fields(id, body_format, ec):
    for encode in _both_encoders():
        with pytest.raises(struct.error):
            encode(id, b"{}", body_format, ec)


# Plain calls: the C PlainCalls against its pure-Python twin, py_plain_call.


def test_plain_calls_are_one_c_call_unless_turned_off():
    turned_off = os.environ.get("TETHER_NO_SPEEDUPS") == "1"
    caller = repe.plain_calls(None, {}, [])
    assert isinstance(caller, functools.partial) == turned_off
    # A limit the C type cannot hold: the twin.
    assert isinstance(repe.plain_calls(1 << 63, {}, []), functools.partial)


def _plain_callers(max_size, routes, codec):
    callers = [functools.partial(repe.py_plain_call, max_size, routes, codec)]
    if repe._c_plain_calls is not None:
        callers.append(repe._c_plain_calls(max_size, routes, codec))
    return callers


class _Log:
    """Handlers and a codec that record what they were called with."""

    def __init__(self, result=None, raises=None, loads_raises=None, dumps_raises=None):
        self.calls = []
        self.result, self.raises = result, raises
        self.loads_raises, self.dumps_raises = loads_raises, dumps_raises

    def handler(self, value):
        self.calls.append(("handler", value))
        if self.raises is not None:
            raise self.raises
        return value if self.result is None else self.result

    def loads(self, data):
        self.calls.append(("loads", data))
        if self.loads_raises is not None:
            raise self.loads_raises
        return bytes(data).decode("latin-1")

    def dumps(self, value):
        self.calls.append(("dumps", value))
        if self.dumps_raises is not None:
            raise self.dumps_raises
        return repr(value).encode()


def _plain_outcome(caller, data):
    try:
        out = caller(data)
    except BaseException as exc:
        return ("raised", type(exc), exc.args)
    if isinstance(out, tuple):
        result, exc = out
        if exc is not None:
            assert result is None
            assert exc.__traceback__ is not None
            return ("failed", type(exc), exc.args)
        return ("result", type(result), result)
    return ("out", out)


def _run_plain(max_size, data, paths=(b"/a", b"/b/c", b""), **log_options):
    """The outcome and the calls made, for each implementation; all must agree."""
    seen = []
    for index in range(1 + (repe._c_plain_calls is not None)):
        log = _Log(**log_options)
        routes = dict.fromkeys(paths, log.handler)
        caller = _plain_callers(max_size, routes, [log.loads, log.dumps])[index]
        seen.append((_plain_outcome(caller, data), log.calls))
    assert all(item == seen[0] for item in seen)
    return seen[0]


def _call(id=7, query=b"/a", body=b"[1]", **fields):
    fields.setdefault("query_format", 1)
    fields.setdefault("body_format", 2)
    return Message(id=id, query=query, body=body, **fields).encode()


def test_a_plain_call_answers_with_the_encoded_result():
    (outcome, calls) = _run_plain(-1, _call(id=2**64 - 1, body=b"xyz"))
    assert outcome == ("out", repe.py_encode_response(2**64 - 1, b"'xyz'", 2))
    assert calls == [("loads", b"xyz"), ("handler", "xyz"), ("dumps", "xyz")]
    response = repe.decode(outcome[1])
    assert (response.id, response.body, response.body_format, response.ec) == (
        2**64 - 1,
        b"'xyz'",
        2,
        0,
    )


@pytest.mark.parametrize(
    "data",
    [
        _call(notify=True),
        _call(ec=5),
        _call(query_format=0),
        _call(body_format=1),
        _call(body_format=3),
        _call(query=b"/missing"),
        _call(version=2),
        _call()[:-1],
        _call() + b"x",
        b"",
        b"\x00" * 47,
    ],
    ids=[
        "notify",
        "ec",
        "raw-query",
        "beve-body",
        "utf8-body",
        "unknown-path",
        "version",
        "short",
        "long",
        "empty",
        "header-only",
    ],
)
def test_what_is_not_a_plain_call_is_left_untouched(data):
    assert _run_plain(-1, data) == (("out", None), [])


def test_only_bytes_objects_are_plain_calls():
    data = _call()
    for wrapped in (bytearray(data), memoryview(data), "text"):
        assert _run_plain(-1, wrapped) == (("out", None), [])


@pytest.mark.parametrize(("max_size", "plain"), [(-1, True), (0, False), (52, False), (53, True)])
def test_plain_calls_respect_the_size_limit(max_size, plain):
    data = _call(body=b"[1]")  # 53 bytes
    (outcome, _) = _run_plain(max_size, data)
    assert (outcome != ("out", None)) == plain


def test_a_codec_that_is_not_a_pair_is_never_called():
    data = _call()
    for codec in ([], [len], [len, len, len]):
        for caller in _plain_callers(-1, {b"/a": len}, codec):
            assert caller(data) is None


def test_the_tables_are_read_at_every_call():
    log = _Log()
    routes = {}
    codec = []
    data = _call(body=b"q")
    for caller in _plain_callers(-1, routes, codec):
        routes.clear()
        codec.clear()
        assert caller(data) is None
        routes[b"/a"] = log.handler
        assert caller(data) is None  # no codec yet
        codec.extend([log.loads, log.dumps])
        assert caller(data) == repe.py_encode_response(7, b"'q'", 2)


def test_a_body_that_loads_refuses_goes_the_general_way():
    (outcome, calls) = _run_plain(-1, _call(body=b"bad"), loads_raises=ValueError("bad"))
    assert outcome == ("out", None)
    assert calls == [("loads", b"bad")]


def test_a_crashed_handler_comes_back_with_its_exception():
    (outcome, calls) = _run_plain(-1, _call(), raises=KeyError("boom"))
    assert outcome == ("failed", KeyError, ("boom",))
    assert [name for name, _ in calls] == ["loads", "handler"]


@pytest.mark.parametrize("where", ["loads", "handler", "dumps"])
def test_exceptions_that_are_not_errors_propagate(where):
    option = {"loads": "loads_raises", "handler": "raises", "dumps": "dumps_raises"}[where]
    (outcome, _) = _run_plain(-1, _call(), **{option: KeyboardInterrupt("stop")})
    assert outcome == ("raised", KeyboardInterrupt, ("stop",))


class _Special(dict):
    pass


@pytest.mark.parametrize(
    "result",
    [_Special(a=1), ErrorCode.PARSE_ERROR, QueryFormat.RAW, True.__class__.__mro__, object()],
    ids=["dict-subclass", "int-enum", "int-enum-2", "tuple-of-types", "object"],
)
def test_results_of_other_types_are_left_to_the_caller(result):
    (outcome, calls) = _run_plain(-1, _call(), result=result)
    if type(result) is tuple:
        assert outcome[0] == "out"  # an exact tuple is plain
        return
    assert outcome == ("result", type(result), result)
    assert [name for name, _ in calls] == ["loads", "handler"]


@pytest.mark.parametrize(
    "result", [True, 0, -(2**70), 1.5, "s", [1], {"k": [None]}, (1, 2), b"raw"]
)
def test_results_of_the_plain_types_are_encoded(result):
    (outcome, calls) = _run_plain(-1, _call(), result=result)
    assert outcome == ("out", repe.py_encode_response(7, repr(result).encode(), 2))
    assert calls[-1] == ("dumps", result)


def test_a_result_that_dumps_refuses_is_left_to_the_caller():
    (outcome, calls) = _run_plain(-1, _call(), result=[1], dumps_raises=TypeError("no"))
    assert outcome == ("result", list, [1])
    assert [name for name, _ in calls] == ["loads", "handler", "dumps"]


def test_dumps_must_give_bytes_like_objects():
    data = _call()
    for body, expected in ((bytearray(b"[1]"), b"[1]"), (memoryview(b"[2]"), b"[2]")):
        for caller in _plain_callers(-1, {b"/a": len}, [bytes, lambda v, b=body: b]):
            assert caller(data) == repe.py_encode_response(7, expected, 2)
    for caller in _plain_callers(-1, {b"/a": len}, [bytes, str]):
        with pytest.raises(TypeError):
            caller(data)


@given(
    message=wire_messages,
    path=st.sampled_from([b"/a", b"/b/c", b"", b"/z"]),
    flips=st.lists(st.tuples(st.integers(0, 47), st.integers(0, 255)), max_size=2),
    plain=st.booleans(),
    max_size=st.sampled_from([-1, 0, 48, 64, 100, 5000]),
)
def test_c_plain_calls_match_python(message, path, flips, plain, max_size):
    if plain:
        message = dataclasses.replace(
            message, query=path, query_format=1, body_format=2, ec=0, notify=False, version=1
        )
    data = bytearray(message.encode())
    for index, value in flips:
        data[index] = value
    _run_plain(max_size, bytes(data))  # asserts that both agree


def test_plain_calls_refuse_bad_arguments():
    from tether.protocol._speedups import PlainCalls

    with pytest.raises(TypeError):
        PlainCalls(-1, [], [])
    with pytest.raises(TypeError):
        PlainCalls(-1, {}, ())
    caller = PlainCalls(-1, {}, [])
    with pytest.raises(TypeError, match="one positional argument"):
        caller()
    with pytest.raises(TypeError, match="one positional argument"):
        caller(b"", data=b"")


def test_plain_calls_take_part_in_garbage_collection():
    import gc

    from tether.protocol._speedups import PlainCalls

    routes, codec = {}, []
    caller = PlainCalls(-1, routes, codec)
    assert all(any(item is ref for ref in gc.get_referents(caller)) for item in (routes, codec))
