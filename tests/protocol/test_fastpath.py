"""The C fast path and its pure-Python fallback parse identically."""

import random
import struct

import pytest
from hypothesis import given, settings, strategies as st

from tether.protocol import fastpath
from tether.protocol._speedups import parse_messages as c_parse_messages


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
