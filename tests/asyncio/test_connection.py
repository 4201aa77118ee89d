"""Connection behaviour over real loopback sockets: tether client against tether server."""

import asyncio
import gc
import socket
import weakref

import pytest

from tether.asyncio.client import connect
from tether.asyncio.events import EventListener
from tether.asyncio.server import broadcast, serve
from tether.exceptions import (
    ConcurrencyError,
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    InvalidState,
)
from tether.protocol.limits import Limits

from ..utils import until


async def echo(ws):
    async for message in ws:
        await ws.send(message)


@pytest.fixture
async def echo_server():
    async with serve(echo, "127.0.0.1", 0) as server:
        yield server


def url(server, path="/"):
    return f"ws://127.0.0.1:{server.port}{path}"


async def test_echo_text_and_binary(echo_server):
    async with connect(url(echo_server)) as ws:
        await ws.send("héllo")
        assert await ws.recv() == "héllo"
        await ws.send(b"\x00\x01")
        assert await ws.recv() == b"\x00\x01"
        await ws.send(bytearray(b"ba"))
        assert await ws.recv() == b"ba"
        await ws.send(memoryview(b"mv"))
        assert await ws.recv() == b"mv"


async def test_many_messages_in_flight(echo_server):
    async with connect(url(echo_server)) as ws:
        for i in range(500):
            await ws.send(f"m{i}")
        received = [await ws.recv() for _ in range(500)]
        assert received == [f"m{i}" for i in range(500)]


async def test_large_message(echo_server):
    payload = bytes(range(256)) * 4000  # ~1 MB, under the 1 MiB default
    async with connect(url(echo_server)) as ws:
        await ws.send(payload)
        assert await ws.recv() == payload


async def test_fragmented_send_iterable_and_async_iterable(echo_server):
    async def parts():
        for part in ("a", "b", "c"):
            yield part

    async with connect(url(echo_server)) as ws:
        await ws.send(["he", "llo"])
        assert await ws.recv() == "hello"
        await ws.send([b"\x01", b"\x02"])
        assert await ws.recv() == b"\x01\x02"
        await ws.send(parts())
        assert await ws.recv() == "abc"


async def test_fragmented_send_rejects_mixed_types(echo_server):
    async with connect(url(echo_server)) as ws:
        with pytest.raises(TypeError, match="all fragments must be of the same type"):
            await ws.send(["a", b"b"])
        with pytest.raises(ConnectionClosed):
            await ws.recv()


async def test_send_rejects_other_types(echo_server):
    async with connect(url(echo_server)) as ws:
        with pytest.raises(TypeError, match="message must be str or bytes-like, not int"):
            await ws.send(42)


async def test_iteration_ends_on_normal_close():
    async def handler(ws):
        await ws.send("one")
        await ws.close(1000, "done")

    async with serve(handler, "127.0.0.1", 0) as server, connect(url(server)) as ws:
        assert [m async for m in ws] == ["one"]
        assert ws.close_code == 1000
        assert ws.close_reason == "done"


async def test_close_with_error_code_raises():
    async def handler(ws):
        await ws.close(4000, "custom")

    async with serve(handler, "127.0.0.1", 0) as server, connect(url(server)) as ws:
        with pytest.raises(ConnectionClosedError) as info:
            await ws.recv()
        assert info.value.code == 4000
        assert info.value.reason == "custom"
        assert str(info.value) == "received 4000 (private use) custom; then sent 4000 (private use)"


async def test_handler_exception_closes_with_1011():
    async def handler(ws):
        raise RuntimeError("boom")

    async with serve(handler, "127.0.0.1", 0) as server, connect(url(server)) as ws:
        with pytest.raises(ConnectionClosedError) as info:
            await ws.recv()
        assert info.value.code == 1011


async def test_handler_return_closes_with_1000():
    async def handler(ws):
        return

    async with serve(handler, "127.0.0.1", 0) as server, connect(url(server)) as ws:
        with pytest.raises(ConnectionClosedOK):
            await ws.recv()
        await ws.wait_closed()
        assert ws.closed


