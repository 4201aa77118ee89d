"""A tether server facing a misbehaving raw client: each violation gets the right close code.

The raw client writes the handshake and the frames itself. In each case a well-behaved
client connected at the same time must keep working after the bad one was failed.
"""

import asyncio
import base64
import contextlib
import os
import struct
import zlib

import pytest

from tether.asyncio.client import connect
from tether.asyncio.server import serve
from tether.protocol.handshake import accept_key
from tether.protocol.limits import Limits

from ..utils import until


CONT, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


def frame(opcode, payload=b"", *, fin=True, rsv=0, mask=True):
    """Serialize one frame the way a (possibly broken) client would."""
    first = (0x80 if fin else 0) | (rsv << 4) | opcode
    mask_bit = 0x80 if mask else 0
    length = len(payload)
    if length < 126:
        header = struct.pack("!BB", first, mask_bit | length)
    elif length < 65536:
        header = struct.pack("!BBH", first, mask_bit | 126, length)
    else:
        header = struct.pack("!BBQ", first, mask_bit | 127, length)
    if not mask:
        return header + payload
    key = os.urandom(4)
    masked = bytes(byte ^ key[i % 4] for i, byte in enumerate(payload))
    return header + key + masked


def close_payload(code, reason=b""):
    return struct.pack("!H", code) + reason


class RawClient:
    """A WebSocket client that does everything by hand over an asyncio stream."""

    def __init__(self, reader, writer, response_head):
        self.reader = reader
        self.writer = writer
        self.response_head = response_head

    @classmethod
    async def open(cls, port, extra_headers=(), path="/"):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            f"GET {path} HTTP/1.1",
            "Host: 127.0.0.1",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
            *extra_headers,
        ]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        assert head.startswith("HTTP/1.1 101 ")
        assert f"Sec-WebSocket-Accept: {accept_key(key)}\r\n" in head
        return cls(reader, writer, head)

    async def read_frame(self):
        first, second = await self.reader.readexactly(2)
        assert second & 0x80 == 0, "a server must not mask its frames"
        length = second & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", await self.reader.readexactly(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", await self.reader.readexactly(8))
        return first & 0x0F, await self.reader.readexactly(length)

    async def read_close(self):
        """Read frames until the close frame; return its code and reason."""
        while True:
            opcode, payload = await self.read_frame()
            if opcode == CLOSE:
                code = struct.unpack("!H", payload[:2])[0] if payload else None
                return code, payload[2:].decode()

    async def expect_eof(self):
        try:
            assert await self.reader.read() == b""
        except ConnectionResetError:
            pass

    async def aclose(self):
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()


async def echo(ws):
    async for message in ws:
        await ws.send(message)


LIMITS = Limits(max_frame_size=4096, max_message_size=64 * 1024, max_decompressed_size=64 * 1024)


@contextlib.asynccontextmanager
async def server_with_bystander(**kwargs):
    """An echo server and a well-behaved tether client already connected to it."""
    async with serve(echo, "127.0.0.1", 0, limits=LIMITS, **kwargs) as server:
        async with connect(f"ws://127.0.0.1:{server.port}/") as bystander:
            await bystander.send("before")
            assert await bystander.recv() == "before"
            yield server, bystander
            # The bystander still works after the bad client was failed.
            await bystander.send("after")
            assert await bystander.recv() == "after"
            assert bystander.close_code is None


def deflate(data):
    compressor = zlib.compressobj(wbits=-15)
    compressed = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
    assert compressed.endswith(b"\x00\x00\xff\xff")
    return compressed[:-4]  # RFC 7692 7.2.1: remove the trailing 0x00 0x00 0xff 0xff


CASES = {
    "unmasked frame": ([frame(TEXT, b"hi", mask=False)], 1002),
    "rsv1 without extension": ([frame(TEXT, b"hi", rsv=4)], 1002),
    "rsv2": ([frame(TEXT, b"hi", rsv=2)], 1002),
    "rsv3": ([frame(BINARY, b"hi", rsv=1)], 1002),
    "reserved data opcode": ([frame(0x3, b"hi")], 1002),
    "reserved control opcode": ([frame(0xB, b"hi")], 1002),
    "fragmented ping": ([frame(PING, b"hi", fin=False)], 1002),
    "ping over 125 bytes": ([frame(PING, b"p" * 126)], 1002),
    "close over 125 bytes": ([frame(CLOSE, close_payload(1000, b"r" * 124))], 1002),
    "continuation without start": ([frame(CONT, b"hi")], 1002),
    "new message inside fragmented one": (
        [frame(TEXT, b"a", fin=False), frame(TEXT, b"b")],
        1002,
    ),
    "invalid utf-8 text": ([frame(TEXT, b"\xff\xfe")], 1007),
    "invalid utf-8 across fragments": (
        [frame(TEXT, b"\xe2\x82", fin=False), frame(CONT, b"\x28")],
        1007,
    ),
    "invalid utf-8 close reason": ([frame(CLOSE, close_payload(1000, b"\xff"))], 1007),
    "close code 1005": ([frame(CLOSE, close_payload(1005))], 1002),
    "close code 1006": ([frame(CLOSE, close_payload(1006))], 1002),
    "close code 999": ([frame(CLOSE, close_payload(999))], 1002),
    "close code 5000": ([frame(CLOSE, close_payload(5000))], 1002),
    "one-byte close payload": ([frame(CLOSE, b"\x03")], 1002),
    "frame over max_frame_size": ([frame(BINARY, b"x" * 5000)], 1009),
    "message over max_message_size": (
        [frame(BINARY, b"x" * 4000, fin=False)]
        + [frame(CONT, b"x" * 4000, fin=False) for _ in range(16)]
        + [frame(CONT, b"x", fin=True)],
        1009,
    ),
}


