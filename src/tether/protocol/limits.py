"""Every limit tether enforces, in one frozen object with documented defaults.

See ``docs/limits.md`` for the reasoning behind each default.
"""

from __future__ import annotations

import dataclasses


__all__ = ["Limits"]


@dataclasses.dataclass(frozen=True, slots=True)
class Limits:
    """Size and count limits for one connection.

    ``None`` disables a limit. A breach of a message limit closes the connection with
    1009; a breach of a handshake limit rejects the handshake with an HTTP 4xx status.

    Attributes:
        max_message_size: largest message, after reassembly and decompression (1 MiB).
        max_frame_size: largest single frame payload on the wire (1 MiB).
        max_decompressed_size: largest message after permessage-deflate inflation; defaults
            to ``max_message_size`` when ``None`` is not given explicitly (compression bombs).
        max_fragments: most frames one message may span (``None``: no cap).
        max_request_line: longest HTTP request or status line in bytes.
        max_header_line: longest HTTP header line in bytes.
        max_headers: most HTTP header lines.
        max_handshake_body: largest body read with a non-101 handshake response.
    """

    max_message_size: int | None = 1024 * 1024
    max_frame_size: int | None = 1024 * 1024
    max_decompressed_size: int | None = 1024 * 1024
    max_fragments: int | None = None
    max_request_line: int = 8192
    max_header_line: int = 8192
    max_headers: int = 128
    max_handshake_body: int = 1024 * 1024

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if value is not None and value <= 0:
                raise ValueError(f"{field.name} must be positive, got {value}")

    @classmethod
    def unlimited(cls) -> Limits:
        """Limits with every message-size cap disabled (handshake limits stay)."""
        return cls(
            max_message_size=None,
            max_frame_size=None,
            max_decompressed_size=None,
        )
