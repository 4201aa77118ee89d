"""Router: registration, validation order, body formats, typed handlers, errors, middleware."""

import dataclasses
import inspect
import json

import pytest
from vectors import REPE_VECTORS

from tether.rpc import beve, bodies
from tether.rpc.context import CallContext, CancelToken, context_for
from tether.rpc.errors import ApplicationError, RpcError
from tether.rpc.repe import BodyFormat, ErrorCode, Message, RepeError, decode
from tether.rpc.router import Router, _EncodeFailed


def request(path, body=b"", fmt=BodyFormat.RAW, *, id=1, notify=False, qf=1, version=1):
    if not isinstance(body, bytes):
        body = json.dumps(body).encode()
        fmt = BodyFormat.JSON
    return Message(
        id, path.encode(), body, query_format=qf, body_format=fmt, notify=notify, version=version
    )


def text(response):
    return bytes(response.body).decode()


@pytest.fixture
def router():
    router = Router()

    @router.json("/sum")
    def total(values):
        return sum(values)

    @router.json("/ping")
    def ping():
        return "pong"

    @router.json("/async")
    async def later(value):
        return {"got": value}

    return router


async def test_json_handler_answers_in_glaze_shape(router):
    response = await router.handle(request("/sum", [1, 2, 3], id=2))
    assert (response.id, bytes(response.body), response.body_format) == (2, b"6", 2)
    assert (bytes(response.query), response.query_format, response.ec) == (b"", 0, 0)


async def test_vector_v1_gets_v2(router):
    v1 = decode(bytes.fromhex(REPE_VECTORS["V1"][0]))
    response = await router.handle(v1)
    assert response.encode() == bytes.fromhex(REPE_VECTORS["V2"][0])


async def test_beve_request_gets_beve_response(router):
    v7 = decode(bytes.fromhex(REPE_VECTORS["V7"][0]))
    response = await router.handle(v7)
    assert response.body_format == BodyFormat.BEVE
    assert beve.decode(response.body) == 6


async def test_utf8_body_read_as_json_and_empty_body_as_none(router):
    response = await router.handle(request("/async", b'"hi"', BodyFormat.UTF8))
    assert json.loads(text(response)) == {"got": "hi"}
    response = await router.handle(request("/async"))
    assert json.loads(text(response)) == {"got": None}
    response = await router.handle(request("/ping"))
    assert text(response) == '"pong"'


async def test_validation_order(router):
    # Version first, even for an unknown path with a raw query.
    response = await router.handle(request("/nope", qf=0, version=2))
    assert response.ec == ErrorCode.VERSION_MISMATCH
    assert text(response) == "REPE version mismatch: expected 1, got 2"
    # Then the query format.
    response = await router.handle(request("/sum", [1], qf=0))
    assert response.ec == ErrorCode.INVALID_QUERY
    bad_utf8 = Message(3, b"/\xff", b"", 1, 0)
    assert (await router.handle(bad_utf8)).ec == ErrorCode.INVALID_QUERY
    # Then the path.
    response = await router.handle(request("/missing", [1]))
    assert response.ec == ErrorCode.METHOD_NOT_FOUND
    assert text(response) == "Method not found: /missing"
    # Then the body: parse error (5), wrong format (4).
    response = await router.handle(request("/sum", b"[1,", BodyFormat.JSON))
    assert response.ec == ErrorCode.PARSE_ERROR
    response = await router.handle(request("/sum", b"\x01", BodyFormat.RAW))
    assert response.ec == ErrorCode.INVALID_BODY
    response = await router.handle(request("/sum", b"[]", 4200))
    assert response.ec == ErrorCode.INVALID_BODY


async def test_error_reply_shape(router):
    response = await router.handle(request("/missing", id=9))
    assert (response.id, bytes(response.query), response.query_format) == (9, b"", 0)
    assert response.body_format == BodyFormat.UTF8