@pytest.mark.parametrize(("frames", "code"), CASES.values(), ids=CASES.keys())
async def test_violation_is_failed_with_close_code(frames, code):
    async with server_with_bystander(compression=None) as (server, _):
        raw = await RawClient.open(server.port)
        try:
            raw.writer.write(b"".join(frames))
            assert (await raw.read_close())[0] == code
            await raw.expect_eof()
            # The failed connection's handler is done; only the bystander is left.
            await until(lambda: len(server.connections) == 1)
        finally:
            await raw.aclose()


async def test_valid_frames_from_raw_client_are_echoed():
    async with server_with_bystander(compression=None) as (server, _):
        raw = await RawClient.open(server.port)
        try:
            raw.writer.write(frame(TEXT, "hé".encode(), fin=False) + frame(CONT, b"llo"))
            assert await raw.read_frame() == (TEXT, "héllo".encode())
            raw.writer.write(frame(PING, b"ping me"))
            assert await raw.read_frame() == (PONG, b"ping me")
            raw.writer.write(frame(CLOSE, close_payload(1000, b"done")))
            assert (await raw.read_close())[0] == 1000  # the code is echoed
            await raw.expect_eof()
        finally:
            await raw.aclose()


async def test_deflate_bomb_is_failed_with_1009():
    async with server_with_bystander() as (server, _):
        raw = await RawClient.open(
            server.port, extra_headers=["Sec-WebSocket-Extensions: permessage-deflate"]
        )
        try:
            assert "Sec-WebSocket-Extensions: permessage-deflate" in raw.response_head
            # A small, well-formed compressed message first: the extension works.
            raw.writer.write(frame(TEXT, deflate(b"compressed hello"), rsv=4))
            opcode, payload = await raw.read_frame()
            assert opcode == TEXT
            inflated = zlib.decompressobj(wbits=-15).decompress(payload + b"\x00\x00\xff\xff")
            assert inflated == b"compressed hello"
            # 16 MiB of zeros deflate to about 16 KiB, so split it into frames under the
            # 4 KiB frame limit: only the inflated size is over the limits.
            bomb = deflate(b"\x00" * (16 * 1024 * 1024))
            assert len(bomb) < 64 * 1024
            chunks = [bomb[i : i + 4000] for i in range(0, len(bomb), 4000)]
            frames = [frame(BINARY, chunks[0], rsv=4, fin=len(chunks) == 1)]
            frames += [
                frame(CONT, chunk, fin=i == len(chunks) - 1) for i, chunk in enumerate(chunks)
            ][1:]
            raw.writer.write(b"".join(frames))
            assert (await raw.read_close())[0] == 1009
            await raw.expect_eof()
        finally:
            await raw.aclose()


async def test_deflate_bomb_in_one_frame_is_failed_with_1009():
    async with server_with_bystander() as (server, _):
        raw = await RawClient.open(
            server.port, extra_headers=["Sec-WebSocket-Extensions: permessage-deflate"]
        )
        try:
            bomb = deflate(b"\x00" * (1024 * 1024))
            assert len(bomb) < 4096
            raw.writer.write(frame(BINARY, bomb, rsv=4))
            assert (await raw.read_close())[0] == 1009
            await raw.expect_eof()
        finally:
            await raw.aclose()


async def test_corrupt_deflate_data_fails_the_connection():
    async with server_with_bystander() as (server, _):
        raw = await RawClient.open(
            server.port, extra_headers=["Sec-WebSocket-Extensions: permessage-deflate"]
        )
        try:
            raw.writer.write(frame(BINARY, b"\xff\xff\xff\xff not deflate", rsv=4))
            code, _ = await raw.read_close()
            assert code in (1002, 1007)
            await raw.expect_eof()
        finally:
            await raw.aclose()


async def test_eof_without_close_frame_does_not_disturb_others():
    async with server_with_bystander(compression=None) as (server, _):
        raw = await RawClient.open(server.port)
        raw.writer.write(frame(TEXT, b"partial", fin=False) + b"\x81")
        await raw.aclose()


MALFORMED_REQUESTS = {
    "garbage": (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400),
    "no host": (b"GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n", 400),
    "two hosts": (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    "bare lf": (b"GET / HTTP/1.1\nHost: a\n\n\r\n\r\n", 400),
    "space before colon": (b"GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400),
    "http/1.0": (b"GET / HTTP/1.0\r\nHost: a\r\n\r\n", 505),
    "post upgrade": (
        b"POST / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        b"Content-Length: 0\r\n\r\n",
        405,
    ),
    "bad key": (
        b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\n\r\n",
        400,
    ),
    "no connection upgrade": (
        b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        400,
    ),
}


@pytest.mark.parametrize(
    ("request_bytes", "status"), MALFORMED_REQUESTS.values(), ids=MALFORMED_REQUESTS.keys()
)
async def test_malformed_http_request_gets_4xx(request_bytes, status):
    async with server_with_bystander() as (server, _):
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        try:
            writer.write(request_bytes)
            response = await reader.read()
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        assert response.startswith(f"HTTP/1.1 {status} ".encode())
        assert b"\r\nConnection: close\r\n" in response
