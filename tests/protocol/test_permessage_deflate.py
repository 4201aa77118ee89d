import itertools
import random
import tracemalloc
import zlib

import pytest
from hypothesis import given, settings, strategies as st

from tether.exceptions import (
    DuplicateParameter,
    InvalidParameterName,
    InvalidParameterValue,
    NegotiationError,
    PayloadTooBig,
    ProtocolError,
)
from tether.protocol.extensions.base import Extension
from tether.protocol.extensions.permessage_deflate import (
    DEFAULT_COMPRESS_SETTINGS,
    DEFAULT_MAX_WINDOW_BITS,
    ClientPerMessageDeflateFactory,
    PerMessageDeflate,
    ServerPerMessageDeflateFactory,
    enable_client_permessage_deflate,
    enable_server_permessage_deflate,
)
from tether.protocol.frames import Frame, Opcode


TEXT, BINARY, CONT = Opcode.TEXT, Opcode.BINARY, Opcode.CONT
HELLO = bytes.fromhex("f248cdc9c90700")  # RFC 7692 section 7.2.3.1


def make(**kwargs):
    params = {
        "remote_no_context_takeover": False,
        "local_no_context_takeover": False,
        "remote_max_window_bits": 15,
        "local_max_window_bits": 15,
    }
    params.update(kwargs)
    return PerMessageDeflate(**params)


def compressed(opcode, data, fin=True):
    return Frame(opcode, data, fin=fin, rsv1=True)


def decode_message(ext, frames, max_size=None):
    return b"".join(ext.decode(frame, max_size=max_size).data for frame in frames)


# RFC 7692 section 7.2.3: examples


def test_7_2_3_1_compress_hello():
    frame = make().encode(Frame(TEXT, b"Hello"))
    assert frame == Frame(TEXT, HELLO, fin=True, rsv1=True)


def test_7_2_3_1_decompress_hello():
    frame = make().decode(compressed(TEXT, HELLO))
    assert frame == Frame(TEXT, b"Hello", fin=True, rsv1=False)


def test_7_2_3_1_fragmented_decompress():
    ext = make()
    first = ext.decode(compressed(TEXT, HELLO[:3], fin=False))
    last = ext.decode(Frame(CONT, HELLO[3:]))
    assert first == Frame(TEXT, first.data, fin=False, rsv1=False)
    assert last.opcode == CONT
    assert last.fin
    assert first.data + last.data == b"Hello"


def test_fragmented_message_over_several_frames():
    data = b"".join(str(i).encode() for i in range(3000))
    sender, receiver = make(), make()
    chunks = [data[i : i + 1000] for i in range(0, len(data), 1000)]
    frames = [sender.encode(Frame(BINARY, chunks[0], fin=False))]
    frames += [sender.encode(Frame(CONT, chunk, fin=False)) for chunk in chunks[1:-1]]
    frames.append(sender.encode(Frame(CONT, chunks[-1], fin=True)))
    assert [f.rsv1 for f in frames] == [True] + [False] * (len(frames) - 1)
    assert [f.fin for f in frames] == [False] * (len(frames) - 1) + [True]
    assert [f.opcode for f in frames] == [BINARY] + [CONT] * (len(frames) - 1)
    # Every non-final fragment ends with the sync flush marker, the last one doesn't.
    assert all(f.data.endswith(b"\x00\x00\xff\xff") for f in frames[:-1])
    assert not frames[-1].data.endswith(b"\x00\x00\xff\xff")
    assert sum(len(f.data) for f in frames) < len(data)
    assert decode_message(receiver, frames) == data


def test_7_2_3_2_context_takeover_compress():
    ext = make()
    assert ext.encode(Frame(TEXT, b"Hello")).data == HELLO
    assert ext.encode(Frame(TEXT, b"Hello")).data == bytes.fromhex("f200110000")


def test_7_2_3_2_context_takeover_decompress():
    ext = make()
    assert ext.decode(compressed(TEXT, HELLO)).data == b"Hello"
    assert ext.decode(compressed(TEXT, bytes.fromhex("f200110000"))).data == b"Hello"


def test_local_no_context_takeover_compresses_each_message_alone():
    ext = make(local_no_context_takeover=True)
    assert ext.encode(Frame(TEXT, b"Hello")).data == HELLO
    assert ext.encode(Frame(TEXT, b"Hello")).data == HELLO


def test_local_no_context_takeover_fragmented():
    ext = make(local_no_context_takeover=True)
    for _ in range(2):
        first = ext.encode(Frame(TEXT, b"Hel", fin=False))
        last = ext.encode(Frame(CONT, b"lo"))
        assert decode_message(make(), [first, last]) == b"Hello"


