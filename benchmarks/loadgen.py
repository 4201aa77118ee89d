"""A cheap WebSocket load generator built on bare sockets and asyncio protocols.

It uses none of the libraries under test: every connection writes the HTTP upgrade
request by hand, checks for ``101``, and then writes frames that were masked once before
the measurement started. The pipelined scenarios (1-3, 8-9) drive a bare non-blocking
socket (``recv_into`` one buffer, ``send`` from memoryviews); the others use
``asyncio.Protocol`` connections. Replies of the throughput scenarios are
counted from the byte count alone: every reply frame has a known length, so the number of
complete replies is ``bytes // frame_length``, and one strided slice per read checks that
the header bytes are where they should be. No object is created per message.

The RPC scenarios (8-10) work the same way: the REPE requests are encoded here with
``struct`` (no tether code), wrapped in masked frames once, and the responses and
notifies, all of one known length, are counted by bytes.

Run ``python benchmarks/loadgen.py --help``; ``benchmarks/run.py`` drives it. The result
is one JSON line on stdout. Only 127.0.0.1 is ever contacted, and every scenario stops
by itself after a bounded time.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import contextlib
import functools
import json
import os
import resource
import socket
import statistics
import struct
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar, cast


HOST = "127.0.0.1"
MASK = b"\x3a\x91\x5c\xe7"
FANOUT_PATH = "/fanout"
FANOUT_SIZE = 64
CONNECT_CONCURRENCY = 100
CLOSE_TIMEOUT = 2.0

OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x1, 0x2, 0x8, 0x9, 0xA

# REPE (scenarios 8-10), written here with struct so that no tether code runs in the
# load generator; see benchmarks/servers/tether_rpc_server.py for the other side.
RPC_PATH = "/repe"
REPE_HEADER = struct.Struct("<QHBBIQQQHHI")
REPE_SPEC, REPE_JSON_POINTER, REPE_JSON = 0x1507, 1, 2
RPC_ECHO_BODY = b'"abcdefghi"'  # 11 bytes: the request is 64 bytes, the response 59
RPC_TICK = (b"/tick", b'"0123456789abcd"')  # every notify of scenario 10: 69 bytes

P = TypeVar("P", bound="Client")


# Frames


def header(first: int, length: int, masked: bool) -> bytes:
    bit = 0x80 if masked else 0
    if length < 126:
        return bytes((first, bit | length))
    if length < 65536:
        return bytes((first, bit | 126)) + length.to_bytes(2, "big")
    return bytes((first, bit | 127)) + length.to_bytes(8, "big")


def mask_payload(payload: bytes, mask: bytes = MASK) -> bytes:
    n = len(payload)
    key = mask * ((n >> 2) + 1)
    value = int.from_bytes(payload, "little") ^ int.from_bytes(key[:n], "little")
    return value.to_bytes(n, "little")


def client_frame(opcode: int, payload: bytes) -> bytes:
    """A complete, final, masked client frame."""
    return header(0x80 | opcode, len(payload), True) + MASK + mask_payload(payload)


def server_frame_length(size: int) -> int:
    """Length on the wire of an unmasked server frame carrying ``size`` bytes."""
    return len(header(0x82, size, False)) + size


CLOSE_FRAME = client_frame(OP_CLOSE, (1000).to_bytes(2, "big"))


def repe_message(
    id: int, query: bytes, body: bytes, *, query_format: int = 0, notify: bool = False
) -> bytes:
    """One REPE message with a JSON body (version 1, ec 0)."""
    length = REPE_HEADER.size + len(query) + len(body)
    head = REPE_HEADER.pack(
        length, REPE_SPEC, 1, int(notify), 0, id, len(query), len(body),
        query_format, REPE_JSON, 0,
    )  # fmt: skip
    return head + query + body


def repe_request(id: int, path: str, body: bytes, *, notify: bool = False) -> bytes:
    """A request (or notify) for ``path`` with a JSON body."""
    return repe_message(id, path.encode(), body, query_format=REPE_JSON_POINTER, notify=notify)


def upgrade_request(port: int, path: str) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


# Connections


def refusal(head: bytes) -> ConnectionError | None:
    """The error for a response head that is not ``101 Switching Protocols``, if any."""
    if head.startswith((b"HTTP/1.1 101 ", b"HTTP/1.1 101\r")):
        return None
    status = head.split(b"\r\n", 1)[0].decode(errors="replace")
    return ConnectionError(f"handshake refused: {status}")


class Client(asyncio.Protocol):
    """Does the opening handshake, then hands every received byte to :meth:`on_data`."""

    def __init__(self, request: bytes) -> None:
        loop = asyncio.get_running_loop()
        self.request = request
        self.transport: asyncio.Transport | None = None
        self.opened: asyncio.Future[None] = loop.create_future()
        self.lost: asyncio.Future[None] = loop.create_future()
        self.upgraded = False
        self.head = b""
        self.closing = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        if self.upgraded:
            self.on_data(data)
            return
        head = self.head + data
        end = head.find(b"\r\n\r\n")
        if end < 0:
            self.head = head
            return
        self.head = b""
        refused = refusal(head)
        if refused is not None:
            if not self.opened.done():
                self.opened.set_exception(refused)
            assert self.transport is not None
            self.transport.close()
            return
        self.upgraded = True
        self.opened.set_result(None)
        if len(head) > end + 4:
            self.on_data(head[end + 4 :])

    def on_data(self, data: bytes) -> None:
        """Bytes after the handshake; idle connections ignore them."""

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(exc or ConnectionError("closed during handshake"))
        if not self.lost.done():
            self.lost.set_result(None)

    async def close(self) -> None:
        """Start the closing handshake and wait for the server to close TCP (bounded)."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        self.closing = True
        transport.write(CLOSE_FRAME)
        try:
            await asyncio.wait_for(asyncio.shield(self.lost), CLOSE_TIMEOUT)
        except TimeoutError:
            transport.abort()


