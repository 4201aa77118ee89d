"""The relay wire protocol: JSON text messages (sans-I/O).

Client to server::

    {"type":"subscribe","topic":T}                 optional: "since":OFFSET, "presence":true
    {"type":"unsubscribe","topic":T}
    {"type":"message","topic":T,"event":E,"payload":P}
    {"type":"ping"}

Server to client::

    {"type":"subscribed","topic":T}
    {"type":"unsubscribed","topic":T}
    {"type":"push","topic":T,"event":E,"payload":P}  plus "offset":N when history is on
    {"type":"pong"}
    {"type":"error","message":M}                      plus "topic":T when there is one

:func:`parse` turns one incoming message into a :class:`Subscribe`, :class:`Unsubscribe`,
:class:`Publish` or :class:`Ping`, or raises :class:`~tether.relay.errors.EnvelopeError`
with the text to send back. The ``*_message`` functions build outgoing messages as
compact JSON strings. Unknown extra fields are ignored, for forward compatibility.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, TypeAlias

from ..types import Data
from .errors import EnvelopeError, InvalidTopic
from .topics import validate_topic


__all__ = [
    "ClientMessage",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "MAX_EVENT_LENGTH",
    "Ping",
    "Publish",
    "Subscribe",
    "Unsubscribe",
    "add_offset",
    "dumps",
    "error_message",
    "offset_of",
    "parse",
    "pong_message",
    "push_message",
    "subscribed_message",
    "unsubscribed_message",
]

DEFAULT_MAX_MESSAGE_SIZE = 64 * 1024
"""Largest client message the relay parses, in bytes (UTF-8)."""

MAX_EVENT_LENGTH = 128
"""Longest event name, in characters."""


@dataclass(frozen=True, slots=True)
class Subscribe:
    """``{"type":"subscribe","topic":T}``, optionally resuming after ``since``.

    Attributes:
        topic: the topic.
        since: the last offset the client saw; missed pushes are replayed.
        presence: whether the client wants ``presence_state``/``presence_diff`` pushes.
    """

    topic: str
    since: int | None = None
    presence: bool = False


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    """``{"type":"unsubscribe","topic":T}``."""

    topic: str


@dataclass(frozen=True, slots=True)
class Publish:
    """``{"type":"message","topic":T,"event":E,"payload":P}`` from a client."""

    topic: str
    event: str
    payload: Any


@dataclass(frozen=True, slots=True)
class Ping:
    """``{"type":"ping"}``."""


ClientMessage: TypeAlias = Subscribe | Unsubscribe | Publish | Ping
"""Any message a client may send."""


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _topic(obj: dict[str, Any]) -> str:
    if "topic" not in obj:
        raise EnvelopeError("missing field: topic")
    try:
        return validate_topic(obj["topic"])
    except InvalidTopic as exc:
        raise EnvelopeError(f"invalid topic: {exc}") from None


def parse(data: Data, max_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> ClientMessage:
    """Parse one client message.

    Args:
        data: the message as received; binary messages are refused.
        max_size: the largest message accepted, in bytes.

    Raises:
        EnvelopeError: the message is too large, isn't JSON, isn't an object, has an
            unknown type, or misses or has invalid fields.
    """
    if not isinstance(data, str):
        raise EnvelopeError("binary messages are not supported")
    # A str has at most 4 UTF-8 bytes per character: encode only when that matters.
    if len(data) > max_size or (len(data) * 4 > max_size and len(data.encode()) > max_size):
        raise EnvelopeError("message too large")
    try:
        obj = json.loads(data, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        raise EnvelopeError("malformed json") from None
    if not isinstance(obj, dict):
        raise EnvelopeError("message must be a json object")
    kind = obj.get("type")
    if kind is None:
        raise EnvelopeError("missing field: type")
    if kind == "subscribe":
        topic = _topic(obj)
        since = obj.get("since")
        if since is not None and (
            not isinstance(since, int) or isinstance(since, bool) or since < 0
        ):
            raise EnvelopeError("since must be a non-negative integer", topic)
        presence = obj.get("presence", False)
        if not isinstance(presence, bool):
            raise EnvelopeError("presence must be a boolean", topic)
        return Subscribe(topic, since, presence)
    if kind == "unsubscribe":
        return Unsubscribe(_topic(obj))
    if kind == "message":
        topic = _topic(obj)
        if "event" not in obj:
            raise EnvelopeError("missing field: event", topic)
        event = obj["event"]
        if not isinstance(event, str) or not event or len(event) > MAX_EVENT_LENGTH:
            raise EnvelopeError(
                f"event must be a non-empty string of at most {MAX_EVENT_LENGTH} characters",
                topic,
            )
        if "payload" not in obj:
            raise EnvelopeError("missing field: payload", topic)
        return Publish(topic, event, obj["payload"])
    if kind == "ping":
        return Ping()
    if not isinstance(kind, str):
        raise EnvelopeError("type must be a string")
    raise EnvelopeError(f"unknown type: {kind[:64]}")


def dumps(obj: Any) -> str:
    """Serialize to compact JSON (no spaces, UTF-8 kept as is).

    Raises:
        TypeError: ``obj`` contains something JSON cannot represent.
        ValueError: ``obj`` contains NaN or infinity, or a circular reference.
    """
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def subscribed_message(topic: str) -> str:
    """``{"type":"subscribed","topic":T}``."""
    return dumps({"type": "subscribed", "topic": topic})


def unsubscribed_message(topic: str) -> str:
    """``{"type":"unsubscribed","topic":T}``."""
    return dumps({"type": "unsubscribed", "topic": topic})


def push_message(topic: str, event: str, payload: Any) -> str:
    """``{"type":"push","topic":T,"event":E,"payload":P}``, without an offset.

    Raises:
        TypeError, ValueError: the payload cannot be serialized to JSON.
    """
    return dumps({"type": "push", "topic": topic, "event": event, "payload": payload})


def add_offset(message: str, offset: int) -> str:
    """Append ``"offset":N`` to a message built by :func:`push_message`.

    The payload is serialized once; each offset costs one string concatenation.
    """
    return f'{message[:-1]},"offset":{offset:d}}}'


def offset_of(message: str) -> int | None:
    """The offset of a message built with :func:`add_offset`, or ``None``."""
    if not message.endswith("}"):
        return None
    _, sep, tail = message.rpartition(',"offset":')
    if not sep:
        return None
    digits = tail[:-1]
    if not digits.isdigit():
        return None
    return int(digits)


def pong_message() -> str:
    """``{"type":"pong"}``."""
    return '{"type":"pong"}'


def error_message(message: str, topic: str | None = None, **extra: Any) -> str:
    """``{"type":"error","message":M}``, plus ``"topic"`` and any extra fields."""
    obj: dict[str, Any] = {"type": "error", "message": message}
    if topic is not None:
        obj["topic"] = topic
    obj.update(extra)
    return dumps(obj)