def test_remote_no_context_takeover_forgets_previous_message():
    # With an empty window, the back-reference of the second message is invalid.
    ext = make(remote_no_context_takeover=True)
    assert ext.decode(compressed(TEXT, HELLO)).data == b"Hello"
    with pytest.raises(ProtocolError) as exc_info:
        ext.decode(compressed(TEXT, bytes.fromhex("f200110000")))
    assert exc_info.value.code == 1007


def test_remote_no_context_takeover_decodes_independent_messages():
    ext = make(remote_no_context_takeover=True)
    for _ in range(3):
        assert ext.decode(compressed(TEXT, HELLO)).data == b"Hello"


def test_7_2_3_3_no_compression_block():
    data = bytes.fromhex("000500faff48656c6c6f00")
    assert make().decode(compressed(TEXT, data)).data == b"Hello"


def test_7_2_3_4_bfinal_block():
    ext = make()
    assert ext.decode(compressed(TEXT, bytes.fromhex("f348cdc9c9070000"))).data == b"Hello"
    # The decompressor goes on after the final block.
    assert ext.decode(compressed(TEXT, HELLO)).data == b"Hello"


def test_7_2_3_4_bfinal_block_fragmented():
    # The first fragment ends exactly with the final block.
    ext = make()
    first = ext.decode(compressed(TEXT, bytes.fromhex("f348cdc9c90700"), fin=False))
    last = ext.decode(Frame(CONT, b"\x00"))
    assert first.data + last.data == b"Hello"
    assert ext.decode(compressed(TEXT, HELLO)).data == b"Hello"


# "Hello" in a final block, then "World" in a stored block, then the empty block header.
HELLO_BFINAL_WORLD = bytes.fromhex("f348cdc9c90700") + b"\x00\x05\x00\xfa\xffWorld\x00"


def test_bfinal_block_followed_by_data():
    assert make().decode(compressed(TEXT, HELLO_BFINAL_WORLD)).data == b"HelloWorld"


def test_bfinal_block_followed_by_data_within_max_size():
    frame = make().decode(compressed(TEXT, HELLO_BFINAL_WORLD), max_size=10)
    assert frame.data == b"HelloWorld"


def test_bfinal_block_followed_by_data_over_max_size():
    with pytest.raises(PayloadTooBig) as exc_info:
        make().decode(compressed(TEXT, HELLO_BFINAL_WORLD), max_size=9)
    assert str(exc_info.value) == "message too big: over 9 bytes after decompression"
    assert exc_info.value.code == 1009


def test_7_2_3_5_two_blocks():
    data = bytes.fromhex("f248050000 00ffff cac9c90700".replace(" ", ""))
    assert make().decode(compressed(TEXT, data)).data == b"Hello"


def test_7_2_3_6_empty_final_fragment():
    ext = make()
    first = ext.encode(Frame(TEXT, b"Hello", fin=False))
    last = ext.encode(Frame(CONT, b""))
    assert first.data == HELLO + b"\x00\x00\xff\xff"
    assert last == Frame(CONT, b"\x00", fin=True, rsv1=False)
    assert decode_message(make(), [first, last]) == b"Hello"


def test_empty_final_fragment_when_zlib_flushes_nothing():
    # Some zlib versions return nothing for a sync flush right after another one.
    class SilentEncoder:
        def compress(self, data):
            return b""

        def flush(self, mode):
            return b""

    ext = make()
    ext.encode(Frame(TEXT, b"Hello", fin=False))
    ext._encoder = SilentEncoder()
    assert ext.encode(Frame(CONT, b"")).data == b"\x00"


def test_empty_message():
    sender, receiver = make(), make()
    frame = sender.encode(Frame(BINARY, b""))
    assert frame == Frame(BINARY, b"\x00", fin=True, rsv1=True)
    assert receiver.decode(frame).data == b""
    # Context takeover still works after it.
    assert receiver.decode(sender.encode(Frame(TEXT, b"Hello"))).data == b"Hello"


def test_empty_message_with_zero_max_size():
    assert make().decode(compressed(TEXT, b"\x00"), max_size=0).data == b""


def test_empty_message_with_zero_max_size_rejects_one_byte():
    with pytest.raises(PayloadTooBig):
        make().decode(compressed(TEXT, make().encode(Frame(TEXT, b"a")).data), max_size=0)


# Frames that don't go through zlib


def test_decode_passes_uncompressed_message_through():
    ext = make()
    first = Frame(TEXT, b"Hel", fin=False)
    last = Frame(CONT, b"lo")
    assert ext.decode(first) is first
    assert ext.decode(last) is last


