"""Calibration server: minimal RFC 6455 framing with no WebSocket library.

It answers the opening handshake, unmasks every complete client frame of a read in one
pass and echoes it back unmasked in one write, answers close frames and nothing more (no
fragmentation, no UTF-8 check, no limits, no fan-out). It shows how fast the load
generator can go: a library cannot be measured above this line on the same machine.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from typing import cast

from _common import HOST, ready, run


GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


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
        self.buffer = bytearray()
        self.upgraded = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        if not self.upgraded:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            key = b""
            for line in bytes(buffer[:end]).split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"sec-websocket-key":
                    key = value.strip()
            accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
            assert self.transport is not None
            self.transport.write(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
            )
            del buffer[: end + 4]
            self.upgraded = True
        out: list[bytes] = []
        pos, size = 0, len(buffer)
        while size - pos >= 6:
            first, second = buffer[pos], buffer[pos + 1] & 0x7F
            start = pos + 2
            if second == 126:
                length = int.from_bytes(buffer[start : start + 2], "big")
                start += 2
            elif second == 127:
                length = int.from_bytes(buffer[start : start + 8], "big")
                start += 8
            else:
                length = second
            end = start + 4 + length
            if end > size:
                break
            payload = unmask(bytes(buffer[start + 4 : end]), bytes(buffer[start : start + 4]))
            out.append(header(first, length))
            out.append(payload)
            pos = end
            if first & 0x0F == 0x8:  # close: echo it, then let the client close TCP
                break
        if pos:
            del buffer[:pos]
        if out:
            assert self.transport is not None
            self.transport.write(b"".join(out))


async def main(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(RawEcho, HOST, port, backlog=1024)
    async with server:
        ready()
        await server.serve_forever()


if __name__ == "__main__":
    run(main, __doc__ or "")