async def test_client_close_reported_to_server():
    seen = asyncio.get_running_loop().create_future()

    async def handler(ws):
        try:
            await ws.recv()
        except ConnectionClosed as exc:
            seen.set_result((exc.code, exc.reason, type(exc)))

    async with serve(handler, "127.0.0.1", 0) as server:
        ws = await connect(url(server))
        await ws.close(1001, "leaving")
        assert await seen == (1001, "leaving", ConnectionClosedOK)
        await ws.close()  # closing twice is harmless


async def test_ping_returns_latency(echo_server):
    async with connect(url(echo_server)) as ws:
        pong = await ws.ping()
        latency = await pong
        assert latency >= 0
        assert ws.latency == latency
        pong = await ws.ping("custom")
        assert await pong >= 0
        await ws.pong(b"unsolicited")


async def test_ping_with_duplicate_payload(echo_server):
    async with connect(url(echo_server)) as ws:
        first = await ws.ping(b"same")
        with pytest.raises(ConcurrencyError):
            await ws.ping(b"same")
        await first


async def test_pending_ping_fails_on_close():
    gate = asyncio.Event()

    async def handler(ws):
        await gate.wait()

    async with serve(handler, "127.0.0.1", 0) as server, connect(url(server)) as ws:
        # The server answers pings automatically, so stop it from reading first.
        ws.transport.pause_reading()
        waiter = await ws.ping()
        ws.transport.abort()
        with pytest.raises(ConnectionClosed):
            await waiter
        gate.set()


async def test_concurrent_recv_is_an_error(echo_server):
    async with connect(url(echo_server)) as ws:
        first = asyncio.create_task(ws.recv())
        await asyncio.sleep(0)
        with pytest.raises(ConcurrencyError):
            await ws.recv()
        await ws.send("x")
        assert await first == "x"


async def test_send_after_close_raises(echo_server):
    ws = await connect(url(echo_server))
    await ws.close()
    with pytest.raises(ConnectionClosedOK):
        await ws.send("late")
    with pytest.raises(ConnectionClosedOK):
        await ws.recv()
    with pytest.raises(ConnectionClosedOK):
        await ws.ping()


async def test_request_details_available_to_handler():
    seen = asyncio.get_running_loop().create_future()

    async def handler(ws):
        seen.set_result(
            (ws.path, ws.query, ws.request_headers["X-Token"], ws.remote_address, ws.peer.path)
        )

    async with serve(handler, "127.0.0.1", 0) as server:
        async with connect(url(server, "/room?id=7"), headers={"X-Token": "abc"}) as ws:
            path, query, token, remote, peer_path = await seen
            assert (path, query, token, peer_path) == ("/room", "id=7", "abc", "/room")
            assert remote[0] == "127.0.0.1"
            assert remote[1] == ws.transport.get_extra_info("sockname")[1]


async def test_split_halves_work_independently(echo_server):
    ws = await connect(url(echo_server))
    sender, receiver = ws.split()

    async def produce():
        async with sender:
            for i in range(20):
                await sender.send(str(i))

    task = asyncio.create_task(produce())
    got = [await receiver.recv() for _ in range(20)]
    await task
    assert got == [str(i) for i in range(20)]
    # The sender is closed but the connection stays open until the receiver closes.
    assert not ws.closed
    with pytest.raises(InvalidState):
        await sender.send("x")
    await receiver.close()
    await ws.wait_closed()
    assert ws.close_code == 1000


async def test_receive_backpressure_pauses_and_resumes_reading():
    release = asyncio.Event()
    conns = []

    async def handler(ws):
        conns.append(ws)
        await release.wait()
        got = [await ws.recv() for _ in range(64)]
        await ws.send(str(len(got)))

    async with serve(handler, "127.0.0.1", 0, max_queue=(4096, 1024)) as server:
        async with connect(url(server)) as ws:
            for _ in range(64):
                await ws.send(b"x" * 1000)
            # The server stops reading once 4 KiB are queued; wait until it has.
            await until(lambda: conns and conns[0]._reading_paused)
            assert conns[0]._queued_bytes > 4096
            release.set()
            assert await ws.recv() == "64"
            assert not conns[0]._reading_paused


