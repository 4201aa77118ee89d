"""Bytes-in, bytes-out tests of the sans-I/O connection, grouped by RFC 6455 section."""

import struct

import pytest

from tether.exceptions import InvalidState
from tether.protocol.close import Close
from tether.protocol.connection import CLIENT, SERVER, Protocol, State
from tether.protocol.frames import Frame, Opcode
from tether.protocol.limits import Limits


MASK = b"\x37\xfa\x21\x3d"


def frame(opcode, payload=b"", *, fin=True, mask=MASK, rsv=0, length=None):
    """Build a frame by hand, independently of the code under test."""
    first = (0x80 if fin else 0) | rsv | opcode
    n = len(payload) if length is None else length
    mask_bit = 0x80 if mask is not None else 0
    if n < 126:
        header = bytes([first, mask_bit | n])
    elif n < 65536:
        header = bytes([first, mask_bit | 126]) + struct.pack("!H", n)
    else:
        header = bytes([first, mask_bit | 127]) + struct.pack("!Q", n)
    if mask is None:
        return header + payload
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def from_client(opcode, payload=b"", **kw):
    return frame(opcode, payload, **kw)


def from_server(opcode, payload=b"", **kw):
    return frame(opcode, payload, mask=None, **kw)


def close_payload(code, reason=b""):
    return struct.pack("!H", code) + reason


def feed_variants(data):
    """Whole, byte by byte, and in two halves."""
    yield "whole", [data]
    yield "bytewise", [data[i : i + 1] for i in range(len(data))]
    half = len(data) // 2
    yield "halves", [data[:half], data[half:]]


def run(side, chunks, **kw):
    p = Protocol(side, **kw)
    for chunk in chunks:
        p.receive_data(chunk)
    return p


def assert_failed(p, code):
    out = b"".join(p.data_to_send())
    assert p.close_transport
    assert p.failure is not None
    assert p.failure.code == code
    if code in (1005, 1006):  # pragma: no cover - never sent
        return
    assert out[0] == 0x88
    if out[1] & 0x80:  # a client's frame: unmask it
        assert out[1] & 0x7F == len(out) - 6
        mask, body = out[2:6], out[6:]
        out = out[:2] + bytes(b ^ mask[i % 4] for i, b in enumerate(body))
    else:
        assert out[1] == len(out) - 2
    assert struct.unpack("!H", out[2:4])[0] == code


# Section 5.2 / 5.6: data frames


@pytest.mark.parametrize(("name", "chunks"), list(feed_variants(from_client(1, b"caf\xc3\xa9"))))
def test_server_receives_text(name, chunks):
    p = run(SERVER, chunks)
    assert p.events_received() == ["café"]
    assert p.data_to_send() == []


