"""The asyncio server over real loopback sockets: routing, hooks, HTTP, TLS, shutdown, handoff."""

import asyncio
import base64
import contextlib
import os
import socket
import ssl

import pytest

from tether.asyncio.client import connect
from tether.asyncio.server import is_upgrade_request, peek_request, serve
from tether.exceptions import ConnectionClosedOK, InvalidStatus, RejectHandshake
from tether.protocol.handshake import reject

from ..utils import until


async def echo(ws):
    async for message in ws:
        await ws.send(message)


def url(server, path="/", scheme="ws"):
    return f"{scheme}://127.0.0.1:{server.port}{path}"


def upgrade_request(path="/", *, version="13", extra=()):
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        f"GET {path} HTTP/1.1",
        "Host: 127.0.0.1",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        f"Sec-WebSocket-Version: {version}",
        *extra,
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def exchange(port, data):
    """Send raw bytes, then read everything until the server closes the connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        return await reader.read()
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


def parse_response(raw):
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status_line, headers, body


# Routing


async def test_routing_by_path():
    async def hello(ws):
        await ws.send(f"hello {ws.path}")

    async def bye(ws):
        await ws.send(f"bye {ws.path}")

    async with serve({"/hello": hello, "/bye": bye}, "127.0.0.1", 0) as server:
        async with connect(url(server, "/hello")) as ws:
            assert await ws.recv() == "hello /hello"
        async with connect(url(server, "/bye?x=1")) as ws:
            assert await ws.recv() == "bye /bye"


async def test_unknown_path_is_404():
    async with serve({"/known": echo}, "127.0.0.1", 0) as server:
        with pytest.raises(InvalidStatus) as info:
            await connect(url(server, "/unknown"))
        assert info.value.status == 404
        assert info.value.response.status_code == 404
        assert info.value.response.body == b"not found\n"


# process_request


async def test_process_request_returns_response():
    def process_request(ws, request):
        return reject(401, "who are you?\n", [("WWW-Authenticate", 'Bearer realm="tether"')])

    async with serve(echo, "127.0.0.1", 0, process_request=process_request) as server:
        with pytest.raises(InvalidStatus) as info:
            await connect(url(server))
        response = info.value.response
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="tether"'
        assert response.body == b"who are you?\n"


async def test_process_request_raises_reject_handshake():
    def process_request(ws, request):
        raise RejectHandshake(403, "nope")

    async with serve(echo, "127.0.0.1", 0, process_request=process_request) as server:
        with pytest.raises(InvalidStatus) as info:
            await connect(url(server))
        assert info.value.status == 403
        assert info.value.response.body == b"nope"


async def test_process_request_failure_is_500(caplog):
    def process_request(ws, request):
        raise RuntimeError("bug in the hook")

    async with serve(echo, "127.0.0.1", 0, process_request=process_request) as server:
        with pytest.raises(InvalidStatus) as info:
            await connect(url(server))
        assert info.value.status == 500
    assert "process_request failed" in caplog.text


async def test_async_process_request_checks_bearer_token_and_query():
    seen = []

    async def process_request(ws, request):
        await asyncio.sleep(0)
        seen.append((request.path, request.query))
        if request.headers.get("Authorization") != "Bearer s3cret":
            return reject(401, "bad token\n", [("WWW-Authenticate", "Bearer")])
        if request.query != "room=lobby":
            raise RejectHandshake(400, "which room?")
        return None

    async def handler(ws):
        await ws.send(f"{ws.path}?{ws.query} {ws.request_headers['Authorization']}")

    async with serve(handler, "127.0.0.1", 0, process_request=process_request) as server:
        uri = url(server, "/chat?room=lobby")
        with pytest.raises(InvalidStatus) as info:
            await connect(uri, headers={"Authorization": "Bearer wrong"})
        assert info.value.status == 401
        with pytest.raises(InvalidStatus) as info:
            await connect(url(server, "/chat"), headers={"Authorization": "Bearer s3cret"})
        assert info.value.status == 400
        async with connect(uri, headers={"Authorization": "Bearer s3cret"}) as ws:
            assert await ws.recv() == "/chat?room=lobby Bearer s3cret"
    assert seen == [("/chat", "room=lobby"), ("/chat", ""), ("/chat", "room=lobby")]


# Origins


async def test_origins_allow_list():
    origins = ["https://good.example", None]
    async with serve(echo, "127.0.0.1", 0, origins=origins) as server:
        with pytest.raises(InvalidStatus) as info:
            await connect(url(server), origin="https://evil.example")
        assert info.value.status == 403
        async with connect(url(server), origin="https://good.example") as ws:
            await ws.send("ok")
            assert await ws.recv() == "ok"
        async with connect(url(server)) as ws:  # no Origin header: allowed by None
            await ws.send("ok")
            assert await ws.recv() == "ok"


async def test_origins_without_none_require_origin():
    async with serve(echo, "127.0.0.1", 0, origins=["https://good.example"]) as server:
        with pytest.raises(InvalidStatus) as info:
            await connect(url(server))
        assert info.value.status == 403


# Subprotocols


async def subprotocol_handler(ws):
    await ws.send(str(ws.subprotocol))


async def test_subprotocol_server_preference():
    async with serve(subprotocol_handler, "127.0.0.1", 0, subprotocols=["v2", "v1"]) as server:
        async with connect(url(server), subprotocols=["v1", "v2"]) as ws:
            assert ws.subprotocol == "v2"
            assert await ws.recv() == "v2"
        async with connect(url(server), subprotocols=["v1", "other"]) as ws:
            assert ws.subprotocol == "v1"
            assert await ws.recv() == "v1"


async def test_subprotocol_select_callback():
    offers = []

    def select(offered):
        offers.append(list(offered))
        return offered[-1]

    async with serve(
        subprotocol_handler, "127.0.0.1", 0, subprotocols=["a"], select_subprotocol=select
    ) as server:
        async with connect(url(server), subprotocols=["a", "b", "c"]) as ws:
            assert ws.subprotocol == "c"
            assert await ws.recv() == "c"
    assert offers == [["a", "b", "c"]]


async def test_no_common_subprotocol():
    async with serve(subprotocol_handler, "127.0.0.1", 0, subprotocols=["v2"]) as server:
        async with connect(url(server), subprotocols=["v1"]) as ws:
            assert ws.subprotocol is None
            assert await ws.recv() == "None"
            assert "Sec-WebSocket-Protocol" not in ws.response_headers


# Plain HTTP on the WebSocket port


async def test_http_handler_serves_plain_http():
    def http_handler(request):
        if request.path == "/healthz":
            return reject(200, "ok\n")
        return reject(404, "no such page\n")

    async with serve(echo, "127.0.0.1", 0, http_handler=http_handler) as server:
        raw = await exchange(server.port, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        status_line, headers, body = parse_response(raw)
        assert status_line == "HTTP/1.1 200 OK"
        assert headers["content-length"] == "3"
        assert body == b"ok\n"
        raw = await exchange(server.port, b"GET /other HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert parse_response(raw)[0] == "HTTP/1.1 404 Not Found"
        # WebSocket still works on the same port.
        async with connect(url(server)) as ws:
            await ws.send("ws")
            assert await ws.recv() == "ws"


async def test_async_http_handler():
    async def http_handler(request):
        await asyncio.sleep(0)
        return reject(200, f"{request.method} {request.target}\n")

    async with serve(echo, "127.0.0.1", 0, http_handler=http_handler) as server:
        raw = await exchange(server.port, b"GET /a?b=c HTTP/1.1\r\nHost: x\r\n\r\n")
        assert parse_response(raw)[2] == b"GET /a?b=c\n"


async def test_plain_get_without_http_handler_is_426():
    async with serve(echo, "127.0.0.1", 0) as server:
        raw = await exchange(server.port, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        status_line, headers, _ = parse_response(raw)
        assert status_line == "HTTP/1.1 426 Upgrade Required"
        assert headers["upgrade"] == "websocket"


async def test_bad_websocket_version_is_426():
    async with serve(echo, "127.0.0.1", 0) as server:
        raw = await exchange(server.port, upgrade_request(version="8"))
        status_line, headers, _ = parse_response(raw)
        assert status_line == "HTTP/1.1 426 Upgrade Required"
        assert headers["sec-websocket-version"] == "13"


async def test_raw_handshake_gets_101():
    async with serve(echo, "127.0.0.1", 0) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(upgrade_request())
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
        writer.close()
        await writer.wait_closed()


# TLS


async def test_tls_echo(tls_contexts):
    server_context, client_context = tls_contexts
    async with serve(echo, "127.0.0.1", 0, ssl=server_context) as server:
        async with connect(url(server, scheme="wss"), ssl=client_context) as ws:
            assert ws.transport.get_extra_info("ssl_object") is not None
            await ws.send("secret")
            assert await ws.recv() == "secret"
            await ws.send(b"\x00" * 100_000)
            assert await ws.recv() == b"\x00" * 100_000


async def test_tls_untrusted_certificate_fails(tls_contexts):
    server_context, _ = tls_contexts
    async with serve(echo, "127.0.0.1", 0, ssl=server_context) as server:
        with pytest.raises(ssl.SSLCertVerificationError):
            await connect(url(server, scheme="wss"), ssl=ssl.create_default_context())


# Graceful shutdown


async def test_shutdown_closes_clients_with_1001():
    async with serve(echo, "127.0.0.1", 0) as server:
        port = server.port
        clients = [await connect(url(server)) for _ in range(3)]
        for ws in clients:
            await ws.send("hi")
            assert await ws.recv() == "hi"
        await server.shutdown(drain_timeout=2)
        for ws in clients:
            with pytest.raises(ConnectionClosedOK):
                await ws.recv()
            assert ws.close_code == 1001
            await ws.wait_closed()
        assert not server.connections
        with pytest.raises(OSError):
            await connect(f"ws://127.0.0.1:{port}/")


async def test_shutdown_aborts_handler_that_ignores_it():
    started = asyncio.Event()
    outcome = []

    async def stubborn(ws):
        started.set()
        try:
            await asyncio.Event().wait()  # never reads, never returns
        except asyncio.CancelledError:
            outcome.append("cancelled")
            raise

    server = await serve(stubborn, "127.0.0.1", 0, close_timeout=0.1)
    ws = await connect(url(server))
    await started.wait()
    loop = asyncio.get_running_loop()
    start = loop.time()
    await server.shutdown(drain_timeout=0.2)
    elapsed = loop.time() - start
    assert outcome == ["cancelled"]
    assert 0.15 <= elapsed < 2
    assert not server.connections
    await ws.wait_closed()
    assert ws.close_code == 1001


async def test_close_stops_accepting():
    server = await serve(echo, "127.0.0.1", 0)
    port = server.port
    async with connect(url(server)) as ws:
        server.close(close_connections=False)
        # The open connection keeps working...
        await ws.send("still here")
        assert await ws.recv() == "still here"
        # ...but new ones are refused.
        with pytest.raises(OSError):
            await connect(f"ws://127.0.0.1:{port}/")
    await server.wait_closed()


# Sockets from elsewhere


@contextlib.contextmanager
def listening_socket():
    sock = socket.create_server(("127.0.0.1", 0))
    sock.setblocking(False)
    try:
        yield sock
    finally:
        sock.close()


async def test_handoff_after_peek():
    loop = asyncio.get_running_loop()
    async with serve(echo, "127.0.0.1", 0) as server:
        with listening_socket() as listener:
            port = listener.getsockname()[1]

            async def accept_and_hand_over():
                sock, _ = await loop.sock_accept(listener)
                head = await peek_request(sock, timeout=2)
                assert is_upgrade_request(head)
                await server.handle_socket(sock)
                return head

            handoff = asyncio.create_task(accept_and_hand_over())
            async with connect(f"ws://127.0.0.1:{port}/handed?over=1") as ws:
                head = await handoff
                assert head.startswith(b"GET /handed?over=1 HTTP/1.1\r\n")
                await ws.send("through the handoff")
                assert await ws.recv() == "through the handoff"
                assert len(server.connections) == 1


async def test_handoff_with_initial_data():
    loop = asyncio.get_running_loop()
    received_paths = []

    async def handler(ws):
        received_paths.append(ws.path)
        await echo(ws)

    async with serve(handler, "127.0.0.1", 0) as server:
        with listening_socket() as listener:
            port = listener.getsockname()[1]

            async def accept_and_hand_over():
                sock, _ = await loop.sock_accept(listener)
                data = b""
                while b"\r\n\r\n" not in data:
                    data += await loop.sock_recv(sock, 7)  # consume part of it
                await server.handle_socket(sock, initial_data=data)

            handoff = asyncio.create_task(accept_and_hand_over())
            async with connect(f"ws://127.0.0.1:{port}/consumed") as ws:
                await handoff
                await ws.send("round trip")
                assert await ws.recv() == "round trip"
    assert received_paths == ["/consumed"]


async def test_request_head_in_one_read_or_split_gives_the_same_handshake():
    # A whole plain request in the first read is accepted by the quick path; a head
    # split across reads, or followed by a frame, goes through the full parser. Both
    # must answer the same bytes and give the handler the same request.
    loop = asyncio.get_running_loop()
    seen = []

    async def handler(ws):
        seen.append((ws.path, ws.query, ws.request.headers["X-Probe"], ws.request.target))
        await echo(ws)

    key = "dGhlIHNhbXBsZSBub25jZQ=="
    head = (
        b"GET /split?x=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Key: " + key.encode() + b"\r\n"
        b"Sec-WebSocket-Version: 13\r\nX-Probe: yes\r\n\r\n"
    )
    frame = bytes([0x81, 0x82, 1, 2, 3, 4]) + bytes(a ^ b for a, b in zip(b"hi", b"\x01\x02"))
    answers = []
    async with serve(handler, "127.0.0.1", 0, compression=None) as server:
        with listening_socket() as listener:
            port = listener.getsockname()[1]
            for first, second in [(head, b""), (head[:40], head[40:]), (head + frame, b"")]:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                sock, _ = await loop.sock_accept(listener)
                writer.write(first)
                data = b""
                while len(data) < len(first):
                    data += await loop.sock_recv(sock, len(first) - len(data))
                handed = asyncio.ensure_future(server.handle_socket(sock, initial_data=data))
                writer.write(second)
                answer = await reader.readuntil(b"\r\n\r\n")
                writer.write(frame)
                echoed = await reader.readexactly(4)
                if first.endswith(frame):
                    echoed += await reader.readexactly(4)
                answers.append((answer, echoed))
                writer.close()
                await handed
    expected_head = (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nServer: tether\r\n\r\n"
    )
    assert answers[0] == (expected_head, b"\x81\x02hi")
    assert answers[1] == answers[0]
    assert answers[2] == (expected_head, b"\x81\x02hi\x81\x02hi")
    assert seen == [("/split", "x=1", "yes", "/split?x=1")] * 3


async def test_is_upgrade_request():
    assert is_upgrade_request(upgrade_request())
    assert is_upgrade_request(b"GET / HTTP/1.1\r\nupgrade:  WebSocket\r\n\r\n")
    assert not is_upgrade_request(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert not is_upgrade_request(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nUpgrade: websocket\r\n")


async def test_peek_request_plain_http_then_serve_it_elsewhere():
    loop = asyncio.get_running_loop()
    with listening_socket() as listener:
        port = listener.getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        sock, _ = await loop.sock_accept(listener)
        with sock:
            writer.write(b"GET /page HTTP/1.1\r\n")
            peeking = asyncio.create_task(peek_request(sock, timeout=2))
            await asyncio.sleep(0)
            writer.write(b"Host: x\r\n\r\n")
            head = await peeking
            assert not is_upgrade_request(head)
            # Peeking left the bytes in place for the next reader.
            assert await loop.sock_recv(sock, 1024) == head
        writer.close()
        await writer.wait_closed()
        del reader


async def test_serve_on_existing_socket():
    with listening_socket() as sock:
        port = sock.getsockname()[1]
        async with serve(echo, sock=sock) as server:
            assert server.port == port
            async with connect(f"ws://127.0.0.1:{port}/") as ws:
                await ws.send("existing socket")
                assert await ws.recv() == "existing socket"


# Handshake limits and timeouts


async def test_open_timeout_drops_slow_handshake():
    async with serve(echo, "127.0.0.1", 0, open_timeout=0.2) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n")
        loop = asyncio.get_running_loop()
        start = loop.time()
        try:
            data = await asyncio.wait_for(reader.read(), 3)
        except ConnectionResetError:
            data = b""
        assert data == b""
        assert 0.15 <= loop.time() - start < 2
        await until(lambda: not server.connections)
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def test_open_timeout_for_several_handshakes_in_flight():
    # Each slow handshake is dropped about open_timeout after its own start, in order;
    # handshakes that complete in between are not affected.
    loop = asyncio.get_running_loop()
    async with serve(echo, "127.0.0.1", 0, open_timeout=0.3) as server:

        async def slow():
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(b"GET / HTTP/1.1\r\n")
            return loop.time(), reader, writer

        async def dropped_after(started, reader):
            with contextlib.suppress(ConnectionResetError):
                assert await asyncio.wait_for(reader.read(), 3) == b""
            return loop.time() - started

        first = await slow()
        async with connect(url(server)) as ws:
            second = await slow()
            waits = await asyncio.gather(dropped_after(*first[:2]), dropped_after(*second[:2]))
            assert all(0.25 <= wait < 2 for wait in waits)
            await ws.send("still here")
            assert await ws.recv() == "still here"
        for _, _, writer in (first, second):
            writer.close()
        await until(lambda: not server.connections)


async def test_too_many_headers_is_431():
    extra = [f"X-Header-{i}: {i}" for i in range(200)]
    async with serve(echo, "127.0.0.1", 0) as server:
        raw = await exchange(server.port, upgrade_request(extra=extra))
        status_line, _, body = parse_response(raw)
        assert status_line == "HTTP/1.1 431 Request Header Fields Too Large"
        assert body == b"too many headers\n"


async def test_header_line_too_long_is_431():
    async with serve(echo, "127.0.0.1", 0) as server:
        raw = await exchange(server.port, upgrade_request(extra=["X-Big: " + "b" * 9000]))
        assert parse_response(raw)[0] == "HTTP/1.1 431 Request Header Fields Too Large"


async def test_request_line_too_long_is_414():
    async with serve(echo, "127.0.0.1", 0) as server:
        raw = await exchange(server.port, upgrade_request(path="/" + "a" * 9000))
        status_line, _, body = parse_response(raw)
        assert status_line.startswith("HTTP/1.1 414 ")
        assert body == b"request line too long\n"


async def test_server_still_works_after_bad_handshakes():
    async with serve(echo, "127.0.0.1", 0) as server:
        for data in (b"nonsense\r\n\r\n", upgrade_request(version="7"), b"\r\n\r\n"):
            raw = await exchange(server.port, data)
            assert raw.startswith(b"HTTP/1.1 4")
        async with connect(url(server)) as ws:
            await ws.send("fine")
            assert await ws.recv() == "fine"


async def test_shutdown_waits_for_handler_of_closed_connection():
    started = asyncio.Event()
    outcome = []

    async def stubborn(ws):
        started.set()
        try:
            await asyncio.Event().wait()  # keeps running after the client left
        except asyncio.CancelledError:
            outcome.append("cancelled")
            raise

    server = await serve(stubborn, "127.0.0.1", 0)
    async with connect(url(server)) as ws:
        await started.wait()
    assert ws.close_code == 1000
    await server.shutdown(drain_timeout=0.2)
    assert outcome == ["cancelled"]
    assert not server.connections


def masked_text_frame(text):
    payload = text.encode()
    assert len(payload) < 126
    key = os.urandom(4)
    masked = bytes(byte ^ key[i % 4] for i, byte in enumerate(payload))
    return bytes([0x81, 0x80 | len(payload)]) + key + masked


async def test_frame_sent_with_the_handshake_request():
    async with serve(echo, "127.0.0.1", 0) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        try:
            # The first frame rides in the same segment as the request.
            writer.write(upgrade_request() + masked_text_frame("eager"))
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 101 ")
            assert await reader.readexactly(7) == b"\x81\x05eager"
        finally:
            writer.close()
            await writer.wait_closed()


async def test_handoff_with_initial_data_including_a_frame():
    loop = asyncio.get_running_loop()
    async with serve(echo, "127.0.0.1", 0) as server:
        with listening_socket() as listener:
            port = listener.getsockname()[1]
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            sock, _ = await loop.sock_accept(listener)
            sent = upgrade_request() + masked_text_frame("early bird")
            writer.write(sent)
            data = b""
            while len(data) < len(sent):
                data += await loop.sock_recv(sock, 4096)
            await server.handle_socket(sock, initial_data=data)
            try:
                head = await reader.readuntil(b"\r\n\r\n")
                assert head.startswith(b"HTTP/1.1 101 ")
                assert await reader.readexactly(12) == b"\x81\x0aearly bird"
            finally:
                writer.close()
                await writer.wait_closed()


async def test_shutdown_drops_connections_still_in_handshake():
    server = await serve(echo, "127.0.0.1", 0)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # never finished
        await until(lambda: server.connections)
        loop = asyncio.get_running_loop()
        start = loop.time()
        await server.shutdown(drain_timeout=2)
        assert loop.time() - start < 1
        assert not server.connections
        try:
            assert await reader.read() == b""
        except ConnectionResetError:
            pass
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


@pytest.mark.parametrize(
    ("extra", "body"),
    [
        ((), b""),
        (("Content-Length: 5",), b"hello"),
        (("Transfer-Encoding: chunked",), b"0\r\n\r\n"),
    ],
)
async def test_the_upgrade_request_is_kept_after_the_handshake(extra, body):
    # The handler reads the request after the upgrade (rebuilt from what was kept),
    # with a body or chunked framing too.
    seen = []

    async def handler(ws):
        request = ws.request
        seen.append((request.method, request.target, request.headers["X-Mark"], request.body))
        await ws.send("ok")

    async with serve(handler, "127.0.0.1", 0) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        try:
            head = upgrade_request("/p?q=1", extra=("X-Mark: m", *extra))
            writer.write(head + body)
            response = await reader.readuntil(b"\r\n\r\n")
            assert response.startswith(b"HTTP/1.1 101 ")
            assert await reader.readexactly(4) == b"\x81\x02ok"
        finally:
            writer.close()
    expected_body = b"hello" if body == b"hello" else b""
    assert seen == [("GET", "/p?q=1", "m", expected_body)]
