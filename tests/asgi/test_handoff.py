"""tether's own server handing plain HTTP to ASGI apps on the WebSocket port."""

import asyncio

import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse, PlainTextResponse, StreamingResponse
from starlette.routing import Route

from tether.asgi import asgi_http_handler, serve_asgi
from tether.asyncio.client import connect
from tether.asyncio.server import ServerConnection, serve
from tether.exceptions import InvalidStatus
from tether.protocol.handshake import reject
from tether.protocol.headers import Headers
from tether.protocol.http11 import Request

from .servers import http_request, quiet


async def echo(ws):
    async for message in ws:
        await ws.send(message)


async def hello(request):
    return PlainTextResponse(f"hello {request.query_params.get('name', 'world')}")


async def upload(request):
    body = await request.body()
    return JSONResponse({"size": len(body), "text": body.decode(), "method": request.method})


async def stream(request):
    async def chunks():
        for i in range(3):
            yield f"chunk {i}\n"

    return StreamingResponse(chunks(), media_type="text/plain")


starlette_app = Starlette(
    routes=[
        Route("/hello", hello, methods=["GET", "HEAD"]),
        Route("/upload", upload, methods=["POST"]),
        Route("/stream", stream),
    ]
)


async def test_starlette_app_beside_websocket_echo():
    handler = asgi_http_handler(starlette_app)
    async with serve(echo, "127.0.0.1", 0, http_handler=handler) as server:
        status, headers, body = await http_request(server.port, "GET", "/hello?name=ann")
        assert (status, body) == (200, b"hello ann")
        assert headers["content-length"] == "9"
        assert headers["connection"] == "close"
        assert headers["content-type"] == "text/plain; charset=utf-8"

        payload = "ünïcode body".encode()
        status, headers, body = await http_request(server.port, "POST", "/upload", body=payload)
        assert status == 200
        assert headers["content-type"] == "application/json"
        assert body == b'{"size":14,"text":"\xc3\xbcn\xc3\xafcode body","method":"POST"}'

        status, _, body = await http_request(server.port, "GET", "/missing")
        assert (status, body) == (404, b"Not Found")

        async with connect(f"ws://127.0.0.1:{server.port}/") as ws:
            await ws.send("same port")
            assert await ws.recv() == "same port"


async def test_streaming_response_is_collected():
    async with serve(echo, "127.0.0.1", 0, http_handler=asgi_http_handler(starlette_app)) as server:
        status, headers, body = await http_request(server.port, "GET", "/stream")
    assert (status, body) == (200, b"chunk 0\nchunk 1\nchunk 2\n")
    assert headers["content-length"] == str(len(body))
    assert "transfer-encoding" not in headers


async def test_head_keeps_content_length_without_body():
    async with serve(echo, "127.0.0.1", 0, http_handler=asgi_http_handler(starlette_app)) as server:
        status, headers, body = await http_request(server.port, "HEAD", "/hello")
    assert (status, body) == (200, b"")
    assert headers["content-length"] == "11"


async def test_http_scope():
    scopes = []

    async def app(scope, receive, send):
        scopes.append(scope)
        event = await receive()
        assert event == {"type": "http.request", "body": b"abc", "more_body": False}
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        assert await receive() == {"type": "http.disconnect"}

    handler = asgi_http_handler(app, root_path="/api")
    async with serve(echo, "127.0.0.1", 0, http_handler=handler) as server:
        port = server.port
        status, headers, body = await http_request(
            port,
            "PUT",
            "/caf%C3%A9/x?q=1&r=%20",
            body=b"abc",
            headers=["X-Custom: Value"],
        )
    assert (status, body) == (204, b"")
    assert "content-length" not in headers
    (scope,) = scopes
    assert scope["type"] == "http"
    assert scope["asgi"]["version"] == "3.0"
    assert scope["http_version"] == "1.1"
    assert scope["method"] == "PUT"
    assert scope["scheme"] == "http"
    assert scope["path"] == "/api/café/x"
    assert scope["raw_path"] == b"/api/caf%C3%A9/x"
    assert scope["query_string"] == b"q=1&r=%20"
    assert scope["root_path"] == "/api"
    assert (b"x-custom", b"Value") in scope["headers"]
    assert (b"host", b"127.0.0.1") in scope["headers"]
    assert scope["server"] == ("127.0.0.1", port)
    assert scope["client"][0] == "127.0.0.1"
    assert isinstance(scope["client"][1], int)


async def test_https_scheme(tls_contexts):
    server_context, client_context = tls_contexts
    schemes = []

    async def app(scope, receive, send):
        schemes.append(scope["scheme"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"secure"})

    handler = asgi_http_handler(app)
    async with serve(echo, "127.0.0.1", 0, http_handler=handler, ssl=server_context) as server:
        status, _, body = await http_request(server.port, "GET", "/", ssl=client_context)
    assert (status, body, schemes) == (200, b"secure", ["https"])


