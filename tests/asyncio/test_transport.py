"""tether's socket transport and accept loop, over real loopback sockets."""

import asyncio
import fcntl
import logging
import os
import resource
import socket
import struct
import termios

import pytest
import uvloop

from tether.asyncio import transport as transport_module
from tether.asyncio.client import connect
from tether.asyncio.server import serve
from tether.asyncio.transport import Listener, SocketTransport, supports_loop

from ..utils import until


class Recorder(asyncio.BufferedProtocol):
    """Records what a transport tells its protocol."""

    def __init__(self, keep_open=False):
        self.keep_open = keep_open
        self.events = []
        self.data = bytearray()
        self.buffer = bytearray(16384)
        self.lost = asyncio.get_running_loop().create_future()
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport
        self.events.append("made")

    def get_buffer(self, sizehint):
        return memoryview(self.buffer)

    def buffer_updated(self, nbytes):
        self.data += self.buffer[:nbytes]

    def eof_received(self):
        self.events.append("eof")
        return self.keep_open

    def pause_writing(self):
        self.events.append("pause")

    def resume_writing(self):
        self.events.append("resume")

    def connection_lost(self, exc):
        self.events.append("lost")
        self.lost.set_result(exc)


def tcp_pair():
    """Two connected non-blocking TCP sockets over loopback."""
    with socket.create_server(("127.0.0.1", 0)) as listening:
        peer = socket.create_connection(listening.getsockname())
        ours, _ = listening.accept()
    ours.setblocking(False)
    peer.setblocking(False)
    return ours, peer


@pytest.fixture
async def pair():
    """A SocketTransport with a Recorder on one end, a plain socket on the other."""
    ours, peer = tcp_pair()
    protocol = Recorder()
    transport = SocketTransport(asyncio.get_running_loop(), ours, protocol, peer.getsockname())
    yield transport, protocol, peer
    transport.abort()
    await protocol.lost
    peer.close()


def small_buffers(transport, peer):
    """Make the kernel buffer little, so that large writes are buffered by the transport."""
    transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)


async def read_exactly(peer, size):
    loop = asyncio.get_running_loop()
    data = bytearray()
    while len(data) < size:
        chunk = await loop.sock_recv(peer, 65536)
        assert chunk, f"EOF after {len(data)} of {size} bytes"
        data += chunk
    return bytes(data)


async def read_to_eof(peer):
    loop = asyncio.get_running_loop()
    data = bytearray()
    while chunk := await loop.sock_recv(peer, 65536):
        data += chunk
    return bytes(data)


async def test_reads_writes_and_reports_the_addresses(pair):
    transport, protocol, peer = pair
    loop = asyncio.get_running_loop()
    assert protocol.events == ["made"]
    assert protocol.transport is transport
    await loop.sock_sendall(peer, b"hello")
    await until(lambda: protocol.data == b"hello")
    transport.write(b"world")
    assert await read_exactly(peer, 5) == b"world"
    assert transport.get_extra_info("peername") == peer.getsockname()
    assert transport.get_extra_info("sockname") == peer.getpeername()
    assert transport.get_extra_info("sockname") == peer.getpeername()  # cached
    assert isinstance(transport.get_extra_info("socket"), socket.socket)
    assert transport.get_extra_info("sslcontext") is None
    assert transport.get_extra_info("nothing", "default") == "default"
    assert transport.get_protocol() is protocol
    assert transport.is_reading()
    assert not transport.is_closing()
    assert "open" in repr(transport)


async def test_large_writes_are_buffered_with_flow_control(pair):
    transport, protocol, peer = pair
    small_buffers(transport, peer)
    transport.set_write_buffer_limits(high=64 * 1024, low=16 * 1024)
    assert transport.get_write_buffer_limits() == (16 * 1024, 64 * 1024)
    payload = bytes(range(256)) * 4096  # 1 MiB
    transport.write(payload)
    assert transport.get_write_buffer_size() > 64 * 1024
    assert protocol.events == ["made", "pause"]
    assert await read_exactly(peer, len(payload)) == payload
    await until(lambda: transport.get_write_buffer_size() == 0)
    assert protocol.events == ["made", "pause", "resume"]


