"""UTF-8 validation of text frames in the receive path.

Standalone: ``python benchmarks/micro/bench_utf8.py``. Feeds masked text frames to
``Protocol(SERVER)`` and compares with a bare ``bytes.decode("utf-8")`` of the same
payload (the floor: validating costs at least one decode). Fragmented messages go
through the incremental decoder, so they are measured too. One connection is reused
across iterations, so the figures exclude setting it up.
"""

from __future__ import annotations

import os

from _timing import best, row

from tether.protocol.connection import SERVER, Protocol
from tether.protocol.frames import serialize_header
from tether.protocol.masking import apply_mask


def masked_frame(first: int, payload: bytes) -> bytes:
    mask = os.urandom(4)
    return serialize_header(first, len(payload), mask) + apply_mask(payload, mask)


def text(size: int, sample: str) -> bytes:
    data = (sample * (size // len(sample.encode()) + 1)).encode()[:size]
    return data.decode("utf-8", "ignore").encode()  # cut on a character boundary


def fragmented(payload: bytes, parts: int) -> bytes:
    step = max(1, len(payload) // parts)
    chunks = [payload[i : i + step] for i in range(0, len(payload), step)]
    frames = []
    for index, chunk in enumerate(chunks):
        opcode = 0x1 if index == 0 else 0x0
        fin = 0x80 if index == len(chunks) - 1 else 0
        frames.append(masked_frame(fin | opcode, chunk))
    return b"".join(frames)


def main() -> None:
    cases = {
        "ascii 64 B": text(64, "hello world "),
        "ascii 4 KiB": text(4096, "hello world "),
        "mixed 4 KiB": text(4096, "héllo wörld € 日本語 "),
        "mixed 256 KiB": text(256 * 1024, "héllo wörld € 日本語 "),
    }
    for label, payload in cases.items():
        size = len(payload)
        number = max(20, 2_000_000 // size)
        for name, stream in (
            ("1 frame", masked_frame(0x81, payload)),
            ("8 fragments", fragmented(payload, 8)),
        ):
            if size < 1024 and name != "1 frame":
                continue

            protocol = Protocol(SERVER)

            def feed(stream: bytes = stream, protocol: Protocol = protocol) -> None:
                protocol.receive_data(stream)
                protocol.events_received()

            print(row(f"receive text {label}, {name}", best(feed, number), size))
        print(
            row(f"bytes.decode {label} (floor)", best(lambda p=payload: p.decode(), number), size)
        )


if __name__ == "__main__":
    main()
