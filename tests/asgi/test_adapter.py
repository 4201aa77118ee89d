"""tether handlers under real ASGI servers: uvicorn (both WebSocket implementations), hypercorn."""

import asyncio

import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route, WebSocketRoute

from tether.asgi import ASGIWebSocket, websocket_app
from tether.asyncio.client import connect
from tether.exceptions import (
    ConcurrencyError,
    ConnectionClosedError,
    ConnectionClosedOK,
    InvalidState,
    InvalidStatus,
    RejectHandshake,
)
from tether.protocol.handshake import reject
from tether.protocol.headers import Headers
from tether.types import MessageStream

from ..utils import until
from .servers import SERVERS, http_request, quiet, run_server, run_uvicorn


pytestmark = pytest.mark.parametrize("server", SERVERS)


async def echo(ws):
    async for message in ws:
        await ws.send(message)


def url(port, path="/"):
    return f"ws://127.0.0.1:{port}{path}"


async def test_echo_text_and_binary(server):
    async with run_server(server, websocket_app(echo)) as port:
        async with connect(url(port)) as ws:
            await ws.send("hello")
            assert await ws.recv() == "hello"
            await ws.send(b"\x00\xff")
            assert await ws.recv() == b"\x00\xff"
            big = bytes(range(256)) * 1024
            await ws.send(big)
            assert await ws.recv() == big
        assert ws.close_code == 1000


async def test_fragments_are_joined(server):
    async def handler(ws):
        await ws.send(["a", "b", "c"])
        await ws.send([b"x", bytearray(b"y")])

        async def chunks():
            yield "as"
            yield "ync"

        await ws.send(chunks())
        with pytest.raises(TypeError):
            await ws.send(["a", b"b"])
        with pytest.raises(TypeError):
            await ws.send([])
        with pytest.raises(TypeError):
            await ws.send(42)

    async with run_server(server, websocket_app(handler)) as port:
        async with connect(url(port)) as ws:
            assert [await ws.recv() for _ in range(3)] == ["abc", b"xy", "async"]


async def test_handler_closes_with_code_and_reason(server):
    async def handler(ws):
        await ws.recv()
        await ws.close(4001, "bye")
        assert ws.close_code is not None
        with pytest.raises(ConnectionClosedError):
            await ws.send("too late")

    async with run_server(server, websocket_app(handler)) as port:
        async with connect(url(port)) as ws:
            await ws.send("go")
            with pytest.raises(ConnectionClosedError) as info:
                await ws.recv()
        assert info.value.rcvd.code == 4001
        assert info.value.rcvd.reason == "bye"
        assert ws.close_code == 4001
        assert ws.close_reason == "bye"


async def test_client_closes_with_1001(server):
    outcome = asyncio.get_running_loop().create_future()

    async def handler(ws):
        try:
            await ws.recv()
        except Exception as exc:
            outcome.set_result((exc, ws.close_code, ws.close_reason))

    async with run_server(server, websocket_app(handler)) as port:
        async with connect(url(port)) as ws:
            await ws.close(1001, "going")
        exc, code, reason = await outcome
    if server == "hypercorn":
        # hypercorn 0.18 reports every close started by the client as a websocket.disconnect
        # with code 1006 (it drops the code of the client's close frame).
        assert isinstance(exc, ConnectionClosedError)
        assert code == 1006
    else:
        assert isinstance(exc, ConnectionClosedOK)
        assert (code, reason) == (1001, "going")
        assert exc.rcvd.code == 1001
        assert exc.sent.code == 1001
        assert exc.rcvd_then_sent is True


async def test_async_for_ends_on_normal_closure(server):
    done = asyncio.get_running_loop().create_future()

    async def handler(ws):
        received = []
        try:
            async for message in ws:
                received.append(message)
        except ConnectionClosedError as exc:
            done.set_result((received, exc.code))
        else:
            done.set_result((received, None))

    async with run_server(server, websocket_app(handler)) as port:
        async with connect(url(port)) as ws:
            await ws.send("one")
            await ws.send("two")
        received, error_code = await done
    assert received == ["one", "two"]
    # hypercorn reports the client's close as 1006 (see test_client_closes_with_1001), an
    # error, so iteration ends with ConnectionClosedError there.
    assert error_code == (1006 if server == "hypercorn" else None)