@pytest.mark.parametrize(("name", "chunks"), list(feed_variants(from_server(2, b"\x00\xff" * 40))))
def test_client_receives_binary(name, chunks):
    p = run(CLIENT, chunks)
    assert p.events_received() == [b"\x00\xff" * 40]


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536, 70000])
def test_length_encodings(size):
    payload = bytes(range(256)) * (size // 256) + bytes(size % 256)
    for data in (from_client(2, payload), b"".join(Protocol_send(CLIENT, payload))):
        p = run(SERVER, [data], limits=Limits(max_message_size=None, max_frame_size=None))
        assert p.events_received() == [payload]


def Protocol_send(side, payload):
    p = Protocol(side)
    p.send_binary(payload)
    return p.data_to_send()


def test_many_frames_in_one_read_and_trailing_partial():
    data = b"".join(from_client(2, bytes([i])) for i in range(50)) + from_client(1, b"tail")[:3]
    p = run(SERVER, [data])
    assert p.events_received() == [bytes([i]) for i in range(50)]
    p.receive_data(from_client(1, b"tail")[3:])
    assert p.events_received() == ["tail"]


def test_server_frames_are_unmasked_and_client_frames_masked():
    server = Protocol(SERVER)
    server.send_text("hi")
    assert server.data_to_send() == [b"\x81\x02hi"]
    client = Protocol(CLIENT)
    client.send_text("hi")
    (out,) = client.data_to_send()
    assert out[0] == 0x81
    assert out[1] == 0x82
    mask = out[2:6]
    assert bytes(b ^ mask[i % 4] for i, b in enumerate(out[6:])) == b"hi"


def test_large_frame_header_and_payload_sent_separately():
    server = Protocol(SERVER)
    server.send_binary(b"x" * 5000)
    header, payload = server.data_to_send()
    assert header == b"\x82\x7e\x13\x88"
    assert payload == b"x" * 5000


def test_client_masks_differ_between_frames():
    client = Protocol(CLIENT)
    client.send_binary(b"a")
    client.send_binary(b"a")
    first, second = client.data_to_send()
    assert first[2:6] != second[2:6]


# Section 5.1: masking rules


def test_server_rejects_unmasked_frame():
    p = run(SERVER, [from_server(1, b"hi")])
    assert_failed(p, 1002)
    assert str(p.failure) == "incorrect masking"
    assert p.events_received() == []


def test_client_rejects_masked_frame():
    p = run(CLIENT, [from_client(1, b"hi")])
    assert_failed(p, 1002)
    assert str(p.failure) == "incorrect masking"


# Section 5.2: reserved bits and opcodes


@pytest.mark.parametrize("rsv", [0x40, 0x20, 0x10])
def test_rsv_bits_without_extension(rsv):
    p = run(SERVER, [from_client(1, b"hi", rsv=rsv)])
    assert_failed(p, 1002)
    assert str(p.failure) == "reserved bits must be 0"


@pytest.mark.parametrize("opcode", [3, 4, 5, 6, 7, 11, 12, 13, 14, 15])
def test_reserved_opcodes(opcode):
    p = run(SERVER, [from_client(opcode, b"x")])
    assert_failed(p, 1002)
    assert str(p.failure) == f"invalid opcode {opcode}"


def test_reserved_opcode_detected_before_payload_arrives():
    data = from_client(3, b"x" * 1000)
    p = run(SERVER, [data[:10]])
    assert_failed(p, 1002)


# Section 5.4: fragmentation


@pytest.mark.parametrize(
    ("name", "chunks"),
    list(
        feed_variants(
            from_client(1, b"he", fin=False)
            + from_client(9, b"ping")
            + from_client(0, b"l", fin=False)
            + from_client(0, b"lo", fin=True)
        )
    ),
)
def test_fragmented_text_with_interleaved_ping(name, chunks):
    p = run(SERVER, chunks)
    events = p.events_received()
    assert events == [Frame(Opcode.PING, b"ping"), "hello"]
    assert b"".join(p.data_to_send()) == b"\x8a\x04ping"


def test_fragmented_binary():
    data = from_client(2, b"a", fin=False) + from_client(0, b"b", fin=False) + from_client(0, b"c")
    p = run(SERVER, [data])
    assert p.events_received() == [b"abc"]


def test_utf8_sequence_split_across_fragments():
    data = from_client(1, b"\xe2\x82", fin=False) + from_client(0, b"\xac")
    p = run(SERVER, [data])
    assert p.events_received() == ["€"]


def test_continuation_without_start():
    p = run(SERVER, [from_client(0, b"x")])
    assert_failed(p, 1002)
    assert str(p.failure) == "unexpected continuation frame"


def test_new_message_during_fragmented_message():
    p = run(SERVER, [from_client(1, b"a", fin=False) + from_client(1, b"b")])
    assert_failed(p, 1002)
    assert str(p.failure) == "expected a continuation frame"


def test_sending_fragmented_message():
    p = Protocol(SERVER)
    p.send_text("ab", fin=False)
    p.send_continuation(b"c", fin=False)
    p.send_continuation(b"", fin=True)
    assert p.data_to_send() == [b"\x01\x02ab", b"\x00\x01c", b"\x80\x00"]


def test_send_continuation_without_message():
    p = Protocol(SERVER)
    with pytest.raises(InvalidState, match="no fragmented message in progress"):
        p.send_continuation(b"x", fin=True)


def test_send_new_message_during_fragmented_message():
    p = Protocol(SERVER)
    p.send_binary(b"a", fin=False)
    with pytest.raises(InvalidState, match="a fragmented message is in progress"):
        p.send_binary(b"b")


# Section 5.5: control frames


def test_control_frame_too_long():
    p = run(SERVER, [from_client(9, b"x" * 126)])
    assert_failed(p, 1002)
    assert str(p.failure) == "control frame too long"


def test_fragmented_control_frame():
    p = run(SERVER, [from_client(9, b"x", fin=False)])
    assert_failed(p, 1002)
    assert str(p.failure) == "fragmented control frame"


def test_rsv1_on_control_frame_with_extension():
    class Rsv1Extension:
        name = "x"
        rsv1 = True

    p = run(SERVER, [from_client(9, b"x", rsv=0x40)], extensions=[Rsv1Extension()])
    assert_failed(p, 1002)
    assert str(p.failure) == "unexpected rsv1 bit"


def test_ping_answered_with_pong():
    p = run(CLIENT, [from_server(9, b"abc")])
    assert p.events_received() == [Frame(Opcode.PING, b"abc")]
    (out,) = p.data_to_send()
    assert out[0] == 0x8A
    assert out[1] == 0x83
    mask = out[2:6]
    assert bytes(b ^ mask[i % 4] for i, b in enumerate(out[6:])) == b"abc"


def test_pong_is_reported():
    p = run(SERVER, [from_client(10, b"xyz")])
    assert p.events_received() == [Frame(Opcode.PONG, b"xyz")]
    assert p.data_to_send() == []


def test_send_control_frame_too_long():
    p = Protocol(SERVER)
    with pytest.raises(ValueError, match="control frame payload must be 125 bytes or less"):
        p.send_ping(b"x" * 126)


# Section 5.5.1 and 7: closing


def test_server_echoes_close_and_closes_transport():
    p = run(SERVER, [from_client(8, close_payload(1000, b"bye"))])
    assert p.events_received() == [Frame(Opcode.CLOSE, close_payload(1000, b"bye"))]
    assert p.data_to_send() == [b"\x88\x02\x03\xe8"]
    assert p.close_rcvd == Close(1000, "bye")
    assert p.close_sent == Close(1000, "")
    assert p.close_rcvd_then_sent is True
    assert p.close_transport
    assert p.state is State.CLOSING


def test_client_echoes_close_and_waits_for_server():
    p = run(CLIENT, [from_server(8, close_payload(1001))])
    assert len(p.data_to_send()) == 1
    assert not p.close_transport
    p.receive_eof()
    assert p.state is State.CLOSED
    assert p.close_transport


def test_empty_close_echoed_empty():
    p = run(SERVER, [from_client(8, b"")])
    assert p.data_to_send() == [b"\x88\x00"]
    assert p.close_rcvd == Close(1005, "")


def test_close_initiated_locally():
    p = Protocol(SERVER)
    p.send_close(1001, "going")
    assert p.data_to_send() == [b"\x88\x07\x03\xe9going"]
    assert p.state is State.CLOSING
    p.receive_data(from_client(8, close_payload(1001)))
    assert p.close_rcvd_then_sent is False
    assert p.close_transport


def test_data_after_close_is_discarded():
    p = run(SERVER, [from_client(8, close_payload(1000)) + from_client(1, b"late")])
    assert [e for e in p.events_received() if isinstance(e, str)] == []


def test_cannot_send_after_close():
    p = Protocol(SERVER)
    p.send_close()
    with pytest.raises(InvalidState):
        p.send_text("x")
    with pytest.raises(InvalidState):
        p.send_close()
    with pytest.raises(InvalidState):
        p.send_ping()


@pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535])
def test_invalid_close_codes(code):
    p = run(SERVER, [from_client(8, close_payload(code))])
    assert_failed(p, 1002)
    assert str(p.failure) == f"invalid close code {code}"