def test_decode_passes_control_frames_through():
    ext = make()
    ext.decode(compressed(TEXT, HELLO[:3], fin=False))
    ping = Frame(Opcode.PING, b"\xf2\x48")
    assert ext.decode(ping) is ping
    assert ext.decode(Frame(CONT, HELLO[3:])).data == b"llo"


def test_encode_passes_control_frames_through():
    ext = make()
    first = ext.encode(Frame(TEXT, b"Hel", fin=False))
    close = Frame(Opcode.CLOSE, b"\x03\xe8")
    assert ext.encode(close) is close
    last = ext.encode(Frame(CONT, b"lo"))
    assert last.rsv1 is False
    assert decode_message(make(), [first, last]) == b"Hello"


def test_encode_passes_continuation_of_uncompressed_message_through():
    ext = make()
    frame = Frame(CONT, b"lo")
    assert ext.encode(frame) is frame


def test_decode_and_encode_do_not_mutate_their_argument():
    ext = make()
    outgoing = Frame(TEXT, b"Hello")
    ext.encode(outgoing)
    assert outgoing == Frame(TEXT, b"Hello")
    incoming = compressed(TEXT, HELLO)
    ext.decode(incoming)
    assert incoming == compressed(TEXT, HELLO)


def test_decode_keeps_rsv2_and_rsv3():
    frame = Frame(TEXT, HELLO, rsv1=True, rsv2=True, rsv3=True)
    assert make().decode(frame) == Frame(TEXT, b"Hello", rsv2=True, rsv3=True)


def test_rsv1_on_continuation_frame():
    ext = make()
    ext.decode(compressed(TEXT, HELLO[:3], fin=False))
    with pytest.raises(ProtocolError) as exc_info:
        ext.decode(Frame(CONT, HELLO[3:], rsv1=True))
    assert str(exc_info.value) == "rsv1 set on a continuation frame"
    assert exc_info.value.code == 1002


# Bad and hostile input


def test_corrupted_data():
    with pytest.raises(ProtocolError) as exc_info:
        make().decode(compressed(TEXT, b"\xff\xff\xff\xff"))
    assert str(exc_info.value) == "invalid compressed data"
    assert exc_info.value.code == 1007
    assert isinstance(exc_info.value.__cause__, zlib.error)


def test_corrupted_data_in_continuation_frame():
    ext = make()
    ext.decode(make().encode(Frame(TEXT, b"Hel", fin=False)))
    # A stored block whose length and its complement don't match.
    with pytest.raises(ProtocolError) as exc_info:
        ext.decode(Frame(CONT, b"\x00\x05\x00\x00\x00World"))
    assert str(exc_info.value) == "invalid compressed data"
    assert exc_info.value.code == 1007


def test_message_of_exactly_max_size():
    data = b"a" * 1000
    frame = make().encode(Frame(BINARY, data))
    assert make().decode(frame, max_size=1000).data == data


def test_message_one_byte_over_max_size():
    # 1000 bytes deflate to a handful, all consumed: the limit holds on output too.
    frame = make().encode(Frame(BINARY, b"a" * 1000))
    with pytest.raises(PayloadTooBig) as exc_info:
        make().decode(frame, max_size=999)
    assert str(exc_info.value) == "message too big: over 999 bytes after decompression"


def test_max_size_applies_to_each_fragment():
    sender, receiver = make(), make()
    first = sender.encode(Frame(BINARY, b"a" * 600, fin=False))
    last = sender.encode(Frame(CONT, b"b" * 600))
    assert len(receiver.decode(first, max_size=1000).data) == 600
    with pytest.raises(PayloadTooBig):
        receiver.decode(last, max_size=400)


BOMB_SIZE = 10 * 1024 * 1024
MAX_SIZE = 1024 * 1024


@pytest.fixture(scope="module")
def bomb():
    encoder = zlib.compressobj(wbits=-15)
    data = encoder.compress(bytes(BOMB_SIZE)) + encoder.flush(zlib.Z_SYNC_FLUSH)
    assert data.endswith(b"\x00\x00\xff\xff")
    return data[:-4]


def test_decompression_bomb(bomb):
    assert len(bomb) < 20_000
    with pytest.raises(PayloadTooBig) as exc_info:
        make().decode(compressed(BINARY, bomb), max_size=MAX_SIZE)
    assert str(exc_info.value) == "message too big: over 1048576 bytes after decompression"


