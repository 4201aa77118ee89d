"""The asyncio client over real loopback sockets: errors, redirects, proxies, reconnection."""

import asyncio
import base64
import contextlib
import logging
import socket

import pytest

from tether.asyncio.client import connect
from tether.asyncio.server import serve
from tether.exceptions import (
    ConnectionClosedOK,
    InvalidHandshake,
    InvalidHeaderValue,
    InvalidMessage,
    InvalidStatus,
    InvalidUpgrade,
    InvalidURI,
    NegotiationError,
    ProxyError,
)
from tether.protocol.handshake import accept_key, reject

from ..utils import until


async def echo(ws):
    async for message in ws:
        await ws.send(message)


def url(server, path="/"):
    return f"ws://127.0.0.1:{server.port}{path}"


@contextlib.asynccontextmanager
async def raw_server(handle):
    """A plain TCP server running ``handle(reader, writer)``; every stream is closed."""
    tasks = set()

    async def on_connect(reader, writer):
        tasks.add(asyncio.current_task())
        try:
            await handle(reader, writer)
        except asyncio.CancelledError:
            pass  # stopped by the context manager's exit
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()
        # Let handlers see the end of their connections, then stop the stragglers.
        pending = {task for task in tasks if not task.done()}
        if pending:
            _, pending = await asyncio.wait(pending, timeout=1)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)