@pytest.mark.parametrize("code", [1000, 1001, 1002, 1003, 1007, 1011, 1014, 3000, 4999])
def test_valid_close_codes_echoed(code):
    p = run(SERVER, [from_client(8, close_payload(code))])
    assert p.data_to_send() == [b"\x88\x02" + struct.pack("!H", code)]


def test_close_payload_of_one_byte():
    p = run(SERVER, [from_client(8, b"\x03")])
    assert_failed(p, 1002)
    assert str(p.failure) == "close frame too short"


def test_close_reason_invalid_utf8():
    p = run(SERVER, [from_client(8, close_payload(1000, b"\xff"))])
    assert_failed(p, 1007)


def test_close_reason_too_long():
    p = Protocol(SERVER)
    with pytest.raises(ValueError, match="close reason too long"):
        p.send_close(1000, "x" * 124)


def test_eof_without_close():
    p = Protocol(SERVER)
    p.receive_eof()
    assert p.state is State.CLOSED
    assert p.close_rcvd is None
    p.receive_eof()
    assert p.state is State.CLOSED


def test_fail_once():
    p = Protocol(SERVER)
    p.fail(1011, "boom")
    p.fail(1002, "again")
    assert p.data_to_send() == [b"\x88\x06\x03\xf3boom"]
    p.receive_data(from_client(1, b"ignored"))
    assert p.events_received() == []