def test_decompression_bomb_is_not_inflated(bomb):
    ext = make()
    ext.decode(compressed(BINARY, bomb[:10], fin=False))  # create the decompressor
    decoder = ext._decoder
    tracemalloc.start()
    try:
        with pytest.raises(PayloadTooBig):
            ext.decode(Frame(CONT, bomb[10:]), max_size=MAX_SIZE)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Inflation stopped one byte past the limit and left the rest of the input alone.
    assert len(decoder.unconsumed_tail) > 0
    # The output buffer is copied once when inflation stops: about twice the limit,
    # far below the 10 MiB the bomb inflates to.
    assert peak < 3 * MAX_SIZE


def test_decompression_bomb_without_limit_is_inflated(bomb):
    # The counterpart of the test above: without max_size, the bomb goes off.
    assert len(make().decode(compressed(BINARY, bomb)).data) == BOMB_SIZE


# Window sizes


def test_local_window_bits_8_is_decodable_with_a_256_byte_window():
    # Repeats at distance 300 and 200, across messages: a 1024-byte zlib window would
    # refer 300 bytes back, which a 256-byte window can't follow.
    rng = random.Random(8)
    block = rng.randbytes(300)
    messages = [block, block, block[:200], block[:200], block + block]
    ext = make(local_max_window_bits=8)
    decoder = zlib.decompressobj(wbits=-8)
    for message in messages:
        frame = ext.encode(Frame(BINARY, message))
        assert decoder.decompress(frame.data + b"\x00\x00\xff\xff") == message


def test_a_larger_window_breaks_a_256_byte_decoder():
    # Shows the test above can fail: zlib with 10 bits refers past 256 bytes.
    block = random.Random(8).randbytes(300)
    encoder = zlib.compressobj(wbits=-10)
    decoder = zlib.decompressobj(wbits=-8)
    decoder.decompress(encoder.compress(block) + encoder.flush(zlib.Z_SYNC_FLUSH))
    with pytest.raises(zlib.error):
        decoder.decompress(encoder.compress(block) + encoder.flush(zlib.Z_SYNC_FLUSH))


@pytest.mark.parametrize("bits", range(8, 16))
def test_negotiated_window_bits_round_trip(bits):
    client_factory = ClientPerMessageDeflateFactory(
        server_max_window_bits=bits, client_max_window_bits=True
    )
    server_factory = ServerPerMessageDeflateFactory(client_max_window_bits=bits)
    response, server = server_factory.process_request_params(
        client_factory.get_request_params(), []
    )
    assert response == [
        ("server_max_window_bits", str(bits)),
        ("client_max_window_bits", str(bits)),
    ]
    client = client_factory.process_response_params(response, [])
    assert (client.local_max_window_bits, client.remote_max_window_bits) == (bits, bits)
    assert (server.local_max_window_bits, server.remote_max_window_bits) == (bits, bits)
    rng = random.Random(bits)
    words = [rng.randbytes(rng.randrange(1, 8)) for _ in range(50)]
    for _ in range(3):
        message = b" ".join(rng.choice(words) for _ in range(5000))
        assert server.decode(client.encode(Frame(BINARY, message))).data == message
        assert client.decode(server.encode(Frame(BINARY, message))).data == message


# min_size opt-out


def test_min_size_sends_small_message_uncompressed():
    ext = make(min_size=10)
    frame = Frame(TEXT, b"123456789")
    assert ext.encode(frame) is frame


def test_min_size_compresses_message_of_min_size():
    frame = make(min_size=10).encode(Frame(TEXT, b"1234567890"))
    assert frame.rsv1
    assert make().decode(frame).data == b"1234567890"


def test_min_size_compresses_fragmented_message():
    # The size of a fragmented message isn't known from its first frame.
    ext = make(min_size=10)
    first = ext.encode(Frame(TEXT, b"Hel", fin=False))
    last = ext.encode(Frame(CONT, b"lo"))
    assert first.rsv1
    assert not last.rsv1
    assert decode_message(make(), [first, last]) == b"Hello"


def test_min_size_keeps_context_in_sync():
    # An uncompressed message doesn't enter either window.
    sender, receiver = make(min_size=6), make()
    for data in [b"Hello", b"Hello, world", b"Hi", b"Hello, world"]:
        frame = sender.encode(Frame(TEXT, data))
        assert frame.rsv1 == (len(data) >= 6)
        if frame.rsv1:
            frame = receiver.decode(frame)
        assert frame.data == data


# Round trip


