"""RESP2, the protocol Redis speaks, as bytes in and values out (no I/O).

The Redis backend sends its hot commands (``PUBLISH``, the recording script) and reads
pub/sub messages with this codec over its own connections; everything else goes through
``redis-py``. Replies map to Python values as follows:

* simple string (``+OK``): :class:`bytes`;
* error (``-ERR ...``): a :class:`RespError` *value*, not raised, so that one failed
  command among pipelined ones is answered in its place;
* integer (``:1``): :class:`int`;
* bulk string (``$3 abc``): :class:`bytes`, or ``None`` for the null bulk string;
* array (``*2 ...``): :class:`list` of replies, or ``None`` for the null array.
"""

from __future__ import annotations

from typing import TypeAlias


__all__ = ["Reply", "RespError", "RespParser", "RespProtocolError", "encode_command"]

# Redis refuses bulk strings above 512 MB (proto-max-bulk-len); so do we.
MAX_BULK = 512 * 1024 * 1024
# Longest line (type byte, length or simple string, CRLF) accepted before its CRLF.
MAX_LINE = 64 * 1024


class RespError(Exception):
    """An error reply from Redis, e.g. ``ERR unknown command`` or ``NOSCRIPT ...``."""

    @property
    def prefix(self) -> str:
        """The error's first word, e.g. ``"NOSCRIPT"``."""
        return str(self).partition(" ")[0]


class RespProtocolError(Exception):
    """The bytes received are not RESP2: the connection cannot be trusted any more."""


Reply: TypeAlias = "bytes | int | RespError | list[Reply] | None"


def encode_command(*args: bytes | str | int) -> bytes:
    """Encode one command as an array of bulk strings (text as UTF-8)."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, str):
            arg = arg.encode()
        elif isinstance(arg, int):
            arg = b"%d" % arg
        parts.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
    return b"".join(parts)


class _Incomplete(Exception):
    """Private: the reply being parsed continues in bytes not received yet."""


class RespParser:
    """Incremental parser: :meth:`feed` bytes as they arrive, get complete replies."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Reply]:
        """Add received bytes; return every reply they complete, in order.

        Raises:
            RespProtocolError: the bytes are not RESP2.
        """
        buffer = self._buffer
        buffer += data
        replies: list[Reply] = []
        done = 0
        try:
            while done < len(buffer):
                reply, done = self._parse(buffer, done)
                replies.append(reply)
        except _Incomplete:
            pass
        del buffer[:done]
        return replies

    def _parse(self, buffer: bytearray, pos: int) -> tuple[Reply, int]:
        end = buffer.find(b"\r\n", pos)
        if end < 0:
            if len(buffer) - pos > MAX_LINE:
                raise RespProtocolError("line too long")
            raise _Incomplete
        kind = buffer[pos]
        line = bytes(buffer[pos + 1 : end])
        after = end + 2
        if kind == 0x24:  # $: bulk string
            size = self._length(line)
            if size < 0:
                return None, after
            if size > MAX_BULK:
                raise RespProtocolError(f"bulk string of {size} bytes")
            stop = after + size
            if len(buffer) < stop + 2:
                raise _Incomplete
            if buffer[stop : stop + 2] != b"\r\n":
                raise RespProtocolError("bulk string not followed by CRLF")
            return bytes(buffer[after:stop]), stop + 2
        if kind == 0x2A:  # *: array
            count = self._length(line)
            if count < 0:
                return None, after
            items: list[Reply] = []
            for _ in range(count):
                item, after = self._parse(buffer, after)
                items.append(item)
            return items, after
        if kind == 0x3A:  # :: integer
            return self._length(line), after
        if kind == 0x2B:  # +: simple string
            return line, after
        if kind == 0x2D:  # -: error
            return RespError(line.decode("utf-8", "replace")), after
        raise RespProtocolError(f"unknown reply type {bytes([kind])!r}")

    @staticmethod
    def _length(line: bytes) -> int:
        # An integer: optional minus sign, then ASCII digits.
        digits = line[1:] if line[:1] == b"-" else line
        if not digits.isdigit() or len(digits) > 19:
            raise RespProtocolError(f"invalid integer {line[:40]!r}")
        return int(line)
