"""Flow control for streaming over REPE notifies: credit windows, ACKs, resume (spec 3.7).

The wire shape (method names, bodies) is the application's; this module keeps the
accounting. A producer, per chunk::

    await control.wait_for_credit(len(chunk), deadline)   # parks while the window is full
    control.push_replay(offset, len(chunk), last, body)   # keep it for a resume
    if peer.send_notify("/chunk", body, fmt):              # queued
        control.record_sent(offset + len(chunk))

and the ACK handler calls ``control.record_ack(file_index, through)``. Bytes in flight
(sent minus acknowledged) never exceed the window, except for a single chunk larger
than the window, which is let through when nothing is in flight.

After a reconnect the consumer asks to resume at the offset it has; the producer
re-sends the replay ring's tail from there (:meth:`TransferControl.request_resume`).
A :class:`TransferRegistry` maps transfer ids to controls and runs one idle watchdog
task for all of them.

The controls are used from the event loop's thread.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import time
from collections.abc import Hashable
from typing import TYPE_CHECKING, Generic, TypeVar

from .context import CancelToken
from .errors import CreditCancelled, CreditTimeout


if TYPE_CHECKING:  # pragma: no cover
    from .peers import PeerHandle


__all__ = [
    "DEFAULT_CREDIT_TIMEOUT",
    "DEFAULT_IDLE_TIMEOUT",
    "DEFAULT_REPLAY_BYTES",
    "DEFAULT_WINDOW",
    "OUT_OF_WINDOW",
    "RESUME_OK",
    "TRANSFER_CANCELLED",
    "WRONG_FILE_INDEX",
    "ReplayChunk",
    "ResumeResult",
    "TransferControl",
    "TransferRegistry",
]

DEFAULT_WINDOW = 64 * 1024 * 1024
"""Default credit window: 64 MiB in flight (spec section 3.7)."""

DEFAULT_REPLAY_BYTES = 64 * 1024 * 1024
"""Default replay ring size: 64 MiB."""

DEFAULT_CREDIT_TIMEOUT = 30.0
"""Suggested seconds to wait for credit."""

DEFAULT_IDLE_TIMEOUT = 60.0
"""Default seconds without activity before the watchdog cancels a transfer."""

RESUME_OK = "ok"
WRONG_FILE_INDEX = "wrong_file_index"
OUT_OF_WINDOW = "out_of_window"
TRANSFER_CANCELLED = "transfer_cancelled"

K = TypeVar("K", bound=Hashable)


@dataclasses.dataclass(frozen=True, slots=True)
class ReplayChunk:
    """A chunk kept for re-sending after a resume.

    Attributes:
        offset: where the chunk's data starts in the file.
        length: how many data bytes it carries.
        last: whether it ends the file.
        body: the encoded notify body, re-sent as is.
    """

    offset: int
    length: int
    last: bool
    body: bytes

    @property
    def end(self) -> int:
        """The offset after this chunk."""
        return self.offset + self.length


@dataclasses.dataclass(frozen=True, slots=True)
class ResumeResult:
    """The answer to :meth:`TransferControl.request_resume`; true when accepted.

    Attributes:
        reason: ``"ok"`` or one of ``"wrong_file_index"``, ``"out_of_window"``,
            ``"transfer_cancelled"`` (the strings to put on the wire).
        chunks: when accepted, the ring's chunks from the resume offset, to re-send.
    """

    reason: str
    chunks: tuple[ReplayChunk, ...] = ()

    @property
    def ok(self) -> bool:
        """Whether the resume was accepted."""
        return self.reason == RESUME_OK

    def __bool__(self) -> bool:
        return self.ok


class TransferControl:
    """Credit window, ACK accounting, cancel and replay ring for one transfer.

    Args:
        window_bytes: most bytes in flight (sent, not yet acknowledged).
        replay_bytes: most data bytes kept in the replay ring; the oldest chunks are
            dropped beyond it (a resume before them is ``out_of_window``).
        peer: the consumer, if known.

    Attributes:
        file_index: the file being sent.
        sent: the offset after the last chunk sent in this file.
        acked: the offset the consumer acknowledged.
        max_in_flight: the most bytes ever in flight (for tests and metrics).
        peer: the consumer's :class:`~tether.rpc.peers.PeerHandle`.
        last_activity: :func:`time.monotonic` of the last send, ACK or resume.
    """

    def __init__(
        self,
        window_bytes: int = DEFAULT_WINDOW,
        *,
        replay_bytes: int = DEFAULT_REPLAY_BYTES,
        peer: PeerHandle | None = None,
    ) -> None:
        if window_bytes < 1:
            raise ValueError(f"window_bytes must be positive, got {window_bytes}")
        self.window = window_bytes
        self.replay_bytes = replay_bytes
        self.peer = peer
        self.file_index = 0
        self.sent = 0
        self.acked = 0
        self.max_in_flight = 0
        self.last_activity = time.monotonic()
        self._cancel_reason: str | None = None
        self._ring: collections.deque[ReplayChunk] = collections.deque()
        self._ring_bytes = 0
        self._waiters: list[asyncio.Future[None]] = []

    # State

    @property
    def in_flight(self) -> int:
        """Bytes sent and not yet acknowledged."""
        return self.sent - self.acked

    @property
    def cancelled(self) -> bool:
        """Whether :meth:`cancel` was called (sticky)."""
        return self._cancel_reason is not None

    @property
    def cancel_reason(self) -> str | None:
        """The reason given to :meth:`cancel`, or ``None``."""
        return self._cancel_reason

    def touch(self) -> None:
        """Record activity (resets the idle watchdog)."""
        self.last_activity = time.monotonic()

    # Producer side

    async def wait_for_credit(
        self, n: int, deadline: float | None = None, *, cancel_token: CancelToken | None = None
    ) -> None:
        """Wait until ``n`` more bytes fit in the window.

        Returns at once when nothing is in flight or ``in_flight + n <= window``.

        Args:
            n: the size of the next chunk.
            deadline: a :meth:`loop.time() <asyncio.loop.time>` value, or ``None``.
            cancel_token: also stop when this token is cancelled (the producer's
                connection went away); the transfer itself stays resumable.

        Raises:
            CreditTimeout: the deadline passed first.
            CreditCancelled: the transfer (or ``cancel_token``) was cancelled.
        """
        loop = asyncio.get_running_loop()
        while True:
            if self._cancel_reason is not None:
                raise CreditCancelled(self._cancel_reason)
            if cancel_token is not None and cancel_token.cancelled:
                raise CreditCancelled(cancel_token.reason)
            in_flight = self.sent - self.acked
            if in_flight == 0 or in_flight + n <= self.window:
                return
            waiter = loop.create_future()
            self._waiters.append(waiter)
            if cancel_token is not None:
                cancel_token._waiters.append(waiter)
            try:
                if deadline is None:
                    await waiter
                else:
                    try:
                        async with asyncio.timeout_at(deadline):
                            await waiter
                    except TimeoutError:
                        raise CreditTimeout(
                            f"no credit for {n} bytes: {in_flight} bytes in flight, "
                            f"window is {self.window}"
                        ) from None
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
                if cancel_token is not None and waiter in cancel_token._waiters:
                    cancel_token._waiters.remove(waiter)

    async def wait_acked(self, deadline: float | None = None) -> None:
        """Wait until everything sent is acknowledged (the end of a file)."""
        await self.wait_for_credit(self.window, deadline)

    def record_sent(self, through: int) -> None:
        """Record that data up to offset ``through`` was queued for the consumer."""
        if through > self.sent:
            self.sent = through
            in_flight = self.sent - self.acked
            if in_flight > self.max_in_flight:
                self.max_in_flight = in_flight
        self.touch()

    def push_replay(self, offset: int, data_len: int, last: bool, body: bytes) -> None:
        """Keep a chunk's encoded body for a resume; the oldest chunks go beyond the cap."""
        ring = self._ring
        if ring and offset < ring[-1].end:
            return  # re-sent after a resume: already in the ring
        ring.append(ReplayChunk(offset, data_len, last, body))
        self._ring_bytes += data_len
        while self._ring_bytes > self.replay_bytes and len(ring) > 1:
            self._ring_bytes -= ring.popleft().length

    # Consumer messages

    def record_ack(self, file_index: int, through: int) -> bool:
        """Record an ACK: the consumer has the file up to ``through``.

        ACKs for another file, or that do not advance, are ignored; offsets beyond
        what was sent are capped.

        Returns:
            Whether the ACK made room in the window.
        """
        self.touch()
        if file_index != self.file_index:
            return False
        through = min(through, self.sent)
        if through <= self.acked:
            return False
        self.acked = through
        # Acknowledged chunks will not be needed for a resume.
        ring = self._ring
        while ring and ring[0].end <= through:
            self._ring_bytes -= ring.popleft().length
        self._wake()
        return True

    def cancel(self, reason: str = "cancelled") -> None:
        """Cancel the transfer; sticky. Waiting producers get CreditCancelled."""
        if self._cancel_reason is None:
            self._cancel_reason = reason
        self._wake()

    def request_resume(
        self, file_index: int, offset: int, peer: PeerHandle | None = None
    ) -> ResumeResult:
        """Accept or refuse a resume at ``offset`` after a reconnect.

        Accepted for the current file, when not cancelled, at a chunk boundary still in
        the ring, or at the end of what was sent. Then ``sent`` and ``acked`` restart at
        ``offset`` and ``peer`` becomes the consumer.

        Returns:
            The result; its ``chunks`` are the ring's tail from ``offset``, to re-send.
        """
        self.touch()
        if self._cancel_reason is not None:
            return ResumeResult(TRANSFER_CANCELLED)
        if file_index != self.file_index:
            return ResumeResult(WRONG_FILE_INDEX)
        ring = self._ring
        if offset != self.sent and not any(chunk.offset == offset for chunk in ring):
            return ResumeResult(OUT_OF_WINDOW)
        chunks = tuple(chunk for chunk in ring if chunk.offset >= offset)
        self.sent = self.acked = offset
        if peer is not None:
            self.peer = peer
        self._wake()
        return ResumeResult(RESUME_OK, chunks)

    def advance_to_file(self, file_index: int) -> None:
        """Start a new file: offsets restart at 0 and the ring is emptied."""
        self.file_index = file_index
        self.sent = self.acked = 0
        self._ring.clear()
        self._ring_bytes = 0
        self.touch()
        self._wake()

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)