@settings(max_examples=60, deadline=None)
@given(
    messages=st.lists(
        st.tuples(st.binary(max_size=3000), st.lists(st.integers(0, 3000), max_size=3)),
        max_size=6,
    ),
    client_bits=st.integers(8, 15),
    server_bits=st.integers(8, 15),
    client_nct=st.booleans(),
    server_nct=st.booleans(),
    min_size=st.sampled_from([0, 0, 16]),
)
def test_round_trip(messages, client_bits, server_bits, client_nct, server_nct, min_size):
    client_factory = ClientPerMessageDeflateFactory(
        server_no_context_takeover=server_nct,
        client_no_context_takeover=client_nct,
        server_max_window_bits=server_bits,
        client_max_window_bits=client_bits,
        min_size=min_size,
    )
    server_factory = ServerPerMessageDeflateFactory(min_size=min_size)
    response, server = server_factory.process_request_params(
        client_factory.get_request_params(), []
    )
    client = client_factory.process_response_params(response, [])
    for sender, receiver in [(client, server), (server, client)]:
        for data, cuts in messages:
            bounds = [0, *sorted(cut % (len(data) + 1) for cut in cuts), len(data)]
            chunks = [data[a:b] for a, b in itertools.pairwise(bounds)]
            opcodes = [BINARY] + [CONT] * (len(chunks) - 1)
            fins = [False] * (len(chunks) - 1) + [True]
            frames = [
                sender.encode(Frame(opcode, chunk, fin=fin))
                for opcode, chunk, fin in zip(opcodes, chunks, fins)
            ]
            if frames[0].rsv1:
                received = decode_message(receiver, frames, max_size=len(data))
            else:
                received = b"".join(frame.data for frame in frames)
            assert received == data


# Client negotiation


@pytest.mark.parametrize(
    ("kwargs", "params"),
    [
        ({}, [("client_max_window_bits", None)]),
        ({"client_max_window_bits": None}, []),
        ({"client_max_window_bits": False}, []),
        ({"client_max_window_bits": 10}, [("client_max_window_bits", "10")]),
        (
            {
                "server_no_context_takeover": True,
                "client_no_context_takeover": True,
                "server_max_window_bits": 9,
            },
            [
                ("server_no_context_takeover", None),
                ("client_no_context_takeover", None),
                ("server_max_window_bits", "9"),
                ("client_max_window_bits", None),
            ],
        ),
    ],
)
def test_client_request_params(kwargs, params):
    assert ClientPerMessageDeflateFactory(**kwargs).get_request_params() == params


@pytest.mark.parametrize(
    ("kwargs", "response", "expected"),
    [
        # (remote_nct, local_nct, remote_bits, local_bits)
        ({}, [], (False, False, 15, 15)),
        ({}, [("server_no_context_takeover", None)], (True, False, 15, 15)),
        ({}, [("client_no_context_takeover", None)], (False, True, 15, 15)),
        ({"client_no_context_takeover": True}, [], (False, True, 15, 15)),
        (
            {"server_no_context_takeover": True},
            [("server_no_context_takeover", None)],
            (True, False, 15, 15),
        ),
        ({}, [("server_max_window_bits", "10")], (False, False, 10, 15)),
        (
            {"server_max_window_bits": 12},
            [("server_max_window_bits", "12")],
            (False, False, 12, 15),
        ),
        ({"server_max_window_bits": 12}, [("server_max_window_bits", "8")], (False, False, 8, 15)),
        ({}, [("client_max_window_bits", "9")], (False, False, 15, 9)),
        ({"client_max_window_bits": 12}, [], (False, False, 15, 12)),
        (
            {"client_max_window_bits": 12},
            [("client_max_window_bits", "11")],
            (False, False, 15, 11),
        ),
        (
            {"client_max_window_bits": 12},
            [("client_max_window_bits", "12")],
            (False, False, 15, 12),
        ),
    ],
)
def test_client_accepts_response(kwargs, response, expected):
    ext = ClientPerMessageDeflateFactory(**kwargs).process_response_params(response, [])
    assert isinstance(ext, PerMessageDeflate)
    assert (
        ext.remote_no_context_takeover,
        ext.local_no_context_takeover,
        ext.remote_max_window_bits,
        ext.local_max_window_bits,
    ) == expected