# Section 8.1: UTF-8


def test_invalid_utf8_single_frame():
    p = run(SERVER, [from_client(1, b"\xce\xba\xe1\xbd\xb9\xcf\x83\xed\xa0\x80")])
    assert_failed(p, 1007)
    assert str(p.failure) == "invalid UTF-8 in text message"


def test_invalid_utf8_fails_fast_inside_a_frame():
    data = from_client(1, b"ok" + b"\xf4\x90\x80\x80" + b"x" * 1000)
    p = Protocol(SERVER)
    p.receive_data(data[:12])  # header (6 bytes) + "ok" + 4 invalid bytes
    assert_failed(p, 1007)


def test_invalid_utf8_fails_fast_inside_a_continuation_frame():
    first = from_client(1, b"ab", fin=False)
    second = from_client(0, b"\xc0\xaf" + b"x" * 500)
    p = Protocol(SERVER)
    p.receive_data(first + second[:10])
    assert_failed(p, 1007)


def test_valid_utf8_split_inside_partial_frame():
    data = from_client(1, "€uro".encode() * 50)
    p = Protocol(SERVER)
    for i in range(0, len(data), 7):
        p.receive_data(data[i : i + 7])
    assert p.events_received() == ["€uro" * 50]
    assert p.failure is None


def test_invalid_utf8_at_end_of_fragmented_message():
    data = from_client(1, b"\xe2\x82", fin=False) + from_client(0, b"")
    p = run(SERVER, [data])
    assert_failed(p, 1007)


# Limits


def test_frame_too_big_fails_before_payload():
    p = Protocol(SERVER, limits=Limits(max_frame_size=100, max_message_size=1000))
    p.receive_data(from_client(2, b"x" * 101)[:8])
    assert_failed(p, 1009)
    assert str(p.failure) == "frame with 101 bytes exceeds limit of 100"


def test_message_too_big_across_fragments():
    p = Protocol(SERVER, limits=Limits(max_frame_size=100, max_message_size=150))
    p.receive_data(from_client(2, b"x" * 100, fin=False))
    p.receive_data(from_client(0, b"x" * 51)[:8])
    assert_failed(p, 1009)
    assert str(p.failure) == "message with 151 bytes exceeds limit of 150"


def test_message_too_big_single_frame():
    p = Protocol(SERVER, limits=Limits(max_frame_size=None, max_message_size=10))
    p.receive_data(from_client(1, b"x" * 11))
    assert_failed(p, 1009)