async def test_buffered_bytes_are_copied_from_mutable_buffers(pair):
    transport, _protocol, peer = pair
    small_buffers(transport, peer)
    first = bytes(1 << 20)
    transport.write(first)
    assert transport.get_write_buffer_size() > 0
    mutable = bytearray(b"a" * 1000)
    view = memoryview(bytearray(b"b" * 1000))
    transport.write(mutable)
    transport.write(view)
    mutable[:] = b"x" * 1000
    view[:] = b"y" * 1000
    assert await read_exactly(peer, len(first) + 2000) == first + b"a" * 1000 + b"b" * 1000


async def test_memoryviews_of_wider_items_are_written_as_bytes(pair):
    transport, _protocol, peer = pair
    words = memoryview(struct.pack("<4I", 1, 2, 3, 4)).cast("I")
    transport.write(words)
    assert await read_exactly(peer, 16) == struct.pack("<4I", 1, 2, 3, 4)


async def test_writelines_sends_pieces_in_order(pair):
    transport, _protocol, peer = pair
    wide = memoryview(struct.pack("<2I", 7, 8)).cast("I")  # 2 items, 8 bytes
    pieces = [b"head", bytearray(b"-middle-"), memoryview(b"tail"), b"", wide]
    transport.writelines(pieces)
    assert await read_exactly(peer, 24) == b"head-middle-tail" + struct.pack("<2I", 7, 8)
    # Pieces larger than the kernel takes: the rest is buffered, in order.
    small_buffers(transport, peer)
    big = [bytes([i]) * 300_000 for i in range(4)]
    transport.writelines(big)
    assert transport.get_write_buffer_size() > 0
    # While something is buffered, pieces queue behind it.
    transport.writelines([b"x", b"y"])
    assert await read_exactly(peer, 1_200_002) == b"".join(big) + b"xy"


async def test_close_writes_what_is_buffered_then_closes(pair):
    transport, protocol, peer = pair
    small_buffers(transport, peer)
    payload = bytes(range(256)) * 2048
    transport.write(payload)
    transport.close()
    transport.close()  # idempotent
    assert transport.is_closing()
    assert not transport.is_reading()
    transport.write(b"ignored after close")
    assert await read_to_eof(peer) == payload
    assert await protocol.lost is None
    assert protocol.events.count("lost") == 1
    assert transport.get_extra_info("socket") is None
    assert "closed" in repr(transport)


async def test_abort_drops_what_is_buffered(pair):
    transport, protocol, peer = pair
    small_buffers(transport, peer)
    payload = bytes(4 << 20)
    transport.write(payload)
    transport.abort()
    assert await protocol.lost is None
    assert transport.get_write_buffer_size() == 0
    received = await read_to_eof(peer)
    assert len(received) < len(payload)
    transport.abort()  # nothing happens twice
    assert protocol.events.count("lost") == 1


async def test_peer_eof_closes_unless_the_protocol_keeps_it_open():
    loop = asyncio.get_running_loop()
    for keep_open in (False, True):
        ours, peer = tcp_pair()
        protocol = Recorder(keep_open=keep_open)
        transport = SocketTransport(loop, ours, protocol)
        await loop.sock_sendall(peer, b"last words")
        peer.shutdown(socket.SHUT_WR)
        await until(lambda p=protocol: "eof" in p.events)
        assert protocol.data == b"last words"
        assert not transport.is_reading()
        if keep_open:
            assert not transport.is_closing()
            transport.write(b"answer after EOF")
            assert await read_exactly(peer, 16) == b"answer after EOF"
            transport.resume_reading()  # reading does not start again after EOF
            assert not transport.is_reading()
            transport.close()
        assert await protocol.lost is None
        assert await read_to_eof(peer) == b""
        peer.close()


async def test_reading_can_be_paused_and_resumed(pair):
    transport, protocol, peer = pair
    loop = asyncio.get_running_loop()
    transport.pause_reading()
    transport.pause_reading()
    assert not transport.is_reading()
    await loop.sock_sendall(peer, b"while paused")
    # Not watched by the event loop while paused: the bytes are there, turns of the loop
    # pass (each polls the sockets), and nothing is read.
    for _ in range(3):
        await asyncio.sleep(0)
    assert protocol.data == b""
    if isinstance(loop, asyncio.SelectorEventLoop):
        with pytest.raises(KeyError):
            loop._selector.get_key(transport.get_extra_info("socket").fileno())
    transport.resume_reading()
    assert transport.is_reading()
    await until(lambda: protocol.data == b"while paused")