async def test_handler_exception_closes_with_1011(server):
    async def handler(ws):
        await ws.recv()
        raise RuntimeError("boom")

    with quiet("tether.asgi"):
        async with run_server(server, websocket_app(handler)) as port:
            async with connect(url(port)) as ws:
                await ws.send("go")
                with pytest.raises(ConnectionClosedError):
                    await ws.recv()
            assert ws.close_code == 1011


async def test_process_request_rejects_with_403(server):
    def process_request(ws, request):
        assert request.path == "/private"
        assert request.headers["X-Token"] == "nope"
        return reject(403, "forbidden\n")

    app = websocket_app(echo, process_request=process_request)
    async with run_server(server, app) as port:
        with pytest.raises(InvalidStatus) as info:
            await connect(url(port, "/private"), headers={"X-Token": "nope"})
    assert info.value.status == 403


async def test_process_request_any_status_with_http_response_extension(server):
    async def process_request(ws, request):
        raise RejectHandshake(401, "who are you?\n", [("WWW-Authenticate", "Bearer")])

    app = websocket_app(echo, process_request=process_request)
    async with run_server(server, app) as port:
        with pytest.raises(InvalidStatus) as info:
            await connect(url(port))
    response = info.value.response
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.body == b"who are you?\n"


async def test_process_request_failure_is_500(server):
    def process_request(ws, request):
        raise ValueError("bug")

    app = websocket_app(echo, process_request=process_request)
    with quiet("tether.asgi"):
        async with run_server(server, app) as port:
            with pytest.raises(InvalidStatus) as info:
                await connect(url(port))
    assert info.value.status == 500


async def test_process_request_accepting(server):
    def process_request(ws, request):
        return None

    app = websocket_app(echo, process_request=process_request)
    async with run_server(server, app) as port, connect(url(port)) as ws:
        await ws.send("ok")
        assert await ws.recv() == "ok"


async def test_reject_without_http_response_extension_is_403(server):
    async def app(scope, receive, send):
        scope = dict(scope, extensions={})
        ws = ASGIWebSocket(scope, receive, send)
        await ws.reject(418, "teapot")
        with pytest.raises(InvalidState):
            await ws.accept()

    async with run_server(server, app) as port:
        with pytest.raises(InvalidStatus) as info:
            await connect(url(port))
    assert info.value.status == 403


async def test_close_before_accept_is_403(server):
    async def app(scope, receive, send):
        ws = ASGIWebSocket(scope, receive, send)
        await ws.close()
        assert ws.closed

    async with run_server(server, app) as port:
        with pytest.raises(InvalidStatus) as info:
            await connect(url(port))
    assert info.value.status == 403


async def test_misuse_before_accept(server):
    errors = []

    async def app(scope, receive, send):
        ws = ASGIWebSocket(scope, receive, send)
        for operation in (ws.send("x"), ws.recv()):
            try:
                await operation
            except InvalidState as exc:
                errors.append(str(exc))
        with pytest.raises(ValueError):
            await ws.accept("unoffered")
        await ws.accept()
        with pytest.raises(InvalidState):
            await ws.accept()
        with pytest.raises(InvalidState):
            await ws.reject()
        await ws.close()

    async with run_server(server, app) as port, connect(url(port)) as ws:
        await ws.wait_closed()
    assert errors == ["cannot send before accept()", "cannot receive before accept()"]


async def test_handshake_details(server):
    seen = asyncio.get_running_loop().create_future()

    async def handler(ws):
        seen.set_result(
            (
                ws.path,
                ws.query,
                ws.request_headers.get("X-Hello"),
                ws.remote_address,
                ws.subprotocol,
                ws.peer.path,
                ws.peer.query,
                ws.peer.headers["x-hello"],
                ws.peer.remote_address,
                isinstance(ws, MessageStream),
                ws.request.target,
            )
        )
        await ws.send("done")

    app = websocket_app(handler, subprotocols=["chat.v2", "chat.v1"])
    async with run_server(server, app) as port:
        async with connect(
            url(port, "/room%20one?user=ann"),
            headers={"X-Hello": "world"},
            subprotocols=["chat.v1", "chat.v2"],
        ) as ws:
            assert await ws.recv() == "done"
            assert ws.subprotocol == "chat.v2"
            local = ws.transport.get_extra_info("sockname")
    result = await seen
    assert result == (
        "/room%20one",
        "user=ann",
        "world",
        ("127.0.0.1", local[1]),
        "chat.v2",
        "/room%20one",
        "user=ann",
        "world",
        ("127.0.0.1", local[1]),
        True,
        "/room%20one?user=ann",
    )