BAD_PARAMS = [
    ([("foo", None)], InvalidParameterName, "invalid parameter name: foo"),
    (
        [("server_no_context_takeover", None), ("server_no_context_takeover", None)],
        DuplicateParameter,
        "duplicate parameter: server_no_context_takeover",
    ),
    (
        [("server_max_window_bits", "10"), ("server_max_window_bits", "10")],
        DuplicateParameter,
        "duplicate parameter: server_max_window_bits",
    ),
    (
        [("server_no_context_takeover", "1")],
        InvalidParameterValue,
        "invalid value for parameter server_no_context_takeover: 1",
    ),
    (
        [("client_no_context_takeover", "")],
        InvalidParameterValue,
        "empty value for parameter client_no_context_takeover",
    ),
    (
        [("server_max_window_bits", None)],
        InvalidParameterValue,
        "missing value for parameter server_max_window_bits",
    ),
    (
        [("server_max_window_bits", "7")],
        InvalidParameterValue,
        "invalid value for parameter server_max_window_bits: 7",
    ),
    (
        [("server_max_window_bits", "16")],
        InvalidParameterValue,
        "invalid value for parameter server_max_window_bits: 16",
    ),
    (
        [("server_max_window_bits", "09")],
        InvalidParameterValue,
        "invalid value for parameter server_max_window_bits: 09",
    ),
    (
        [("client_max_window_bits", "x")],
        InvalidParameterValue,
        "invalid value for parameter client_max_window_bits: x",
    ),
]


@pytest.mark.parametrize(("params", "error", "message"), BAD_PARAMS)
def test_client_rejects_bad_response_params(params, error, message):
    with pytest.raises(error) as exc_info:
        ClientPerMessageDeflateFactory().process_response_params(params, [])
    assert str(exc_info.value) == message


@pytest.mark.parametrize(
    ("kwargs", "response", "error", "message"),
    [
        (
            {},
            [("client_max_window_bits", None)],
            InvalidParameterValue,
            "missing value for parameter client_max_window_bits",
        ),
        (
            {"server_no_context_takeover": True},
            [],
            NegotiationError,
            "expected server_no_context_takeover",
        ),
        (
            {"server_max_window_bits": 10},
            [],
            NegotiationError,
            "expected server_max_window_bits",
        ),
        (
            {"server_max_window_bits": 10},
            [("server_max_window_bits", "11")],
            InvalidParameterValue,
            "invalid value for parameter server_max_window_bits: 11",
        ),
        (
            {"client_max_window_bits": None},
            [("client_max_window_bits", "10")],
            InvalidParameterValue,
            "invalid value for parameter client_max_window_bits: 10",
        ),
        (
            {"client_max_window_bits": 10},
            [("client_max_window_bits", "11")],
            InvalidParameterValue,
            "invalid value for parameter client_max_window_bits: 11",
        ),
    ],
)
def test_client_rejects_response(kwargs, response, error, message):
    with pytest.raises(error) as exc_info:
        ClientPerMessageDeflateFactory(**kwargs).process_response_params(response, [])
    assert str(exc_info.value) == message


def test_client_rejects_second_permessage_deflate():
    factory = ClientPerMessageDeflateFactory()
    with pytest.raises(NegotiationError) as exc_info:
        factory.process_response_params([], [make()])
    assert str(exc_info.value) == "received duplicate permessage-deflate"


def test_client_accepts_after_another_extension():
    other = Extension()
    other.name = "x-other"
    assert isinstance(
        ClientPerMessageDeflateFactory().process_response_params([], [other]),
        PerMessageDeflate,
    )


# Server negotiation