async def test_send_waits_when_peer_does_not_read():
    done = asyncio.get_running_loop().create_future()
    conns = []

    async def handler(ws):
        conns.append(ws)
        sent = 0
        for _ in range(300):
            await ws.send(b"y" * 65536)
            sent += 1
        done.set_result(sent)

    # Without compression: 64 KiB of one byte would deflate to almost nothing.
    async with serve(handler, "127.0.0.1", 0, write_limit=65536, compression=None) as server:
        async with connect(url(server), max_queue=(65536, 16384)) as ws:
            await until(lambda: conns and conns[0]._writing_paused)
            # The handler is blocked in send: the peer isn't reading.
            assert not done.done()
            for _ in range(300):
                assert len(await ws.recv()) == 65536
            assert await done == 300


async def test_keepalive_detects_dead_peer():
    failures = []

    class Recorder(EventListener):
        def failed(self, connection, exc):
            failures.append(exc)

    closed = asyncio.get_running_loop().create_future()

    async def handler(ws):
        try:
            await ws.recv()
        except ConnectionClosed as exc:
            closed.set_result(exc)

    async with serve(
        handler,
        "127.0.0.1",
        0,
        ping_interval=0.05,
        ping_timeout=0.05,
        listeners=[Recorder()],
    ) as server:
        ws = await connect(url(server), ping_interval=None)
        # A dead peer: the client stops reading, so it never answers pings.
        ws.transport.pause_reading()
        exc = await closed
        assert exc.sent is not None
        assert exc.sent.code == 1011
        assert exc.sent.reason == "keepalive ping timeout"
        # The listener gets the connection's own record; recv() raised a copy of it.
        (failure,) = failures
        assert type(failure) is type(exc)
        assert (failure.rcvd, failure.sent) == (exc.rcvd, exc.sent)
        ws.transport.abort()


async def test_keepalive_measures_latency():
    conns = []

    async def handler(ws):
        conns.append(ws)
        await ws.recv()

    async with serve(handler, "127.0.0.1", 0, ping_interval=0.02, ping_timeout=1) as server:
        async with connect(url(server), ping_interval=None) as ws:
            await until(lambda: conns and conns[0].latency > 0)
            assert 0 < conns[0].latency < 1
            await ws.send("bye")


async def test_keepalive_costs_no_task_per_connection():
    # The same 50 idle connections with keepalive off and on: the number of tasks
    # in the loop is the same, and with keepalive on every connection was pinged.
    async def tasks_with(ping_interval):
        conns = []

        async def handler(ws):
            conns.append(ws)
            await ws.wait_closed()

        async with serve(
            handler, "127.0.0.1", 0, ping_interval=ping_interval, ping_timeout=5
        ) as server:
            clients = [await connect(url(server), ping_interval=None) for _ in range(50)]
            await until(lambda: len(conns) == 50)
            if ping_interval is not None:
                await until(lambda: all(conn.latency > 0 for conn in conns))
            count = len(asyncio.all_tasks())
            for client in clients:
                await client.close()
        return count

    assert await tasks_with(None) == await tasks_with(0.02)


def test_an_event_loop_that_served_keepalive_connections_is_freed():
    # The keepalive wheel of a loop does not keep the loop alive once it is closed.
    loops = []

    async def main():
        loops.append(weakref.ref(asyncio.get_running_loop()))

        async def handler(ws):
            await ws.recv()

        async with serve(handler, "127.0.0.1", 0, ping_interval=0.02) as server:
            async with connect(url(server), ping_interval=0.02) as ws:
                await ws.ping()
                await ws.send("bye")

    asyncio.run(main())
    gc.collect()
    assert loops[0]() is None


def count_writes(connection, monkeypatch):
    """Record the size of every write (``write`` or ``writelines`` call) of ``connection``."""
    transport = connection.transport
    cls = type(transport)
    writes = []

    def count(name, size):
        original = getattr(cls, name)

        def counting(self, data):
            if self is transport:
                writes.append(size(data))
            return original(self, data)

        monkeypatch.setattr(cls, name, counting)

    count("write", len)
    count("writelines", lambda pieces: sum(len(piece) for piece in pieces))
    return writes


