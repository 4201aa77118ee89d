"""HTTP/1.1 messages of the opening handshake, and incremental parsers for them.

:class:`RequestParser` and :class:`ResponseParser` take bytes as they arrive and return
a :class:`Request` or :class:`Response` once it is complete. Every buffer they keep is
bounded by :class:`~tether.protocol.limits.Limits`, including while the end of the head
hasn't arrived yet. See ``docs/http.md`` for the design and the error to status table.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Generic, TypeVar

from ..exceptions import InvalidMessage, SecurityError
from .headers import Headers
from .limits import Limits


__all__ = ["Request", "RequestParser", "Response", "ResponseParser"]


# RFC 7230 3.2.6: token = 1*tchar
_TOKEN_RE = re.compile(rb"[-!#$%&'*+.^_`|~0-9a-zA-Z]+")

# RFC 7230 5.3: origin-form, absolute-form, authority-form and asterisk-form are all
# made of visible ASCII; we don't accept obs-text or spaces in a target.
_TARGET_RE = re.compile(rb"[\x21-\x7e]+")

# RFC 7230 2.6: HTTP-version = HTTP-name "/" DIGIT "." DIGIT
_VERSION_RE = re.compile(rb"HTTP/[0-9]\.[0-9]")

# RFC 7230 3.2: a field value is VCHAR, obs-text, SP and HTAB. Other control bytes are
# rejected; CR and LF are checked separately, as they may appear in CRLF pairs.
_CONTROL_BYTES = bytes([*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F])

# RFC 7230 3.2.6: a header name is a token (decoded text, for the header block).
_NAME_RE = re.compile(r"[-!#$%&'*+.^_`|~0-9a-zA-Z]+")

# RFC 7230 3.1.2: reason-phrase = *( HTAB / SP / VCHAR / obs-text )
_REASON_RE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")

# RFC 7230 4.1: chunk = chunk-size [ chunk-ext ] CRLF; extensions are ignored (4.1.1).
_CHUNK_SIZE_RE = re.compile(rb"([0-9A-Fa-f]+)[ \t]*(?:;[\t\x20-\x7e\x80-\xff]*)?")


def _show(data: bytes) -> str:
    """Render untrusted bytes for an error message, shortened."""
    text = data[:80].decode("ascii", "backslashreplace")
    return text + "..." if len(data) > 80 else text


@dataclasses.dataclass
class Request:
    """An HTTP/1.1 request.

    Attributes:
        method: the request method, e.g. ``"GET"``.
        target: the request target as sent: path and query string.
        headers: the header fields.
        body: the body, after removing any chunked transfer coding.
    """

    method: str
    target: str
    headers: Headers
    body: bytes = b""

    @property
    def path(self) -> str:
        """The request target without its query string."""
        return self.target.partition("?")[0]

    @property
    def query(self) -> str:
        """The raw query string, without ``?``; ``""`` when there is none."""
        return self.target.partition("?")[2]

    def serialize(self) -> bytes:
        """Return the request as bytes, ready to send.

        The headers are sent as they are; set ``Content-Length`` yourself with a body.

        Raises:
            ValueError: the method isn't a token or the target isn't visible ASCII.
        """
        method = self.method.encode("ascii", "replace")
        target = self.target.encode("ascii", "replace")
        if _TOKEN_RE.fullmatch(method) is None:
            raise ValueError(f"invalid method: {self.method!r}")
        if _TARGET_RE.fullmatch(target) is None:
            raise ValueError(f"invalid request target: {self.target!r}")
        # RFC 7230 3.1.1: request-line = method SP request-target SP HTTP-version CRLF
        return b"%s %s HTTP/1.1\r\n%s\r\n%s" % (method, target, self.headers.serialize(), self.body)


@dataclasses.dataclass
class Response:
    """An HTTP/1.1 response.

    Attributes:
        status_code: the status code, e.g. ``101``.
        reason_phrase: the reason phrase, e.g. ``"Switching Protocols"``.
        headers: the header fields.
        body: the body, after removing any chunked transfer coding.
    """

    status_code: int
    reason_phrase: str
    headers: Headers
    body: bytes = b""

    def serialize(self) -> bytes:
        """Return the response as bytes, ready to send.

        The headers are sent as they are; :func:`~tether.protocol.handshake.reject`
        builds responses with a correct ``Content-Length``.

        Raises:
            ValueError: the status code isn't three digits or the reason phrase contains
                a control character.
        """
        if not 100 <= self.status_code <= 999:
            raise ValueError(f"invalid status code: {self.status_code!r}")
        if _REASON_RE.fullmatch(self.reason_phrase) is None:
            raise ValueError(f"invalid reason phrase: {self.reason_phrase!r}")
        # RFC 7230 3.1.2: status-line = HTTP-version SP status-code SP reason-phrase CRLF
        status_line = f"HTTP/1.1 {self.status_code:d} {self.reason_phrase}\r\n"
        return status_line.encode("latin-1") + self.headers.serialize() + b"\r\n" + self.body


M = TypeVar("M", Request, Response)

# Parser states.
_HEAD = 0
_BODY_LENGTH = 1
_BODY_CHUNKED = 2
_BODY_EOF = 3
_DONE = 4

# Chunked body states.
_CHUNK_SIZE = 0
_CHUNK_DATA = 1
_CHUNK_CRLF = 2
_CHUNK_TRAILER = 3

# How a body is delimited: no body, Content-Length, chunked, or end of connection.
_NONE = "none"
_LENGTH = "length"
_CHUNKED = "chunked"
_EOF = "eof"


class _Parser(Generic[M]):
    """Shared machinery: bounded head scan, header parsing and body framing."""

    _start_line_name = "start line"
    _start_line_status = 400

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self._buffer = bytearray()
        self._state = _HEAD
        # Where the search for the end of the head resumes.
        self._scan = 0
        # Start of the first line not yet checked against the limits, and the number of
        # lines checked so far (the start line included), while the head is incomplete.
        self._line_start = 0
        self._lines = 0
        self._start: tuple[str, str, int] = ("", "", 0)
        self._headers = Headers()
        self._remaining = 0
        self._body_size = 0
        self._chunks: list[bytes] = []
        self._chunk_state = _CHUNK_SIZE
        self._trailers = 0
        self._head = b""

    @property
    def raw_head(self) -> bytes:
        """The message head as received, up to and including the empty line.

        Empty until the head is complete. Parsing it again gives the same start line
        and headers.
        """
        return self._head + b"\r\n\r\n" if self._head else b""

    @property
    def leftover(self) -> bytes:
        """Bytes received after the end of the message, once it is complete.

        For a ``101 Switching Protocols`` exchange, these are the first WebSocket frames.
        """
        if self._state != _DONE:
            return b""
        return bytes(self._buffer)

    def feed(self, data: bytes) -> M | None:
        """Add received bytes and return the message once it is complete.

        After a message is returned, more bytes are only appended to :attr:`leftover`.

        Args:
            data: bytes read from the network.

        Returns:
            The message, or ``None`` when more data is needed.

        Raises:
            InvalidMessage: the message is malformed (see ``status`` for the HTTP status).
            SecurityError: a limit in :class:`Limits` was exceeded (see ``status``).
        """
        self._buffer += data
        if self._state == _HEAD and not self._parse_head():
            return None
        if self._state == _BODY_LENGTH:
            if len(self._buffer) < self._remaining:
                return None
            body = bytes(self._buffer[: self._remaining])
            del self._buffer[: self._remaining]
            return self._finish(body)
        if self._state == _BODY_CHUNKED:
            return self._parse_chunked()
        if self._state == _BODY_EOF and len(self._buffer) > self.limits.max_handshake_body:
            raise SecurityError("body too large", status=413)
        return None

    def feed_eof(self) -> M | None:
        """Signal the end of the connection.

        Returns:
            The message when the end of the connection completes it (a response body
            delimited by the connection close), else ``None``.

        Raises:
            InvalidMessage: the connection closed in the middle of a message.
        """
        if self._state == _BODY_EOF:
            body = bytes(self._buffer)
            self._buffer.clear()
            return self._finish(body)
        if self._state == _DONE:
            return None
        if self._state == _HEAD:
            if not self._buffer:
                return self._eof_before_message()
            raise InvalidMessage("connection closed while reading the message head")
        raise InvalidMessage("connection closed while reading the message body")

    # Private methods

    def _eof_before_message(self) -> M | None:  # pragma: no cover
        raise NotImplementedError

    def _parse_start_line(self, line: bytes) -> tuple[str, str, int]:  # pragma: no cover
        raise NotImplementedError

    def _framing(self, headers: Headers) -> tuple[str, int]:  # pragma: no cover
        raise NotImplementedError

    def _build(self, body: bytes) -> M:  # pragma: no cover
        raise NotImplementedError

    def _finish(self, body: bytes) -> M:
        self._state = _DONE
        return self._build(body)

    def _check_line(self, index: int, length: int) -> None:
        # The start line and the header lines have separate limits; lengths exclude CRLF.
        if index == 0:
            if length > self.limits.max_request_line:
                raise SecurityError(
                    f"{self._start_line_name} too long", status=self._start_line_status
                )
        elif length > self.limits.max_header_line:
            raise SecurityError("header line too long", status=431)
        elif index > self.limits.max_headers:
            raise SecurityError("too many headers", status=431)

    def _check_partial_head(self) -> None:
        # The end of the head hasn't arrived: check every line completed since the last
        # call and the line in progress, so the buffer never grows beyond the limits.
        buffer = self._buffer
        pos = self._line_start
        while (eol := buffer.find(b"\r\n", pos)) >= 0:
            self._check_line(self._lines, eol - pos)
            self._lines += 1
            pos = eol + 2
        self._line_start = pos
        partial = len(buffer) - pos
        if buffer.endswith(b"\r"):
            partial -= 1  # maybe the first half of CRLF
        if partial > 0:
            self._check_line(self._lines, partial)

    def _parse_head(self) -> bool:
        buffer = self._buffer
        # RFC 7230 3: the head ends with an empty line.
        end = buffer.find(b"\r\n\r\n", self._scan)
        if end < 0:
            self._check_partial_head()
            self._scan = max(0, len(buffer) - 3)
            return False
        head = self._head = bytes(buffer[:end])
        del buffer[: end + 4]

        lines = head.split(b"\r\n")
        limits = self.limits
        separators = len(lines) - 1
        # Check every limit with a few C-level passes. When one is exceeded, check line by
        # line in order, like _check_partial_head, so that the error doesn't depend on
        # how the bytes were split.
        if (
            len(lines[0]) > limits.max_request_line
            or separators > limits.max_headers
            or (separators and max(map(len, lines[1:])) > limits.max_header_line)
        ):
            for index in range(min(len(lines), limits.max_headers + 2)):  # pragma: no branch
                self._check_line(index, len(lines[index]))

        # RFC 7230 3.5: a bare CR or LF isn't a line terminator; reject it, and every
        # control character other than HTAB.
        if (
            head.count(b"\r") != separators
            or head.count(b"\n") != separators
            or len(head.translate(None, _CONTROL_BYTES)) != len(head)
        ):
            raise InvalidMessage("invalid character in message head")

        self._start = self._parse_start_line(lines[0])
        items: list[tuple[str, str]] = []
        if separators:
            # obs-text is decoded as Latin-1, which maps each byte to one code point;
            # decoding the header block once is faster than decoding line by line.
            block = head[len(lines[0]) + 2 :].decode("latin-1")
            for line in block.split("\r\n"):
                # RFC 7230 3.2: header-field = field-name ":" OWS field-value OWS
                # No whitespace is allowed before the colon (3.2.4) and obs-fold, a line
                # starting with whitespace, is rejected too: both fail the name check.
                name, colon, value = line.partition(":")
                if not colon or _NAME_RE.fullmatch(name) is None:
                    raise InvalidMessage(f"invalid header line: {_show(line.encode('latin-1'))}")
                items.append((name, value.strip(" \t")))
        self._headers = headers = Headers._from_trusted(items)

        framing, length = self._framing(headers)
        if framing == _LENGTH:
            if length > limits.max_handshake_body:
                raise SecurityError("body too large", status=413)
            self._state = _BODY_LENGTH
            self._remaining = length
        elif framing == _CHUNKED:
            self._state = _BODY_CHUNKED
        elif framing == _EOF:
            self._state = _BODY_EOF
        else:
            self._state = _BODY_LENGTH
            self._remaining = 0
        return True

    def _body_framing(self, headers: Headers, *, request: bool) -> tuple[str, int]:
        # RFC 7230 3.3.3: how the length of a message body is determined.
        transfer_encoding = headers.get_joined("Transfer-Encoding")
        content_length = headers.get_joined("Content-Length")
        if transfer_encoding is not None:
            # Both at once is a classic request smuggling vector: refuse it (3.3.3 item 3).
            if content_length is not None:
                raise InvalidMessage("both transfer-encoding and content-length")
            codings = [coding.strip(" \t").lower() for coding in transfer_encoding.split(",")]
            if codings[-1] != "chunked":
                # 3.3.3 item 3: a request whose final coding isn't chunked gets a 400; a
                # response is then read until the connection closes.
                if request:
                    raise InvalidMessage(
                        f"transfer-encoding doesn't end with chunked: {transfer_encoding}"
                    )
                return _EOF, 0
            if len(codings) > 1:
                # 3.3.1: a transfer coding we don't implement (only chunked is).
                raise InvalidMessage(
                    f"unsupported transfer-encoding: {transfer_encoding}", status=501
                )
            return _CHUNKED, 0
        if content_length is not None:
            # 3.3.2: a list of identical values is equivalent to one value.
            values = {value.strip(" \t") for value in content_length.split(",")}
            if len(values) != 1 or not (value := values.pop()).isdigit() or not value.isascii():
                raise InvalidMessage(f"invalid content-length: {content_length}")
            # Long digit strings can only be over the limit; don't build huge ints.
            if len(value) > 18:
                return _LENGTH, self.limits.max_handshake_body + 1
            return _LENGTH, int(value)
        return (_NONE, 0) if request else (_EOF, 0)

    def _parse_chunked(self) -> M | None:
        # RFC 7230 4.1: chunked-body = *chunk last-chunk trailer-part CRLF
        buffer = self._buffer
        limits = self.limits
        while True:
            if self._chunk_state == _CHUNK_DATA:
                if not buffer:
                    return None
                size = min(self._remaining, len(buffer))
                self._chunks.append(bytes(buffer[:size]))
                del buffer[:size]
                self._remaining -= size
                if self._remaining:
                    return None
                self._chunk_state = _CHUNK_CRLF
            elif self._chunk_state == _CHUNK_CRLF:
                # chunk = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
                if len(buffer) < 2:
                    return None
                if buffer[:2] != b"\r\n":
                    raise InvalidMessage("invalid chunk terminator")
                del buffer[:2]
                self._chunk_state = _CHUNK_SIZE
            else:
                eol = buffer.find(b"\r\n")
                if eol < 0:
                    length = len(buffer) - buffer.endswith(b"\r")
                    self._check_chunk_line(length)
                    return None
                self._check_chunk_line(eol)
                line = bytes(buffer[:eol])
                del buffer[: eol + 2]
                if self._chunk_state == _CHUNK_SIZE:
                    self._parse_chunk_size(line)
                elif not line:
                    # The empty line ending the trailer section ends the message.
                    return self._finish(b"".join(self._chunks))
                else:
                    # 4.1.2: trailer fields are checked, then discarded.
                    self._trailers += 1
                    name, colon, _ = line.partition(b":")
                    if not colon or _TOKEN_RE.fullmatch(name) is None:
                        raise InvalidMessage(f"invalid header line: {_show(line)}")
                    if self._trailers > limits.max_headers:
                        raise SecurityError("too many headers", status=431)

    def _check_chunk_line(self, length: int) -> None:
        if length > self.limits.max_header_line:
            if self._chunk_state == _CHUNK_SIZE:
                raise SecurityError("chunk size line too long")
            raise SecurityError("header line too long", status=431)

    def _parse_chunk_size(self, line: bytes) -> None:
        match = _CHUNK_SIZE_RE.fullmatch(line)
        if match is None:
            raise InvalidMessage(f"invalid chunk size: {_show(line)}")
        digits = match.group(1)
        size = int(digits, 16) if len(digits) <= 16 else self.limits.max_handshake_body + 1
        self._body_size += size
        if self._body_size > self.limits.max_handshake_body:
            raise SecurityError("body too large", status=413)
        if size == 0:
            # last-chunk = 1*("0") [ chunk-ext ] CRLF, then the trailer section.
            self._chunk_state = _CHUNK_TRAILER
        else:
            self._chunk_state = _CHUNK_DATA
            self._remaining = size


class RequestParser(_Parser[Request]):
    """Incremental parser for one HTTP/1.1 request.

    Any method is accepted, so the same port can serve plain HTTP. Bodies are read by
    ``Content-Length`` or ``Transfer-Encoding: chunked``, up to
    :attr:`Limits.max_handshake_body`.

    Args:
        limits: the line, header count and body limits to enforce.
    """

    _start_line_name = "request line"
    _start_line_status = 414

    def _eof_before_message(self) -> Request | None:
        return None

    def _parse_start_line(self, line: bytes) -> tuple[str, str, int]:
        # RFC 7230 3.1.1: request-line = method SP request-target SP HTTP-version CRLF
        parts = line.split(b" ")
        if len(parts) != 3:
            raise InvalidMessage(f"invalid request line: {_show(line)}")
        method, target, version = parts
        if version != b"HTTP/1.1":
            if _VERSION_RE.fullmatch(version) is not None:
                raise InvalidMessage(f"unsupported http version: {_show(version)}", status=505)
            raise InvalidMessage(f"invalid request line: {_show(line)}")
        if _TOKEN_RE.fullmatch(method) is None:
            raise InvalidMessage(f"invalid method: {_show(method)}")
        if _TARGET_RE.fullmatch(target) is None:
            raise InvalidMessage(f"invalid request target: {_show(target)}")
        return method.decode("ascii"), target.decode("ascii"), 0

    def _framing(self, headers: Headers) -> tuple[str, int]:
        # RFC 7230 5.4: "A server MUST respond with a 400 (Bad Request) status code to any
        # HTTP/1.1 request message that lacks a Host header field and to any request
        # message that contains more than one Host header field".
        hosts = headers.get_all("Host")
        if not hosts:
            raise InvalidMessage("missing host header")
        if len(hosts) > 1:
            raise InvalidMessage("multiple host headers")
        return self._body_framing(headers, request=True)

    def _build(self, body: bytes) -> Request:
        method, target, _ = self._start
        return Request(method, target, self._headers, body)


class ResponseParser(_Parser[Response]):
    """Incremental parser for one HTTP/1.1 (or 1.0) response.

    A ``101`` response has no body: what follows it is :attr:`leftover`. Other 1xx,
    204 and 304 responses, responses to ``HEAD`` and 2xx responses to ``CONNECT`` have
    no body either. Other bodies are read by ``Content-Length``, chunked, or until the
    connection closes (then call :meth:`feed_eof`), up to
    :attr:`Limits.max_handshake_body`.

    Args:
        limits: the line, header count and body limits to enforce.
        method: the method of the request this response answers.
    """

    _start_line_name = "status line"

    def __init__(self, limits: Limits, *, method: str = "GET") -> None:
        super().__init__(limits)
        self.method = method.upper()

    def _eof_before_message(self) -> Response | None:
        raise InvalidMessage("connection closed before any response")

    def _parse_start_line(self, line: bytes) -> tuple[str, str, int]:
        # RFC 7230 3.1.2: status-line = HTTP-version SP status-code SP reason-phrase CRLF
        version, _, rest = line.partition(b" ")
        if version != b"HTTP/1.1" and version != b"HTTP/1.0":
            if _VERSION_RE.fullmatch(version) is not None:
                raise InvalidMessage(f"unsupported http version: {_show(version)}", status=505)
            raise InvalidMessage(f"invalid status line: {_show(line)}")
        # Some servers omit the space before an empty reason phrase; accept that.
        code, _, reason = rest.partition(b" ")
        if len(code) != 3 or not code.isdigit() or code[0] == 0x30:
            raise InvalidMessage(f"invalid status code: {_show(code)}")
        return "", reason.decode("latin-1"), int(code)

    def _framing(self, headers: Headers) -> tuple[str, int]:
        status = self._start[2]
        # RFC 7230 3.3.3 items 1 and 2: these responses never have a body.
        if status < 200 or status in (204, 304) or self.method == "HEAD":
            return _NONE, 0
        if self.method == "CONNECT" and status < 300:
            return _NONE, 0
        return self._body_framing(headers, request=False)

    def _build(self, body: bytes) -> Response:
        _, reason, status = self._start
        return Response(status, reason, self._headers, body)
