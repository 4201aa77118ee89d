"""Byte-exact test vectors from shared/specs/repe.md section 4 and beve.md section 9.

Hex strings keep the spec's grouping; :func:`bytes.fromhex` ignores the spaces.
"""

from __future__ import annotations

import array
import dataclasses

from tether.rpc.beve import IntKeyMap, Number, TypedArray


# REPE vectors: name -> (hex, expected fields).
REPE_VECTORS = {
    "V1": (
        "3b00000000000000 0715 01 00 00000000 0200000000000000 0400000000000000"
        " 0700000000000000 0100 0200 00000000"
        " 2f73756d"
        " 5b312c322c335d",
        dict(
            id=2,
            notify=False,
            query=b"/sum",
            query_format=1,
            body=b"[1,2,3]",
            body_format=2,
            ec=0,
            length=59,
        ),
    ),
    "V2": (
        "3100000000000000 0715 01 00 00000000 0200000000000000 0000000000000000"
        " 0100000000000000 0000 0200 00000000"
        " 36",
        dict(
            id=2, notify=False, query=b"", query_format=0, body=b"6", body_format=2, ec=0, length=49
        ),
    ),
    "V3": (
        "3c00000000000000 0715 01 01 00000000 0000000000000000 0500000000000000"
        " 0700000000000000 0100 0200 00000000"
        " 2f7469636b"
        " 7b226e223a307d",
        dict(
            id=0,
            notify=True,
            query=b"/tick",
            query_format=1,
            body=b'{"n":0}',
            body_format=2,
            ec=0,
            length=60,
        ),
    ),
    "V4": (
        "3a00000000000000 0715 01 01 00000000 0500000000000000 0a00000000000000"
        " 0000000000000000 0100 0000 00000000"
        " 2f696e6372656d656e74",
        dict(
            id=5,
            notify=True,
            query=b"/increment",
            query_format=1,
            body=b"",
            body_format=0,
            ec=0,
            length=58,
        ),
    ),
    "V5": (
        "4700000000000000 0715 01 00 00000000 0300000000000000 0000000000000000"
        " 1700000000000000 0000 0300 06000000"
        " 696e76616c69645f71756572793a202f6d697373696e67",
        dict(
            id=3,
            notify=False,
            query=b"",
            query_format=0,
            body=b"invalid_query: /missing",
            body_format=3,
            ec=6,
            length=71,
        ),
    ),
    "V6": (
        "5800000000000000 0715 01 00 00000000 1100000000000000 0000000000000000"
        " 2800000000000000 0000 0300 01000000"
        " 524550452076657273696f6e206d69736d617463683a20657870656374656420312c20676f742032",
        dict(
            id=17,
            notify=False,
            query=b"",
            query_format=0,
            body=b"REPE version mismatch: expected 1, got 2",
            body_format=3,
            ec=1,
            length=88,
        ),
    ),
    "V7": (
        "4e00000000000000 0715 01 00 00000000 0600000000000000 0400000000000000"
        " 1a00000000000000 0100 0100 00000000"
        " 2f73756d"
        " 6c0c 0100000000000000 0200000000000000 0300000000000000",
        dict(
            id=6,
            notify=False,
            query=b"/sum",
            query_format=1,
            body=bytes.fromhex("6c0c010000000000000002000000000000000300000000000000"),
            body_format=1,
            ec=0,
            length=78,
        ),
    ),
    "V8": (
        "3900000000000000 0715 01 00 00000000 0600000000000000 0000000000000000"
        " 0900000000000000 0000 0100 00000000"
        " 690600000000000000",
        dict(
            id=6,
            notify=False,
            query=b"",
            query_format=0,
            body=bytes.fromhex("690600000000000000"),
            body_format=1,
            ec=0,
            length=57,
        ),
    ),
    "V9": (
        "3500000000000000 0715 01 00 00000000 0100000000000000 0500000000000000"
        " 0000000000000000 0100 0000 00000000"
        " 2f70696e67",
        dict(
            id=1,
            notify=False,
            query=b"/ping",
            query_format=1,
            body=b"",
            body_format=0,
            ec=0,
            length=53,
        ),
    ),
    "V10": (
        "3000000000000000 0715 01 00 00000000 0000000000000000 0000000000000000"
        " 0000000000000000 0100 0000 00000000",
        dict(
            id=0, notify=False, query=b"", query_format=1, body=b"", body_format=0, ec=0, length=48
        ),
    ),
    "V11": (
        "8600000000000000 0715 01 00 00000000 0800000000000000 0e00000000000000"
        " 4800000000000000 0100 0100 00000000"
        " 2f6170692f76312f757064617465"
        " 0314 106e616d65 0220 73656e736f722d37"
        " 14636f756e74 49 2a000000"
        " 14726174696f 61 0000000000000cc0"
        " 18616374697665 18"
        " 1876616c756573 4c0c 010000000200000003000000",
        dict(
            id=8,
            notify=False,
            query=b"/api/v1/update",
            query_format=1,
            body_format=1,
            ec=0,
            length=134,
        ),
    ),
    "V12": (
        "5200000000000000 0715 01 00 00000000 0700000000000000 0800000000000000"
        " 1a00000000000000 0000 0300 06000000"
        " 2f6d697373696e67"
        " 4d6574686f64206e6f7420666f756e643a202f6d697373696e67",
        dict(
            id=7,
            notify=False,
            query=b"/missing",
            query_format=0,
            body=b"Method not found: /missing",
            body_format=3,
            ec=6,
            length=82,
        ),
    ),
}