async def test_a_burst_is_answered_in_bounded_batches(monkeypatch):
    # 64 requests arrive in one write; the echoes leave in several writes of at most
    # 16 frames, not one per message and not one for the whole burst.
    from .test_bad_input import BINARY, RawClient, frame

    conns = []

    async def handler(ws):
        conns.append(ws)
        async for message in ws:
            await ws.send(message)

    async with serve(handler, "127.0.0.1", 0, compression=None) as server:
        raw = await RawClient.open(server.port)
        try:
            await until(lambda: conns)
            writes = count_writes(conns[0], monkeypatch)
            payloads = [i.to_bytes(2, "big") * 32 for i in range(64)]
            raw.writer.write(b"".join(frame(BINARY, p) for p in payloads))
            assert [await raw.read_frame() for _ in payloads] == [(BINARY, p) for p in payloads]
            assert len(writes) >= 4
            assert len(writes) < 64
            assert max(writes) <= 16 * 66
        finally:
            await raw.aclose()


async def test_send_nowait(echo_server):
    async with connect(url(echo_server)) as ws:
        assert ws.send_nowait("hi") is True
        assert ws.send_nowait(b"\x00\x01") is True
        assert await ws.recv() == "hi"
        assert await ws.recv() == b"\x00\x01"

        # Not while a fragmented message is being sent.
        gate = asyncio.Event()

        async def fragments():
            yield "a"
            await gate.wait()
            yield "b"

        sending = asyncio.create_task(ws.send(fragments()))
        await until(lambda: ws._fragment_lock is not None and ws._fragment_lock.locked())
        assert ws.send_nowait("x") is False
        gate.set()
        await sending
        assert await ws.recv() == "ab"
    assert ws.send_nowait("late") is False


async def test_send_nowait_refuses_while_the_transport_is_full(echo_server):
    async with connect(url(echo_server)) as ws:
        ws.pause_writing()  # what the transport calls above its high-water mark
        assert ws.send_nowait("x") is False
        ws.resume_writing()
        assert ws.send_nowait("y") is True
        assert await ws.recv() == "y"


async def test_listeners_see_events_in_order():
    events = []

    class Recorder(EventListener):
        def __init__(self, name):
            self.name = name

        def opened(self, connection):
            events.append((self.name, "opened"))

        def message_received(self, connection, message):
            events.append((self.name, "received", message))

        def message_sent(self, connection, message):
            events.append((self.name, "sent", message))

        def ping_received(self, connection, data):
            events.append((self.name, "ping", data))

        def pong_received(self, connection, data):
            events.append((self.name, "pong", data))

        def closing(self, connection, code, reason):
            events.append((self.name, "closing", code))

        def closed(self, connection, exc):
            events.append((self.name, "closed", exc.code))

    async with serve(echo, "127.0.0.1", 0, listeners=[Recorder("a"), Recorder("b")]) as server:
        async with connect(url(server)) as ws:
            await ws.send("hi")
            assert await ws.recv() == "hi"
            await (await ws.ping(b"p"))
        await asyncio.sleep(0)
        await until(lambda: ("b", "closed", 1000) in events)
    assert events == [
        ("a", "opened"),
        ("b", "opened"),
        ("a", "received", "hi"),
        ("b", "received", "hi"),
        ("a", "sent", "hi"),
        ("b", "sent", "hi"),
        ("a", "ping", b"p"),
        ("b", "ping", b"p"),
        ("a", "closing", 1000),
        ("b", "closing", 1000),
        ("a", "closed", 1000),
        ("b", "closed", 1000),
    ]


