"""The C fast path and its pure-Python fallback parse identically."""

import itertools
import random
import struct

import pytest
from hypothesis import given, settings, strategies as st

from tether.protocol import fastpath
from tether.protocol._speedups import Payload as CPayload, parse_messages as c_parse_messages


def frame(first, payload, mask):
    n = len(payload)
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


def both(data, pos, end, masked, limit):
    c_events, py_events = [], []
    c_pos = c_parse_messages(data, pos, end, masked, limit, c_events)
    py_pos = fastpath.py_parse_messages(data, pos, end, masked, limit, py_events)
    assert (c_pos, c_events) == (py_pos, py_events)
    return c_pos, c_events


def test_speedups_selected():
    assert fastpath.SPEEDUPS is True
    assert fastpath.parse_messages is c_parse_messages


@pytest.mark.parametrize("masked", [True, False])
def test_handles_text_and_binary(masked):
    mask = b"\x01\x02\x03\x04" if masked else None
    data = frame(0x81, "héllo".encode(), mask) + frame(0x82, b"\x00" * 300, mask)
    data += frame(0x82, b"y" * 70000, mask)
    pos, events = both(data, 0, len(data), masked, -1)
    assert pos == len(data)
    assert events == ["héllo", b"\x00" * 300, b"y" * 70000]


@pytest.mark.parametrize(
    ("first", "why"),
    [
        (0x01, "not final"),
        (0x02, "not final"),
        (0x80, "continuation"),
        (0x89, "ping"),
        (0x88, "close"),
        (0xC1, "rsv1"),
        (0xA2, "rsv2"),
        (0x92, "rsv3"),
        (0x83, "reserved opcode"),
    ],
)
def test_stops_at_frames_for_the_full_parser(first, why):
    mask = b"abcd"
    data = frame(0x82, b"ok", mask) + frame(first, b"x", mask) + frame(0x82, b"after", mask)
    pos, events = both(data, 0, len(data), True, -1)
    assert events == [b"ok"], why
    assert pos == len(frame(0x82, b"ok", mask))


def test_stops_on_wrong_mask_bit_limit_invalid_utf8_and_partial_frames():
    mask = b"abcd"
    ok = frame(0x82, b"ok", mask)
    assert both(ok + frame(0x82, b"x", None), 0, 100, True, -1) == (len(ok), [b"ok"])
    assert both(ok + frame(0x82, b"x" * 11, mask), 0, 100, True, 10) == (len(ok), [b"ok"])
    bad = frame(0x81, b"\xff", mask)
    assert both(ok + bad, 0, len(ok + bad), True, -1) == (len(ok), [b"ok"])
    for tail in (frame(0x81, b"tail", mask), frame(0x82, b"z" * 300, mask)):
        data = ok + tail
        for cut in range(len(ok) + 1, len(data)):
            assert both(data, 0, cut, True, -1) == (len(ok), [b"ok"])
    big = frame(0x82, b"z" * 70000, mask)
    data = ok + big
    for cut in (len(ok) + 1, len(ok) + 3, len(ok) + 9, len(ok) + 12, len(data) - 1):
        assert both(data, 0, cut, True, -1) == (len(ok), [b"ok"])


def test_starts_at_pos_and_respects_end():
    mask = b"wxyz"
    data = b"junk" + frame(0x81, b"a", mask) + frame(0x81, b"b", mask)
    first_end = 4 + len(frame(0x81, b"a", mask))
    assert both(data, 4, first_end, True, -1) == (first_end, ["a"])
    assert both(data, 4, 10**6, True, -1) == (len(data), ["a", "b"])


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([0x81, 0x82, 0x01, 0x89, 0xC1]),
            st.binary(max_size=300),
            st.booleans(),
        ),
        max_size=8,
    ),
    st.integers(min_value=-1, max_value=400),
    st.integers(min_value=0, max_value=2000),
)
def test_random_streams_agree(frames, limit, cut):
    rng = random.Random(len(frames))
    data = b"".join(
        frame(first, payload, rng.randbytes(4) if masked else None)
        for first, payload, masked in frames
    )
    for masked in (True, False):
        both(data, 0, min(cut, len(data)), masked, limit)
        both(bytearray(data), 0, len(data), masked, limit)
        both(memoryview(data), 0, len(data), masked, limit)


