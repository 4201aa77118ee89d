"""The interface every relay backend implements.

A backend connects one relay node to the others (or to nothing, for the embedded memory
backend). It carries three things:

* **fan-out**: :meth:`Backend.publish` sends a serialized message on a topic to every node
  that called :meth:`Backend.subscribe` for it, this node included, through the
  ``deliver(topic, data)`` callback given to :meth:`Backend.start`;
* **presence**: entries per topic and connection, owned by the node that set them and
  kept alive by it; a node that dies has its entries expire after the presence TTL;
* **history**: a bounded ring of the last messages per topic, each with an offset that
  increases by one per message on that topic; recording a message and publishing it
  with its offset is one step (:meth:`Backend.publish_recorded`).

Backends report trouble they recovered from (a lost connection, a gap in delivery) to the
``on_event`` callback as :class:`BackendEvent` values instead of hiding it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeAlias, runtime_checkable


__all__ = ["Backend", "BackendEvent", "DeliverCallback", "EventCallback"]

DeliverCallback: TypeAlias = Callable[[str, str], None]
"""``deliver(topic, data)``: called on the node's event loop for each message received."""


@dataclass(frozen=True, slots=True)
class BackendEvent:
    """Something the application should know about the backend.

    Attributes:
        kind: ``"disconnected"`` when the backend lost its connection (messages published
            from now on may not reach this node), ``"reconnected"`` when it is back and
            has resubscribed.
        error: a description of the failure, for ``"disconnected"``.
        down_since: the :func:`time.time` when the connection was lost.
        down_for: seconds without a connection, for ``"reconnected"``: the loss window,
            during which pushes on the resubscribed topics may have been missed.
        topics: the topics this node was subscribed to at the time.
    """

    kind: Literal["disconnected", "reconnected"]
    error: str | None = None
    down_since: float | None = None
    down_for: float | None = None
    topics: tuple[str, ...] = field(default_factory=tuple)


EventCallback: TypeAlias = Callable[[BackendEvent], None]
"""``on_event(event)``: called on the node's event loop."""


@runtime_checkable
class Backend(Protocol):
    """Fan-out, presence and history for one relay node."""

    async def start(self, deliver: DeliverCallback, on_event: EventCallback) -> None:
        """Connect and start delivering messages for subscribed topics to ``deliver``."""

    async def publish(self, topic: str, data: str) -> None:
        """Send ``data`` to every node subscribed to ``topic``, this one included."""

    async def subscribe(self, topic: str) -> None:
        """Deliver ``topic``'s messages to this node; returns once they will arrive."""

    async def unsubscribe(self, topic: str) -> None:
        """Stop delivering ``topic``'s messages to this node."""

    async def presence_set(self, topic: str, conn_id: str, meta: Any) -> bool:
        """Set this node's entry for ``conn_id`` on ``topic``; return whether it is new."""

    async def presence_remove(self, topic: str, conn_id: str) -> Any | None:
        """Remove an entry of this node; return its metadata, or ``None`` if absent."""

    async def presence_list(self, topic: str) -> Mapping[str, Any]:
        """Every live entry of ``topic`` across nodes: connection id to metadata."""

    async def presence_count(self, topic: str) -> int:
        """How many live entries ``topic`` has across nodes."""

    async def publish_recorded(self, topic: str, data: str, maxlen: int) -> int:
        """Record ``data`` in ``topic``'s history and publish it with its offset.

        ``data`` is a JSON object; what is stored is ``data`` itself, what
        :meth:`publish` sends is ``data`` with ``"offset":N`` added as its last member
        (:func:`tether.relay.envelope.add_offset`). Both happen as one step, so nodes
        receive a topic's messages in offset order whoever published them. The ring
        keeps the last ``maxlen`` messages; offsets start at 1 and increase by one per
        message on the topic. Returns the offset.
        """

    async def history_read(self, topic: str, since: int) -> list[tuple[int, str]] | None:
        """The messages after offset ``since``, oldest first.

        Returns ``None`` when they aren't all available any more (trimmed from the ring,
        or ``since`` is beyond the last offset, as after a history reset); an empty list
        when ``since`` is the last offset.
        """

    async def close(self) -> None:
        """Stop delivering and release connections and tasks (idempotent).

        Presence entries are not removed: the relay removes them as connections end,
        and entries of a node that stops without doing so expire after the TTL.
        """