async def read_head(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    return lines[0], headers


# Non-101 answers


async def test_non_101_raises_invalid_status_with_details():
    def process_request(ws, request):
        return reject(503, "come back later\n", [("Retry-After", "5")])

    async with serve(echo, "127.0.0.1", 0, process_request=process_request) as server:
        with pytest.raises(InvalidStatus) as info:
            await connect(url(server))
    exc = info.value
    assert exc.status == 503
    assert exc.response.reason_phrase == "Service Unavailable"
    assert exc.response.headers["Retry-After"] == "5"
    assert exc.response.body == b"come back later\n"
    assert str(exc) == "server rejected WebSocket connection: HTTP 503"


async def test_non_101_with_chunked_body():
    async def handle(reader, writer):
        await read_head(reader)
        writer.write(
            b"HTTP/1.1 400 Bad Request\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"4\r\nbad \r\n7\r\nrequest\r\n0\r\n\r\n"
        )
        await reader.read()

    async with raw_server(handle) as port:
        with pytest.raises(InvalidStatus) as info:
            await connect(f"ws://127.0.0.1:{port}/")
    assert info.value.status == 400
    assert info.value.response.body == b"bad request"


async def test_non_101_with_body_until_eof():
    async def handle(reader, writer):
        await read_head(reader)
        writer.write(b"HTTP/1.1 500 Internal Server Error\r\n\r\nall of it")

    async with raw_server(handle) as port:
        with pytest.raises(InvalidStatus) as info:
            await connect(f"ws://127.0.0.1:{port}/")
    assert info.value.status == 500
    assert info.value.response.body == b"all of it"


# Redirects


def redirecting(redirects, log):
    def process_request(ws, request):
        log.append(request.target)
        if request.path in redirects:
            status, location = redirects[request.path]
            return reject(status, "", [("Location", location)])
        return None

    return process_request


async def path_handler(ws):
    await ws.send(ws.path)


async def test_redirect_is_followed():
    log = []
    redirects = {"/old": (302, "/middle?x=1"), "/middle": (307, "/new")}
    process_request = redirecting(redirects, log)
    async with serve(path_handler, "127.0.0.1", 0, process_request=process_request) as server:
        async with connect(url(server, "/old")) as ws:
            assert await ws.recv() == "/new"
            assert ws.path == "/new"
    assert log == ["/old", "/middle?x=1", "/new"]


async def test_redirect_to_another_server():
    log = []
    async with serve(path_handler, "127.0.0.1", 0) as target:
        redirects = {"/moved": (301, f"ws://127.0.0.1:{target.port}/here")}
        process_request = redirecting(redirects, log)
        async with (
            serve(path_handler, "127.0.0.1", 0, process_request=process_request) as origin,
            connect(url(origin, "/moved")) as ws,
        ):
            assert await ws.recv() == "/here"
            assert ws.remote_address[1] == target.port


async def test_redirect_loop_stops_after_max_redirects():
    log = []
    process_request = redirecting({"/loop": (302, "/loop")}, log)
    async with serve(echo, "127.0.0.1", 0, process_request=process_request) as server:
        with pytest.raises(InvalidHandshake, match="too many redirects"):
            await connect(url(server, "/loop"), max_redirects=3)
    assert log == ["/loop"] * 4


async def test_no_redirects_allowed():
    log = []
    process_request = redirecting({"/old": (302, "/new")}, log)
    async with serve(echo, "127.0.0.1", 0, process_request=process_request) as server:
        with pytest.raises(InvalidHandshake, match="too many redirects"):
            await connect(url(server, "/old"), max_redirects=0)
    assert log == ["/old"]


async def test_redirect_to_invalid_uri():
    process_request = redirecting({"/old": (302, "http://127.0.0.1/web")}, [])
    async with serve(echo, "127.0.0.1", 0, process_request=process_request) as server:
        with pytest.raises(InvalidHandshake, match="invalid redirect"):
            await connect(url(server, "/old"))


# HTTP CONNECT proxy


@contextlib.asynccontextmanager
async def connect_proxy(*, credentials=None, refuse=False):
    """A small HTTP CONNECT proxy; yields its port and a list of the CONNECT heads seen."""
    heads = []

    async def pipe(reader, writer):
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            if writer.can_write_eof():
                with contextlib.suppress(OSError):
                    writer.write_eof()

    async def handle(reader, writer):
        request_line, headers = await read_head(reader)
        heads.append((request_line, headers))
        method, target, _ = request_line.split(" ")
        if refuse or method != "CONNECT":
            writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
            return
        if credentials is not None:
            token = base64.b64encode(credentials.encode()).decode()
            if headers.get("proxy-authorization") != f"Basic {token}":
                writer.write(
                    b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                    b'Proxy-Authenticate: Basic realm="proxy"\r\nContent-Length: 0\r\n\r\n'
                )
                return
        host, _, port = target.rpartition(":")
        up_reader, up_writer = await asyncio.open_connection(host, int(port))
        try:
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        finally:
            up_writer.close()
            with contextlib.suppress(OSError):
                await up_writer.wait_closed()

    async with raw_server(handle) as port:
        yield port, heads


async def test_proxy_tunnel():
    async with serve(echo, "127.0.0.1", 0) as server, connect_proxy() as (proxy_port, heads):
        port = server.port
        async with connect(url(server, "/via"), proxy=f"http://127.0.0.1:{proxy_port}") as ws:
            await ws.send("through the proxy")
            assert await ws.recv() == "through the proxy"
            await ws.send(b"\x00" * 200_000)
            assert await ws.recv() == b"\x00" * 200_000
            assert ws.remote_address[1] == proxy_port
    [(request_line, headers)] = heads
    assert request_line == f"CONNECT 127.0.0.1:{port} HTTP/1.1"
    assert headers["host"] == f"127.0.0.1:{port}"
    assert "proxy-authorization" not in headers


async def test_proxy_with_credentials():
    async with (
        serve(echo, "127.0.0.1", 0) as server,
        connect_proxy(credentials="alice:p@ss") as (proxy_port, heads),
    ):
        proxy = f"http://alice:p%40ss@127.0.0.1:{proxy_port}"
        async with connect(url(server), proxy=proxy) as ws:
            await ws.send("authenticated")
            assert await ws.recv() == "authenticated"
        with pytest.raises(ProxyError, match="407"):
            await connect(url(server), proxy=f"http://alice:wrong@127.0.0.1:{proxy_port}")
    assert len(heads) == 2


async def test_proxy_refuses_with_407_without_credentials():
    async with (
        serve(echo, "127.0.0.1", 0) as server,
        connect_proxy(credentials="alice:secret") as (proxy_port, _),
    ):
        with pytest.raises(ProxyError) as info:
            await connect(url(server), proxy=f"http://127.0.0.1:{proxy_port}")
    assert str(info.value) == "proxy refused the tunnel: HTTP/1.1 407 Proxy Authentication Required"


async def test_proxy_closes_without_answering():
    async def handle(reader, writer):
        await read_head(reader)

    async with raw_server(handle) as port:
        with pytest.raises(ProxyError, match="proxy closed the connection"):
            await connect("ws://127.0.0.1:9/", proxy=f"http://127.0.0.1:{port}")


async def test_only_http_proxies():
    with pytest.raises(InvalidURI, match="only http:// proxies are supported"):
        await connect("ws://127.0.0.1:9/", proxy="socks5://127.0.0.1:1080")


# Reconnection


async def test_reconnect_after_each_close():
    accepted = 0

    async def one_message(ws):
        nonlocal accepted
        accepted += 1
        await ws.send(f"connection {accepted}")

    received = []
    async with serve(one_message, "127.0.0.1", 0) as server:
        client = connect(url(server), backoff_initial=0.01, backoff_max=0.05)
        async with contextlib.aclosing(aiter(client)) as connections:
            async for ws in connections:
                received.append(await ws.recv())
                if len(received) == 4:
                    break
    assert received == [f"connection {i}" for i in range(1, 5)]
    assert accepted == 4


async def test_reconnect_reaches_server_that_starts_later(caplog):
    caplog.set_level(logging.INFO, logger="tether.client")
    # Bound but not listening: connections are refused until serve() listens on it.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]

    async def client():
        client = connect(f"ws://127.0.0.1:{port}/", backoff_initial=0.01, backoff_max=0.05)
        async with contextlib.aclosing(aiter(client)) as connections:
            async for ws in connections:
                return await ws.recv()

    def failures():
        return sum("connect failed" in record.getMessage() for record in caplog.records)

    task = asyncio.create_task(client())
    try:
        await until(lambda: failures() >= 3)
        assert not task.done()
    except BaseException:
        task.cancel()
        sock.close()
        raise

    async def greet(ws):
        await ws.send("finally")

    async with serve(greet, sock=sock):
        assert await asyncio.wait_for(task, 3) == "finally"


async def test_reconnect_retries_5xx_but_not_4xx():
    statuses = [503, 502]
    log = []

    def process_request(ws, request):
        log.append(request.path)
        if request.path == "/forbidden":
            return reject(403, "no\n")
        if statuses:
            return reject(statuses.pop(0), "busy\n")
        return None

    async def hello(ws):
        await ws.send("hello")

    async with serve(hello, "127.0.0.1", 0, process_request=process_request) as server:
        client = connect(url(server, "/ok"), backoff_initial=0.01, backoff_max=0.05)
        async with contextlib.aclosing(aiter(client)) as connections:
            async for ws in connections:
                assert await ws.recv() == "hello"
                break
        assert log == ["/ok"] * 3

        client = connect(url(server, "/forbidden"), backoff_initial=0.01, backoff_max=0.05)
        async with contextlib.aclosing(aiter(client)) as connections:
            with pytest.raises(InvalidStatus) as info:
                await anext(connections)
        assert info.value.status == 403
        assert log == ["/ok"] * 3 + ["/forbidden"]


# Handshake validation


def fake_101(make_headers):
    """A raw server answering 101 with headers computed from the client's key."""

    async def handle(reader, writer):
        _, headers = await read_head(reader)
        lines = ["HTTP/1.1 101 Switching Protocols", *make_headers(headers), "", ""]
        writer.write("\r\n".join(lines).encode())
        await reader.read()

    return handle


def good_headers(request_headers):
    return [
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Accept: {accept_key(request_headers['sec-websocket-key'])}",
    ]


@pytest.mark.parametrize(
    ("make_headers", "error", "message"),
    [
        (
            lambda h: [
                "Upgrade: websocket",
                "Connection: Upgrade",
                "Sec-WebSocket-Accept: bm9wZQ==",
            ],
            InvalidHeaderValue,
            "invalid Sec-WebSocket-Accept header: bm9wZQ==",
        ),
        (
            lambda h: ["Upgrade: websocket", "Connection: Upgrade"],
            InvalidHandshake,
            "missing Sec-WebSocket-Accept header",
        ),
        (
            lambda h: good_headers(h)[1:],
            InvalidUpgrade,
            "missing Upgrade header",
        ),
        (
            lambda h: [*good_headers(h), "Sec-WebSocket-Protocol: chat"],
            NegotiationError,
            "unexpected subprotocol: chat",
        ),
        (
            lambda h: [*good_headers(h), "Sec-WebSocket-Extensions: x-unknown"],
            NegotiationError,
            "unexpected extension: x-unknown",
        ),
    ],
)
async def test_invalid_101_is_rejected(make_headers, error, message):
    async with raw_server(fake_101(make_headers)) as port:
        with pytest.raises(error) as info:
            await connect(f"ws://127.0.0.1:{port}/")
    assert isinstance(info.value, InvalidHandshake)
    assert str(info.value) == message


async def test_valid_fake_101_connects():
    async with raw_server(fake_101(good_headers)) as port:
        async with connect(f"ws://127.0.0.1:{port}/", close_timeout=0.2) as ws:
            assert ws.subprotocol is None


async def test_garbage_instead_of_http_response():
    async def handle(reader, writer):
        await read_head(reader)
        writer.write(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
        await reader.read()

    async with raw_server(handle) as port:
        with pytest.raises(InvalidMessage):
            await connect(f"ws://127.0.0.1:{port}/")


async def test_connection_closed_during_handshake():
    async def handle(reader, writer):
        await read_head(reader)
        writer.write(b"HTTP/1.1 101 Switching")

    async with raw_server(handle) as port:
        with pytest.raises(InvalidMessage):
            await connect(f"ws://127.0.0.1:{port}/")


# Timeouts and refusals


async def test_open_timeout_against_silent_server():
    heads = []

    eofs = []

    async def silent(reader, writer):
        heads.append(await read_head(reader))
        await reader.read()  # until the client gives up
        eofs.append(True)

    async with raw_server(silent) as port:
        loop = asyncio.get_running_loop()
        start = loop.time()
        with pytest.raises(TimeoutError):
            await connect(f"ws://127.0.0.1:{port}/", open_timeout=0.2)
        assert 0.15 <= loop.time() - start < 2
        # The client closed the TCP connection it gave up on.
        await until(lambda: eofs, timeout=1)
        assert len(heads) == 1


async def test_connection_refused():
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    with sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        with pytest.raises(ConnectionRefusedError):
            await connect(f"ws://127.0.0.1:{port}/")


async def test_redirect_over_tls(tls_contexts):
    server_context, client_context = tls_contexts
    log = []
    process_request = redirecting({"/old": (302, "/new")}, log)
    async with serve(
        path_handler, "127.0.0.1", 0, ssl=server_context, process_request=process_request
    ) as server:
        uri = f"wss://127.0.0.1:{server.port}/old"
        async with connect(uri, ssl=client_context) as ws:
            assert await ws.recv() == "/new"
    assert log == ["/old", "/new"]


async def test_redirect_from_wss_to_ws_is_refused(tls_contexts):
    server_context, client_context = tls_contexts
    log = []
    async with serve(path_handler, "127.0.0.1", 0) as plain:
        redirects = {"/old": (302, f"ws://127.0.0.1:{plain.port}/insecure")}
        process_request = redirecting(redirects, log)
        async with serve(
            path_handler, "127.0.0.1", 0, ssl=server_context, process_request=process_request
        ) as secure:
            with pytest.raises(InvalidHandshake, match="wss:// to ws://"):
                await connect(f"wss://127.0.0.1:{secure.port}/old", ssl=client_context)
    assert log == ["/old"]


async def test_frame_sent_with_the_101_response():
    async def eager(reader, writer):
        _, headers = await read_head(reader)
        response = "\r\n".join(["HTTP/1.1 101 Switching Protocols", *good_headers(headers), "", ""])
        # The server's first frame rides in the same segment as its response.
        writer.write(response.encode() + b"\x81\x05first" + b"\x88\x02\x03\xe8")
        # The client answers the close frame (masked, code 1000); then the server closes.
        answer = await reader.readexactly(8)
        assert answer[:2] == b"\x88\x82"
        assert bytes(b ^ answer[2 + i % 4] for i, b in enumerate(answer[6:])) == b"\x03\xe8"

    async with raw_server(eager) as port:
        async with connect(f"ws://127.0.0.1:{port}/", close_timeout=0.5) as ws:
            assert await ws.recv() == "first"
            with pytest.raises(ConnectionClosedOK):
                await ws.recv()
            assert ws.close_code == 1000