async def test_rpc_error_codes_and_crashes():
    router = Router()
    crashes = []

    @router.json("/app")
    def app(value):
        raise RpcError(4100, "no such account")

    @router.json("/plain")
    def plain(value):
        raise ApplicationError("it failed")

    @router.json("/crash")
    def crash(value):
        raise KeyError("secret internals")

    @router.json("/unencodable")
    def unencodable(value):
        return object()

    def report(exc, ctx):
        crashes.append(exc)

    response = await router.handle(request("/app", 1), report=report)
    assert (response.ec, text(response)) == (4100, "no such account")
    response = await router.handle(request("/plain", 1), report=report)
    assert (response.ec, text(response)) == (4096, "it failed")
    response = await router.handle(request("/crash", 1), report=report)
    assert (response.ec, text(response)) == (9, "handler panicked")
    response = await router.handle(request("/unencodable", 1), report=report)
    assert response.ec == 9
    assert text(response).startswith("could not encode the result")
    assert [type(exc) for exc in crashes] == [KeyError, _EncodeFailed]


async def test_notify_never_answered(router):
    calls = []

    @router.json("/record")
    def record(value):
        calls.append(value)
        raise RuntimeError("boom")

    assert await router.handle(request("/record", 5, notify=True)) is None
    assert await router.handle(request("/missing", 5, notify=True)) is None
    assert await router.handle(request("/sum", b"[", BodyFormat.JSON, notify=True)) is None
    assert await router.handle(request("/sum", [1], notify=True, version=2)) is None
    assert await router.handle(request("/sum", [1], notify=True)) is None
    assert calls == [5]


@dataclasses.dataclass
class Point:
    x: int
    y: int = 0


@dataclasses.dataclass
class Shape:
    name: str
    points: list[Point]


async def test_typed_handlers():
    router = Router()

    @router.typed("/norm")
    def norm(point: Point) -> int:
        return point.x * point.x + point.y * point.y

    @router.typed("/shape")
    async def shape(shape: Shape) -> Shape:
        return Shape(shape.name.upper(), [Point(p.y, p.x) for p in shape.points])

    @router.typed("/ints")
    def ints(values: list[int]) -> int:
        return len(values)

    # Unknown keys are ignored (spec section 3.3).
    response = await router.handle(request("/norm", {"x": 3, "y": 4, "z": 1}))
    assert text(response) == "25"
    response = await router.handle(request("/shape", {"name": "a", "points": [{"x": 1, "y": 2}]}))
    assert json.loads(text(response)) == {"name": "A", "points": [{"x": 2, "y": 1}]}
    for bad in ({"y": 4}, [1, 2], {"x": "3"}):
        response = await router.handle(request("/norm", bad))
        assert response.ec == ErrorCode.INVALID_BODY, bad
    assert (await router.handle(request("/ints", [1, "a"]))).ec == ErrorCode.INVALID_BODY
    response = await router.handle(request("/ints", beve.encode([1, 2, 3]), BodyFormat.BEVE))
    assert beve.decode(response.body) == 3


async def test_raw_and_context_handlers():
    router = Router()

    @router.raw("/echo")
    def echo(message):
        return bytes(message.body), BodyFormat.UTF8

    @router.raw("/bytes", context=True)
    async def raw_bytes(ctx, message):
        return b"\x00" + ctx.method.encode()

    @router.json("/who", context=True)
    def who(ctx, value):
        assert isinstance(ctx, CallContext)
        return {"id": ctx.id, "method": ctx.method, "cancelled": ctx.cancelled, "value": value}

    response = await router.handle(request("/echo", b"hello", BodyFormat.RAW))
    assert (bytes(response.body), response.body_format) == (b"hello", BodyFormat.UTF8)
    response = await router.handle(request("/bytes"))
    assert (bytes(response.body), response.body_format) == (b"\x00/bytes", 0)
    response = await router.handle(request("/who", 7, id=4))
    assert json.loads(text(response)) == {"id": 4, "method": "/who", "cancelled": False, "value": 7}


async def test_middleware_composes_in_order(router):
    seen = []

    @router.middleware
    async def outer(ctx, message, call_next):
        seen.append("outer in")
        response = await call_next(ctx, message)
        seen.append("outer out")
        return response

    @router.middleware
    async def deny(ctx, message, call_next):
        seen.append("deny")
        if ctx.method == "/sum" and message.id == 13:
            raise RpcError(4403, "forbidden")
        return await call_next(ctx, message)

    response = await router.handle(request("/sum", [1, 2], id=12))
    assert text(response) == "3"
    assert seen == ["outer in", "deny", "outer out"]
    response = await router.handle(request("/sum", [1, 2], id=13))
    assert (response.ec, text(response)) == (4403, "forbidden")