class ReadSizes(Recorder):
    """A Recorder with a small buffer that keeps the size of every read."""

    def __init__(self, pause_after=None):
        super().__init__()
        self.buffer = bytearray(4096)
        self.reads = []
        self.pause_after = pause_after

    def buffer_updated(self, nbytes):
        super().buffer_updated(nbytes)
        self.reads.append(nbytes)
        if len(self.reads) == self.pause_after:
            self.transport.pause_reading()


def queued(sock):
    """Bytes waiting in ``sock``'s receive queue."""
    return struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.FIONREAD, bytes(4)))[0]


def loop_read_callback(transport):
    """Call the read callback the event loop calls: the C one, or the Python one without it."""
    if transport_module._c_read_ready is not None:
        transport_module._c_read_ready(transport)
    else:
        transport._read_ready()


READ_CALLBACKS = {"loop": loop_read_callback, "python": SocketTransport._read_ready}


async def queued_transport(protocol, size):
    """A SocketTransport for ``protocol`` with ``size`` random bytes waiting to be read."""
    ours, peer = tcp_pair()
    transport = SocketTransport(asyncio.get_running_loop(), ours, protocol, peer.getsockname())
    transport.pause_reading()
    data = os.urandom(size)
    peer.setblocking(True)
    peer.sendall(data)  # fits in the loopback socket buffers
    await until(lambda: queued(ours) == size)
    transport.resume_reading()
    return transport, peer, data


@pytest.mark.parametrize("read", READ_CALLBACKS.values(), ids=READ_CALLBACKS.keys())
async def test_a_read_that_fills_the_buffer_is_followed_by_another(read):
    protocol = ReadSizes()
    size, limit = len(protocol.buffer), transport_module._MAX_READS
    transport, peer, data = await queued_transport(protocol, size * (limit + 1) + 100)
    try:
        # One callback reads again while each read fills the buffer, up to the bound.
        read(transport)
        assert protocol.reads == [size] * limit
        # The next one takes the rest: a read that does not fill the buffer ends it.
        read(transport)
        assert protocol.reads == [size] * (limit + 1) + [100]
        assert protocol.data == data
        read(transport)  # nothing left to read
        assert len(protocol.reads) == limit + 2
    finally:
        transport.abort()
        await protocol.lost
        peer.close()


@pytest.mark.parametrize("read", READ_CALLBACKS.values(), ids=READ_CALLBACKS.keys())
async def test_reading_again_stops_when_the_protocol_pauses_or_closes(read):
    protocol = ReadSizes(pause_after=2)
    size = len(protocol.buffer)
    transport, peer, _ = await queued_transport(protocol, size * 8)
    try:
        read(transport)
        assert protocol.reads == [size, size]
        assert not transport.is_reading()
        transport.resume_reading()
        reads_then_closes = []

        def close_after_a_read(nbytes):
            reads_then_closes.append(nbytes)
            transport.abort()

        protocol.buffer_updated = close_after_a_read
        read(transport)
        assert reads_then_closes == [size]
        assert transport.is_closing()
        read(transport)  # a callback collected before the close reads nothing
        assert reads_then_closes == [size]
    finally:
        transport.abort()
        await protocol.lost
        peer.close()


async def test_write_eof_half_closes(pair):
    transport, protocol, peer = pair
    loop = asyncio.get_running_loop()
    assert transport.can_write_eof()
    transport.write(b"done")
    transport.write_eof()
    transport.write_eof()
    assert await read_to_eof(peer) == b"done"
    with pytest.raises(RuntimeError):
        transport.write(b"more")
    with pytest.raises(RuntimeError):
        transport.writelines([b"more", b"pieces"])
    # The other direction still works.
    await loop.sock_sendall(peer, b"reply")
    await until(lambda: protocol.data == b"reply")


async def test_write_eof_waits_for_the_buffer(pair):
    transport, _protocol, peer = pair
    small_buffers(transport, peer)
    payload = bytes(1 << 20)
    transport.write(payload)
    transport.write_eof()
    assert await read_to_eof(peer) == payload


