"""Topic pub/sub over WebSocket: channel handlers, presence, history, many nodes.

See ``docs/relay.md`` for the wire protocol and the semantics. The Redis backend lives in
:mod:`tether.relay.backends.redis` and is imported only when used.
"""

from __future__ import annotations

from .backends.base import Backend, BackendEvent
from .backends.memory import MemoryBackend, MemoryBroker
from .channels import ChannelContext, ChannelHandlers
from .errors import BackendError, EnvelopeError, InvalidTopic, Reject, RelayError
from .hub import SLOW_CONSUMER_CLOSE_CODE, Relay, RelayConfig, bearer_token
from .presence import PresenceDiff


__all__ = [
    "Backend",
    "BackendError",
    "BackendEvent",
    "ChannelContext",
    "ChannelHandlers",
    "EnvelopeError",
    "InvalidTopic",
    "MemoryBackend",
    "MemoryBroker",
    "PresenceDiff",
    "Reject",
    "Relay",
    "RelayConfig",
    "RelayError",
    "SLOW_CONSUMER_CLOSE_CODE",
    "bearer_token",
]
