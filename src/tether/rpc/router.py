"""The REPE router: handlers keyed by JSON pointer path (sans-I/O).

A :class:`Router` maps method paths to handlers and turns one request
:class:`~tether.rpc.repe.Message` into one response message (or nothing for a notify).
It does no I/O: :class:`~tether.rpc.server.RpcServer` feeds it messages from a
connection, decides whether a handler runs inline or off the reader (spec section
3.5), and writes what comes back.

Handler kinds:

* **json** — gets the body decoded by its ``body_format`` (JSON and UTF-8 as JSON, BEVE
  with :mod:`tether.rpc.beve`, an empty raw body as ``None``) and returns a JSON-like
  value, encoded as BEVE when the request body was BEVE and as JSON otherwise;
* **typed** — the same, but the body is converted to the annotation of the handler's
  body parameter (a dataclass, a pydantic model or msgspec type when installed,
  ``list[int]``...), and a model or struct result is turned into plain data;
* **raw** — gets the request :class:`~tether.rpc.repe.Message` and returns ``bytes``
  (sent with body format RAW) or ``(bytes, body_format)``.

With ``context=True`` a handler gets a :class:`~tether.rpc.context.CallContext` as its
first argument. With ``blocking=True`` the server runs it off the reader: a sync
function on a thread pool, a coroutine function as its own task.

Errors (spec sections 1.6 and 3.3, checked in this order): version (1), query format
and UTF-8 (3), unknown path (6, ``Method not found: <path>``), body that does not parse
(5), body of the wrong shape or unsupported format (4). A handler raising
:class:`~tether.rpc.errors.RpcError` answers with its code and message; any other
exception is a crash, answered with 9 ``handler panicked`` (the exception text is not
sent: it may hold internals) and reported to the server's ``on_error`` hook. Nothing is
ever sent back for a notify.
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from ..types import BytesLike
from . import beve
from ._convert import ConversionError, Converter, converter_for, to_builtins
from .bodies import decode_body, decode_json_body, encode_body, encode_json_body, plain_codec
from .context import CallContext
from .errors import RpcError
from .repe import (
    PLAIN_RESULT_TYPES,
    VERSION,
    BodyFormat,
    ErrorCode,
    Message,
    PlainOutcome,
    QueryFormat,
    RepeError,
    encode_response,
    error_response,
    plain_calls,
    split_pointer,
)


__all__ = [
    "CallNext",
    "ContextFactory",
    "CrashReporter",
    "Middleware",
    "Route",
    "Router",
]

F = TypeVar("F", bound=Callable[..., Any])

CallNext = Callable[[CallContext, Message], Awaitable["Message | None"]]
"""The rest of the chain, as seen by a middleware."""

Middleware = Callable[[CallContext, Message, CallNext], Awaitable["Message | None"]]
"""``async def middleware(ctx, message, call_next) -> Message | None``."""

CrashReporter = Callable[[BaseException, CallContext], None]
"""Called with an exception that escaped a handler (answered with ec 9)."""

ContextFactory = Callable[[Message], CallContext]
"""Makes the :class:`CallContext` of a request, for :meth:`Router.call` to build only
when a handler, a middleware or a crash report needs one."""

# Plain ints: Message's fast constructor path wants exact ints.
_RAW = int(BodyFormat.RAW)
_BEVE = int(BodyFormat.BEVE)
_JSON = int(BodyFormat.JSON)
_UTF8 = int(BodyFormat.UTF8)
_QF_RAW = int(QueryFormat.RAW)
_QF_POINTER = int(QueryFormat.JSON_POINTER)

HANDLER_PANICKED = "handler panicked"
"""Body of the ec 9 answer to a crashed handler (spec section 3.5, verbatim)."""

_KINDS = ("json", "typed", "raw")


@dataclasses.dataclass(slots=True)
class Route:
    """One registered handler.

    Attributes:
        path: the JSON pointer it answers.
        kind: ``"json"``, ``"typed"`` or ``"raw"``.
        func: the handler.
        blocking: run off the reader (spec section 3.5).
        context: pass a :class:`CallContext` first.
        is_async: ``func`` is a coroutine function.
        takes_body: ``func`` has a body parameter (json and typed handlers).
        convert: converts the decoded body (typed handlers).
    """

    path: str
    kind: str
    func: Callable[..., Any]
    blocking: bool = False
    context: bool = False
    is_async: bool = False
    takes_body: bool = True
    convert: Converter | None = None


def _body_parameter(func: Callable[..., Any], context: bool) -> inspect.Parameter | None:
    """The parameter that receives the body, or ``None`` when the handler takes none."""
    try:
        parameters = [
            p
            for p in inspect.signature(func).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
        ]
    except (TypeError, ValueError):  # builtins without a signature: assume a body
        return inspect.Parameter("body", inspect.Parameter.POSITIONAL_ONLY)
    if context:
        parameters = parameters[1:]
    return parameters[0] if parameters else None


def _is_async(func: Callable[..., Any]) -> bool:
    if inspect.iscoroutinefunction(func):
        return True
    call = getattr(func, "__call__", None)  # noqa: B004 - async callable objects
    return call is not None and inspect.iscoroutinefunction(call)


class Router:
    """Handlers by JSON pointer path, plus middleware.

    ::

        router = Router()

        @router.json("/sum")
        def total(values):
            return sum(values)

        @router.typed("/move", context=True)
        async def move(ctx: CallContext, command: Move) -> Position:
            ...
    """

    def __init__(self) -> None:
        self._routes: dict[str, Route] = {}
        self._by_query: dict[bytes, Route] = {}
        # Handlers of plain calls by query: see plain_calls().
        self._plain: dict[bytes, Callable[[Any], Any]] = {}
        self._middleware: list[Middleware] = []

    # Registration

    @property
    def routes(self) -> dict[str, Route]:
        """The registered routes by path (a copy)."""
        return dict(self._routes)

    def add(
        self,
        kind: str,
        path: str,
        func: Callable[..., Any],
        *,
        blocking: bool = False,
        context: bool = False,
    ) -> Route:
        """Register a handler of the given kind; see :meth:`add_json` and friends.

        Raises:
            ValueError: the path is not a JSON pointer, is taken, or the kind is unknown.
        """
        if kind not in _KINDS:
            raise ValueError(f"unknown handler kind: {kind!r}")
        try:
            split_pointer(path)
        except RepeError as exc:
            raise ValueError(str(exc)) from None
        if path in self._routes:
            raise ValueError(f"path already registered: {path}")
        body = _body_parameter(func, context)
        convert = None
        if kind == "typed":
            annotation: Any = Any
            if body is not None and body.name:
                try:
                    hints = typing.get_type_hints(func)
                except (NameError, TypeError):
                    hints = {}
                annotation = hints.get(body.name, Any)
            convert = converter_for(annotation)
        route = Route(
            path=path,
            kind=kind,
            func=func,
            blocking=blocking,
            context=context,
            is_async=_is_async(func),
            takes_body=body is not None,
            convert=convert,
        )
        self._routes[path] = route
        self._by_query[path.encode()] = route
        if _plain_route(route) and not self._middleware:
            self._plain[path.encode()] = func
        return route

    def add_json(
        self, path: str, func: Callable[..., Any], *, blocking: bool = False, context: bool = False
    ) -> Route:
        """Register a JSON handler: ``func([ctx,] value) -> value``.

        Args:
            path: JSON pointer, e.g. ``"/api/sum"``.
            func: sync or async function; a body parameter is optional.
            blocking: run off the reader (spec section 3.5).
            context: pass a :class:`CallContext` first.
        """
        return self.add("json", path, func, blocking=blocking, context=context)

    def add_typed(
        self, path: str, func: Callable[..., Any], *, blocking: bool = False, context: bool = False
    ) -> Route:
        """Register a typed handler: the body is converted to the parameter's annotation."""
        return self.add("typed", path, func, blocking=blocking, context=context)

    def add_raw(
        self, path: str, func: Callable[..., Any], *, blocking: bool = False, context: bool = False
    ) -> Route:
        """Register a raw handler: ``func([ctx,] message) -> bytes | (bytes, body_format)``."""
        return self.add("raw", path, func, blocking=blocking, context=context)

    def json(self, path: str, *, blocking: bool = False, context: bool = False) -> Callable[[F], F]:
        """Decorator form of :meth:`add_json`."""

        def decorator(func: F) -> F:
            self.add_json(path, func, blocking=blocking, context=context)
            return func

        return decorator

    def typed(
        self, path: str, *, blocking: bool = False, context: bool = False
    ) -> Callable[[F], F]:
        """Decorator form of :meth:`add_typed`."""

        def decorator(func: F) -> F:
            self.add_typed(path, func, blocking=blocking, context=context)
            return func

        return decorator

    def raw(self, path: str, *, blocking: bool = False, context: bool = False) -> Callable[[F], F]:
        """Decorator form of :meth:`add_raw`."""

        def decorator(func: F) -> F:
            self.add_raw(path, func, blocking=blocking, context=context)
            return func

        return decorator

    def add_middleware(self, middleware: Middleware) -> None:
        """Add a middleware; the first added is the outermost.

        A middleware runs where the handler runs (on the reader for inline routes, in
        the handler's task for off-reader ones), after the path was found.
        """
        self._middleware.append(middleware)
        self._plain.clear()  # every call goes through the chain now

    def middleware(self, middleware: Middleware) -> Middleware:
        """Decorator form of :meth:`add_middleware`."""
        self.add_middleware(middleware)
        return middleware

    def mount(self, prefix: str, router: Router) -> None:
        """Copy every route of ``router`` under ``prefix`` (``"/api/v1"``).

        The mounted router's middleware is not copied; this router's applies.
        """
        for route in router._routes.values():
            self.add(
                route.kind,
                prefix + route.path,
                route.func,
                blocking=route.blocking,
                context=route.context,
            )

    # Dispatch

    def lookup(self, message: Message) -> Route:
        """Validate a request's header and find its route (spec section 3.3).

        Raises:
            RepeError: with ec 1 (version), 3 (query format or UTF-8) or 6 (unknown path).
        """
        query = message.query
        if type(query) is not bytes:
            query = bytes(query)
        route = self._by_query.get(query)
        if message.version != VERSION:
            raise RepeError(
                f"REPE version mismatch: expected {VERSION}, got {message.version}",
                ErrorCode.VERSION_MISMATCH,
            )
        if message.query_format != _QF_POINTER:
            raise RepeError(
                f"unsupported query format {message.query_format}: expected json pointer (1)",
                ErrorCode.INVALID_QUERY,
            )
        if route is None:
            path = message.query_str  # raises ec 3 for invalid UTF-8
            raise RepeError(f"Method not found: {path}", ErrorCode.METHOD_NOT_FOUND)
        return route

    async def handle(
        self,
        message: Message,
        ctx: CallContext | None = None,
        *,
        report: CrashReporter | None = None,
    ) -> Message | None:
        """Run one request inline and return the response (``None`` for a notify).

        Args:
            message: the request.
            ctx: the call context; a bare one is made when ``None``.
            report: called with any exception answered as a crash.
        """
        try:
            route = self.lookup(message)
        except RepeError as exc:
            if message.notify:
                return None
            return error_response(message, exc.ec, str(exc))
        return await self.run(route, message, ctx, report=report)

    async def run(
        self,
        route: Route,
        message: Message,
        ctx: CallContext | None = None,
        *,
        report: CrashReporter | None = None,
        innermost: CallNext | None = None,
    ) -> Message | None:
        """Run a looked-up route through the middleware chain.

        Args:
            route: from :meth:`lookup`.
            message: the request.
            ctx: the call context; a bare one is made when ``None``.
            report: called with any exception answered as a crash.
            innermost: replaces the handler call at the end of the chain (the server
                uses it to run a sync handler on a thread pool with :meth:`run_sync`).
        """
        if ctx is None:
            ctx = CallContext(message)
        if not self._middleware and innermost is None:
            return await self._invoke(route, message, ctx, report)

        async def handler(c: CallContext, m: Message) -> Message | None:
            return await self._invoke(route, m, c, report)

        chain: CallNext = innermost if innermost is not None else handler
        for middleware in reversed(self._middleware):
            chain = _link(middleware, chain)
        try:
            return await chain(ctx, message)
        except Exception as exc:
            return self._error_reply(exc, message, ctx, report)

    def run_sync(
        self, route: Route, message: Message, ctx: CallContext, report: CrashReporter | None = None
    ) -> Message | None:
        """Run a sync handler to completion (the server calls it on a thread pool).

        Returns:
            The response, or ``None`` for a notify.
        """
        try:
            result = route.func(*self._arguments(route, message, ctx))
            if message.notify:
                return None
            return self._encode(route, message, result)
        except Exception as exc:
            return self._error_reply(exc, message, ctx, report)

    async def _invoke(
        self, route: Route, message: Message, ctx: CallContext, report: CrashReporter | None
    ) -> Message | None:
        try:
            result = route.func(*self._arguments(route, message, ctx))
            if route.is_async or inspect.isawaitable(result):
                result = await result
            if message.notify:
                return None
            return self._encode(route, message, result)
        except Exception as exc:
            return self._error_reply(exc, message, ctx, report)

    def _arguments(
        self, route: Route, message: Message, ctx: CallContext | ContextFactory
    ) -> tuple[Any, ...]:
        if route.kind == "raw":
            return (_context(ctx, message), message) if route.context else (message,)
        if not route.takes_body:
            return (_context(ctx, message),) if route.context else ()
        value = decode_request_body(message.body, message.body_format)
        if route.convert is not None:
            value = route.convert(value)
        return (_context(ctx, message), value) if route.context else (value,)

    def call(
        self,
        route: Route,
        message: Message,
        ctx: CallContext | ContextFactory,
        report: CrashReporter | None = None,
    ) -> bytes | Awaitable[bytes | None] | None:
        """Run a looked-up route and return the encoded response (the server's path).

        The same outcome as :meth:`run` followed by ``Message.encode()``, but a sync
        handler without middleware runs with no coroutine and no response
        :class:`Message` is built: the result is ``bytes`` (or ``None`` for a notify)
        when the handler is done, otherwise an awaitable of them.

        ``ctx`` is the call's context, or a function of the message that makes it:
        then it is made only if the handler takes a context, a middleware runs, or a
        crash is reported.
        """
        if self._middleware or route.is_async:
            return self._call_async(route, message, _context(ctx, message), report)
        # A JSON body for a handler that takes just the value: no argument tuple.
        plain_json = message.body_format == _JSON and route.kind == "json"
        try:
            if plain_json and route.takes_body and not route.context:
                result = route.func(decode_json_body(message.body))
            else:
                result = route.func(*self._arguments(route, message, ctx))
        except Exception as exc:
            return _encoded(self._error_reply(exc, message, ctx, report))
        return self._settle(route, message, ctx, report, result, plain_json)

    def plain_calls(self, max_size: int | None) -> Callable[[Any], PlainOutcome]:
        """The server's one-step path for plain calls to this router's json handlers.

        Returns :func:`~tether.rpc.repe.plain_calls` over the sync json handlers that
        take just the body (not blocking, no context) while no middleware is added, with
        the JSON library in use: called with a received message, it answers a request
        that needs nothing else, or returns ``None`` (use :meth:`lookup` and
        :meth:`call`) or an outcome for :meth:`complete`. Routes added later are seen.
        """
        return plain_calls(max_size, self._plain, plain_codec())

    def complete(
        self,
        message: Message,
        outcome: tuple[Any, Exception | None],
        ctx: CallContext | ContextFactory,
        report: CrashReporter | None = None,
    ) -> bytes | Awaitable[bytes | None] | None:
        """Finish a plain call that :meth:`plain_calls` could not answer by itself.

        Args:
            message: the request, decoded.
            outcome: ``(result, None)`` or ``(None, exception)`` from the plain call.
            ctx: as for :meth:`call`.
            report: called with any exception answered as a crash.

        Returns:
            As :meth:`call`.
        """
        result, exc = outcome
        if exc is not None:
            return _encoded(self._error_reply(exc, message, ctx, report))
        route = self.lookup(message)
        return self._settle(route, message, ctx, report, result, False)

    def _settle(
        self,
        route: Route,
        message: Message,
        ctx: CallContext | ContextFactory,
        report: CrashReporter | None,
        result: Any,
        plain_json: bool,
    ) -> bytes | Awaitable[bytes | None] | None:
        # A handler's result: await it, or encode it (directly when plain_json). Results
        # of the plain types are never awaitable: no inspect.isawaitable() call for them.
        if type(result) not in PLAIN_RESULT_TYPES:
            if inspect.isawaitable(result):
                return self._finish(route, message, ctx, report, result)
        elif plain_json and not message.notify:
            try:
                body = encode_json_body(result)
            except (TypeError, ValueError):
                pass  # _response_bytes reports it
            else:
                return encode_response(message.id, body, _JSON)
        return self._response_bytes(route, message, ctx, report, result)

    async def _call_async(
        self, route: Route, message: Message, ctx: CallContext, report: CrashReporter | None
    ) -> bytes | None:
        return _encoded(await self.run(route, message, ctx, report=report))

    async def _finish(
        self,
        route: Route,
        message: Message,
        ctx: CallContext | ContextFactory,
        report: CrashReporter | None,
        pending: Awaitable[Any],
    ) -> bytes | None:
        try:
            result = await pending
        except Exception as exc:
            return _encoded(self._error_reply(exc, message, ctx, report))
        return self._response_bytes(route, message, ctx, report, result)

    def _response_bytes(
        self,
        route: Route,
        message: Message,
        ctx: CallContext | ContextFactory,
        report: CrashReporter | None,
        result: Any,
    ) -> bytes | None:
        if message.notify:
            return None
        try:
            body, fmt = self._result_body(route, message, result)
            return encode_response(message.id, body, fmt)
        except Exception as exc:
            return _encoded(self._error_reply(exc, message, ctx, report))

    def _encode(self, route: Route, message: Message, result: Any) -> Message:
        body, fmt = self._result_body(route, message, result)
        # Spec section 1.7: Glaze's shape, an empty query with query_format 0.
        return Message(message.id, b"", body, _QF_RAW, fmt)

    def _result_body(self, route: Route, message: Message, result: Any) -> tuple[BytesLike, int]:
        if route.kind == "raw":
            body: Any
            if isinstance(result, tuple):
                body, fmt = result
            else:
                body, fmt = result, _RAW
            if not isinstance(body, bytes | bytearray | memoryview):
                raise TypeError(f"raw handler must return bytes, got {type(body).__name__}")
            return body, int(fmt)
        fmt = _BEVE if message.body_format == _BEVE else _JSON
        if type(result) not in PLAIN_RESULT_TYPES:
            result = to_builtins(result)
        try:
            return encode_body(result, fmt), fmt
        except (TypeError, ValueError, beve.BeveEncodeError) as exc:
            raise _EncodeFailed(f"could not encode the result: {exc}") from exc

    @staticmethod
    def _error_reply(
        exc: Exception,
        message: Message,
        ctx: CallContext | ContextFactory,
        report: CrashReporter | None,
    ) -> Message | None:
        if isinstance(exc, RpcError):
            code, text = exc.code, exc.message
        elif isinstance(exc, RepeError):
            code, text = exc.ec, str(exc)
        elif isinstance(exc, ConversionError):
            code, text = ErrorCode.INVALID_BODY, f"invalid body: {exc}"
        else:
            if report is not None:
                report(exc, _context(ctx, message))
            code = ErrorCode.INTERNAL_ERROR
            text = str(exc) if isinstance(exc, _EncodeFailed) else HANDLER_PANICKED
        if message.notify:
            return None
        return error_response(message, code, text)


