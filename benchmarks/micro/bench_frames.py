"""Frame parsing and serialization of the sans-I/O protocol.

Standalone: ``python benchmarks/micro/bench_frames.py``.

* parse: 1000 small masked client frames fed to ``Protocol(SERVER).receive_data`` in one
  call (the batch parser), and the same frames fed one ``receive_data`` call each;
* serialize: ``send_binary`` of 64 bytes on a server and on a client connection (masked),
  then ``data_to_send``.
"""

from __future__ import annotations

import os

from _timing import best, row

from tether.protocol.connection import CLIENT, SERVER, Protocol
from tether.protocol.frames import serialize_header
from tether.protocol.masking import apply_mask


def masked_frame(opcode: int, payload: bytes) -> bytes:
    mask = os.urandom(4)
    return serialize_header(0x80 | opcode, len(payload), mask) + apply_mask(payload, mask)


def bench_parse(count: int = 1000, size: int = 64) -> list[str]:
    frames = [masked_frame(0x2, os.urandom(size)) for _ in range(count)]
    stream = b"".join(frames)

    protocol = Protocol(SERVER)  # reused: the figures exclude setting up a connection

    def batch() -> None:
        protocol.receive_data(stream)
        assert len(protocol.events_received()) == count

    def one_by_one() -> None:
        receive = protocol.receive_data
        for frame in frames:
            receive(frame)
        protocol.events_received()

    return [
        row(f"parse {count} x {size} B, one receive_data", best(batch, 20), size, count),
        row(f"parse {count} x {size} B, receive_data each", best(one_by_one, 20), size, count),
    ]


def bench_serialize(size: int = 64, count: int = 1000) -> list[str]:
    payload = os.urandom(size)
    lines = []
    for name, side in (("server", SERVER), ("client (masked)", CLIENT)):
        protocol = Protocol(side)

        def send(protocol: Protocol = protocol) -> None:
            send_binary = protocol.send_binary
            for _ in range(count):
                send_binary(payload)
            protocol.data_to_send()

        lines.append(row(f"send_binary {size} B, {name}", best(send, 50), size, count))
    return lines


def main() -> None:
    for line in bench_parse() + bench_parse(100, 4096) + bench_serialize():
        print(line)


if __name__ == "__main__":
    main()
