"""Throughput of permessage-deflate: compress and decompress 64 B, 1 KiB and 64 KiB messages.

Run: ``.venv/bin/python benchmarks/micro/bench_deflate.py [--quick]``.

The payload is JSON-like text, what compression is usually enabled for. Each message goes
through one :class:`PerMessageDeflate` with context takeover, as on a live connection,
with the default settings (12-bit windows, memLevel 5) and with zlib's own defaults.
"""

from __future__ import annotations

import json
import random
import sys
import timeit

from tether.protocol.extensions.permessage_deflate import PerMessageDeflate
from tether.protocol.frames import Frame, Opcode


SIZES = [64, 1024, 64 * 1024]
CONFIGS = {
    "12 bits, memLevel 5": (12, {"memLevel": 5}),
    "15 bits, memLevel 8": (15, {"memLevel": 8}),
}


def make_payload(size: int, rng: random.Random) -> bytes:
    """Build JSON-like text of exactly ``size`` bytes."""
    records: list[bytes] = []
    while sum(len(record) for record in records) < size:
        record = {
            "id": rng.randrange(10**6),
            "user": rng.choice(["alice", "bob", "carol", "dave"]),
            "price": round(rng.uniform(1, 1000), 2),
            "tags": rng.sample(["new", "sale", "hot", "eu", "us", "asia"], 2),
        }
        records.append(json.dumps(record).encode())
    return b",".join(records)[:size]


def bench(label: str, bits: int, settings: dict[str, int], size: int, quick: bool) -> None:
    rng = random.Random(size)
    payloads = [make_payload(size, rng) for _ in range(16)]
    sender = PerMessageDeflate(False, False, bits, bits, settings)
    receiver = PerMessageDeflate(False, False, bits, bits, settings)

    # Compress every payload once, in order, so that the receiver's window stays in step.
    frames = [sender.encode(Frame(Opcode.BINARY, payload)) for payload in payloads]
    ratio = sum(len(f.data) for f in frames) / sum(len(p) for p in payloads)
    for frame, payload in zip(frames, payloads):
        assert receiver.decode(frame).data == payload

    number = max(1, (20_000 if not quick else 2_000) * 64 // size)

    def compress() -> None:
        for payload in payloads:
            sender.encode(Frame(Opcode.BINARY, payload))

    # Frames compressed with context takeover decode only in order, from the start:
    # each pass decodes all of them with a new receiver (one decompressor per pass).
    def decompress() -> None:
        receiver = PerMessageDeflate(False, False, bits, bits, settings)
        for frame in frames:
            receiver.decode(frame, max_size=size)

    total = size * len(payloads) * number
    for name, function in [("compress", compress), ("decompress", decompress)]:
        seconds = min(timeit.repeat(function, number=number, repeat=3))
        print(
            f"{label:>20}  {size:>6} B  {name:>10}  "
            f"{total / seconds / 1e6:8.1f} MB/s  "
            f"{seconds / (len(payloads) * number) * 1e6:8.2f} us/msg  ratio {ratio:.2f}"
        )


def main() -> None:
    quick = "--quick" in sys.argv[1:]
    for label, (bits, settings) in CONFIGS.items():
        for size in SIZES:
            bench(label, bits, settings, size, quick)


if __name__ == "__main__":
    main()
