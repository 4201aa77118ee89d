"""Streaming flow control (spec section 3.7): TransferControl, TransferRegistry, the example."""

import asyncio
import importlib.util
import os
import pathlib

import pytest
from memory import until

from tether.rpc.client import rpc_connect
from tether.rpc.context import CancelToken
from tether.rpc.errors import CreditCancelled, CreditTimeout
from tether.rpc.server import RpcServer
from tether.rpc.streaming import (
    OUT_OF_WINDOW,
    TRANSFER_CANCELLED,
    WRONG_FILE_INDEX,
    TransferControl,
    TransferRegistry,
)


def load_example():
    path = pathlib.Path(__file__).parents[2] / "examples" / "rpc_stream_file.py"
    spec = importlib.util.spec_from_file_location("rpc_stream_file", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


example = load_example()


async def test_credit_window():
    control = TransferControl(100)
    await control.wait_for_credit(500)  # nothing in flight: a big chunk goes through
    control.record_sent(60)
    await control.wait_for_credit(40)
    control.record_sent(100)
    waiting = asyncio.ensure_future(control.wait_for_credit(30))
    await asyncio.sleep(0)
    assert not waiting.done()
    assert not control.record_ack(1, 50)  # another file: ignored
    assert control.record_ack(0, 50)
    await waiting
    assert not control.record_ack(0, 40)  # not advancing
    assert control.record_ack(0, 1000)  # capped at what was sent
    assert (control.acked, control.in_flight, control.max_in_flight) == (100, 0, 100)


async def test_credit_timeout_and_cancel():
    loop = asyncio.get_running_loop()
    control = TransferControl(10)
    control.record_sent(10)
    with pytest.raises(CreditTimeout, match="10 bytes in flight"):
        await control.wait_for_credit(5, loop.time() + 0.01)
    waiting = asyncio.ensure_future(control.wait_for_credit(5))
    await asyncio.sleep(0)
    control.cancel("user asked")
    control.cancel("again")  # sticky: the first reason stays
    with pytest.raises(CreditCancelled, match="transfer cancelled: user asked"):
        await waiting
    with pytest.raises(CreditCancelled):
        await control.wait_for_credit(1)
    assert control.request_resume(0, 0).reason == TRANSFER_CANCELLED
    # A connection's token interrupts the wait without cancelling the transfer.
    other = TransferControl(10)
    other.record_sent(10)
    token = CancelToken()
    waiting = asyncio.ensure_future(other.wait_for_credit(5, cancel_token=token))
    await asyncio.sleep(0)
    token.cancel("peer disconnected")
    with pytest.raises(CreditCancelled, match="peer disconnected"):
        await waiting
    assert not other.cancelled


async def test_replay_ring_and_resume():
    control = TransferControl(1000, replay_bytes=30)
    for offset in range(0, 50, 10):
        control.push_replay(offset, 10, offset == 40, f"chunk{offset}".encode())
        control.record_sent(offset + 10)
    # The ring keeps 30 bytes: chunks 20, 30, 40.
    assert control.request_resume(0, 10).reason == OUT_OF_WINDOW
    assert control.request_resume(0, 25).reason == OUT_OF_WINDOW
    assert control.request_resume(1, 20).reason == WRONG_FILE_INDEX
    result = control.request_resume(0, 30, peer="new peer")
    assert result
    assert [chunk.offset for chunk in result.chunks] == [30, 40]
    assert result.chunks[-1].last
    assert (control.sent, control.acked, control.peer) == (30, 30, "new peer")
    # Re-sending does not duplicate ring entries; ACKs trim the ring.
    control.push_replay(30, 10, False, b"chunk30")
    control.record_sent(50)
    assert control.record_ack(0, 40)
    assert control.request_resume(0, 30).reason == OUT_OF_WINDOW
    assert [c.offset for c in control.request_resume(0, 40).chunks] == [40]
    assert control.request_resume(0, 40).ok  # the end of what was sent
    control.advance_to_file(1)
    assert (control.file_index, control.sent, control.acked) == (1, 0, 0)
    assert control.request_resume(1, 0)  # 0 on an empty ring


async def test_watchdog_cancels_idle_transfers():
    registry = TransferRegistry(idle_timeout=0.05)
    idle, busy = TransferControl(), TransferControl()
    registry.insert("idle", idle)
    registry.insert("busy", busy)
    assert "idle" in registry
    assert len(registry) == 2
    while not idle.cancelled:
        busy.touch()
        await asyncio.sleep(0.01)
    assert idle.cancel_reason == "idle timeout"
    assert not busy.cancelled
    assert registry.remove("idle") is idle
    assert registry.get("idle") is None
    await registry.close()


@pytest.fixture
async def file_server():
    contents = os.urandom(512 * 1024 + 123)
    files = example.FileServer({"file": contents}, window=64 * 1024, chunk_size=8 * 1024)
    rpc = RpcServer(files.router)
    server = await rpc.serve("127.0.0.1", 0)
    yield files, contents, f"ws://127.0.0.1:{server.port}/repe"
    await rpc.shutdown(2.0)
    await files.transfers.close()


async def test_slow_consumer_stays_within_the_window(file_server):
    files, contents, url = file_server
    peaks = []

    async def slow(offset):
        for _ in range(3):  # a consumer slower than the producer
            await asyncio.sleep(0)
        peaks.append(files.by_id["t1"].control.in_flight)
        return True

    async with rpc_connect(url) as client:
        data, answer = await example.download(client, "t1", name="file", on_chunk=slow)
    assert data == contents
    assert answer == {"sent": 65, "bytes": len(contents)}
    control = files.by_id["t1"].control
    assert control.max_in_flight <= 64 * 1024
    assert max(peaks) <= 64 * 1024
    assert control.max_in_flight > 8 * 1024  # the window was used, not one chunk at a time


async def test_resume_after_reconnect(file_server):
    files, contents, url = file_server

    async def crash_after_100k(offset):
        return offset < 100 * 1024

    client = await rpc_connect(url)
    data, answer = await example.download(client, "t2", name="file", on_chunk=crash_after_100k)
    assert answer is None
    assert 100 * 1024 <= len(data) < len(contents)
    client.stream.transport.abort()  # the network fails
    await client.wait_closed()
    # The old producer stops when the server sees its connection go.
    await until(lambda: not files.by_id["t2"].control.peer.connected)
    async with rpc_connect(url) as client:
        # An offset that is not a chunk boundary is refused.
        bad = await client.call_json(
            "/resume", {"transfer": "t2", "file_index": 0, "offset": len(data) - 1}
        )
        assert bad == {"error": "out_of_window"}
        data, answer = await example.download(client, "t2", received=bytearray(data))
    assert data == contents
    assert answer["bytes"] == len(contents)
    assert files.by_id["t2"].control.max_in_flight <= 64 * 1024