def _plain_route(route: Route) -> bool:
    # A handler that plain_calls() may run: func(value) with nothing to await.
    return (
        route.kind == "json"
        and route.takes_body
        and not (route.blocking or route.context or route.is_async)
    )


def _context(ctx: CallContext | ContextFactory, message: Message) -> CallContext:
    return ctx if isinstance(ctx, CallContext) else ctx(message)


def _encoded(response: Message | None) -> bytes | None:
    return None if response is None else response.encode()


class _EncodeFailed(Exception):
    """A handler's result could not be encoded (answered with ec 9)."""


def _link(middleware: Middleware, call_next: CallNext) -> CallNext:
    async def step(ctx: CallContext, message: Message) -> Message | None:
        return await middleware(ctx, message, call_next)

    return step


def decode_request_body(body: BytesLike, body_format: int) -> Any:
    """Decode a body for a json or typed handler.

    JSON and UTF-8 bodies are read as JSON, BEVE bodies as BEVE, an empty raw body is
    ``None``.

    Raises:
        RepeError: ec 5 when the body does not parse, ec 4 for another format.
    """
    if body_format == _JSON or body_format == _UTF8:
        return decode_body(body, _JSON)
    if body_format == _BEVE:
        return decode_body(body, _BEVE)
    if body_format == _RAW and len(body) == 0:
        return None
    raise RepeError(
        f"unsupported body format {body_format} for a json handler", ErrorCode.INVALID_BODY
    )
