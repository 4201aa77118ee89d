"""Stream a large file over REPE with ACK-based flow control, and resume after a reconnect.

The wiring follows spec section 3.7 (the repe crate's own end-to-end test):

* the client calls ``/begin`` with ``{"transfer": id, "name": file}``; that off-reader
  handler runs the whole transfer and answers at the end with ``{"sent", "bytes"}``;
* the server pushes ``/chunk`` notifies whose raw body is a JSON header line
  ``{"transfer", "through", "last"}`` followed by the chunk's bytes;
* the client acknowledges each chunk with an ordinary request ``/ack``
  ``{"transfer", "file_index": 0, "through"}``, answered ``{"ok": true}``;
* after a reconnect the client calls ``/resume`` ``{"transfer", "file_index", "offset"}``
  and the server re-sends from that offset (or answers ``{"error": reason}``).

At most ``window`` bytes are ever unacknowledged, however slow the consumer.

Run it: ``python examples/rpc_stream_file.py [FILE]`` serves FILE (4 MiB of generated
bytes by default) on loopback, downloads it, and checks the copy.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import pathlib
import sys
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from tether.rpc.client import RpcClient, rpc_connect
from tether.rpc.context import CallContext
from tether.rpc.errors import CreditCancelled, CreditTimeout
from tether.rpc.peers import SendResult
from tether.rpc.repe import BodyFormat
from tether.rpc.router import Router
from tether.rpc.server import RpcServer
from tether.rpc.streaming import ReplayChunk, TransferControl, TransferRegistry


CHUNK_SIZE = 64 * 1024
WINDOW = 1024 * 1024
CREDIT_TIMEOUT = 30.0


def encode_chunk(transfer: str, through: int, last: bool, data: bytes) -> bytes:
    header = json.dumps({"transfer": transfer, "through": through, "last": last})
    return header.encode() + b"\n" + data


def decode_chunk(body: bytes) -> tuple[dict[str, Any], bytes]:
    header, _, data = body.partition(b"\n")
    return json.loads(header), data


class Transfer:
    """One file being sent: its flow control and where its bytes come from."""

    def __init__(self, id: str, data: bytes, window: int) -> None:
        self.id = id
        self.data = data
        self.control = TransferControl(window, replay_bytes=window)
        self.chunks_sent = 0
        self.generation = 0  # the newest producer; older ones stop


class FileServer:
    """The server side: routes ``/begin``, ``/ack`` and ``/resume``.

    Args:
        files: file name -> contents.
        window: most unacknowledged bytes per transfer.
        chunk_size: bytes of file data per ``/chunk`` notify.
        idle_timeout: seconds before a silent transfer is cancelled.
    """

    def __init__(
        self,
        files: dict[str, bytes],
        *,
        window: int = WINDOW,
        chunk_size: int = CHUNK_SIZE,
        idle_timeout: float = 60.0,
    ) -> None:
        self.files = files
        self.window = window
        self.chunk_size = chunk_size
        self.transfers: TransferRegistry[str] = TransferRegistry(idle_timeout)
        self.by_id: dict[str, Transfer] = {}
        self.router = Router()
        self.router.add_json("/begin", self.begin, blocking=True, context=True)
        self.router.add_json("/ack", self.ack)
        self.router.add_json("/resume", self.resume, blocking=True, context=True)

    async def begin(self, ctx: CallContext, request: dict[str, Any]) -> dict[str, Any]:
        transfer = Transfer(request["transfer"], self.files[request["name"]], self.window)
        self.transfers.insert(transfer.id, transfer.control)
        self.by_id[transfer.id] = transfer
        assert ctx.peer is not None
        transfer.control.peer = ctx.peer
        return await self._produce(ctx, transfer, 0, ())

    def ack(self, request: dict[str, Any]) -> dict[str, Any]:
        control = self.transfers.get(request["transfer"])
        if control is None:
            return {"ok": False}
        control.record_ack(request["file_index"], request["through"])
        return {"ok": True}

    async def resume(self, ctx: CallContext, request: dict[str, Any]) -> dict[str, Any]:
        transfer = self.by_id.get(request["transfer"])
        if transfer is None:
            return {"error": "unknown_transfer"}
        result = transfer.control.request_resume(request["file_index"], request["offset"], ctx.peer)
        if not result:
            return {"error": result.reason}
        return await self._produce(ctx, transfer, request["offset"], result.chunks)

    async def _produce(
        self,
        ctx: CallContext,
        transfer: Transfer,
        offset: int,
        replay: tuple[ReplayChunk, ...],
    ) -> dict[str, Any]:
        """Send from ``offset`` to the end, within the window; return when all is acked."""
        transfer.generation += 1
        generation = transfer.generation
        control = transfer.control
        peer = ctx.peer
        assert peer is not None
        loop = asyncio.get_running_loop()
        data = transfer.data

        async def send(offset: int, length: int, last: bool, body: bytes) -> bool:
            await control.wait_for_credit(
                length, loop.time() + CREDIT_TIMEOUT, cancel_token=ctx.cancel_token
            )
            if generation != transfer.generation:
                return False  # a resume on another connection took over
            control.push_replay(offset, length, last, body)
            result = peer.send_notify("/chunk", body, BodyFormat.RAW)
            if result is SendResult.FULL:
                # The window should fit in the outbound queue; wait for it to drain.
                await control.wait_acked(loop.time() + CREDIT_TIMEOUT)
                result = peer.send_notify("/chunk", body, BodyFormat.RAW)
            if not result:
                return False  # disconnected: the consumer will ask to resume
            control.record_sent(offset + length)
            transfer.chunks_sent += 1
            return True

        try:
            for chunk in replay:
                if not await send(chunk.offset, chunk.length, chunk.last, chunk.body):
                    return {"interrupted": True}
                offset = chunk.end
            while offset < len(data) or offset == 0 == len(data):
                piece = data[offset : offset + self.chunk_size]
                end = offset + len(piece)
                last = end == len(data)
                body = encode_chunk(transfer.id, end, last, piece)
                if not await send(offset, len(piece), last, body):
                    return {"interrupted": True}
                offset = end
                if last:
                    break
            await control.wait_acked(loop.time() + CREDIT_TIMEOUT)
        except (CreditCancelled, CreditTimeout) as exc:
            return {"interrupted": True, "reason": str(exc)}
        self.transfers.remove(transfer.id)
        return {"sent": transfer.chunks_sent, "bytes": len(data)}


async def download(
    client: RpcClient,
    transfer: str,
    *,
    name: str | None = None,
    received: bytearray | None = None,
    on_chunk: Callable[[int], Awaitable[bool]] | None = None,
) -> tuple[bytearray, Any]:
    """Receive a file; with ``received``, resume the transfer after those bytes.

    Args:
        client: a connected client.
        transfer: the transfer id.
        name: the file to ask for (a new transfer).
        received: the bytes already received (a resume).
        on_chunk: awaited with the offset after each chunk, before its ACK; return
            ``False`` to stop (to simulate a crash).

    Returns:
        The bytes received, and the final answer of ``/begin`` or ``/resume`` (``None``
        when stopped).
    """
    data = received if received is not None else bytearray()
    with client.subscribe_notifies() as notifies:
        if received is None:
            call = asyncio.ensure_future(
                client.call_json("/begin", {"transfer": transfer, "name": name})
            )
        else:
            request = {"transfer": transfer, "file_index": 0, "offset": len(data)}
            call = asyncio.ensure_future(client.call_json("/resume", request))
        next_message = asyncio.ensure_future(notifies.recv())
        try:
            while True:
                done, _ = await asyncio.wait(
                    {call, next_message}, return_when=asyncio.FIRST_COMPLETED
                )
                if next_message not in done:
                    return data, call.result()  # an error, e.g. out_of_window
                message = next_message.result()
                header, piece = decode_chunk(bytes(message.body))
                if header["through"] != len(data) + len(piece):
                    continue  # a duplicate from before a resume
                data += piece
                if on_chunk is not None and not await on_chunk(len(data)):
                    call.cancel()
                    return data, None
                await client.call_json(
                    "/ack", {"transfer": transfer, "file_index": 0, "through": len(data)}
                )
                if header["last"]:
                    return data, await call
                next_message = asyncio.ensure_future(notifies.recv())
        finally:
            for future in (call, next_message):
                if not future.done():
                    future.cancel()
            await asyncio.gather(call, next_message, return_exceptions=True)


async def main(path: str | None) -> None:
    if path is None:
        contents = os.urandom(4 * 1024 * 1024)
    else:
        contents = await asyncio.to_thread(pathlib.Path(path).read_bytes)
    files = FileServer({"file": contents})
    rpc = RpcServer(files.router)
    async with rpc.serve("127.0.0.1", 0) as server:
        url = f"ws://127.0.0.1:{server.port}/repe"
        async with rpc_connect(url) as client:
            data, answer = await download(client, str(uuid.uuid4()), name="file")
        same = hashlib.sha256(data).digest() == hashlib.sha256(contents).digest()
        print(f"{answer}; copy identical: {same}")
    await files.transfers.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else None))