async def test_bad_arguments_are_refused(pair):
    transport, protocol, _peer = pair
    with pytest.raises(TypeError):
        transport.write("text")
    with pytest.raises(ValueError):
        transport.set_write_buffer_limits(high=10, low=20)
    transport.set_write_buffer_limits(low=1000)
    assert transport.get_write_buffer_limits() == (1000, 4000)
    transport.set_write_buffer_limits()
    assert transport.get_write_buffer_limits() == (16384, 65536)
    with pytest.raises(TypeError):
        transport.set_protocol(asyncio.Protocol())
    other = Recorder()
    transport.set_protocol(other)
    assert transport.get_protocol() is other
    transport.set_protocol(protocol)


async def test_a_reset_is_reported_to_the_protocol(pair):
    transport, protocol, peer = pair
    transport.pause_reading()  # so that the buffered write meets the reset
    small_buffers(transport, peer)
    transport.write(bytes(4 << 20))
    assert transport.get_write_buffer_size() > 0
    # Close with a reset (SO_LINGER 0) and unread data.
    peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    peer.close()
    exc = await protocol.lost
    assert isinstance(exc, ConnectionError)
    assert transport.is_closing()


async def test_a_failing_protocol_is_reported_and_its_connection_closed(pair):
    transport, protocol, peer = pair
    loop = asyncio.get_running_loop()
    reported = []
    loop.set_exception_handler(lambda loop, context: reported.append(context))
    try:

        def fail(nbytes):
            raise ValueError("bad protocol")

        protocol.buffer_updated = fail
        await loop.sock_sendall(peer, b"boom")
        assert isinstance(await protocol.lost, ValueError)
        assert [type(c["exception"]) for c in reported] == [ValueError]
        assert reported[0]["transport"] is transport
        assert await read_to_eof(peer) == b""
    finally:
        loop.set_exception_handler(None)


async def test_failures_in_other_callbacks_are_reported_too():
    loop = asyncio.get_running_loop()
    reported = []
    loop.set_exception_handler(lambda loop, context: reported.append(context["message"]))
    try:
        # connection_made
        ours, peer = tcp_pair()
        protocol = Recorder()
        protocol.connection_made = lambda transport: 1 / 0
        transport = SocketTransport(loop, ours, protocol)
        assert isinstance(await protocol.lost, ZeroDivisionError)
        peer.close()

        # get_buffer
        ours, peer = tcp_pair()
        protocol = Recorder()
        protocol.get_buffer = lambda sizehint: 1 / 0
        transport = SocketTransport(loop, ours, protocol)
        await loop.sock_sendall(peer, b"x")
        assert isinstance(await protocol.lost, ZeroDivisionError)
        peer.close()

        # eof_received
        ours, peer = tcp_pair()
        protocol = Recorder()
        protocol.eof_received = lambda: 1 / 0
        transport = SocketTransport(loop, ours, protocol)
        peer.shutdown(socket.SHUT_WR)
        assert isinstance(await protocol.lost, ZeroDivisionError)
        peer.close()

        # pause_writing: reported, the transport goes on.
        ours, peer = tcp_pair()
        protocol = Recorder()
        protocol.pause_writing = lambda: 1 / 0
        transport = SocketTransport(loop, ours, protocol)
        small_buffers(transport, peer)
        transport.write(bytes(1 << 20))
        assert not transport.is_closing()
        transport.abort()
        await protocol.lost
        peer.close()
    finally:
        loop.set_exception_handler(None)
    assert reported == [
        "protocol.connection_made() failed",
        "protocol.get_buffer() failed",
        "protocol.eof_received() failed",
        "protocol.pause_writing() failed",
    ]


async def test_the_protocol_is_released_after_connection_lost(pair):
    transport, protocol, _peer = pair
    transport.close()
    await protocol.lost
    assert transport.get_protocol() is not protocol


# The server's use of them.


async def echo(ws):
    async for message in ws:
        await ws.send(message)


def test_only_selector_loops_and_uvloop_are_supported():
    for loop in (asyncio.SelectorEventLoop(), uvloop.new_event_loop()):
        try:
            assert supports_loop(loop)
        finally:
            loop.close()

    class Derived(uvloop.Loop):
        pass

    loop = Derived()
    try:
        assert supports_loop(loop)
    finally:
        loop.close()

    class Other(asyncio.AbstractEventLoop):
        pass

    assert not supports_loop(Other())


