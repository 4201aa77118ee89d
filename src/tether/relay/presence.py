"""Presence state and join/leave diffs (sans-I/O).

Presence tells who is on a topic: a map from connection id to the metadata the
application tracked for it. :class:`PresenceState` holds it for one owner (a node) with a
time to live: every entry expires ``ttl`` seconds after it was last set or refreshed. Time
is an argument (``now``), never read from a clock here, so tests drive it with numbers.

Changes come out as :class:`PresenceDiff` values, which the relay pushes to the clients
that asked for them as ``{"type":"push","topic":T,"event":"presence_diff",
"payload":{"joins":{conn_id: meta},"leaves":{conn_id: meta}}}``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


__all__ = ["PresenceDiff", "PresenceEntry", "PresenceState"]


@dataclass(frozen=True, slots=True)
class PresenceDiff:
    """Who joined and who left a topic.

    Attributes:
        joins: connection id to metadata, for new entries and updated metadata.
        leaves: connection id to the last metadata, for removed or expired entries.
    """

    joins: Mapping[str, Any] = field(default_factory=dict)
    leaves: Mapping[str, Any] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.joins or self.leaves)

    def merge(self, other: PresenceDiff) -> PresenceDiff:
        """Combine two successive diffs: a leave cancels an earlier join and vice versa."""
        joins = dict(self.joins)
        leaves = dict(self.leaves)
        for conn_id, meta in other.leaves.items():
            if joins.pop(conn_id, None) is None:
                leaves[conn_id] = meta
        for conn_id, meta in other.joins.items():
            joins[conn_id] = meta
        return PresenceDiff(joins, leaves)

    def to_payload(self) -> dict[str, Any]:
        """The ``presence_diff`` push payload: ``{"joins": {...}, "leaves": {...}}``."""
        return {"joins": dict(self.joins), "leaves": dict(self.leaves)}


@dataclass(slots=True)
class PresenceEntry:
    """One connection's presence on one topic."""

    conn_id: str
    meta: Any
    expires_at: float


class PresenceState:
    """Presence entries per topic, each with an expiry time.

    Args:
        ttl: seconds an entry lives after it was last set or refreshed; ``None`` keeps
            entries until they are removed.
    """

    def __init__(self, ttl: float | None = None) -> None:
        self.ttl = ttl
        self._topics: dict[str, dict[str, PresenceEntry]] = {}

    def _expiry(self, now: float) -> float:
        return now + self.ttl if self.ttl is not None else float("inf")

    def join(self, topic: str, conn_id: str, meta: Any, now: float) -> PresenceDiff:
        """Add or update an entry; the diff is empty when nothing changed but the expiry."""
        entries = self._topics.setdefault(topic, {})
        entry = entries.get(conn_id)
        expires_at = self._expiry(now)
        if entry is None or entry.expires_at <= now:
            entries[conn_id] = PresenceEntry(conn_id, meta, expires_at)
            return PresenceDiff(joins={conn_id: meta})
        entry.expires_at = expires_at
        if entry.meta == meta:
            return PresenceDiff()
        entry.meta = meta
        return PresenceDiff(joins={conn_id: meta})

    def leave(self, topic: str, conn_id: str) -> PresenceDiff:
        """Remove an entry; the diff is empty when there was none."""
        entries = self._topics.get(topic)
        if entries is None:
            return PresenceDiff()
        entry = entries.pop(conn_id, None)
        if not entries:
            del self._topics[topic]
        if entry is None:
            return PresenceDiff()
        return PresenceDiff(leaves={conn_id: entry.meta})

    def refresh(self, now: float, topics: Iterable[str] | None = None) -> None:
        """Push back the expiry of every entry (of ``topics``, or of all topics)."""
        expires_at = self._expiry(now)
        names = list(self._topics) if topics is None else topics
        for topic in names:
            for entry in self._topics.get(topic, {}).values():
                entry.expires_at = expires_at

    def expire(self, now: float) -> dict[str, PresenceDiff]:
        """Remove the entries whose expiry time has passed; return the diffs by topic."""
        diffs: dict[str, PresenceDiff] = {}
        for topic in list(self._topics):
            entries = self._topics[topic]
            gone = {cid: e.meta for cid, e in entries.items() if e.expires_at <= now}
            if not gone:
                continue
            for conn_id in gone:
                del entries[conn_id]
            if not entries:
                del self._topics[topic]
            diffs[topic] = PresenceDiff(leaves=gone)
        return diffs

    def entries(self, topic: str, now: float) -> dict[str, Any]:
        """The live entries of ``topic``: connection id to metadata."""
        entries = self._topics.get(topic, {})
        return {cid: e.meta for cid, e in entries.items() if e.expires_at > now}

    def count(self, topic: str, now: float) -> int:
        """How many live entries ``topic`` has."""
        entries = self._topics.get(topic, {})
        return sum(1 for e in entries.values() if e.expires_at > now)

    def topics(self) -> list[str]:
        """Topics with at least one entry (expired or not)."""
        return list(self._topics)

    def __len__(self) -> int:
        return sum(len(entries) for entries in self._topics.values())