async def test_no_common_subprotocol(server):
    async def handler(ws):
        await ws.send(repr(ws.subprotocol))

    app = websocket_app(handler, subprotocols=["chat.v2"])
    async with run_server(server, app) as port, connect(url(port), subprotocols=["other"]) as ws:
        assert await ws.recv() == "None"


async def test_cancelled_recv_loses_no_message(server):
    async def handler(ws):
        pending = asyncio.ensure_future(ws.recv())
        await until(lambda: ws._recv_waiter is not None)
        pending.cancel()
        with pytest.raises(asyncio.CancelledError):
            await pending
        await ws.send("ready")
        assert await ws.recv() == "first"
        waiter = asyncio.ensure_future(ws.recv())
        await until(lambda: ws._recv_waiter is not None)
        with pytest.raises(ConcurrencyError):
            await ws.recv()
        await ws.send("go on")
        assert await waiter == "second"
        await ws.send("checked")

    async with run_server(server, websocket_app(handler)) as port, connect(url(port)) as ws:
        assert await ws.recv() == "ready"
        await ws.send("first")
        assert await ws.recv() == "go on"
        await ws.send("second")
        assert await ws.recv() == "checked"


async def test_receive_buffer_is_bounded(server):
    connections = []

    async def handler(ws):
        connections.append(ws)
        await ws.send("start")
        # The reader stops pulling from the server above the high-water mark...
        await until(lambda: ws._resume_reader is not None)
        assert ws._queued_bytes <= 16 + 8
        # ...and every message still arrives, in order, once the handler reads.
        received = [await ws.recv() for _ in range(20)]
        await ws.send(str(received == [f"{i:08d}" for i in range(20)]))

    app = websocket_app(handler, max_queue=(16, 4))
    async with run_server(server, app) as port, connect(url(port)) as ws:
        assert await ws.recv() == "start"
        for i in range(20):
            await ws.send(f"{i:08d}")
        assert await ws.recv() == "True"


async def test_send_after_client_went_away(server):
    outcome = asyncio.get_running_loop().create_future()

    async def handler(ws):
        await ws.wait_closed()
        try:
            await ws.send("anyone?")
        except Exception as exc:
            outcome.set_result(exc)

    async with run_server(server, websocket_app(handler)) as port:
        async with connect(url(port)) as ws:
            pass
        exc = await outcome
    assert ws.close_code == 1000
    assert isinstance(exc, (ConnectionClosedOK, ConnectionClosedError))


async def test_http_and_unknown_paths_without_fallback(server):
    app = websocket_app({"/ws": echo})
    async with run_server(server, app) as port:
        status, _, body = await http_request(port, "GET", "/ws")
        assert (status, body) == (404, b"not found\n")
        with pytest.raises(InvalidStatus) as info:
            await connect(url(port, "/elsewhere"))
        assert info.value.status == 404
        async with connect(url(port, "/ws")) as ws:
            await ws.send("routed")
            assert await ws.recv() == "routed"


async def test_fallback_gets_http_and_other_websockets(server):
    async def hello(request):
        return PlainTextResponse(f"hello {request.query_params['name']}")

    async def starlette_ws(websocket):
        await websocket.accept()
        await websocket.send_text("from starlette")
        await websocket.close()

    starlette_app = Starlette(
        routes=[Route("/hello", hello), WebSocketRoute("/starlette", starlette_ws)]
    )
    app = websocket_app({"/ws": echo}, fallback=starlette_app)
    async with run_server(server, app) as port:
        status, headers, body = await http_request(port, "GET", "/hello?name=bob")
        assert (status, body) == (200, b"hello bob")
        assert headers["content-type"].startswith("text/plain")
        async with connect(url(port, "/ws")) as ws:
            await ws.send("tether")
            assert await ws.recv() == "tether"
        async with connect(url(port, "/starlette")) as ws:
            assert await ws.recv() == "from starlette"