# The decoded BEVE bodies of the REPE vectors that carry one.
REPE_BEVE_BODIES = {
    "V7": [1, 2, 3],
    "V8": 6,
    "V11": {
        "name": "sensor-7",
        "count": 42,
        "ratio": -3.5,
        "active": True,
        "values": [1, 2, 3],
    },
}

# How to write the V11 body so that the encoder reproduces Glaze's bytes.
REPE_BEVE_SPELLINGS = {
    "V7": [1, 2, 3],
    "V8": 6,
    "V11": {
        "name": "sensor-7",
        "count": Number("int32", 42),
        "ratio": -3.5,
        "active": True,
        "values": array.array("i", [1, 2, 3]),
    },
}


@dataclasses.dataclass
class Point:
    """The C++ struct of BEVE vector 23, with its int32 member spelled explicitly."""

    x: Number
    y: float
    tag: str


# BEVE vectors: number -> (hex, decoded value, value to encode).
BEVE_VECTORS = {
    1: ("00", None, None),
    2: ("08", False, False),
    3: ("18", True, True),
    4: ("09 ff", -1, Number("int8", -1)),
    5: ("11 c8", 200, Number("uint8", 200)),
    6: ("49 2a000000", 42, Number("int32", 42)),
    7: ("69 feffffffffffffff", -2, -2),
    8: ("71 0010a5d4e8000000", 10**12, Number("uint64", 10**12)),
    9: ("41 0000c03f", 1.5, Number("float32", 1.5)),
    10: ("61 0000000000000cc0", -3.5, -3.5),
    11: ("02 08 6869", "hi", "hi"),
    12: ("02 00", "", ""),
    13: ("02 0101" + "61" * 64, "a" * 64, "a" * 64),
    14: ("4c 0c 01000000 02000000 03000000", [1, 2, 3], array.array("i", [1, 2, 3])),
    15: ("14 08 01ff", [1, 255], b"\x01\xff"),
    16: ("64 08 000000000000f83f 00000000000004c0", [1.5, -2.5], [1.5, -2.5]),
    17: (
        "1c 24 0d 01",
        [True, False, True, True, False, False, False, False, True],
        [True, False, True, True, False, False, False, False, True],
    ),
    18: ("3c 08 08 6162 04 63", ["ab", "c"], ["ab", "c"]),
    19: ("4c 00", [], TypedArray("int32", [])),
    20: (
        "03 08 04 61 49 01000000 04 62 49 02000000",
        {"a": 1, "b": 2},
        {"a": Number("int32", 1), "b": Number("int32", 2)},
    ),
    21: (
        "4b 08 ffffffff 02 04 79 01000000 02 04 78",
        {-1: "y", 1: "x"},
        IntKeyMap("int32", {-1: "y", 1: "x"}),
    ),
    22: ("73 04 0700000000000000 18", {7: True}, IntKeyMap("uint64", {7: True})),
    23: (
        "03 0c 04 78 49 01000000 04 79 61 00000000000004c0 0c 746167 02 04 70",
        {"x": 1, "y": -2.5, "tag": "p"},
        Point(Number("int32", 1), -2.5, "p"),
    ),
    24: ("03 04 14 6e616d6573 3c 08 08 6162 04 63", {"names": ["ab", "c"]}, {"names": ["ab", "c"]}),
    25: (
        "03 08 04 6b 61 000000000000f03f 0c 617272 05 10 61 000000000000f03f 02 0c 74776f 00 18",
        {"k": 1.0, "arr": [1.0, "two", None, True]},
        {"k": 1.0, "arr": [1.0, "two", None, True]},
    ),
    26: ("05 0c 61 000000000000f83f 02 04 73 08", [1.5, "s", False], [1.5, "s", False]),
    27: ("05 08 49 05000000 02 04 7a", [5, "z"], (Number("int32", 5), "z")),
    28: (
        "05 08 4c 04 01000000 4c 08 02000000 03000000",
        [[1], [2, 3]],
        [TypedArray("int32", [1]), TypedArray("int32", [2, 3])],
    ),
}
