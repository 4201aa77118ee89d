"""What a context-aware handler receives: :class:`CallContext` and :class:`CancelToken`."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .repe import Message


if TYPE_CHECKING:  # pragma: no cover
    from .peers import PeerHandle


__all__ = ["CallContext", "CancelToken", "context_for"]


class CancelToken:
    """A sticky cancellation flag, readable from any thread.

    The server cancels a connection's token when the peer disconnects and when a drain
    starts (spec section 3.5); handlers poll :attr:`cancelled` or wait for it.
    """

    __slots__ = ("_cancelled", "_event", "_reason", "_waiters")

    def __init__(self) -> None:
        self._cancelled = False
        self._reason = ""
        self._waiters: list[asyncio.Future[None]] = []
        self._event: threading.Event | None = None

    @property
    def cancelled(self) -> bool:
        """Whether :meth:`cancel` was called."""
        return self._cancelled

    @property
    def reason(self) -> str:
        """The reason given to :meth:`cancel` ("" before)."""
        return self._reason

    def cancel(self, reason: str = "cancelled") -> None:
        """Set the flag and wake every waiter; later calls do nothing.

        Call it from the event loop's thread.
        """
        if self._cancelled:
            return
        self._cancelled = True
        self._reason = reason
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._waiters.clear()
        if self._event is not None:
            self._event.set()

    async def wait(self) -> None:
        """Return once the token is cancelled."""
        if self._cancelled:
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)

    def wait_sync(self, timeout: float | None = None) -> bool:
        """Block the calling thread until cancelled or ``timeout``; for sync handlers.

        Returns:
            Whether the token is cancelled.
        """
        if self._cancelled:
            return True
        if self._event is None:
            self._event = threading.Event()
            if self._cancelled:  # cancelled between the check and the creation
                self._event.set()
        return self._event.wait(timeout)


class _NoPeerInfo:
    path = ""
    query = ""
    headers: Mapping[str, str] = {}
    remote_address: Any = None


_NO_PEER_INFO = _NoPeerInfo()


class CallContext:
    """The call being handled and the connection it came on.

    Attributes:
        message: the request (or notify) being handled.
        peer: the caller's :class:`~tether.rpc.peers.PeerHandle`, to push notifies back;
            ``None`` when the router runs without a server.
    """

    __slots__ = ("_info", "_token", "message", "peer")

    def __init__(
        self,
        message: Message,
        peer: PeerHandle | None = None,
        token: CancelToken | None = None,
        info: Any = None,
    ) -> None:
        self.message = message
        self.peer = peer
        self._token = token if token is not None else CancelToken()
        self._info = info if info is not None else _NoPeerInfo()

    @property
    def method(self) -> str:
        """The REPE query: the JSON pointer of the method being called."""
        return self.message.query_str

    @property
    def id(self) -> int:
        """The request id."""
        return self.message.id

    @property
    def notify(self) -> bool:
        """Whether the caller wants no response."""
        return self.message.notify

    @property
    def path(self) -> str:
        """The URL path of the WebSocket opening handshake (not the REPE method)."""
        return str(self._info.path)

    @property
    def query(self) -> str:
        """The URL query string of the opening handshake."""
        return str(self._info.query)

    @property
    def headers(self) -> Mapping[str, str]:
        """The request headers of the opening handshake."""
        headers: Mapping[str, str] = self._info.headers
        return headers

    @property
    def remote_address(self) -> Any:
        """The peer's address as the transport reports it."""
        return self._info.remote_address

    @property
    def cancel_token(self) -> CancelToken:
        """The connection's cancellation token."""
        return self._token

    @property
    def cancelled(self) -> bool:
        """Whether the peer disconnected or a drain started (spec section 3.5)."""
        return self._token.cancelled

    async def wait_cancelled(self) -> None:
        """Return once :attr:`cancelled` becomes true."""
        await self._token.wait()

    def wait_cancelled_sync(self, timeout: float | None = None) -> bool:
        """Block a sync (thread pool) handler until cancelled or ``timeout``.

        Returns:
            Whether the call is cancelled.
        """
        return self._token.wait_sync(timeout)


_new_context = object.__new__


def context_for(message: Message, peer: PeerHandle, token: CancelToken, info: Any) -> CallContext:
    """Build a server call's :class:`CallContext` without running ``__init__``.

    The same result as ``CallContext(message, peer, token, info)``, cheaper on the
    per-call path.
    """
    ctx: CallContext = _new_context(CallContext)
    ctx.message = message
    ctx.peer = peer
    ctx._token = token
    ctx._info = info if info is not None else _NO_PEER_INFO
    return ctx