def test_too_many_fragments():
    p = Protocol(SERVER, limits=Limits(max_fragments=2))
    p.receive_data(b"".join(from_client(0 if i else 2, b"x", fin=False) for i in range(3)))
    assert_failed(p, 1009)
    assert str(p.failure) == "message with more than 2 frames"


def test_limits_validation():
    with pytest.raises(ValueError, match="max_message_size must be positive, got 0"):
        Limits(max_message_size=0)
    assert Limits.unlimited().max_message_size is None


# Zero-copy buffer API


def test_get_buffer_returns_none_when_idle():
    p = Protocol(SERVER)
    assert p.get_buffer() is None


def test_get_buffer_preallocates_for_a_large_frame():
    payload = b"y" * 300_000
    data = from_client(2, payload)
    p = Protocol(SERVER, limits=Limits(max_frame_size=None, max_message_size=None))
    p.receive_data(data[:1000])
    pos = 1000
    while pos < len(data):
        view = p.get_buffer()
        assert view is not None
        assert len(view) >= len(data) - pos
        n = min(len(view), 65536, len(data) - pos)
        view[:n] = data[pos : pos + n]
        p.buffer_updated(n)
        pos += n
    assert p.events_received() == [payload]
    assert p.get_buffer() is None


def test_extension_count():
    with pytest.raises(ValueError, match="at most one extension is supported"):
        Protocol(SERVER, extensions=[object(), object()])  # type: ignore[list-item]


def test_close_expected():
    p = Protocol(SERVER)
    assert not p.close_expected()
    p.send_close()
    assert p.close_expected()


def test_failure_deferred_until_earlier_messages_are_consumed():
    # A valid message and a bad frame in one read: the application may still answer the
    # message before the connection fails (Autobahn 3.2, 4.1.3, 5.15 expect this order).
    p = run(SERVER, [from_client(1, b"first") + from_client(1, b"x", rsv=0x20)])
    assert p.events_received() == ["first"]
    assert p.failure_pending
    assert p.data_to_send() == []
    p.send_text("answer")
    p.apply_pending_failure()
    assert p.data_to_send() == [b"\x81\x06answer", b"\x88\x19\x03\xeareserved bits must be 0"]
    assert not p.failure_pending
    assert p.close_transport
    p.apply_pending_failure()  # idempotent
    assert p.data_to_send() == []


def test_send_prepared_only_where_a_shared_frame_fits():
    frame = b"\x81\x02hi"
    server = Protocol(SERVER)
    assert server.can_send_prepared()
    assert server.send_prepared(frame) is True
    assert server.data_to_send() == [frame]
    server.send_text("a", fin=False)
    assert server.send_prepared(frame) is False
    server.send_continuation(b"b", fin=True)
    assert server.send_prepared(frame) is True
    server.send_close()
    assert server.send_prepared(frame) is False
    client = Protocol(CLIENT)
    assert not client.can_send_prepared()
    assert client.send_prepared(frame) is False
    assert client.data_to_send() == []


def read_like_a_transport(p, data, size, fill=False):
    """Deliver ``data`` in reads of ``size`` bytes through get_buffer or receive_data.

    With ``fill``, a read into a buffer the protocol offers fills all of it (the kernel
    with everything queued), whatever ``size`` is. Returns how many reads it took.
    """
    view = memoryview(data)
    reads = 0
    while view:
        reads += 1
        buffer = p.get_buffer(len(view))
        if buffer is None:
            p.receive_data(view[:size])
            view = view[size:]
            continue
        n = min(len(buffer), len(view)) if fill else min(len(buffer), len(view), size)
        buffer[:n] = view[:n]
        p.buffer_updated(n)
        view = view[n:]
    return reads


