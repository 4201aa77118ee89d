"""Arbitrary bytes never crash the parsers: they give events or a documented failure."""

import struct

from hypothesis import given, settings, strategies as st

from tether.exceptions import InvalidMessage, SecurityError
from tether.protocol.connection import CLIENT, SERVER, Protocol
from tether.protocol.extensions.permessage_deflate import PerMessageDeflate
from tether.protocol.http11 import RequestParser, ResponseParser
from tether.protocol.limits import Limits


SENDABLE = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014}


def chunked(data, cuts):
    points = sorted({c % (len(data) + 1) for c in cuts})
    start = 0
    for point in [*points, len(data)]:
        yield data[start:point]
        start = point


def frames_strategy():
    # Mostly well-formed frame headers with random flags, so the parser gets deep.
    frame = st.builds(
        lambda first, masked, payload, mask: (
            bytes([first, (0x80 if masked else 0) | min(len(payload), 125)])
            + (mask if masked else b"")
            + payload[:125]
        ),
        st.integers(0, 255),
        st.booleans(),
        st.binary(max_size=40),
        st.binary(min_size=4, max_size=4),
    )
    return st.lists(st.one_of(frame, st.binary(max_size=20)), max_size=12).map(b"".join)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from([SERVER, CLIENT]),
    st.booleans(),
    st.one_of(frames_strategy(), st.binary(max_size=400)),
    st.lists(st.integers(0, 10_000), max_size=5),
)
def test_protocol_never_raises(side, deflate, data, cuts):
    extensions = [PerMessageDeflate(False, False, 15, 15)] if deflate else []
    limits = Limits(max_message_size=200, max_frame_size=150)
    p = Protocol(side, limits=limits, extensions=extensions)
    for chunk in chunked(data, cuts):
        p.receive_data(chunk)
    p.apply_pending_failure()
    events = p.events_received()
    assert all(isinstance(e, (str, bytes)) or hasattr(e, "opcode") for e in events)
    if p.failure is not None:
        assert p.close_transport
        out = b"".join(p.data_to_send())
        if out:
            # The last frame written is the close frame with a code that may be sent.
            assert out.rfind(b"\x88") >= 0
        assert p.failure.code in SENDABLE
    p.receive_eof()


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600), st.lists(st.integers(0, 10_000), max_size=4))
def test_request_parser_gives_request_or_documented_error(data, cuts):
    parser = RequestParser(Limits(max_headers=8, max_header_line=100, max_request_line=100))
    status = None
    try:
        for chunk in chunked(data, cuts):
            parser.feed(chunk)
        parser.feed_eof()
    except (InvalidMessage, SecurityError) as exc:
        status = exc.status
    assert status is None or 400 <= status < 600


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=600))
def test_response_parser_gives_response_or_documented_error(data):
    parser = ResponseParser(Limits(max_headers=8, max_header_line=100, max_handshake_body=50))
    try:
        parser.feed(data)
        parser.feed_eof()
    except (InvalidMessage, SecurityError):
        pass


def test_close_payloads_exhaustively_for_two_byte_codes():
    # Every possible close code: valid ones are echoed, the rest fail with 1002.
    for code in range(0, 65536, 7):
        p = Protocol(CLIENT)
        p.receive_data(b"\x88\x02" + struct.pack("!H", code))
        if p.failure is None:
            assert p.close_rcvd is not None
            assert p.close_rcvd.code == code
        else:
            assert p.failure.code == 1002
