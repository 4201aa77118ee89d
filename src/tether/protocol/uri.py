"""WebSocket URIs (RFC 6455 section 3)."""

from __future__ import annotations

import dataclasses
import re
import urllib.parse

from ..exceptions import InvalidURI


__all__ = ["WebSocketURI", "parse_uri"]


# RFC 3986 3.3 and 3.4: characters allowed as they are in a path or a query; "%" is
# kept so that existing percent-escapes survive.
_PATH_SAFE = "/:@!$&'()*+,;=%~"
_QUERY_SAFE = _PATH_SAFE + "?"

_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")

# RFC 3986 3.2.2: reg-name = *( unreserved / pct-encoded / sub-delims )
_REG_NAME_RE = re.compile(r"[-A-Za-z0-9._~!$&'()*+,;=%]+")


@dataclasses.dataclass(frozen=True, slots=True)
class WebSocketURI:
    """A parsed ``ws://`` or ``wss://`` URI.

    Attributes:
        secure: ``True`` for ``wss``.
        host: the host name (ASCII, IDNA-encoded) or IP address, without brackets.
        port: the port, 80 or 443 by default.
        path: the percent-encoded path, ``"/"`` at least.
        query: the percent-encoded query string without ``?``; ``""`` when absent.
        user_info: ``(username, password)`` when the URI contains credentials.
    """

    secure: bool
    host: str
    port: int
    path: str
    query: str = ""
    user_info: tuple[str, str] | None = None

    @property
    def resource_name(self) -> str:
        """The request target sent in the opening handshake: path and query."""
        # RFC 6455 3: resource-name = path [ "?" query ]
        if self.query:
            return f"{self.path}?{self.query}"
        return self.path

    @property
    def default_port(self) -> bool:
        """Whether :attr:`port` is the default for the scheme."""
        return self.port == (443 if self.secure else 80)


def parse_uri(uri: str) -> WebSocketURI:
    """Parse and validate a WebSocket URI.

    Args:
        uri: a ``ws://`` or ``wss://`` URI.

    Raises:
        InvalidURI: the URI isn't a usable WebSocket URI.
    """
    # urlsplit silently drops tabs and newlines; refuse every control character instead.
    if _CONTROL_RE.search(uri):
        raise InvalidURI(uri, "contains control characters")
    try:
        parsed = urllib.parse.urlsplit(uri)
    except ValueError as exc:
        raise InvalidURI(uri, "invalid IPv6 address") from exc
    # RFC 6455 3: the scheme is "ws" or "wss", compared case-insensitively.
    if parsed.scheme not in ("ws", "wss"):
        raise InvalidURI(uri, "scheme isn't ws or wss")
    if not parsed.hostname:
        raise InvalidURI(uri, "hostname isn't provided")
    # RFC 6455 3: "Fragment identifiers are meaningless in the context of WebSocket URIs
    # and MUST NOT be used on these URIs."
    if parsed.fragment or uri.endswith("#"):
        raise InvalidURI(uri, "fragment identifiers aren't allowed")
    secure = parsed.scheme == "wss"
    try:
        port = parsed.port
    except ValueError as exc:
        raise InvalidURI(uri, "invalid port") from exc
    if port is None:
        # RFC 6455 3: the port component is OPTIONAL; the default for "ws" is port 80,
        # while the default for "wss" is port 443.
        port = 443 if secure else 80
    elif port == 0:
        raise InvalidURI(uri, "invalid port")

    host = parsed.hostname
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise InvalidURI(uri, "invalid hostname") from exc
    # IPv6 literals were validated by urlsplit; anything else must be a reg-name.
    if ":" not in host and _REG_NAME_RE.fullmatch(host) is None:
        raise InvalidURI(uri, "invalid hostname")

    user_info = None
    if parsed.username is not None:
        if parsed.password is None:
            raise InvalidURI(uri, "username provided without password")
        user_info = (
            urllib.parse.unquote(parsed.username),
            urllib.parse.unquote(parsed.password),
        )

    # RFC 3986 2.1: characters outside the allowed set are percent-encoded (as UTF-8).
    path = urllib.parse.quote(parsed.path, safe=_PATH_SAFE) or "/"
    query = urllib.parse.quote(parsed.query, safe=_QUERY_SAFE)
    return WebSocketURI(secure, host, port, path, query, user_info)
