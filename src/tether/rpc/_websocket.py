"""WebSocket settings shared by the RPC server and client."""

from __future__ import annotations

from typing import Any

from ..protocol.limits import Limits


__all__ = ["BINARY_ONLY_REASON", "websocket_options"]

BINARY_ONLY_REASON = "websocket transport requires binary messages"
"""Close reason (code 1003) for a text message on a REPE connection (spec section 2.2)."""


def websocket_options(kwargs: dict[str, Any], max_message_size: int) -> dict[str, Any]:
    """Fill in the RPC defaults of tether's ``serve()`` / ``connect()`` keyword arguments.

    Compression is off unless asked for, and without explicit ``limits`` the WebSocket
    message, frame and decompressed-size limits all follow ``max_message_size``.
    ``kwargs`` is updated in place and returned.
    """
    kwargs.setdefault("compression", None)
    if "limits" not in kwargs:
        kwargs["limits"] = Limits(
            max_message_size=max_message_size,
            max_frame_size=max_message_size,
            max_decompressed_size=max_message_size,
        )
    return kwargs