async def test_mount_and_registration_errors(router):
    api = Router()
    api.add_json("/double", lambda value: value * 2)
    router.mount("/api/v1", api)
    response = await router.handle(request("/api/v1/double", 21))
    assert text(response) == "42"
    assert "/api/v1/double" in router.routes
    with pytest.raises(ValueError, match="already registered"):
        router.add_json("/sum", lambda value: value)
    with pytest.raises(ValueError, match="json pointer"):
        router.add_json("sum", lambda value: value)
    with pytest.raises(ValueError, match="unknown handler kind"):
        router.add("xml", "/x", lambda value: value)


async def test_lookup_raises_repe_errors(router):
    with pytest.raises(RepeError) as info:
        router.lookup(request("/missing"))
    assert info.value.ec == ErrorCode.METHOD_NOT_FOUND


@dataclasses.dataclass
class Point:
    x: int
    y: int


def _call_router():
    router = Router()
    router.json("/echo")(lambda value: value)
    router.json("/list_of_object")(lambda value: [object()])
    router.json("/dataclass")(lambda value: Point(value, 2))
    router.json("/ctx", context=True)(lambda ctx, value: [ctx.id, value])
    router.json("/nobody")(lambda: "none")
    router.json("/missing_body")(lambda value: value)
    router.json("/not_finite")(lambda value: [float("nan"), float("-inf"), value])
    router.json("/big_int")(lambda value: [2**80, -(2**70)])
    router.json("/int_keys")(lambda value: {1: value, "b": [Point(1, 2)]})

    async def later(value):
        return [value]

    router.json("/coroutine")(lambda value: later(value))

    @router.json("/fails")
    def fails(value):
        raise ApplicationError(4100, "no")

    @router.json("/crash")
    def crash(value):
        raise KeyError(value)

    return router


def _call_message(path, value, notify):
    if isinstance(value, bytes):
        message = request(path, value, BodyFormat.JSON if value else BodyFormat.RAW)
    else:
        message = request(path, value, notify=notify, id=77)
    return dataclasses.replace(message, notify=notify)


CALL_CASES = [
    ("/echo", [1, "a", None]),
    ("/echo", {"nested": [1.5, True]}),
    ("/echo", b"not json"),
    ("/list_of_object", 1),
    ("/dataclass", 1),
    ("/fails", 1),
    ("/crash", 1),
    ("/ctx", 1),
    ("/nobody", 1),
    ("/missing_body", b""),
    ("/echo", b"NaN"),
    ("/echo", b"[1,"),
    ("/not_finite", 1),
    ("/big_int", 1),
    ("/int_keys", 1),
    ("/coroutine", 1),
]

# Routes in the router's plain-call table: sync json handlers of one body argument.
PLAIN_PATHS = {
    "/echo",
    "/list_of_object",
    "/dataclass",
    "/missing_body",
    "/not_finite",
    "/big_int",
    "/int_keys",
    "/coroutine",
    "/fails",
    "/crash",
}


@pytest.mark.parametrize("lazy", [False, True])
@pytest.mark.parametrize("notify", [False, True])
@pytest.mark.parametrize(("path", "value"), CALL_CASES)
async def test_call_gives_the_bytes_of_handle(path, value, notify, lazy):
    # Router.call (the server's synchronous path, with a shortcut for JSON bodies)
    # and Router.handle must answer every request alike.
    router = _call_router()
    message = _call_message(path, value, notify)
    reported = []
    made = []

    def make_context(message):
        made.append(message)
        return CallContext(message)

    route = router.lookup(message)
    ctx = make_context if lazy else CallContext(message)
    called = router.call(route, message, ctx, lambda exc, ctx: reported.append(exc))
    if inspect.isawaitable(called):
        called = await called
    expected = await router.handle(message, report=lambda exc, ctx: reported.append(exc))
    if expected is None:
        assert called is None
    else:
        assert called == expected.encode()
    assert len(reported) in (0, 2)
    # A context is made only for a handler that takes one or for a crash report.
    assert made == ([message] if lazy and (path == "/ctx" or reported) else [])