# Payload: a message filled in place, C and pure Python alike.


def xor(data, mask, offset=0):
    return bytes(b ^ mask[(offset + i) % 4] for i, b in enumerate(data))


@pytest.mark.parametrize("kind", [CPayload, fastpath.PyPayload])
def test_payload_fills_unmasks_and_takes(kind):
    mask = b"\x11\x22\x33\x44"
    wire = bytes(range(256)) * 40
    masked = xor(wire, mask)
    payload = kind(len(wire))
    assert payload.size == len(wire)
    # A piece written with the mask, a piece read in raw and unmasked in place (at odd
    # offsets, so the key position matters), and a piece without a mask.
    payload.fill(0, masked[:1001], mask)
    view = payload.view()
    view[1001:7003] = masked[1001:7003]
    view.release()
    payload.unmask(1001, 7003, mask)
    payload.fill(7003, wire[7003:])
    data = payload.take()
    assert type(data) is bytes
    assert data == wire


@pytest.mark.parametrize("kind", [CPayload, fastpath.PyPayload])
def test_payload_rejects_what_the_other_rejects(kind):
    payload = kind(10)
    for call in (
        lambda: payload.fill(8, b"abc"),
        lambda: payload.fill(-1, b"a"),
        lambda: payload.fill(0, b"a", b"abc"),
        lambda: payload.unmask(5, 11, b"abcd"),
        lambda: payload.unmask(6, 5, b"abcd"),
        lambda: payload.unmask(0, 1, b"ab"),
    ):
        with pytest.raises(ValueError):
            call()
    with pytest.raises(ValueError, match="non-negative"):
        kind(-1)
    payload.fill(0, b"0123456789")
    assert payload.take() == b"0123456789"
    with pytest.raises(ValueError, match="already taken"):
        payload.take()
    with pytest.raises(ValueError, match="already taken"):
        payload.fill(0, b"x")
    with pytest.raises(BufferError, match="already taken"):
        payload.view()
    assert kind(0).take() == b""


@given(
    size=st.integers(0, 3000),
    cuts=st.lists(st.integers(0, 3000), max_size=6),
    mask=st.binary(min_size=4, max_size=4),
    raw=st.booleans(),
)
@settings(max_examples=60, deadline=None)
def test_payloads_agree_however_the_bytes_arrive(size, cuts, mask, raw):
    wire = random.Random(size).randbytes(size)
    masked = xor(wire, mask)
    points = sorted({0, size, *(c for c in cuts if c < size)})
    results = []
    for kind in (CPayload, fastpath.PyPayload):
        payload = kind(size)
        for start, end in itertools.pairwise(points):
            if raw:
                view = payload.view()
                view[start:end] = masked[start:end]
                view.release()
                payload.unmask(start, end, mask)
            else:
                payload.fill(start, masked[start:end], mask)
        results.append(payload.take())
    assert results[0] == results[1] == wire


def test_a_large_binary_message_is_read_into_the_bytes_it_is_delivered_as():
    import ctypes
    import sys

    from tether.protocol.connection import SERVER, Protocol

    message = random.Random(1).randbytes(300_000)
    stream = frame(0x82, message, b"\x0a\x0b\x0c\x0d")
    p = Protocol(SERVER)
    p.receive_data(stream[:100_000])
    assert p.events_received() == []
    view = p.get_buffer(-1)
    assert view is not None
    assert len(view) == len(stream) - 100_000
    view[:] = stream[100_000:]
    p.buffer_updated(len(view))
    (data,) = p.events_received()
    assert data == message
    # The socket's buffer was the message itself: no copy was made after the read.
    written_at = ctypes.addressof(ctypes.c_char.from_buffer(view))
    bytes_data_offset = sys.getsizeof(b"") - 1
    assert written_at == id(data) + bytes_data_offset + 100_000 - 14
