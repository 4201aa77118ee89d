"""Topic names and channel patterns (sans-I/O).

A topic is a non-empty string of at most :data:`MAX_TOPIC_LENGTH` characters without
whitespace, control characters or ``*``. Channel handlers are registered for a pattern:

* an exact topic, ``"chat:lobby"``;
* a prefix pattern ending with ``*``, ``"room:*"``, matching every topic that starts with
  ``"room:"`` (``"*"`` alone matches every topic).

When several patterns match, an exact pattern beats any prefix pattern and a longer prefix
beats a shorter one, so ``"room:vip:*"`` wins over ``"room:*"`` for ``"room:vip:1"``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Generic, TypeVar

from .errors import InvalidTopic


__all__ = [
    "MAX_TOPIC_LENGTH",
    "PRESENCE_CHANNEL_PREFIX",
    "PatternTable",
    "is_pattern",
    "presence_channel",
    "validate_pattern",
    "validate_topic",
]

MAX_TOPIC_LENGTH = 256
"""Longest accepted topic, in characters."""

PRESENCE_CHANNEL_PREFIX = "\x00presence:"
"""Internal backend topic carrying a topic's presence diffs (never a valid user topic)."""

T = TypeVar("T")


def validate_topic(topic: object) -> str:
    """Check that ``topic`` is a usable topic name and return it.

    Raises:
        InvalidTopic: it isn't a string, is empty or too long, or contains whitespace,
            control characters or ``*``.
    """
    if not isinstance(topic, str):
        raise InvalidTopic("topic must be a string")
    if not topic:
        raise InvalidTopic("topic must not be empty")
    if len(topic) > MAX_TOPIC_LENGTH:
        raise InvalidTopic(f"topic longer than {MAX_TOPIC_LENGTH} characters")
    if "*" in topic:
        raise InvalidTopic("topic must not contain '*'")
    if not topic.isprintable() or any(c.isspace() for c in topic):
        raise InvalidTopic("topic must not contain whitespace or control characters")
    return topic


def is_pattern(pattern: str) -> bool:
    """Tell whether ``pattern`` is a prefix pattern (ends with ``*``)."""
    return pattern.endswith("*")


def validate_pattern(pattern: str) -> str:
    """Check a channel pattern: an exact topic or a prefix followed by one final ``*``.

    Raises:
        InvalidTopic: the pattern is malformed.
    """
    if not isinstance(pattern, str):
        raise InvalidTopic("pattern must be a string")
    if pattern == "*":
        return pattern
    if is_pattern(pattern):
        prefix = pattern[:-1]
        if "*" in prefix:
            raise InvalidTopic("'*' is only allowed at the end of a pattern")
        validate_topic(prefix)
        return pattern
    return validate_topic(pattern)


def presence_channel(topic: str) -> str:
    """The internal backend topic that carries ``topic``'s presence diffs."""
    return PRESENCE_CHANNEL_PREFIX + topic


class PatternTable(Generic[T]):
    """Maps channel patterns to values; :meth:`match` applies the precedence rules."""

    def __init__(self) -> None:
        self._exact: dict[str, T] = {}
        # (prefix, value), longest prefix first.
        self._prefixes: list[tuple[str, T]] = []

    def add(self, pattern: str, value: T) -> None:
        """Register ``value`` for ``pattern``.

        Raises:
            InvalidTopic: the pattern is malformed.
            ValueError: the pattern is already registered.
        """
        validate_pattern(pattern)
        if is_pattern(pattern):
            prefix = pattern[:-1]
            if any(p == prefix for p, _ in self._prefixes):
                raise ValueError(f"pattern already registered: {pattern}")
            self._prefixes.append((prefix, value))
            self._prefixes.sort(key=lambda item: len(item[0]), reverse=True)
        else:
            if pattern in self._exact:
                raise ValueError(f"pattern already registered: {pattern}")
            self._exact[pattern] = value

    def match(self, topic: str) -> T | None:
        """Return the value of the best pattern matching ``topic``, or ``None``."""
        value = self._exact.get(topic)
        if value is not None:
            return value
        for prefix, value in self._prefixes:
            if topic.startswith(prefix):
                return value
        return None

    def __len__(self) -> int:
        return len(self._exact) + len(self._prefixes)

    def __iter__(self) -> Iterator[str]:
        yield from self._exact
        for prefix, _ in self._prefixes:
            yield prefix + "*"