async def test_broadcast_reaches_everyone_and_reports_skipped():
    members = []
    ready = asyncio.Event()

    async def handler(ws):
        members.append(ws)
        if len(members) == 3:
            ready.set()
        await ws.wait_closed()

    async with serve(handler, "127.0.0.1", 0, compression=None) as server:
        clients = [await connect(url(server)) for _ in range(3)]
        await ready.wait()
        assert broadcast(members, "to all") == []
        assert broadcast(members, b"\x01") == []
        for client in clients:
            assert await client.recv() == "to all"
            assert await client.recv() == b"\x01"
        await clients[0].close()
        await members[0].wait_closed()
        assert broadcast(members, "again") == [members[0]]
        for client in clients[1:]:
            assert await client.recv() == "again"
            await client.close()


async def test_message_too_big_closes_with_1009():
    async with serve(echo, "127.0.0.1", 0, limits=Limits(max_message_size=1000)) as server:
        async with connect(url(server)) as ws:
            await ws.send(b"x" * 1001)
            with pytest.raises(ConnectionClosedError) as info:
                await ws.recv()
            assert info.value.code == 1009
        # The server keeps serving others.
        async with connect(url(server)) as ws:
            await ws.send("still here")
            assert await ws.recv() == "still here"


async def test_unix_socket(tmp_path):
    path = str(tmp_path / "ws.sock")
    async with serve(echo, unix_path=path):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(path)
        async with connect("ws://localhost/", sock=sock) as ws:
            await ws.send("over unix")
            assert await ws.recv() == "over unix"


async def test_shutdown_after_close_without_connections_still_sends_1001():
    async with serve(echo, "127.0.0.1", 0) as server:
        ws = await connect(url(server))
        server.close(close_connections=False)
        await ws.send("still served")
        assert await ws.recv() == "still served"
        await server.shutdown(drain_timeout=5)
        with pytest.raises(ConnectionClosedOK) as info:
            await ws.recv()
        assert info.value.code == 1001


async def test_broadcast_reports_to_listeners():
    sent = []

    class Recorder(EventListener):
        def message_sent(self, connection, message):
            sent.append(message)

    ready = asyncio.Event()
    members = []

    async def handler(ws):
        members.append(ws)
        ready.set()
        await ws.wait_closed()

    async with serve(handler, "127.0.0.1", 0, listeners=[Recorder()]) as server:
        async with connect(url(server)) as ws:
            await ready.wait()
            assert broadcast(members, "news") == []
            assert await ws.recv() == "news"
    assert sent == ["news"]


def test_unsupported_compression_is_refused():
    with pytest.raises(ValueError, match="unsupported compression: brotli"):
        serve(echo, "127.0.0.1", 0, compression="brotli")
    with pytest.raises(ValueError, match="unsupported compression: brotli"):
        connect("ws://127.0.0.1:1/", compression="brotli")


async def test_compression_none_negotiates_no_extension():
    async with serve(echo, "127.0.0.1", 0, compression=None) as server:
        async with connect(url(server)) as ws:
            assert ws.protocol.extensions == []
            await ws.send("plain")
            assert await ws.recv() == "plain"


# The message sink: messages handled inside the read callback.


async def test_a_message_sink_takes_messages_in_order_without_the_queue(monkeypatch):
    from .test_bad_input import BINARY, RawClient, frame

    conns = []
    taken = []
    received = []

    class Seen(EventListener):
        def message_received(self, connection, message):
            received.append(message)

    def sink(message):
        taken.append(message)
        return conns[0].send_nowait(message)

    async def handler(ws):
        conns.append(ws)
        assert ws.set_message_sink(sink) is True
        await ws.wait_closed()

    async with serve(handler, "127.0.0.1", 0, compression=None, listeners=[Seen()]) as server:
        raw = await RawClient.open(server.port)
        try:
            await until(lambda: conns)
            writes = count_writes(conns[0], monkeypatch)
            payloads = [i.to_bytes(2, "big") * 8 for i in range(40)]
            raw.writer.write(b"".join(frame(BINARY, p) for p in payloads))
            assert [await raw.read_frame() for _ in payloads] == [(BINARY, p) for p in payloads]
            assert taken == received == payloads
            # Answers to one read leave together, at most 16 frames per write.
            assert len(writes) < len(payloads)
            assert max(writes) <= 16 * 18
            assert not conns[0]._messages  # nothing went through the queue
        finally:
            await raw.aclose()


