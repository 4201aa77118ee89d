"""HTTP/1.1 messages of the opening handshake."""

from __future__ import annotations

import dataclasses


__all__ = ["Response"]


@dataclasses.dataclass
class Response:
    """An HTTP response."""

    status_code: int
    reason_phrase: str
    body: bytes = b""