class TransferRegistry(Generic[K]):
    """Transfers by application id, with one idle watchdog for all of them.

    The watchdog task runs while the registry holds transfers; it cancels (reason
    ``"idle timeout"``) any transfer without activity for ``idle_timeout`` seconds.

    Args:
        idle_timeout: seconds of silence before a transfer is cancelled.
        tick: seconds between watchdog checks (a quarter of the timeout, clamped to
            0.01-5 s, by default).
    """

    def __init__(self, idle_timeout: float = DEFAULT_IDLE_TIMEOUT, tick: float | None = None):
        self.idle_timeout = idle_timeout
        self.tick = tick if tick is not None else min(max(idle_timeout / 4, 0.01), 5.0)
        self._transfers: dict[K, TransferControl] = {}
        self._watchdog: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return len(self._transfers)

    def __contains__(self, key: object) -> bool:
        return key in self._transfers

    def insert(self, key: K, control: TransferControl) -> None:
        """Add a transfer (must be called from a running event loop)."""
        self._transfers[key] = control
        if self._watchdog is None or self._watchdog.done():
            self._watchdog = asyncio.get_running_loop().create_task(self._watch())

    def get(self, key: K) -> TransferControl | None:
        """The transfer with this id, or ``None``."""
        return self._transfers.get(key)

    def remove(self, key: K) -> TransferControl | None:
        """Forget a transfer."""
        return self._transfers.pop(key, None)

    async def close(self) -> None:
        """Stop the watchdog; the transfers are left as they are."""
        task, self._watchdog = self._watchdog, None
        if task is not None:
            task.cancel()
            await asyncio.wait([task])

    async def _watch(self) -> None:
        while self._transfers:
            await asyncio.sleep(self.tick)
            now = time.monotonic()
            for control in list(self._transfers.values()):
                if not control.cancelled and now - control.last_activity > self.idle_timeout:
                    control.cancel("idle timeout")