async def test_a_message_sink_hands_back_a_message_and_everything_after_it():
    # The sink refuses the third message: it and every later one come out of recv(),
    # in order, and the sink stays unset until it is set again.
    from .test_bad_input import BINARY, RawClient, frame

    taken = []
    through_recv = []
    set_again = []

    async def handler(ws):
        def sink(message):
            if message == b"2":
                return False
            taken.append(message)
            return True

        ws.set_message_sink(sink)
        for _ in range(4):
            through_recv.append(await ws.recv())
        # Nothing queued any more: the sink can be set again and takes the next one.
        set_again.append(ws.set_message_sink(sink))
        await ws.send(b"ready")
        await ws.wait_closed()

    async with serve(handler, "127.0.0.1", 0, compression=None) as server:
        raw = await RawClient.open(server.port)
        try:
            raw.writer.write(b"".join(frame(BINARY, str(i).encode()) for i in range(6)))
            assert await raw.read_frame() == (BINARY, b"ready")
            assert taken == [b"0", b"1"]
            assert through_recv == [b"2", b"3", b"4", b"5"]
            assert set_again == [True]
            raw.writer.write(frame(BINARY, b"6"))
            await until(lambda: taken == [b"0", b"1", b"6"])
        finally:
            await raw.aclose()


async def test_a_message_sink_cannot_overtake_queued_messages():
    from .test_bad_input import BINARY, RawClient, frame

    conns = []

    async def handler(ws):
        conns.append(ws)
        await ws.wait_closed()

    async with serve(handler, "127.0.0.1", 0, compression=None) as server:
        raw = await RawClient.open(server.port)
        try:
            await until(lambda: conns)
            ws = conns[0]
            raw.writer.write(frame(BINARY, b"queued"))
            await until(lambda: ws._messages)
            assert ws.set_message_sink(lambda message: True) is False
            assert await ws.recv() == b"queued"
            assert ws.set_message_sink(lambda message: True) is True
            assert ws.set_message_sink(None) is False
            raw.writer.write(frame(BINARY, b"after"))
            assert await ws.recv() == b"after"
        finally:
            await raw.aclose()


async def test_a_failing_message_sink_fails_only_its_connection(caplog):
    from .test_bad_input import BINARY, RawClient, frame

    async def handler(ws):
        if ws.path == "/bad":

            def sink(message):
                raise RuntimeError("sink bug")

            ws.set_message_sink(sink)
            await ws.wait_closed()
        else:
            async for message in ws:
                await ws.send(message)

    async with serve({"/bad": handler, "/": handler}, "127.0.0.1", 0) as server:
        bad = await RawClient.open(server.port, path="/bad")
        try:
            bad.writer.write(frame(BINARY, b"x") + frame(BINARY, b"y"))
            assert await bad.read_close() == (1011, "internal error")
        finally:
            await bad.aclose()
        async with connect(url(server)) as ws:
            await ws.send("still serving")
            assert await ws.recv() == "still serving"
    assert "message sink failed" in caplog.text


# The client's writes go through sendmsg only on the selector loop (uvloop's own transport
# writes for the client there), so these count system calls on that loop alone.
SELECTOR_LOOP_ONLY = pytest.mark.asyncio(loop_factories=["asyncio"])


def record_sendmsg(monkeypatch, fail_first=None):
    """Record each ``sendmsg``: the sizes of its pieces and how many bytes it sent.

    With ``fail_first``, the first call raises that exception instead of sending.
    """
    calls = []
    real = socket.socket.sendmsg

    def recording(sock, buffers, *args):
        buffers = list(buffers)
        if fail_first is not None and not calls:
            calls.append(([len(b) for b in buffers], fail_first))
            raise fail_first
        sent = real(sock, buffers, *args)
        calls.append(([len(b) for b in buffers], sent))
        return sent

    monkeypatch.setattr(socket.socket, "sendmsg", recording)
    return calls