async def test_starlette_routes_and_mounts(server):
    paths = []

    async def where(ws):
        paths.append(ws.path)
        await echo(ws)

    async def hello(request):
        return PlainTextResponse("hello")

    starlette_app = Starlette(
        routes=[
            Route("/hello", hello),
            WebSocketRoute("/ws", websocket_app(where)),
            Mount("/mounted", app=websocket_app({"/chat": where})),
        ]
    )
    async with run_server(server, starlette_app) as port:
        status, _, body = await http_request(port, "GET", "/hello")
        assert (status, body) == (200, b"hello")
        for path in ("/ws", "/mounted/chat"):
            async with connect(url(port, path)) as ws:
                await ws.send(path)
                assert await ws.recv() == path
        with pytest.raises(InvalidStatus):
            await connect(url(port, "/mounted/other"))
    assert paths == ["/ws", "/mounted/chat"]


async def test_accept_headers(server):
    async def app(scope, receive, send):
        ws = ASGIWebSocket(scope, receive, send)
        await ws.accept(headers=Headers({"X-Served-By": "tether"}))
        await ws.send("hi")
        await ws.close()

    async with run_server(server, app) as port, connect(url(port)) as ws:
        assert await ws.recv() == "hi"
        assert ws.response_headers["X-Served-By"] == "tether"


async def test_lifespan_without_fallback(server):
    # uvicorn runs without lifespan in run_uvicorn; check the events directly as well.
    app = websocket_app(echo)
    events = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent = []

    async def receive():
        return events.pop(0)

    async def send(message):
        sent.append(message["type"])

    await app({"type": "lifespan"}, receive, send)
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    with pytest.raises(ValueError):
        await app({"type": "unknown"}, receive, send)
    with pytest.raises(ValueError):
        ASGIWebSocket({"type": "http"}, receive, send)
    if server.startswith("uvicorn"):
        async with run_uvicorn(app, ws=server.removeprefix("uvicorn-")) as port:
            async with connect(url(port)) as ws:
                await ws.send("x")
                assert await ws.recv() == "x"


async def test_close_arguments_and_state(server):
    async def handler(ws):
        assert ws.state.name == "OPEN"
        assert (ws.close_code, ws.close_reason, ws.closed) == (None, None, False)
        with pytest.raises(ValueError):
            await ws.close(999)
        with pytest.raises(ValueError):
            await ws.close(1000, "x" * 124)
        await ws.close(4000, "done")
        assert ws.state.name == "CLOSED"
        assert ws.closed
        await ws.close(4999)  # already closed: nothing happens
        with pytest.raises(ConnectionClosedError):
            await ws.recv()

    async with run_server(server, websocket_app(handler)) as port, connect(url(port)) as ws:
        await ws.wait_closed()
    assert (ws.close_code, ws.close_reason) == (4000, "done")


async def test_close_gives_up_after_close_timeout(server):
    outcome = asyncio.get_running_loop().create_future()

    async def handler(ws):
        await ws.close(4000)
        outcome.set_result((ws.close_code, ws._close_exc))

    inner = websocket_app(handler, close_timeout=0.1)

    async def swallow_disconnect(scope, receive, send):
        # A server that never reports the end of the connection.
        async def receive_without_disconnect():
            event = await receive()
            if event["type"] == "websocket.disconnect":
                await asyncio.get_running_loop().create_future()
            return event

        await inner(scope, receive_without_disconnect, send)

    async with run_server(server, swallow_disconnect) as port, connect(url(port)) as ws:
        await ws.wait_closed()
        code, exc = await outcome
    assert code == 1006
    assert exc.sent.code == 4000
    assert exc.rcvd is None


async def test_cancelled_handler_closes_with_1001(server):
    started = asyncio.Event()

    async def handler(ws):
        started.set()
        await ws.recv()

    inner = websocket_app(handler)

    async def cancelling(scope, receive, send):
        task = asyncio.ensure_future(inner(scope, receive, send))
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    async with run_server(server, cancelling) as port, connect(url(port)) as ws:
        await ws.wait_closed()
    assert ws.close_code == 1001
