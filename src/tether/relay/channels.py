"""Channel handlers: per-topic authorization and message handling.

Register handlers on a relay for a topic pattern (see :mod:`tether.relay.topics` for
exact and prefix patterns and their precedence), either as a class::

    @relay.channel("room:*")
    class Room:
        async def join(self, ctx):
            if ctx.user is None:
                raise Reject("login required")
            await ctx.track({"name": ctx.user})

        async def message(self, ctx, event, payload):
            await ctx.push(event, {"from": ctx.user, "text": payload})

        async def leave(self, ctx):
            ...

or as functions::

    lobby = relay.channel("chat:lobby")

    @lobby.join
    async def join_lobby(ctx): ...

Every handler is optional and may be a coroutine function or a plain function.

* ``join(ctx)`` runs before the subscription is confirmed. Raising
  :class:`~tether.relay.errors.Reject` sends ``{"type":"error","message":reason,
  "topic":T}`` instead of ``subscribed``; any other exception is logged and answered with
  ``"internal error"``.
* ``message(ctx, event, payload)`` runs for each ``{"type":"message"}`` a subscribed client
  sends on the topic and decides what happens: nothing is pushed unless it calls
  :meth:`ChannelContext.push` (or :meth:`ChannelContext.reply`). Without a ``message``
  handler, client messages are refused with ``"publishing not allowed"`` unless
  ``RelayConfig(client_publish=True)``, which pushes them to the topic as they are.
* ``leave(ctx)`` runs after an unsubscribe or a disconnect, in the background; its
  exceptions are logged.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

from ..types import PeerInfo


if TYPE_CHECKING:  # pragma: no cover
    from .hub import Relay


__all__ = [
    "ChannelContext",
    "ChannelHandlers",
    "JoinHandler",
    "LeaveHandler",
    "MessageHandler",
    "call_handler",
]

JoinHandler: TypeAlias = Callable[["ChannelContext"], Awaitable[None] | None]
"""``join(ctx)``: authorize a subscription (raise Reject to refuse)."""

MessageHandler: TypeAlias = Callable[["ChannelContext", str, Any], Awaitable[None] | None]
"""``message(ctx, event, payload)``: handle a client message on a topic."""

LeaveHandler: TypeAlias = Callable[["ChannelContext"], Awaitable[None] | None]
"""``leave(ctx)``: the connection left the topic."""

F = TypeVar("F", bound=Callable[..., Any])
C = TypeVar("C")


class ChannelContext:
    """What a channel handler knows about the connection and the topic.

    Attributes:
        relay: the relay.
        conn_id: the connection's unique id.
        user: what the ``authenticate`` hook returned at the handshake (or ``None``).
        topic: the topic (the actual topic, not the pattern).
        peer: the connection's handshake information.
    """

    __slots__ = ("_reply", "conn_id", "peer", "relay", "topic", "user")

    def __init__(
        self,
        relay: Relay,
        conn_id: str,
        user: Any,
        topic: str,
        peer: PeerInfo,
        reply: Callable[[str, Any], Awaitable[None]],
    ) -> None:
        self.relay = relay
        self.conn_id = conn_id
        self.user = user
        self.topic = topic
        self.peer = peer
        self._reply = reply

    async def push(self, event: str, payload: Any) -> int | None:
        """Push to every subscriber of the topic; see :meth:`Relay.push`."""
        return await self.relay.push(self.topic, event, payload)

    async def reply(self, event: str, payload: Any) -> None:
        """Send ``{"type":"push",...}`` on the topic to this connection only (no offset)."""
        await self._reply(event, payload)

    async def track(self, meta: Any = None) -> None:
        """Track this connection's presence on the topic; see :meth:`Relay.track`."""
        await self.relay.track(self.topic, self.conn_id, meta)

    async def untrack(self) -> None:
        """Stop tracking this connection's presence on the topic."""
        await self.relay.untrack(self.topic, self.conn_id)


class ChannelHandlers:
    """The handlers registered for one pattern; returned by ``Relay.channel(pattern)``.

    Call it on a class (instantiated without arguments) or an object to take its
    ``join``/``message``/``leave`` methods, or use :meth:`join`, :meth:`message` and
    :meth:`leave` as decorators on functions.
    """

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self.on_join: JoinHandler | None = None
        self.on_message: MessageHandler | None = None
        self.on_leave: LeaveHandler | None = None

    def __call__(self, obj: C) -> C:
        """Take the handlers from a class or an object; return it unchanged."""
        target = obj() if isinstance(obj, type) else obj
        self.on_join = getattr(target, "join", None) or self.on_join
        self.on_message = getattr(target, "message", None) or self.on_message
        self.on_leave = getattr(target, "leave", None) or self.on_leave
        return obj

    def join(self, fn: F) -> F:
        """Decorator: register the ``join(ctx)`` handler."""
        self.on_join = fn
        return fn

    def message(self, fn: F) -> F:
        """Decorator: register the ``message(ctx, event, payload)`` handler."""
        self.on_message = fn
        return fn

    def leave(self, fn: F) -> F:
        """Decorator: register the ``leave(ctx)`` handler."""
        self.on_leave = fn
        return fn


async def call_handler(fn: Callable[..., Any], *args: Any) -> None:
    """Call a handler that may be a coroutine function or a plain function."""
    result = fn(*args)
    if inspect.isawaitable(result):
        await result