@pytest.mark.parametrize("size", [65536, 100_000, 262_144])
def test_large_frames_in_reused_buffers_keep_their_payloads(size):
    # Buffers for large frames are reused once their frame is parsed: the payloads
    # handed out must not share memory with them.
    p = Protocol(SERVER)
    first, second, third = (bytes([n]) * 700_000 for n in (1, 2, 3))
    stream = b"".join(from_client(Opcode.BINARY, m) for m in (first, second, third))
    read_like_a_transport(p, stream, size)
    received = p.events_received()
    assert received == [first, second, third]
    read_like_a_transport(p, from_client(Opcode.BINARY, second), size)
    assert p.events_received() == [second]
    assert received == [first, second, third]
    assert p.get_buffer(-1) is None  # idle: no buffer held


def test_a_stream_of_large_text_messages_takes_one_read_per_message():
    # The read that completes one large frame brings the start of the next, so after the
    # first message each message costs one read, not two.
    messages = [chr(0x41 + n) * 500_000 for n in range(8)]
    stream = b"".join(from_client(Opcode.TEXT, m.encode()) for m in messages)
    p = Protocol(SERVER, limits=Limits(max_frame_size=None, max_message_size=None))
    reads = read_like_a_transport(p, stream, 262_144, fill=True)
    assert p.events_received() == messages
    assert reads <= len(messages) + 1


def test_a_large_binary_message_is_read_to_its_end_in_place():
    # After the read that brings its header, the rest of a large binary payload is read
    # into the message itself, and the read that ends it stops at its last byte.
    messages = [bytes([n]) * 500_000 for n in range(8)]
    stream = b"".join(from_client(Opcode.BINARY, m) for m in messages)
    p = Protocol(SERVER, limits=Limits(max_frame_size=None, max_message_size=None))
    sizes = []
    view = memoryview(stream)
    while view:
        buffer = p.get_buffer(-1)
        if buffer is None:
            sizes.append(("shared", min(len(view), 262_144)))
            p.receive_data(view[:262_144])
            view = view[262_144:]
            continue
        sizes.append(("payload", len(buffer)))
        buffer[:] = view[: len(buffer)]
        view = view[len(buffer) :]
        p.buffer_updated(len(buffer))
    assert p.events_received() == messages
    # Each message: one read of 256 KiB with its header, one of the rest of its payload.
    assert sizes == [("shared", 262_144), ("payload", 500_014 - 262_144)] * 8
    assert p.get_buffer(-1) is None


@pytest.mark.parametrize("side", [SERVER, CLIENT])
@pytest.mark.parametrize("chunk", [1, 7, 4096, 70_000, 1 << 20])
def test_a_large_binary_message_arrives_whole_in_any_pieces(side, chunk):
    big = bytes(range(256)) * 400  # 102,400 bytes: read in place once it is incomplete
    frames = from_client if side is SERVER else from_server
    stream = (
        frames(Opcode.BINARY, big)
        + frames(Opcode.PING, b"p")
        + frames(Opcode.TEXT, b"after")
        + frames(Opcode.BINARY, big[::-1])
    )
    p = Protocol(side)
    for start in range(0, len(stream), chunk):
        p.receive_data(stream[start : start + chunk])
    events = p.events_received()
    assert events == [big, Frame(Opcode.PING, b"p"), "after", big[::-1]]
    # Mixed with reads through get_buffer, including one that lands mid-payload.
    q = Protocol(side)
    read_like_a_transport(q, stream, chunk)
    assert q.events_received() == events


def test_a_bad_frame_after_a_message_read_in_place_fails_after_it():
    big = b"z" * 80_000
    p = Protocol(SERVER)
    stream = from_client(Opcode.BINARY, big) + frame(Opcode.BINARY, b"x", mask=None)
    p.receive_data(stream[:1000])
    p.receive_data(stream[1000:])
    assert p.events_received() == [big]
    assert p.failure_pending
    p.apply_pending_failure()
    expected = from_server(Opcode.CLOSE, close_payload(1002, b"incorrect masking"))
    assert p.data_to_send() == [expected]


