"""Calibration server: minimal RFC 6455 framing with no WebSocket library.

It answers the opening handshake, then echoes every data frame with a server header
while its payload streams through: payload bytes are forwarded as they arrive, still
masked, without being unmasked, buffered or copied (the load generator counts replies by
length and checks their headers, never their payload bytes). Close, ping and pong frames
are unmasked and echoed; nothing else is done (no fragmentation, no UTF-8 check, no
limits, no fan-out). It does less per message than any library can, so the load
generator's CPU in its rows shows how much headroom the load generator has.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from typing import cast

from _common import HOST, ready, run


GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

# Pieces of output up to this size are joined into one write; larger ones (views of a
# received chunk) are written as they are.
SMALL = 4096


def unmask(payload: bytes, mask: bytes) -> bytes:
    n = len(payload)
    key = mask * ((n >> 2) + 1)
    value = int.from_bytes(payload, "little") ^ int.from_bytes(key[:n], "little")
    return value.to_bytes(n, "little")


def header(first: int, length: int) -> bytes:
    if length < 126:
        return bytes((first, length))
    if length < 65536:
        return bytes((first, 126)) + length.to_bytes(2, "big")
    return bytes((first, 127)) + length.to_bytes(8, "big")


class RawEcho(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.upgraded = False
        # Bytes of a frame start (or of the handshake) that the next read continues.
        self.partial = b""
        # Payload bytes of the current data frame still to forward.
        self.remaining = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        if self.partial:
            data = self.partial + data
            self.partial = b""
        if not self.upgraded:
            end = data.find(b"\r\n\r\n")
            if end < 0:
                self.partial = data
                return
            self.handshake(data[:end])
            data = data[end + 4 :]
            self.upgraded = True
        view = memoryview(data)
        out: list[bytes | memoryview] = []
        pos, size = 0, len(data)
        while pos < size:
            if self.remaining:
                take = min(self.remaining, size - pos)
                out.append(view[pos : pos + take])
                self.remaining -= take
                pos += take
                continue
            if size - pos < 2:
                break
            first, second = data[pos], data[pos + 1] & 0x7F
            start = pos + (2 if second < 126 else 4 if second == 126 else 10)
            if size - start < 4:
                break
            length = second if second < 126 else int.from_bytes(data[pos + 2 : start], "big")
            start += 4
            if first & 0x08:  # control frame: unmask its (short) payload and echo it
                if size - start < length:
                    break
                payload = unmask(data[start : start + length], data[start - 4 : start])
                out.append(header(first, length) + payload)
                pos = start + length
                if first & 0x0F == 0x8:  # close: echo it, then let the client close TCP
                    pos = size
                continue
            out.append(header(first, length))
            self.remaining = length
            pos = start
        self.partial = data[pos:]
        if out:
            self.flush(out)

    def handshake(self, head: bytes) -> None:
        key = b""
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"sec-websocket-key":
                key = value.strip()
        accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
        assert self.transport is not None
        self.transport.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
        )

    def flush(self, out: list[bytes | memoryview]) -> None:
        transport = self.transport
        assert transport is not None
        small: list[bytes | memoryview] = []
        for piece in out:
            if len(piece) <= SMALL:
                small.append(piece)
                continue
            if small:
                transport.write(b"".join(small))
                small = []
            transport.write(piece)
        if small:
            transport.write(b"".join(small))


async def main(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(RawEcho, HOST, port, backlog=1024)
    async with server:
        ready()
        await server.serve_forever()


if __name__ == "__main__":
    run(main, __doc__ or "")