@SELECTOR_LOOP_ONLY
async def test_a_large_frame_leaves_in_one_system_call(monkeypatch):
    # Header and payload go out in one sendmsg (no copy to join them), from the
    # client (masked, 14-byte header) and from the server (10-byte header).
    calls = record_sendmsg(monkeypatch)
    payload = bytes(range(256)) * 2500
    async with serve(echo, "127.0.0.1", 0, compression=None) as server:
        async with connect(url(server), compression=None) as ws:
            await ws.send(payload)
            assert await ws.recv() == payload
    assert ([14, len(payload)], 14 + len(payload)) in calls
    assert ([10, len(payload)], 10 + len(payload)) in calls


async def test_what_the_kernel_does_not_take_is_written_later(monkeypatch):
    # The client stops reading after one message: a sendmsg takes part of a message,
    # the transport buffers the rest, and later messages queue behind it.
    calls = record_sendmsg(monkeypatch)
    messages = [bytes([n]) * 4_000_000 for n in range(4)]

    async def handler(ws):
        for message in messages:
            await ws.send(message)
        await ws.wait_closed()

    def partial_sends():
        return [sent for sizes, sent in calls if sizes == [10, 4_000_000] and sent < 4_000_010]

    unlimited = Limits(max_message_size=None, max_frame_size=None)
    async with serve(handler, "127.0.0.1", 0, compression=None, limits=unlimited) as server:
        async with connect(
            url(server), compression=None, limits=unlimited, max_queue=(65536, 16384)
        ) as ws:
            await until(partial_sends)
            assert [await ws.recv() for _ in messages] == messages


@SELECTOR_LOOP_ONLY
@pytest.mark.parametrize("error", [BlockingIOError(), ConnectionResetError()])
async def test_a_failed_sendmsg_leaves_the_data_to_the_transport(monkeypatch, error):
    calls = record_sendmsg(monkeypatch, fail_first=error)
    payload = b"z" * 200_000
    async with serve(echo, "127.0.0.1", 0, compression=None) as server:
        async with connect(url(server), compression=None) as ws:
            await ws.send(payload)
            assert await ws.recv() == payload
            await ws.send(payload)
            assert await ws.recv() == payload
    assert calls[0][1] is error
    assert len(calls) == 4  # the later frames went out through sendmsg again


async def test_a_finished_connection_is_freed_without_the_cycle_collector():
    # Nothing of a connection that ended (its handler saw ConnectionClosedOK) is left for
    # the cyclic garbage collector: reference counting frees it.
    refs = []
    ended = asyncio.get_running_loop().create_future()

    async def handler(ws):
        refs.append(weakref.ref(ws))
        try:
            async for message in ws:
                await ws.send(message)
        finally:
            ended.set_result(None)

    gc.collect()
    gc.disable()
    try:
        async with serve(handler, "127.0.0.1", 0) as server:
            async with connect(url(server)) as ws:
                await ws.send("x")
                assert await ws.recv() == "x"
            await ended
            await until(lambda: not server.connections)
            await until(lambda: refs[0]() is None)
    finally:
        gc.enable()


def record_reads(monkeypatch):
    """Return a list that is ``[True]`` exactly while a server connection handles a read."""
    from tether.asyncio.server import ServerConnection

    inside = [False]
    original = ServerConnection.buffer_updated

    def buffer_updated(self, nbytes):
        inside[0] = True
        try:
            original(self, nbytes)
        finally:
            inside[0] = False

    monkeypatch.setattr(ServerConnection, "buffer_updated", buffer_updated)
    return inside


async def test_a_waiting_handler_takes_its_message_within_the_read(monkeypatch):
    # The handler's task is stepped inside the read callback that queued its message,
    # in its own context, and its reply leaves before that callback returns.
    import contextvars

    inside = record_reads(monkeypatch)
    var = contextvars.ContextVar("var")
    seen = []

    async def handler(ws):
        var.set("handler")
        writes = count_writes(ws, monkeypatch)
        async for message in ws:
            before = len(writes)
            await ws.send(message)
            seen.append((message, inside[0], var.get(), len(writes) - before))

    async with serve(handler, "127.0.0.1", 0) as server, connect(url(server)) as ws:
        for message in ["one", b"two", "three"]:
            await ws.send(message)
            assert await ws.recv() == message
    assert seen == [
        ("one", True, "handler", 1),
        (b"two", True, "handler", 1),
        ("three", True, "handler", 1),
    ]