def test_eof_or_failure_in_the_middle_of_a_message_read_in_place_drops_it():
    big = b"q" * 200_000
    stream = from_client(Opcode.BINARY, big)
    for end in ("eof", "fail"):
        p = Protocol(SERVER)
        p.receive_data(stream[:50_000])
        assert p.get_buffer(-1) is not None
        if end == "eof":
            p.receive_eof()
            assert p.state is State.CLOSED
        else:
            p.fail(1001)
        assert p.get_buffer(-1) is None
        p.receive_data(stream[50_000:])
        assert p.events_received() == []


def test_a_message_too_big_is_refused_before_anything_is_read_in_place():
    p = Protocol(SERVER, limits=Limits(max_message_size=100_000))
    p.receive_data(from_client(Opcode.BINARY, b"a" * 100_001)[:20_000])
    assert p.get_buffer(-1) is None
    assert p.close_transport
    assert p.events_received() == []
    (close,) = p.data_to_send()
    assert close[0] == 0x88
    assert close[2:4] == b"\x03\xf1"  # 1009


def test_open_moves_a_connecting_protocol_to_open_with_its_extensions():
    from tether.protocol.extensions.permessage_deflate import PerMessageDeflate

    plain = Protocol(SERVER, state=State.CONNECTING)
    with pytest.raises(InvalidState, match="CONNECTING"):
        plain.send_binary(b"x")
    plain.open()
    assert plain.state is State.OPEN
    plain.send_binary(b"x")
    assert plain.data_to_send() == [b"\x82\x01x"]
    with pytest.raises(InvalidState, match="cannot open in state OPEN"):
        plain.open()

    compressed = Protocol(SERVER, state=State.CONNECTING)
    deflate = PerMessageDeflate(False, False, 15, 15)
    compressed.open([deflate])
    assert compressed.extensions == [deflate]
    compressed.send_binary(b"aaaaaaaaaa")
    (frame,) = compressed.data_to_send()
    assert frame[0] == 0xC2  # FIN, RSV1 (compressed), binary
    too_many = Protocol(CLIENT, state=State.CONNECTING)
    with pytest.raises(ValueError, match="at most one extension"):
        too_many.open([deflate, deflate])


def _stream_of_every_kind():
    """Whole frames, a fragmented text message, a large binary and a large text frame."""
    return b"".join(
        [
            from_client(Opcode.BINARY, b"a" * 10),
            from_client(Opcode.TEXT, "é".encode() * 100),
            from_client(Opcode.TEXT, b"frag", fin=False),
            from_client(Opcode.PING, b"p"),
            from_client(Opcode.CONT, b"ment", fin=False),
            from_client(Opcode.CONT, b"ed", fin=True),
            from_client(Opcode.BINARY, bytes(range(256)) * 300),
            from_client(Opcode.TEXT, b"t" * 70_000),
            from_client(Opcode.BINARY, b"end"),
        ]
    )


@pytest.mark.parametrize("size", [1, 3, 100, 4096, 65_536, 1 << 20])
@pytest.mark.parametrize("through_buffer", [False, True])
def test_partial_frame_tells_whether_get_buffer_offers_a_buffer(size, through_buffer):
    # A runtime reads into its own buffer while partial_frame is false, without asking.
    stream = memoryview(_stream_of_every_kind())
    p = Protocol(SERVER)
    assert p.partial_frame is False
    while stream:
        assert p.partial_frame == (p.get_buffer(-1) is not None)
        if through_buffer and p.partial_frame:
            buffer = p.get_buffer(size)
            assert buffer is not None
            n = min(len(buffer), len(stream), size)
            buffer[:n] = stream[:n]
            p.buffer_updated(n)
        else:
            n = min(size, len(stream))
            p.receive_data(stream[:n])
        stream = stream[n:]
    assert p.partial_frame is False
    assert p.events_received() == [
        b"a" * 10,
        "é" * 100,
        Frame(Opcode.PING, b"p"),
        "fragmented",
        bytes(range(256)) * 300,
        "t" * 70_000,
        b"end",
    ]


