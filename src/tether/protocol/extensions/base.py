"""The extension interface the connection and the handshake rely on."""

from __future__ import annotations

from collections.abc import Sequence

from ...types import ExtensionName, ExtensionParameter
from ..frames import Frame


__all__ = ["ClientExtensionFactory", "Extension", "ServerExtensionFactory"]


class Extension:
    """A negotiated extension, applied to every data frame of one connection.

    Attributes:
        name: the registered extension name.
        rsv1: whether this extension uses the RSV1 bit (the parser then accepts it).
    """

    name: ExtensionName
    rsv1: bool = False

    def decode(self, frame: Frame, *, max_size: int | None = None) -> Frame:
        """Decode an incoming data frame.

        Args:
            frame: the frame as received (continuation frames included).
            max_size: most bytes the decoded payload may have; ``None`` for no limit.

        Raises:
            PayloadTooBig: the decoded payload would exceed ``max_size``.
            ProtocolError: the payload cannot be decoded.
        """
        raise NotImplementedError

    def encode(self, frame: Frame) -> Frame:
        """Encode an outgoing data frame (continuation frames included)."""
        raise NotImplementedError


class ClientExtensionFactory:
    """Builds an extension offer and validates the server's answer to it."""

    name: ExtensionName

    def get_request_params(self) -> Sequence[ExtensionParameter]:
        """Parameters to send in the client's offer."""
        raise NotImplementedError

    def process_response_params(
        self,
        params: Sequence[ExtensionParameter],
        accepted_extensions: Sequence[Extension],
    ) -> Extension:
        """Validate the server's response parameters and build the extension.

        Raises:
            NegotiationError: the response is unacceptable.
        """
        raise NotImplementedError


class ServerExtensionFactory:
    """Answers a client's extension offer."""

    name: ExtensionName

    def process_request_params(
        self,
        params: Sequence[ExtensionParameter],
        accepted_extensions: Sequence[Extension],
    ) -> tuple[list[ExtensionParameter], Extension]:
        """Accept an offer: return the response parameters and the extension.

        Raises:
            NegotiationError: the offer is unacceptable (the server then tries the next
                offer, or goes on without the extension).
        """
        raise NotImplementedError