class FixedCounter(Client):
    """Counts replies that are all unmasked final binary frames of one known length."""

    def __init__(self, request: bytes, reply_size: int) -> None:
        super().__init__(request)
        self.frame_length = server_frame_length(reply_size)
        self.head_bytes = header(0x82, reply_size, False)[:2]
        self.received = 0
        self.count = 0
        self.bad = 0
        self.target = 0
        self.reached: asyncio.Future[None] | None = None
        self.on_replies: Callable[[int], None] | None = None

    def on_data(self, data: bytes) -> None:
        if not self.closing:
            self.feed(data, len(data))

    def feed(self, data: bytes | bytearray, length: int) -> None:
        """Count the replies completed by ``data[:length]``."""
        size = self.frame_length
        received = self.received
        first, second = self.head_bytes
        # Header bytes 0 and 1 of every frame that starts in this chunk, in two C slices.
        for index, expected in ((0, first), (1, second)):
            column = data[(index - received) % size : length : size]
            if column.count(expected) != len(column):
                self.bad += 1
        before = received // size
        received += length
        self.received = received
        done = received // size - before
        if done:
            self.count += done
            if self.on_replies is not None:
                self.on_replies(done)
            if self.reached is not None and self.count >= self.target:
                if not self.reached.done():
                    self.reached.set_result(None)


class SocketCounter(FixedCounter):
    """A :class:`FixedCounter` on a bare non-blocking socket, for the pipelined scenarios.

    Reads go into one preallocated buffer with ``recv_into`` and writes go out from the
    caller's memoryview, resuming at an offset when the socket is full, so this process
    copies no payload byte: with 1 MiB messages, the copies and allocations of a
    transport's reads and its write buffer would otherwise cost the load generator as much
    as the server spends. The object is its own transport (``write``, ``is_closing``).
    """

    READ_SIZE = 1 << 21

    def __init__(self, request: bytes, reply_size: int) -> None:
        super().__init__(request, reply_size)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setblocking(False)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = bytearray(self.READ_SIZE)
        self.pending: collections.deque[memoryview] = collections.deque()
        self.transport = cast(asyncio.Transport, self)
        self.loop = asyncio.get_running_loop()

    async def open(self, port: int, timeout: float) -> None:
        loop, sock = self.loop, self.sock
        async with asyncio.timeout(timeout):
            await loop.sock_connect(sock, (HOST, port))
            await loop.sock_sendall(sock, self.request)
            head = b""
            while (end := head.find(b"\r\n\r\n")) < 0:
                chunk = await loop.sock_recv(sock, 4096)
                if not chunk:
                    raise ConnectionError("closed during handshake")
                head += chunk
        refused = refusal(head)
        if refused is not None:
            sock.close()
            raise refused
        self.upgraded = True
        self.opened.set_result(None)
        rest = head[end + 4 :]
        if rest:
            self.feed(rest, len(rest))
        loop.add_reader(sock.fileno(), self.readable)

    def readable(self) -> None:
        try:
            length = self.sock.recv_into(self.buffer)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            length = 0
        if length:
            self.feed(self.buffer, length)
        else:
            self.loop.remove_reader(self.sock.fileno())
            self.closing = True

    def write(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        if self.pending:
            self.pending.append(view)
            return
        try:
            sent = self.sock.send(view)
        except (BlockingIOError, InterruptedError):
            sent = 0
        if sent < len(view):
            self.pending.append(view[sent:])
            self.loop.add_writer(self.sock.fileno(), self.writable)

    def writable(self) -> None:
        pending = self.pending
        while pending:
            view = pending[0]
            try:
                sent = self.sock.send(view)
            except (BlockingIOError, InterruptedError):
                return
            if sent < len(view):
                pending[0] = view[sent:]
                return
            pending.popleft()
        self.loop.remove_writer(self.sock.fileno())

    def is_closing(self) -> bool:
        return self.closing

    async def close(self) -> None:
        """Send a close frame after what is pending, then read until the server closes."""
        loop, sock = self.loop, self.sock
        if sock.fileno() < 0:
            return
        loop.remove_reader(sock.fileno())
        loop.remove_writer(sock.fileno())
        self.closing = True
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT):
                for view in self.pending:
                    await loop.sock_sendall(sock, view)
                self.pending.clear()
                await loop.sock_sendall(sock, CLOSE_FRAME)
                while await loop.sock_recv(sock, self.READ_SIZE):
                    pass
        except (OSError, TimeoutError):
            pass
        finally:
            sock.close()