@pytest.mark.parametrize(
    ("kwargs", "offer", "response", "expected"),
    [
        # (remote_nct, local_nct, remote_bits, local_bits)
        ({}, [], [], (False, False, 15, 15)),
        (
            {},
            [("server_no_context_takeover", None)],
            [("server_no_context_takeover", None)],
            (False, True, 15, 15),
        ),
        (
            {"server_no_context_takeover": True},
            [],
            [("server_no_context_takeover", None)],
            (False, True, 15, 15),
        ),
        (
            {},
            [("client_no_context_takeover", None)],
            [("client_no_context_takeover", None)],
            (True, False, 15, 15),
        ),
        (
            {"client_no_context_takeover": True},
            [],
            [("client_no_context_takeover", None)],
            (True, False, 15, 15),
        ),
        (
            {},
            [("server_max_window_bits", "10")],
            [("server_max_window_bits", "10")],
            (False, False, 15, 10),
        ),
        (
            {"server_max_window_bits": 12},
            [],
            [("server_max_window_bits", "12")],
            (False, False, 15, 12),
        ),
        (
            {"server_max_window_bits": 12},
            [("server_max_window_bits", "10")],
            [("server_max_window_bits", "10")],
            (False, False, 15, 10),
        ),
        (
            {"server_max_window_bits": 9},
            [("server_max_window_bits", "10")],
            [("server_max_window_bits", "9")],
            (False, False, 15, 9),
        ),
        (
            {},
            [("server_max_window_bits", "8")],
            [("server_max_window_bits", "8")],
            (False, False, 15, 8),
        ),
        ({}, [("client_max_window_bits", None)], [], (False, False, 15, 15)),
        ({"client_max_window_bits": 12}, [], [], (False, False, 15, 15)),
        (
            {"client_max_window_bits": 12},
            [("client_max_window_bits", None)],
            [("client_max_window_bits", "12")],
            (False, False, 12, 15),
        ),
        (
            {"client_max_window_bits": 12},
            [("client_max_window_bits", "10")],
            [("client_max_window_bits", "10")],
            (False, False, 10, 15),
        ),
        (
            {"client_max_window_bits": 9},
            [("client_max_window_bits", "10")],
            [("client_max_window_bits", "9")],
            (False, False, 9, 15),
        ),
        (
            {},
            [("client_max_window_bits", "10")],
            [("client_max_window_bits", "10")],
            (False, False, 10, 15),
        ),
        (
            {"require_client_max_window_bits": True},
            [("client_max_window_bits", None)],
            [],
            (False, False, 15, 15),
        ),
        (
            {
                "server_no_context_takeover": True,
                "client_no_context_takeover": True,
                "server_max_window_bits": 12,
                "client_max_window_bits": 12,
            },
            [("client_max_window_bits", None)],
            [
                ("server_no_context_takeover", None),
                ("client_no_context_takeover", None),
                ("server_max_window_bits", "12"),
                ("client_max_window_bits", "12"),
            ],
            (True, True, 12, 12),
        ),
    ],
)
def test_server_accepts_offer(kwargs, offer, response, expected):
    params, ext = ServerPerMessageDeflateFactory(**kwargs).process_request_params(offer, [])
    assert params == response
    assert isinstance(ext, PerMessageDeflate)
    assert (
        ext.remote_no_context_takeover,
        ext.local_no_context_takeover,
        ext.remote_max_window_bits,
        ext.local_max_window_bits,
    ) == expected
    # The client that made the offer agrees with the response.
    client_kwargs = {"client_max_window_bits": None}
    for name, value in offer:
        client_kwargs[name] = True if value is None else int(value)
    client = ClientPerMessageDeflateFactory(**client_kwargs).process_response_params(params, [])
    assert (
        client.local_no_context_takeover,
        client.remote_no_context_takeover,
        client.local_max_window_bits,
        client.remote_max_window_bits,
    ) == expected


@pytest.mark.parametrize(("params", "error", "message"), BAD_PARAMS)
def test_server_rejects_bad_offer_params(params, error, message):
    with pytest.raises(error) as exc_info:
        ServerPerMessageDeflateFactory().process_request_params(params, [])
    assert str(exc_info.value) == message


def test_server_requires_client_max_window_bits():
    factory = ServerPerMessageDeflateFactory(require_client_max_window_bits=True)
    with pytest.raises(NegotiationError) as exc_info:
        factory.process_request_params([], [])
    assert str(exc_info.value) == "required client_max_window_bits"


def test_server_rejects_second_permessage_deflate():
    factory = ServerPerMessageDeflateFactory()
    with pytest.raises(NegotiationError) as exc_info:
        factory.process_request_params([], [make()])
    assert str(exc_info.value) == "skipped duplicate permessage-deflate"


def test_negotiation_errors_are_negotiation_errors():
    for _, error, _ in BAD_PARAMS:
        assert issubclass(error, NegotiationError)


# Configuration


@pytest.mark.parametrize(
    ("factory", "kwargs", "message"),
    [
        (
            make,
            {"remote_max_window_bits": 7},
            "remote_max_window_bits must be between 8 and 15, got 7",
        ),
        (
            make,
            {"local_max_window_bits": 16},
            "local_max_window_bits must be between 8 and 15, got 16",
        ),
        (make, {"min_size": -1}, "min_size must be non-negative, got -1"),
        (
            make,
            {"compress_settings": {"wbits": 9}},
            "compress_settings must not include wbits, set max_window_bits instead",
        ),
        (
            ClientPerMessageDeflateFactory,
            {"server_max_window_bits": 16},
            "server_max_window_bits must be between 8 and 15, got 16",
        ),
        (
            ClientPerMessageDeflateFactory,
            {"client_max_window_bits": 7},
            "client_max_window_bits must be between 8 and 15, got 7",
        ),
        (
            ClientPerMessageDeflateFactory,
            {"compress_settings": {"wbits": 9}},
            "compress_settings must not include wbits, set max_window_bits instead",
        ),
        (ClientPerMessageDeflateFactory, {"min_size": -1}, "min_size must be non-negative, got -1"),
        (
            ServerPerMessageDeflateFactory,
            {"server_max_window_bits": 7},
            "server_max_window_bits must be between 8 and 15, got 7",
        ),
        (
            ServerPerMessageDeflateFactory,
            {"client_max_window_bits": 16},
            "client_max_window_bits must be between 8 and 15, got 16",
        ),
        (
            ServerPerMessageDeflateFactory,
            {"compress_settings": {"wbits": 9}},
            "compress_settings must not include wbits, set max_window_bits instead",
        ),
        (ServerPerMessageDeflateFactory, {"min_size": -1}, "min_size must be non-negative, got -1"),
    ],
)
def test_invalid_configuration(factory, kwargs, message):
    with pytest.raises(ValueError) as exc_info:
        factory(**kwargs)
    assert str(exc_info.value) == message