async def test_a_handler_failing_within_the_read_fails_only_its_connection(monkeypatch):
    inside = record_reads(monkeypatch)
    failed_inside = []

    async def handler(ws):
        async for message in ws:
            if message == "fail":
                failed_inside.append(inside[0])
                raise RuntimeError("boom")
            if message == "close":
                await ws.close(4000, "asked")
                return
            await ws.send(message)

    async with serve(handler, "127.0.0.1", 0) as server:
        async with connect(url(server)) as bystander, connect(url(server)) as failing:
            await failing.send("fail")
            with pytest.raises(ConnectionClosedError) as info:
                await failing.recv()
            assert info.value.code == 1011
            assert failed_inside == [True]
            await bystander.send("still here")
            assert await bystander.recv() == "still here"
        async with connect(url(server)) as closing:
            await closing.send("close")
            with pytest.raises(ConnectionClosedError) as info:
                await closing.recv()
            assert (info.value.code, info.value.reason) == (4000, "asked")


async def test_a_message_read_while_a_task_runs_wakes_the_waiter_later(echo_server):
    # Data handed to the connection from inside a running task can't step another task
    # there: the waiter is woken by the event loop as usual.
    async with connect(url(echo_server)) as ws:
        got = []

        async def receive():
            got.append(await ws.recv())

        receiver = asyncio.create_task(receive())
        await until(lambda: ws._recv_waiter is not None)
        frame = bytes([0x82, 3]) + b"abc"  # unmasked, as from a server
        buffer = ws.get_buffer(-1)
        buffer[: len(frame)] = frame
        ws.buffer_updated(len(frame))
        assert got == []
        await receiver
        assert got == [b"abc"]


@pytest.mark.parametrize("iterate", [False, True], ids=["recv", "async-for"])
async def test_a_receiver_cancelled_before_taking_its_message_leaves_it_queued(
    echo_server, iterate
):
    # A message handed straight to a waiting receiver is not lost when that receiver is
    # cancelled before it runs: the next one gets it, ahead of the messages after it.
    def feed(ws, payload):
        frame = bytes([0x82, len(payload)]) + payload  # unmasked, as from a server
        buffer = ws.get_buffer(-1)
        buffer[: len(frame)] = frame
        ws.buffer_updated(len(frame))

    async with connect(url(echo_server)) as ws:

        async def receive():
            if iterate:
                async for message in ws:
                    return message
            return await ws.recv()

        receiver = asyncio.create_task(receive())
        await until(lambda: ws._recv_waiter is not None)
        feed(ws, b"first")  # from this task: the receiver's step comes later
        assert ws._recv_waiter.result() == b"first"
        feed(ws, b"second")
        receiver.cancel()
        with pytest.raises(asyncio.CancelledError):
            await receiver
        assert await ws.recv() == b"first"
        assert await ws.recv() == b"second"
        await ws.send("still works")
        assert await ws.recv() == "still works"


async def test_handlers_on_python_tasks_are_woken_by_the_loop(monkeypatch):
    # Only the C task's wakeup is run in place; any other task type gets the plain path.
    inside = record_reads(monkeypatch)
    seen = []

    async def handler(ws):
        async for message in ws:
            seen.append((message, inside[0]))
            await ws.send(message)

    loop = asyncio.get_running_loop()
    python_task = asyncio.tasks._PyTask  # type: ignore[attr-defined]
    loop.set_task_factory(lambda loop, coro, **kwargs: python_task(coro, loop=loop, **kwargs))
    try:
        async with serve(handler, "127.0.0.1", 0) as server, connect(url(server)) as ws:
            await ws.send("hi")
            assert await ws.recv() == "hi"
    finally:
        loop.set_task_factory(None)
    assert seen == [("hi", False)]