async def test_plain_connections_use_the_socket_transport(tls_contexts):
    connections = []

    async def handler(ws):
        connections.append(ws)
        await echo(ws)

    async with serve(handler, "127.0.0.1", 0) as server:
        async with connect(f"ws://127.0.0.1:{server.port}/") as ws:
            await ws.send("plain")
            assert await ws.recv() == "plain"
        assert type(connections[0].transport) is SocketTransport

    server_context, client_context = tls_contexts
    async with serve(handler, "127.0.0.1", 0, ssl=server_context) as server:
        async with connect(f"wss://127.0.0.1:{server.port}/", ssl=client_context) as ws:
            await ws.send("tls")
            assert await ws.recv() == "tls"
        assert type(connections[1].transport) is not SocketTransport


async def test_unix_and_given_sockets_use_the_socket_transport(tmp_path):
    connections = []

    async def handler(ws):
        connections.append(ws)
        await echo(ws)

    path = str(tmp_path / "ws.sock")
    async with serve(handler, unix_path=path):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(path)
        async with connect("ws://localhost/", sock=sock) as ws:
            await ws.send("over unix")
            assert await ws.recv() == "over unix"

    listening = socket.create_server(("127.0.0.1", 0))
    port = listening.getsockname()[1]
    async with serve(handler, sock=listening):
        async with connect(f"ws://127.0.0.1:{port}/") as ws:
            await ws.send("given socket")
            assert await ws.recv() == "given socket"
    assert [type(c.transport) for c in connections] == [SocketTransport, SocketTransport]


async def test_a_burst_of_connections_is_served():
    async with serve(echo, "127.0.0.1", 0) as server:

        async def one(i):
            async with connect(f"ws://127.0.0.1:{server.port}/") as ws:
                await ws.send(str(i))
                return await ws.recv()

        assert await asyncio.gather(*(one(i) for i in range(50))) == [str(i) for i in range(50)]


async def test_connections_waiting_beyond_one_wakeup_are_accepted():
    # The listener accepts at most `backlog` connections per wakeup; the kernel queues
    # backlog + 1, so one is left for the next wakeup.
    loop = asyncio.get_running_loop()
    accepted = []

    class Counting(Recorder):
        def connection_made(self, transport):
            accepted.append(transport)

    listening = socket.create_server(("127.0.0.1", 0))
    listener = Listener(loop, listening, Counting, backlog=2)
    clients = [socket.create_connection(listening.getsockname()) for _ in range(3)]
    try:
        await until(lambda: len(accepted) == 3)
        assert [t.get_extra_info("peername") for t in accepted] == [
            c.getsockname() for c in clients
        ]
    finally:
        for transport in accepted:
            transport.abort()
        for client in clients:
            client.close()
        listener.close()


async def test_close_stops_accepting_and_serve_forever_returns():
    async with serve(echo, "127.0.0.1", 0) as server:
        port = server.port
        forever = asyncio.create_task(server.serve_forever())
        server.close()
        await forever
        with pytest.raises(OSError):
            await asyncio.open_connection("127.0.0.1", port)


async def test_cancelling_serve_forever_closes_the_server():
    async with serve(echo, "127.0.0.1", 0) as server:
        port = server.port
        forever = asyncio.create_task(server.serve_forever())
        await asyncio.sleep(0)  # one loop turn: the task is now waiting
        forever.cancel()
        with pytest.raises(asyncio.CancelledError):
            await forever
        with pytest.raises(OSError):
            await asyncio.open_connection("127.0.0.1", port)