def test_compress_settings_are_used():
    # Level 0 stores the data: the output is larger than the input.
    data = b"a" * 1000
    assert len(make(compress_settings={"level": 0}).encode(Frame(BINARY, data)).data) > 1000
    assert len(make().encode(Frame(BINARY, data)).data) < 100


def test_factories_pass_settings_to_the_extension():
    client = ClientPerMessageDeflateFactory(compress_settings={"level": 0}, min_size=5)
    ext = client.process_response_params([], [])
    assert ext.compress_settings == {"level": 0}
    assert ext.min_size == 5
    server = ServerPerMessageDeflateFactory(compress_settings={"level": 1}, min_size=7)
    _, ext = server.process_request_params([], [])
    assert ext.compress_settings == {"level": 1}
    assert ext.min_size == 7


def test_default_compress_settings():
    assert dict(DEFAULT_COMPRESS_SETTINGS) == {"memLevel": 5}
    assert make().compress_settings == {"memLevel": 5}
    with pytest.raises(TypeError):
        DEFAULT_COMPRESS_SETTINGS["level"] = 9


def test_extension_attributes():
    ext = make()
    assert ext.name == "permessage-deflate"
    assert ext.rsv1 is True
    assert ClientPerMessageDeflateFactory.name == "permessage-deflate"
    assert ServerPerMessageDeflateFactory.name == "permessage-deflate"


def test_repr():
    assert repr(make(min_size=3)) == (
        "PerMessageDeflate(remote_no_context_takeover=False, "
        "local_no_context_takeover=False, remote_max_window_bits=15, "
        "local_max_window_bits=15, min_size=3)"
    )
    assert repr(ClientPerMessageDeflateFactory()) == (
        "ClientPerMessageDeflateFactory(server_no_context_takeover=False, "
        "client_no_context_takeover=False, server_max_window_bits=None, "
        "client_max_window_bits=True, min_size=0)"
    )
    assert repr(ServerPerMessageDeflateFactory()) == (
        "ServerPerMessageDeflateFactory(server_no_context_takeover=False, "
        "client_no_context_takeover=False, server_max_window_bits=None, "
        "client_max_window_bits=None, require_client_max_window_bits=False, min_size=0)"
    )


def test_enable_client_permessage_deflate():
    (factory,) = enable_client_permessage_deflate(None)
    assert isinstance(factory, ClientPerMessageDeflateFactory)
    assert factory.get_request_params() == [
        ("server_max_window_bits", str(DEFAULT_MAX_WINDOW_BITS)),
        ("client_max_window_bits", str(DEFAULT_MAX_WINDOW_BITS)),
    ]
    assert factory.compress_settings == DEFAULT_COMPRESS_SETTINGS
    custom = ClientPerMessageDeflateFactory()
    extensions = [custom]
    assert enable_client_permessage_deflate(extensions) == [custom]
    assert enable_client_permessage_deflate(extensions) is not extensions


def test_enable_server_permessage_deflate():
    (factory,) = enable_server_permessage_deflate([])
    assert isinstance(factory, ServerPerMessageDeflateFactory)
    assert factory.server_max_window_bits == DEFAULT_MAX_WINDOW_BITS
    assert factory.client_max_window_bits == DEFAULT_MAX_WINDOW_BITS
    assert factory.compress_settings == DEFAULT_COMPRESS_SETTINGS
    custom = ServerPerMessageDeflateFactory()
    assert enable_server_permessage_deflate([custom]) == [custom]


def test_default_factories_negotiate_together():
    (client_factory,) = enable_client_permessage_deflate(None)
    (server_factory,) = enable_server_permessage_deflate(None)
    response, server = server_factory.process_request_params(
        client_factory.get_request_params(), []
    )
    client = client_factory.process_response_params(response, [])
    assert client.local_max_window_bits == server.remote_max_window_bits == 12
    assert client.remote_max_window_bits == server.local_max_window_bits == 12
