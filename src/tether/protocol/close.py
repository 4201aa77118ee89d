"""Close codes and the close frame payload (RFC 6455 section 7.4)."""

from __future__ import annotations

import dataclasses
import enum
import struct

from ..exceptions import ProtocolError


__all__ = ["Close", "CloseCode", "EXTERNAL_CLOSE_CODES", "OK_CLOSE_CODES", "is_valid_close_code"]


class CloseCode(enum.IntEnum):
    """Close codes registered by RFC 6455 section 7.4.1 and IANA."""

    NORMAL_CLOSURE = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    # 1004 is reserved.
    NO_STATUS_RCVD = 1005
    ABNORMAL_CLOSURE = 1006
    INVALID_DATA = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    MANDATORY_EXTENSION = 1010
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012
    TRY_AGAIN_LATER = 1013
    BAD_GATEWAY = 1014
    TLS_HANDSHAKE = 1015


EXPLANATIONS: dict[int, str] = {
    1000: "OK",
    1001: "going away",
    1002: "protocol error",
    1003: "unsupported data",
    1005: "no status received [internal]",
    1006: "connection closed abnormally [internal]",
    1007: "invalid frame payload data",
    1008: "policy violation",
    1009: "message too big",
    1010: "extension required",
    1011: "unexpected error",
    1012: "service restart",
    1013: "try again later",
    1014: "bad gateway",
    1015: "TLS failure [internal]",
}

# Codes that may appear in a close frame on the wire. 1005, 1006 and 1015 are for
# reporting only: "MUST NOT be set as a status code in a Close control frame by an
# endpoint" (RFC 6455 section 7.4.1). 1004 is reserved.
EXTERNAL_CLOSE_CODES = frozenset(
    {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014}
)

OK_CLOSE_CODES = frozenset({1000, 1001})


def is_valid_close_code(code: int) -> bool:
    """Tell whether ``code`` may be sent in a close frame.

    RFC 6455 section 7.4.2: 3000-3999 are registered with IANA, 4000-4999 are private.
    """
    return code in EXTERNAL_CLOSE_CODES or 3000 <= code < 5000


@dataclasses.dataclass(frozen=True, slots=True)
class Close:
    """The payload of a close frame.

    Attributes:
        code: the close code.
        reason: the close reason.
    """

    code: int
    reason: str

    def __str__(self) -> str:
        if 3000 <= self.code < 4000:
            explanation = "registered"
        elif 4000 <= self.code < 5000:
            explanation = "private use"
        else:
            explanation = EXPLANATIONS.get(self.code, "unknown")
        result = f"{self.code} ({explanation})"
        if self.reason:
            result = f"{result} {self.reason}"
        return result

    @classmethod
    def parse(cls, data: bytes) -> Close:
        """Parse the payload of a close frame.

        Raises:
            ProtocolError: the payload is malformed (1002) or the reason isn't UTF-8 (1007).
        """
        if data == b"\x03\xe8" and cls is Close:
            return _NORMAL  # the usual one
        if len(data) >= 2:
            (code,) = struct.unpack("!H", data[:2])
            if not is_valid_close_code(code):
                raise ProtocolError(f"invalid close code {code}", 1002)
            try:
                reason = data[2:].decode()
            except UnicodeDecodeError as exc:
                raise ProtocolError("invalid UTF-8 in close reason", 1007) from exc
            return cls(code, reason)
        if len(data) == 0:
            return cls(CloseCode.NO_STATUS_RCVD, "")
        raise ProtocolError("close frame too short", 1002)

    def serialize(self) -> bytes:
        """Serialize to the payload of a close frame (an empty payload for 1005)."""
        if self.code == CloseCode.NO_STATUS_RCVD:
            return b""
        return struct.pack("!H", self.code) + self.reason.encode()


_NORMAL = Close(1000, "")  # as parsed: a plain int code