@pytest.mark.parametrize("end", ["eof", "fail"])
def test_partial_frame_is_cleared_when_input_is_dropped(end):
    for cut in (5, 100, 40_000):  # a small frame's start, a large text, a large binary
        p = Protocol(SERVER)
        p.receive_data(
            _stream_of_every_kind()[:cut]
            if cut != 40_000
            else from_client(Opcode.BINARY, b"x" * 100_000)[:cut]
        )
        assert p.partial_frame
        if end == "eof":
            p.receive_eof()
        else:
            p.fail(1011)
        assert p.partial_frame is False
        assert p.get_buffer(-1) is None


def test_frame_and_message_limits_set_after_construction_apply():
    p = Protocol(SERVER)
    p.max_message_size = 4
    assert p.max_message_size == 4
    p.receive_data(from_client(Opcode.BINARY, b"12345"))
    assert_failed(p, 1009)
    q = Protocol(SERVER)
    q.max_frame_size = 2
    assert q.max_frame_size == 2
    q.receive_data(from_client(Opcode.TEXT, b"abc"))
    assert_failed(q, 1009)
    r = Protocol(SERVER, limits=Limits(max_message_size=2, max_frame_size=2))
    r.max_message_size = r.max_frame_size = None
    r.receive_data(from_client(Opcode.BINARY, b"x" * 1000))
    assert r.events_received() == [b"x" * 1000]


def expected_server_frames(first, payload):
    """A server frame built by hand: header and payload joined up to 2048 bytes."""
    n = len(payload)
    if n < 126:
        header = bytes([first, n])
    elif n < 65536:
        header = bytes([first, 126]) + struct.pack("!H", n)
    else:
        header = bytes([first, 127]) + struct.pack("!Q", n)
    return [header + payload] if n <= 2048 else [header, payload]


@pytest.mark.parametrize("size", [0, 1, 125, 126, 2048, 2049, 65535, 65536, 300_000])
def test_server_frames_of_every_header_size(size):
    payload = bytes(range(256)) * (size // 256 + 1)
    payload = payload[:size]
    p = Protocol(SERVER)
    p.send_binary(payload)
    p.send_binary(bytearray(payload), fin=True)
    p.send_binary(data=memoryview(payload))
    p.send_text(payload.decode("latin-1"))  # non-ASCII text above 127
    p.send_text("a" * size)
    p.send_text(b"b" * size)
    out = p.data_to_send()
    assert out == (
        expected_server_frames(0x82, payload) * 3
        + expected_server_frames(0x81, payload.decode("latin-1").encode())
        + expected_server_frames(0x81, b"a" * size)
        + expected_server_frames(0x81, b"b" * size)
    )
    assert p.data_to_send() == []
    assert not p.has_data_to_send()


def test_a_large_bytes_payload_is_queued_without_a_copy():
    payload = b"z" * 10_000
    p = Protocol(SERVER)
    p.send_binary(payload)
    header, queued = p.data_to_send()
    assert header == b"\x82\x7e\x27\x10"
    assert queued is payload


def test_send_arguments_are_checked():
    p = Protocol(SERVER)
    with pytest.raises(TypeError):
        p.send_binary()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        p.send_text("a", True, True)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        p.send_text("a", nope=True)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        p.send_binary(12)  # type: ignore[arg-type]
    assert p.data_to_send() == []


def test_receive_data_takes_any_bytes_like_and_ignores_empty_reads():
    frames = from_client(Opcode.BINARY, b"one") + from_client(Opcode.TEXT, b"two")
    p = Protocol(SERVER)
    p.receive_data(b"")
    p.receive_data(memoryview(b""))
    p.receive_data(bytearray(frames[:3]))
    p.receive_data(memoryview(frames)[3:])
    assert p.events_received() == [b"one", "two"]
    assert p.events_received() == []
    with pytest.raises(TypeError):
        p.receive_data("text")  # type: ignore[arg-type]