@pytest.mark.parametrize("info", [None, type("Info", (), {"path": "/p", "query": "q=1"})()])
def test_context_for_matches_the_constructor(info):
    message = request("/x", [1], id=9)
    token = CancelToken()
    built = CallContext(message, "peer", token, info)
    fast = context_for(message, "peer", token, info)
    for name in ("message", "peer", "cancel_token", "path", "query", "id", "method", "notify"):
        assert getattr(fast, name) == getattr(built, name)
    token.cancel()
    assert fast.cancelled


@pytest.mark.parametrize("library", ["json", "msgspec"])
@pytest.mark.parametrize("notify", [False, True])
@pytest.mark.parametrize(("path", "value"), CALL_CASES)
async def test_plain_calls_give_the_bytes_of_handle(path, value, notify, library):
    # The server's one-step path (plain_calls, then complete or the general path) must
    # answer every request as Router.handle does, with either JSON library.
    previous = bodies.json_library()
    bodies.use_json_library(library)
    try:
        router = _call_router()
        message = _call_message(path, value, notify)
        data = message.encode()
        reported = []

        def report(exc, ctx):
            reported.append(exc)

        outcome = router.plain_calls(None)(data)
        plain = (
            path in PLAIN_PATHS
            and message.body_format == BodyFormat.JSON
            and not notify
            and value not in (b"NaN", b"[1,", b"not json")  # refused by msgspec, or both
        )
        if library == "json" and value == b"NaN":
            plain = path in PLAIN_PATHS and not notify  # the standard library reads NaN
        assert (outcome is not None) == plain
        if outcome is None:
            try:
                route = router.lookup(message)
            except RepeError:
                called = None  # handle() answers the unknown path; not in these cases
            else:
                called = router.call(route, message, CallContext, report)
        elif isinstance(outcome, bytes):
            called = outcome
        else:
            called = router.complete(decode(data), outcome, CallContext, report)
        if inspect.isawaitable(called):
            called = await called
        expected = await router.handle(message, report=report)
        assert called == (None if expected is None else expected.encode())
        assert len(reported) in (0, 2)
        assert len({type(exc) for exc in reported}) == len(reported) // 2
    finally:
        bodies.use_json_library(previous)


def test_the_plain_call_table_holds_only_plain_routes():
    router = Router()
    router.json("/plain")(lambda value: value)
    router.json("/blocking", blocking=True)(lambda value: value)
    router.json("/context", context=True)(lambda ctx, value: value)
    router.json("/nobody")(lambda: 1)
    router.typed("/typed")(lambda value: value)
    router.raw("/raw")(lambda message: b"")

    async def coroutine(value):
        return value

    router.json("/async")(coroutine)
    sub = Router()
    sub.json("/leaf")(lambda value: [value])
    router.mount("/sub", sub)
    plain = router.plain_calls(None)
    answered = {
        path for path in router.routes if isinstance(plain(request(path, [1]).encode()), bytes)
    }
    assert answered == {"/plain", "/sub/leaf"}
    # Routes added later are seen by the same caller.
    router.json("/later")(lambda value: value)
    assert plain(request("/later", [2], id=3).encode()) == request_response(3, b"[2]")
    # A middleware sends every call through the chain, now and for later routes.

    async def middleware(ctx, message, call_next):
        return await call_next(ctx, message)

    router.add_middleware(middleware)
    router.json("/after")(lambda value: value)
    for path in router.routes:
        assert plain(request(path, [1]).encode()) is None


def test_plain_calls_follow_the_json_library():
    previous = bodies.json_library()
    router = Router()
    router.json("/echo")(lambda value: value)
    try:
        bodies.use_json_library("json")
        plain = router.plain_calls(100)
        data = request("/echo", b"NaN", BodyFormat.JSON).encode()
        assert plain(data) == request_response(1, b"null")  # read by json, written as null
        bodies.use_json_library("msgspec")
        assert plain(data) is None  # msgspec refuses NaN: the general path decides
        big = request("/echo", list(range(40))).encode()
        assert len(big) > 100
        assert plain(big) is None  # over the size limit
    finally:
        bodies.use_json_library(previous)


def request_response(id, body):
    return Message(id, b"", body, query_format=0, body_format=BodyFormat.JSON).encode()