async def test_running_out_of_file_descriptors_pauses_accepting(monkeypatch, caplog):
    # Clients connect (the kernel completes their handshakes in the backlog), then the
    # process may open no more descriptors: accept() fails with EMFILE, the listener
    # logs it and stops watching the socket for a while, and once descriptors are
    # available again every waiting client is served.
    monkeypatch.setattr(transport_module, "ACCEPT_RETRY_DELAY", 0.05)
    loop = asyncio.get_running_loop()
    accepted = []

    class Counting(asyncio.BufferedProtocol):
        def connection_made(self, transport):
            accepted.append(transport)

        def get_buffer(self, sizehint):
            return memoryview(bytearray(1024))

        def buffer_updated(self, nbytes):
            pass

        def connection_lost(self, exc):
            pass

    listening = socket.create_server(("127.0.0.1", 0))
    listener = Listener(loop, listening, Counting, backlog=16)
    clients = [socket.create_connection(listening.getsockname()) for _ in range(3)]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    lowest_free = listening.dup()
    limit = lowest_free.fileno()
    lowest_free.close()
    try:
        with caplog.at_level(logging.ERROR, "tether.server"):
            resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))
            try:
                await until(lambda: "accept() failed" in caplog.text)
                assert listener._retry is not None
                assert accepted == []
            finally:
                resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        await until(lambda: len(accepted) == 3)
        assert listener._retry is None
    finally:
        for transport in accepted:
            transport.abort()
        for client in clients:
            client.close()
        listener.close()
        listener.close()


async def test_a_listener_closed_while_paused_stays_closed(monkeypatch):
    loop = asyncio.get_running_loop()
    listening = socket.create_server(("127.0.0.1", 0))
    fd = listening.fileno()
    listener = Listener(loop, listening, Recorder, backlog=4)
    listener.loop.remove_reader(fd)
    listener._retry = loop.call_later(60, listener._resume)
    listener.close()
    assert listener._retry is None
    listener._resume()  # a retry that fires late does nothing
    assert listening.fileno() == -1
    if isinstance(loop, asyncio.SelectorEventLoop):
        with pytest.raises(KeyError):
            loop._selector.get_key(fd)


async def test_writing_to_a_reset_connection_is_reported(pair):
    transport, protocol, peer = pair
    loop = asyncio.get_running_loop()
    transport.pause_reading()  # so that only the write meets the reset
    peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    peer.close()
    loop.set_debug(True)  # OSErrors are logged only in debug mode
    try:
        transport.write(b"into the void")
    finally:
        loop.set_debug(False)
    exc = await protocol.lost
    assert isinstance(exc, ConnectionError)


async def test_write_eof_on_a_reset_connection_is_harmless(pair):
    transport, protocol, peer = pair
    transport.pause_reading()
    peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    peer.close()
    transport.write_eof()
    # Reading again meets the reset.
    transport.resume_reading()
    assert isinstance(await protocol.lost, ConnectionError)


async def test_callbacks_that_come_late_or_early_do_nothing(pair):
    transport, protocol, peer = pair
    # No data yet: a spurious read wakeup reads nothing.
    transport._read_ready()
    assert protocol.data == b""
    assert not transport.is_closing()
    # The kernel's buffer is full: a spurious write wakeup writes nothing.
    small_buffers(transport, peer)
    transport.write(bytes(8 << 20))
    while True:  # fill whatever room the kernel has left
        size = transport.get_write_buffer_size()
        transport._write_ready()
        if transport.get_write_buffer_size() == size:
            break
    assert size > 0
    transport.abort()
    await protocol.lost
    # After the end, callbacks collected before it do nothing.
    transport._read_ready()
    transport._write_ready()
    assert protocol.events.count("lost") == 1


async def test_a_failing_protocol_factory_is_reported_and_accepting_goes_on():
    loop = asyncio.get_running_loop()
    reported = []
    loop.set_exception_handler(lambda loop, context: reported.append(context))
    accepted = []
    calls = 0

    def factory():
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("no protocol for you")
        protocol = Recorder()
        accepted.append(protocol)
        return protocol

    listening = socket.create_server(("127.0.0.1", 0))
    listener = Listener(loop, listening, factory, backlog=8)
    first = socket.create_connection(listening.getsockname())
    try:
        await until(lambda: reported)
        assert isinstance(reported[0]["exception"], RuntimeError)
        first.setblocking(False)
        assert await read_to_eof(first) == b""  # its socket was closed
        second = socket.create_connection(listening.getsockname())
        try:
            await until(lambda: accepted)
        finally:
            second.close()
        accepted[0].transport.abort()
        await accepted[0].lost
    finally:
        loop.set_exception_handler(None)
        first.close()
        listener.close()