async def test_application_errors_are_500():
    async def app(scope, receive, send):
        path = scope["path"]
        if path == "/raise":
            raise RuntimeError("boom")
        if path == "/nothing":
            return
        if path == "/half":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"part", "more_body": True})
            return
        if path == "/body-first":
            await send({"type": "http.response.body", "body": b"?"})
        if path == "/twice":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.start", "status": 200, "headers": []})
        if path == "/bad-header":
            await send({"type": "http.response.start", "status": 200, "headers": [(b"x", b"\n")]})
            await send({"type": "http.response.body", "body": b""})
            return
        if path == "/unknown-event":
            await send({"type": "http.response.push", "path": "/"})
        if path == "/after":
            await send({"type": "http.response.start", "status": 201, "headers": []})
            await send({"type": "http.response.body", "body": b"done"})
            raise RuntimeError("cleanup failed")
        if path == "/big":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"x" * 10, "more_body": True})
            await send({"type": "http.response.body", "body": b"x" * 10})

    handler = asgi_http_handler(app, max_body=15)
    with quiet("tether.asgi"):
        async with serve(echo, "127.0.0.1", 0, http_handler=handler) as server:
            for path in (
                "/raise",
                "/nothing",
                "/half",
                "/body-first",
                "/twice",
                "/bad-header",
                "/unknown-event",
                "/big",
            ):
                status, _, _ = await http_request(server.port, "GET", path)
                assert status == 500, path
            status, _, body = await http_request(server.port, "GET", "/after")
            assert (status, body) == (201, b"done")


async def test_body_after_complete_response_raises_oserror():
    errors = []

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})
        try:
            await send({"type": "http.response.body", "body": b"more"})
        except OSError as exc:
            errors.append(exc)

    async with serve(echo, "127.0.0.1", 0, http_handler=asgi_http_handler(app)) as server:
        status, _, body = await http_request(server.port, "GET", "/")
    assert (status, body) == (200, b"ok")
    assert len(errors) == 1


async def test_unknown_status_and_hop_by_hop_headers():
    async def app(scope, receive, send):
        headers = [
            (b"connection", b"keep-alive"),
            (b"keep-alive", b"timeout=5"),
            (b"transfer-encoding", b"chunked"),
            (b"content-length", b"999"),
            (b"x-kept", b"yes"),
        ]
        await send({"type": "http.response.start", "status": 599, "headers": headers})
        await send({"type": "http.response.body", "body": b"odd"})

    async with serve(echo, "127.0.0.1", 0, http_handler=asgi_http_handler(app)) as server:
        status, headers, body = await http_request(server.port, "GET", "/")
    assert (status, body) == (599, b"odd")
    assert headers["x-kept"] == "yes"
    assert headers["content-length"] == "3"
    assert headers["connection"] == "close"
    assert "keep-alive" not in headers
    assert "transfer-encoding" not in headers


async def test_handler_called_directly_without_connection():
    handler = asgi_http_handler(starlette_app)
    response = await handler(Request("GET", "/hello?name=x", Headers(Host="h")), None)
    assert (response.status_code, response.reason_phrase, response.body) == (200, "OK", b"hello x")


async def test_serve_asgi_one_port():
    async with serve_asgi(
        starlette_app, "127.0.0.1", 0, websocket_handlers={"/ws": echo}, compression=None
    ) as server:
        status, _, body = await http_request(server.port, "GET", "/hello")
        assert (status, body) == (200, b"hello world")
        async with connect(f"ws://127.0.0.1:{server.port}/ws") as ws:
            await ws.send(b"binary")
            assert await ws.recv() == b"binary"
            assert ws.response_headers.get("Sec-WebSocket-Extensions") is None
        with pytest.raises(InvalidStatus) as info:
            await connect(f"ws://127.0.0.1:{server.port}/hello")
        assert info.value.status == 404


async def test_two_argument_http_handler_gets_the_connection():
    seen = []

    async def handler(request, connection):
        seen.append(connection)
        return reject(200, f"{connection.remote_address[0]}\n")

    def one_argument(request, *rest, option=None):
        return reject(200, "one\n")

    async with serve(echo, "127.0.0.1", 0, http_handler=handler) as server:
        status, _, body = await http_request(server.port, "GET", "/")
    assert (status, body) == (200, b"127.0.0.1\n")
    assert isinstance(seen[0], ServerConnection)
    async with serve(echo, "127.0.0.1", 0, http_handler=one_argument) as server:
        status, _, body = await http_request(server.port, "GET", "/")
    assert (status, body) == (200, b"one\n")


async def test_concurrent_requests():
    async def slow(request):
        await asyncio.sleep(0)
        return PlainTextResponse(request.path_params["n"])

    app = Starlette(routes=[Route("/n/{n}", slow)])
    async with serve(echo, "127.0.0.1", 0, http_handler=asgi_http_handler(app)) as server:
        results = await asyncio.gather(
            *(http_request(server.port, "GET", f"/n/{i}") for i in range(20))
        )
    assert [body for _, _, body in results] == [str(i).encode() for i in range(20)]