class FrameClient(Client):
    """Parses every frame (small messages at a low rate): answers pings, times echoes."""

    def __init__(self, request: bytes) -> None:
        super().__init__(request)
        self.buffer = bytearray()
        self.sent_at = 0.0
        self.outstanding = 0
        self.replies = 0
        self.latencies: list[float] = []
        self.unexpected_close = False

    def on_data(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        pos, size = 0, len(buffer)
        while size - pos >= 2:
            first, length = buffer[pos], buffer[pos + 1] & 0x7F
            start = pos + 2
            if length == 126:
                if size - start < 2:
                    break
                length = int.from_bytes(buffer[start : start + 2], "big")
                start += 2
            elif length == 127:
                if size - start < 8:
                    break
                length = int.from_bytes(buffer[start : start + 8], "big")
                start += 8
            end = start + length
            if end > size:
                break
            opcode = first & 0x0F
            if opcode == OP_PING:
                assert self.transport is not None
                self.transport.write(client_frame(OP_PONG, bytes(buffer[start:end])))
            elif opcode == OP_CLOSE:
                if not self.closing:
                    self.unexpected_close = True
            elif opcode != OP_PONG and first & 0x80:
                self.replies += 1
                if self.outstanding:
                    self.outstanding -= 1
                    self.latencies.append(time.perf_counter() - self.sent_at)
            pos = end
        if pos:
            del buffer[:pos]

    def send(self, frame: bytes) -> bool:
        transport = self.transport
        if transport is None or transport.is_closing():
            return False
        self.sent_at = time.perf_counter()
        self.outstanding += 1
        transport.write(frame)
        return True


async def open_client(port: int, factory: Callable[[], P], timeout: float = 10.0) -> P:
    loop = asyncio.get_running_loop()
    _, protocol = await asyncio.wait_for(loop.create_connection(factory, HOST, port), timeout)
    await asyncio.wait_for(asyncio.shield(protocol.opened), timeout)
    return protocol


async def open_many(port: int, factory: Callable[[], P], count: int) -> tuple[list[P], int]:
    """Open ``count`` connections, at most CONNECT_CONCURRENCY handshakes at a time."""
    semaphore = asyncio.Semaphore(CONNECT_CONCURRENCY)
    clients: list[P] = []
    failures = 0

    async def one() -> None:
        nonlocal failures
        async with semaphore:
            try:
                clients.append(await open_client(port, factory))
            except (OSError, TimeoutError, ConnectionError):
                failures += 1

    await asyncio.gather(*(one() for _ in range(count)))
    return clients, failures


async def close_all(clients: list[Any]) -> None:
    for chunk in chunks(clients, 500):
        await asyncio.gather(*(client.close() for client in chunk))


def chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# Measurements of CPU and memory


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def process_cpu(pid: int | None) -> float:
    if pid is None:
        return 0.0
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


class Window:
    """Wall time and CPU time of both processes over one measurement window."""

    def __init__(self, server_pid: int | None) -> None:
        self.pid = server_pid
        self.start()

    def start(self) -> None:
        self.t0 = time.perf_counter()
        self.cpu0 = own_cpu()
        self.srv0 = process_cpu(self.pid)

    def stop(self) -> dict[str, float]:
        elapsed = time.perf_counter() - self.t0
        return {
            "elapsed": elapsed,
            "gen_cpu": (own_cpu() - self.cpu0) / elapsed,
            "srv_cpu": (process_cpu(self.pid) - self.srv0) / elapsed if self.pid else -1.0,
        }


# Scenarios


async def pipelined(
    args: argparse.Namespace,
    path: str,
    frames: list[bytes],
    reply_size: int,
    connections: int = 1,
) -> tuple[int, int, dict[str, float]]:
    """Keep ``len(frames)`` requests outstanding on each connection; count the replies.

    The frames are written once at the start and then, for every ``k`` replies on a
    connection, the first ``k`` of them again (one slice of a prebuilt buffer, one write).

    Returns:
        Replies counted in the window, frames with a wrong header, and the window stats.
    """
    request = upgrade_request(args.port, path)
    clients: list[SocketCounter] = []
    try:
        for _ in range(connections):
            client = SocketCounter(request, reply_size)
            clients.append(client)
            await client.open(args.port, 10.0)
    except BaseException:
        await close_all(clients)
        raise
    batch = memoryview(b"".join(frames))
    length = len(frames[0])
    assert all(len(frame) == length for frame in frames)
    running = True

    def refiller(transport: asyncio.Transport) -> Callable[[int], None]:
        def refill(done: int) -> None:
            if running:
                transport.write(batch[: done * length])

        return refill

    for client in clients:
        assert client.transport is not None
        client.on_replies = refiller(client.transport)
        client.transport.write(batch)
    await asyncio.sleep(args.warmup)
    count0 = sum(client.count for client in clients)
    window = Window(args.server_pid)
    await asyncio.sleep(args.duration)
    count = sum(client.count for client in clients) - count0
    stats = window.stop()
    running = False
    await close_all(clients)
    return count, sum(client.bad for client in clients), stats


async def echo(args: argparse.Namespace, size: int, in_flight: int) -> dict[str, Any]:
    """Scenarios 1-3: one connection, ``in_flight`` messages always outstanding."""
    frames = [client_frame(OP_BINARY, bytes(size))] * in_flight
    count, bad, stats = await pipelined(args, "/", frames, size)
    rate = count / stats["elapsed"]
    result: dict[str, Any] = {"messages": count, "errors": bad, **stats}
    if size >= 1024:
        result.update(value=rate * size / 1e6, unit="MB/s")
    else:
        result.update(value=rate, unit="msg/s")
    return result


async def rpc_calls(args: argparse.Namespace, connections: int, in_flight: int) -> dict[str, Any]:
    """Scenarios 8-9: REPE ``/echo`` calls with a JSON body, pipelined.

    Each connection has ``in_flight`` requests outstanding with ids 1..in_flight (ids are
    reused once answered, as a client reuses free ids; the server only echoes them).
    Responses are counted by length: 48 header bytes, an empty query and the same body.
    """
    frames = [
        client_frame(OP_BINARY, repe_request(i, "/echo", RPC_ECHO_BODY))
        for i in range(1, in_flight + 1)
    ]
    reply_size = REPE_HEADER.size + len(RPC_ECHO_BODY)
    count, bad, stats = await pipelined(args, RPC_PATH, frames, reply_size, connections)
    return {
        "value": count / stats["elapsed"],
        "unit": "calls/s",
        "calls": count,
        "connections": connections,
        "in_flight": in_flight,
        "errors": bad,
        **stats,
    }


async def rounds(
    args: argparse.Namespace,
    clients: list[FixedCounter],
    trigger: bytes,
    messages: int,
    round_timeout: float,
) -> dict[str, Any]:
    """Fan-out rounds: ``trigger`` on the first client, then wait for every delivery.

    Round 0 warms up; rounds run until ``--warmup + --duration`` is over (at least 3).
    The figure is the median rate of the measured rounds.
    """
    rates: list[float] = []
    errors = 0
    window: Window | None = None
    deadline = time.perf_counter() + args.warmup + args.duration
    round_number = 0
    while round_number < 3 or time.perf_counter() < deadline:
        loop = asyncio.get_running_loop()
        for client in clients:
            client.target = client.count + messages
            client.reached = loop.create_future()
        if round_number == 1:  # round 0 warms up
            window = Window(args.server_pid)
        started = time.perf_counter()
        assert clients[0].transport is not None
        clients[0].transport.write(trigger)
        waiting = [client.reached for client in clients if client.reached is not None]
        try:
            await asyncio.wait_for(asyncio.gather(*waiting), round_timeout)
        except TimeoutError:
            errors += 1
            break
        if round_number:
            rates.append(len(clients) * messages / (time.perf_counter() - started))
        round_number += 1
        if round_number >= 200:
            break
    stats = window.stop() if window is not None else {}
    errors += sum(client.bad for client in clients)
    await close_all(clients)
    result: dict[str, Any] = {
        "value": statistics.median(rates) if rates else 0.0,
        "unit": "deliveries/s",
        "rounds": len(rates),
        "errors": errors,
        **stats,
    }
    if not rates:
        result["failure"] = "no round completed"
    return result


async def open_subscribers(
    args: argparse.Namespace, path: str, size: int
) -> tuple[list[FixedCounter], dict[str, Any] | None]:
    """``--clients`` counting connections; a failure result if any of them failed."""
    request = upgrade_request(args.port, path)
    clients, failures = await open_many(
        args.port, lambda: FixedCounter(request, size), args.clients
    )
    if failures or not clients:
        await close_all(clients)
        failure = f"{failures} of {args.clients} connections failed"
        return [], {"value": 0.0, "unit": "deliveries/s", "errors": failures, "failure": failure}
    await asyncio.sleep(0.2)  # let the server register the last subscribers
    return clients, None


async def fanout(args: argparse.Namespace) -> dict[str, Any]:
    """Scenario 4: one trigger, ``--messages`` messages to each of ``--clients`` clients."""
    clients, failed = await open_subscribers(args, FANOUT_PATH, FANOUT_SIZE)
    if failed is not None:
        return failed
    trigger = client_frame(OP_TEXT, str(args.messages).encode())
    return await rounds(args, clients, trigger, args.messages, 60.0)


async def rpc_fanout(args: argparse.Namespace) -> dict[str, Any]:
    """Scenario 10: a ``/fanout`` notify makes the server ``broadcast_notify_json``
    ``--messages`` times to its ``--clients`` peers; deliveries per second."""
    path, body = RPC_TICK
    size = REPE_HEADER.size + len(path) + len(body)
    clients, failed = await open_subscribers(args, RPC_PATH, size)
    if failed is not None:
        return failed
    trigger = client_frame(
        OP_BINARY, repe_request(0, "/fanout", str(args.messages).encode(), notify=True)
    )
    # A notify that did not fit in a peer's queue never comes: the round times out.
    return await rounds(args, clients, trigger, args.messages, 30.0)


async def memory(args: argparse.Namespace) -> dict[str, Any]:
    """Scenario 5: server RSS growth per idle, open connection."""
    if args.server_pid is None:
        raise SystemExit("scenario 5 needs --server-pid")
    request = upgrade_request(args.port, "/")
    warm, _ = await open_many(args.port, lambda: Client(request), 10)
    await asyncio.sleep(0.5)
    before = rss_kib(args.server_pid)
    clients, failures = await open_many(args.port, lambda: Client(request), args.connections)
    await asyncio.sleep(1.0)
    after = rss_kib(args.server_pid)
    await close_all(clients + warm)
    if not clients or not warm:
        return {"value": 0.0, "unit": "KiB/conn", "errors": failures, "failure": "no connection"}
    opened = len(clients)
    return {
        "value": (after - before) / opened,
        "unit": "KiB/conn",
        "connections": len(clients),
        "rss_before_kib": before,
        "rss_after_kib": after,
        "errors": failures,
    }


async def churn(args: argparse.Namespace) -> dict[str, Any]:
    """Scenario 6: connect, handshake, closing handshake, TCP close; cycles per second."""
    deadline = time.perf_counter() + args.warmup + args.duration
    measure_from = time.perf_counter() + args.warmup
    done = 0
    errors = 0
    window: Window | None = None

    async def worker() -> None:
        nonlocal done, errors, window
        while (now := time.perf_counter()) < deadline:
            if window is None and now >= measure_from:
                window = Window(args.server_pid)
            request = upgrade_request(args.port, "/")
            try:
                client = await open_client(args.port, functools.partial(Client, request))
                await client.close()
            except (OSError, TimeoutError, ConnectionError):
                errors += 1
                continue
            if window is not None:
                done += 1

    await asyncio.gather(*(worker() for _ in range(args.workers)))
    stats = window.stop() if window is not None else {"elapsed": args.duration}
    if not done:
        return {"value": 0.0, "unit": "conn/s", "errors": errors, "failure": "no cycle completed"}
    return {
        "value": done / stats["elapsed"],
        "unit": "conn/s",
        "errors": errors,
        **stats,
    }


async def capacity(args: argparse.Namespace) -> dict[str, Any]:
    """Scenario 7: N connections, each echoing one message a second for T seconds."""
    request = upgrade_request(args.port, "/")
    clients, failures = await open_many(args.port, lambda: FrameClient(request), args.connections)
    if not clients:
        return {"value": failures, "unit": "errors", "errors": failures, "failure": "no connection"}
    frame = client_frame(OP_BINARY, bytes(64))
    slots = 20  # a tick every 50 ms sends for 1/20 of the connections
    groups = [clients[i::slots] for i in range(slots)]
    sent = send_failures = 0
    window = Window(args.server_pid)
    start = time.perf_counter()
    tick = 0
    while time.perf_counter() < start + args.seconds:
        for client in groups[tick % slots]:
            if client.outstanding:
                continue  # the previous echo is late; counted below if it never comes
            if client.send(frame):
                sent += 1
            else:
                send_failures += 1
        tick += 1
        await asyncio.sleep(max(0.0, start + tick / slots - time.perf_counter()))
    for _ in range(100):  # up to 5 s of grace for the last echoes
        if not any(c.outstanding for c in clients):
            break
        await asyncio.sleep(0.05)
    stats = window.stop()
    missing = sum(c.outstanding for c in clients)
    closed = sum(1 for c in clients if c.unexpected_close or c.lost.done())
    latencies = sorted(x for c in clients for x in c.latencies)
    await close_all(clients)
    p99 = latencies[int(len(latencies) * 0.99)] * 1000 if latencies else 0.0
    return {
        "value": failures + send_failures + missing + closed,
        "unit": "errors",
        "connections": len(clients),
        "sent": sent,
        "replies": sum(c.replies for c in clients),
        "p99_ms": p99,
        "errors": failures + send_failures + missing + closed,
        **stats,
    }


SCENARIOS: dict[int, Callable[[argparse.Namespace], Awaitable[dict[str, Any]]]] = {
    1: lambda args: echo(args, 64, 64),
    2: lambda args: echo(args, 64, 1),
    3: lambda args: echo(args, 1024 * 1024, 4),
    4: fanout,
    5: memory,
    6: churn,
    7: capacity,
    8: lambda args: rpc_calls(args, 1, 64),
    9: lambda args: rpc_calls(args, 100, 8),
    10: rpc_fanout,
}


def raise_nofile_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    if soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
    return soft


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else "")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--scenario", type=int, choices=sorted(SCENARIOS), required=True)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds measured")
    parser.add_argument("--warmup", type=float, default=0.5, help="seconds before measuring")
    parser.add_argument("--server-pid", type=int, help="server process (CPU, RSS)")
    parser.add_argument("--clients", type=int, default=100, help="fan-out clients (4, 10)")
    parser.add_argument("--messages", type=int, default=1000, help="fan-out messages (4, 10)")
    parser.add_argument("--connections", type=int, default=1000, help="connections (5, 7)")
    parser.add_argument("--workers", type=int, default=8, help="concurrent churn loops (6)")
    parser.add_argument("--seconds", type=float, default=10.0, help="capacity run length (7)")
    parser.add_argument("--asyncio", action="store_true", help="do not use uvloop here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    limit = raise_nofile_limit()
    if max(args.connections, args.clients) + 64 > limit:
        needed = max(args.connections, args.clients)
        raise SystemExit(f"{needed} connections need more than {limit} files")
    scenario = SCENARIOS[args.scenario]
    runner: Callable[[Any], dict[str, Any]] = asyncio.run
    if not args.asyncio:
        try:
            import uvloop
        except ImportError:
            pass
        else:
            runner = uvloop.run
    try:
        result = runner(scenario(args))
    except (OSError, ConnectionError, TimeoutError) as exc:
        result = {"value": 0.0, "unit": "", "errors": 1, "failure": repr(exc)}
    result["scenario"] = args.scenario
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
