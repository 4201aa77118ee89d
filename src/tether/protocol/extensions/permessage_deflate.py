"""The permessage-deflate extension (RFC 7692).

:class:`PerMessageDeflate` compresses and decompresses data frames once negotiated;
:class:`ClientPerMessageDeflateFactory` and :class:`ServerPerMessageDeflateFactory`
negotiate it in the opening handshake (RFC 7692 section 7.1). See ``docs/deflate.md``.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

from ...exceptions import (
    DuplicateParameter,
    InvalidParameterName,
    InvalidParameterValue,
    NegotiationError,
    PayloadTooBig,
    ProtocolError,
)
from ...types import ExtensionName, ExtensionParameter
from ..frames import Frame, Opcode
from .base import ClientExtensionFactory, Extension, ServerExtensionFactory


__all__ = [
    "DEFAULT_COMPRESS_SETTINGS",
    "DEFAULT_MAX_WINDOW_BITS",
    "ClientPerMessageDeflateFactory",
    "PerMessageDeflate",
    "ServerPerMessageDeflateFactory",
    "enable_client_permessage_deflate",
    "enable_server_permessage_deflate",
]

NAME = ExtensionName("permessage-deflate")

DEFAULT_COMPRESS_SETTINGS: Mapping[str, Any] = MappingProxyType({"memLevel": 5})
"""zlib settings of the default factories: 16 KiB of hash tables instead of 128 KiB."""

DEFAULT_MAX_WINDOW_BITS = 12
"""Window size of the default factories, both directions: 4 KiB instead of 32 KiB."""

# RFC 7692 section 7.2.2: the receiver appends these 4 octets before inflating; section
# 7.2.1 step 3: the sender removes them from the end of a compressed message.
_EMPTY_BLOCK_TAIL = b"\x00\x00\xff\xff"

# RFC 7692 section 7.2.3.6: an empty stored block with its last 4 octets removed.
_EMPTY_BLOCK = b"\x00"

_CONT = Opcode.CONT.value
_BINARY = Opcode.BINARY.value

# RFC 7692 section 7.1.2.1: a window bits value is a decimal number from 8 to 15,
# written without leading zeroes.
_WINDOW_BITS_VALUES = {str(bits): bits for bits in range(8, 16)}

_PARAMETER_NAMES = (
    "server_no_context_takeover",
    "client_no_context_takeover",
    "server_max_window_bits",
    "client_max_window_bits",
)


class PerMessageDeflate(Extension):
    """permessage-deflate, as negotiated for one connection.

    "local" is this endpoint's compressor, "remote" the peer's, whose output this
    endpoint inflates. :meth:`encode` and :meth:`decode` keep per-message state, so one
    instance serves exactly one connection and must see every data frame of the
    messages it handles, in order.

    Neither method mutates its argument: each returns a new :class:`Frame` when it
    transforms the payload and the same frame when it passes it through.

    Args:
        remote_no_context_takeover: the peer resets its compressor after each message
            (RFC 7692 section 7.1.1); the decompressor is then freed between messages.
        local_no_context_takeover: reset the compressor after each message; it is then
            freed between messages.
        remote_max_window_bits: base-2 logarithm of the peer's LZ77 window, 8 to 15.
        local_max_window_bits: base-2 logarithm of this endpoint's LZ77 window, 8 to 15.
        compress_settings: keyword arguments for :func:`zlib.compressobj` other than
            ``wbits``; ``None`` means :data:`DEFAULT_COMPRESS_SETTINGS`.
        min_size: unfragmented messages shorter than this many bytes are sent
            uncompressed (RSV1 clear), which saves CPU where deflate cannot gain much.

    Raises:
        ValueError: a parameter is out of range.
    """

    name = NAME
    rsv1 = True

    def __init__(
        self,
        remote_no_context_takeover: bool,
        local_no_context_takeover: bool,
        remote_max_window_bits: int,
        local_max_window_bits: int,
        compress_settings: Mapping[str, Any] | None = None,
        min_size: int = 0,
    ) -> None:
        _check_window_bits("remote_max_window_bits", remote_max_window_bits)
        _check_window_bits("local_max_window_bits", local_max_window_bits)
        if compress_settings is None:
            compress_settings = DEFAULT_COMPRESS_SETTINGS
        _check_compress_settings(compress_settings)
        if min_size < 0:
            raise ValueError(f"min_size must be non-negative, got {min_size}")

        self.remote_no_context_takeover = remote_no_context_takeover
        self.local_no_context_takeover = local_no_context_takeover
        self.remote_max_window_bits = remote_max_window_bits
        self.local_max_window_bits = local_max_window_bits
        self.compress_settings = dict(compress_settings)
        self.min_size = min_size

        self._decoder_wbits = -remote_max_window_bits

        # zlib's deflate refuses wbits=-8 for raw streams. RFC 7692 section 7.1.2 caps
        # the distance of back-references at the negotiated window, 256 bytes for 8
        # bits. A 512-byte zlib window fits under that cap: zlib never refers farther
        # back than the window size minus 262 bytes (MAX_DIST in deflate.h), 250 here.
        compress_kwargs = dict(compress_settings)
        compress_kwargs["wbits"] = -max(local_max_window_bits, 9)
        self._compress_kwargs = compress_kwargs

        self._decoder: Any = None  # zlib decompressor, created lazily
        self._encoder: Any = None  # zlib compressor, created lazily
        # Whether the incoming / outgoing fragmented message in progress is compressed.
        self._decoding = False
        self._encoding = False

    def __repr__(self) -> str:
        return (
            f"PerMessageDeflate("
            f"remote_no_context_takeover={self.remote_no_context_takeover}, "
            f"local_no_context_takeover={self.local_no_context_takeover}, "
            f"remote_max_window_bits={self.remote_max_window_bits}, "
            f"local_max_window_bits={self.local_max_window_bits}, "
            f"min_size={self.min_size})"
        )

    def decode(self, frame: Frame, *, max_size: int | None = None) -> Frame:
        """Inflate an incoming data frame of a compressed message.

        Frames of an uncompressed message and control frames are returned unchanged.

        Args:
            frame: the frame as received (continuation frames included).
            max_size: most bytes the inflated payload may have, typically what the
                message size limit still allows; ``None`` for no limit. Inflation stops
                one byte past this limit, so a decompression bomb never gets inflated.

        Returns:
            A new frame with the inflated payload and RSV1 clear, or ``frame`` itself.

        Raises:
            PayloadTooBig: the inflated payload exceeds ``max_size`` (close code 1009).
            ProtocolError: RSV1 is set on a continuation frame (1002), or the payload
                isn't valid DEFLATE data (1007).
        """
        opcode = frame.opcode
        fin = frame.fin
        if opcode == _CONT:
            # RFC 7692 section 6.1: RSV1 may only be set on the first frame of a message.
            if frame.rsv1:
                raise ProtocolError("rsv1 set on a continuation frame")
            if not self._decoding:
                return frame
            if fin:
                self._decoding = False
        elif opcode <= _BINARY:
            # RFC 7692 section 6.1: RSV1 on the first frame marks a compressed message.
            if not frame.rsv1:
                return frame
            if not fin:
                self._decoding = True
        else:
            return frame

        decoder = self._decoder
        if decoder is None:
            decoder = self._decoder = zlib.decompressobj(wbits=self._decoder_wbits)

        data = frame.data
        if fin:
            # RFC 7692 section 7.2.2: append 00 00 ff ff to the payload of the message.
            data += _EMPTY_BLOCK_TAIL

        try:
            if max_size is None:
                inflated = decoder.decompress(data)
            else:
                # Ask for one byte more than allowed: getting it proves the payload is
                # too big without inflating the rest, which stays in unconsumed_tail.
                inflated = decoder.decompress(data, max_size + 1)
                if len(inflated) > max_size or decoder.unconsumed_tail:
                    raise PayloadTooBig(
                        f"message too big: over {max_size} bytes after decompression"
                    )
            if decoder.eof:
                inflated = self._restart_decoder(decoder, inflated, max_size)
        except zlib.error as exc:
            # RFC 7692 doesn't name a close code for data that doesn't inflate. The
            # frames are well formed; their payload isn't what RSV1 says it is. That is
            # 1007, "invalid frame payload data" (RFC 6455 section 7.4.1, as for text
            # that isn't UTF-8), rather than 1002, which is about framing.
            raise ProtocolError("invalid compressed data", 1007) from exc

        # RFC 7692 section 7.2.2: with context takeover, the next message is inflated
        # with the same LZ77 window; without, free the decompressor until then.
        if fin and self.remote_no_context_takeover:
            self._decoder = None

        return Frame(opcode, inflated, fin, False, frame.rsv2, frame.rsv3)

    def encode(self, frame: Frame) -> Frame:
        """Deflate an outgoing data frame.

        The first frame of a message decides: a final frame shorter than ``min_size``
        bytes is returned unchanged (sent uncompressed), and so are control frames and
        the continuation frames of an uncompressed message.

        Args:
            frame: the frame to send, RSV1 clear.

        Returns:
            A new frame with the deflated payload, RSV1 set on the first frame of the
            message only, or ``frame`` itself.
        """
        opcode = frame.opcode
        data = frame.data
        fin = frame.fin
        if opcode == _CONT:
            if not self._encoding:
                return frame
            rsv1 = False
            if fin:
                self._encoding = False
        elif opcode <= _BINARY:
            # A message that fits in one frame has a known size: skip compression when
            # it's small. A fragmented message may grow, so it's always compressed.
            if fin and len(data) < self.min_size:
                return frame
            # RFC 7692 section 6: RSV1 on the first frame marks a compressed message.
            rsv1 = True
            if not fin:
                self._encoding = True
        else:
            return frame

        encoder = self._encoder
        if encoder is None:
            encoder = self._encoder = zlib.compressobj(**self._compress_kwargs)

        # RFC 7692 section 7.2.1: the sync flush ends the data with an empty stored
        # block, 00 00 ff ff, which lets each fragment be inflated as it arrives.
        data = encoder.compress(data) + encoder.flush(zlib.Z_SYNC_FLUSH)
        if fin:
            if data.endswith(_EMPTY_BLOCK_TAIL):
                # RFC 7692 section 7.2.1 step 3: remove the 4 trailing octets.
                data = data[:-4]
            else:
                # Nothing to flush: the previous fragment already ended with the empty
                # block, so send one more without its tail (RFC 7692 section 7.2.3.6).
                data = _EMPTY_BLOCK
            # RFC 7692 section 7.2.1: without context takeover, each message starts
            # with an empty LZ77 window; free the compressor until then.
            if self.local_no_context_takeover:
                self._encoder = None

        return Frame(opcode, data, fin, rsv1, frame.rsv2, frame.rsv3)

    # Private methods

    def _restart_decoder(self, decoder: Any, inflated: bytes, max_size: int | None) -> bytes:
        """Go on inflating after a DEFLATE block with BFINAL set.

        RFC 7692 section 7.2.3.4 lets a sender end a message with a final block, then
        the 00 header byte of an empty stored block. zlib stops at the final block, so
        inflate what follows with a new decompressor. Its window starts empty: a sender
        that uses BFINAL can't refer to data before it anyway, since its deflater ended.
        """
        parts = [inflated]
        size = len(inflated)
        while decoder.eof:
            data = decoder.unused_data
            decoder = self._decoder = zlib.decompressobj(wbits=self._decoder_wbits)
            if not data:
                break
            if max_size is None:
                inflated = decoder.decompress(data)
            else:
                inflated = decoder.decompress(data, max_size - size + 1)
                if size + len(inflated) > max_size or decoder.unconsumed_tail:
                    raise PayloadTooBig(
                        f"message too big: over {max_size} bytes after decompression"
                    )
            parts.append(inflated)
            size += len(inflated)
        return b"".join(parts)


class ClientPerMessageDeflateFactory(ClientExtensionFactory):
    """Offers permessage-deflate from a client and validates the server's answer.

    Args:
        server_no_context_takeover: ask the server to reset its compressor after each
            message (RFC 7692 section 7.1.1.1).
        client_no_context_takeover: reset this client's compressor after each message,
            and tell the server so (RFC 7692 section 7.1.1.2).
        server_max_window_bits: ask the server for a window of at most 2**N bytes, 8
            to 15 (RFC 7692 section 7.1.2.1); ``None`` to leave it to the server.
        client_max_window_bits: ``True`` to let the server choose this client's window
            size, N (8 to 15) to also cap it at 2**N bytes, ``None`` or ``False`` to keep
            the full 32 KiB window (RFC 7692 section 7.1.2.2).
        compress_settings: keyword arguments for :func:`zlib.compressobj` other than
            ``wbits``; ``None`` means :data:`DEFAULT_COMPRESS_SETTINGS`.
        min_size: see :class:`PerMessageDeflate`.

    Raises:
        ValueError: a parameter is out of range.
    """

    name = NAME

    def __init__(
        self,
        server_no_context_takeover: bool = False,
        client_no_context_takeover: bool = False,
        server_max_window_bits: int | None = None,
        client_max_window_bits: int | bool | None = True,
        compress_settings: Mapping[str, Any] | None = None,
        min_size: int = 0,
    ) -> None:
        if server_max_window_bits is not None:
            _check_window_bits("server_max_window_bits", server_max_window_bits)
        if client_max_window_bits is False:
            client_max_window_bits = None
        if client_max_window_bits is not None and client_max_window_bits is not True:
            _check_window_bits("client_max_window_bits", client_max_window_bits)
        if compress_settings is not None:
            _check_compress_settings(compress_settings)
        if min_size < 0:
            raise ValueError(f"min_size must be non-negative, got {min_size}")
        self.server_no_context_takeover = server_no_context_takeover
        self.client_no_context_takeover = client_no_context_takeover
        self.server_max_window_bits = server_max_window_bits
        self.client_max_window_bits: int | bool | None = client_max_window_bits
        self.compress_settings = compress_settings
        self.min_size = min_size

    def __repr__(self) -> str:
        return (
            f"ClientPerMessageDeflateFactory("
            f"server_no_context_takeover={self.server_no_context_takeover}, "
            f"client_no_context_takeover={self.client_no_context_takeover}, "
            f"server_max_window_bits={self.server_max_window_bits}, "
            f"client_max_window_bits={self.client_max_window_bits}, "
            f"min_size={self.min_size})"
        )

    def get_request_params(self) -> list[ExtensionParameter]:
        """Parameters of the offer, in the order of RFC 7692 section 7.1.

        Returns:
            A list of ``(name, value)`` pairs; flags have the value ``None``.
        """
        params: list[ExtensionParameter] = []
        if self.server_no_context_takeover:
            params.append(("server_no_context_takeover", None))
        if self.client_no_context_takeover:
            params.append(("client_no_context_takeover", None))
        if self.server_max_window_bits is not None:
            params.append(("server_max_window_bits", str(self.server_max_window_bits)))
        if self.client_max_window_bits is True:
            # RFC 7692 section 7.1.2.2: no value, the server may pick one.
            params.append(("client_max_window_bits", None))
        elif self.client_max_window_bits is not None:
            params.append(("client_max_window_bits", str(self.client_max_window_bits)))
        return params

    def process_response_params(
        self,
        params: Sequence[ExtensionParameter],
        accepted_extensions: Sequence[Extension],
    ) -> PerMessageDeflate:
        """Check the server's response to the offer and build the extension.

        Args:
            params: the parameters of the server's ``permessage-deflate`` response.
            accepted_extensions: the extensions accepted before this one.

        Returns:
            The negotiated extension.

        Raises:
            NegotiationError: the response doesn't fit the offer or RFC 7692.
            DuplicateParameter: a parameter appears twice.
            InvalidParameterName: a parameter is unknown.
            InvalidParameterValue: a parameter has a bad value.
        """
        if any(extension.name == NAME for extension in accepted_extensions):
            raise NegotiationError("received duplicate permessage-deflate")

        server_nct, client_nct, server_bits, client_bits = _parse_params(params, response=True)

        # RFC 7692 section 7.1.1.1: a server that accepts an offer with
        # server_no_context_takeover includes it; it may include it unasked.
        if self.server_no_context_takeover and not server_nct:
            raise NegotiationError("expected server_no_context_takeover")

        # RFC 7692 section 7.1.1.2: the server may ask the client not to take over
        # context, even unasked; a client that offered it keeps its word.
        client_nct = client_nct or self.client_no_context_takeover

        # RFC 7692 section 7.1.2.1: if the offer had server_max_window_bits, the
        # response has it with the same or a smaller value; if not, the server may
        # still include it.
        if self.server_max_window_bits is not None:
            if server_bits is None:
                raise NegotiationError("expected server_max_window_bits")
            if server_bits > self.server_max_window_bits:
                raise InvalidParameterValue("server_max_window_bits", str(server_bits))

        # RFC 7692 section 7.1.2.2: the response has client_max_window_bits only if the
        # offer had it, and then with a value no larger than the offered one.
        if self.client_max_window_bits is None:
            if client_bits is not None:
                raise InvalidParameterValue("client_max_window_bits", str(client_bits))
        elif client_bits is None:
            if self.client_max_window_bits is not True:
                client_bits = self.client_max_window_bits
        elif self.client_max_window_bits is not True and client_bits > self.client_max_window_bits:
            raise InvalidParameterValue("client_max_window_bits", str(client_bits))

        return PerMessageDeflate(
            remote_no_context_takeover=server_nct,
            local_no_context_takeover=client_nct,
            remote_max_window_bits=server_bits or 15,
            local_max_window_bits=client_bits or 15,
            compress_settings=self.compress_settings,
            min_size=self.min_size,
        )


class ServerPerMessageDeflateFactory(ServerExtensionFactory):
    """Accepts a client's permessage-deflate offer.

    Args:
        server_no_context_takeover: reset this server's compressor after each message,
            and tell the client so (RFC 7692 section 7.1.1.1).
        client_no_context_takeover: require the client to reset its compressor after
            each message, which frees the server's decompressor between messages
            (RFC 7692 section 7.1.1.2). It's also applied when the client offers it.
        server_max_window_bits: cap this server's window at 2**N bytes, 8 to 15; a
            smaller value offered by the client wins (RFC 7692 section 7.1.2.1).
        client_max_window_bits: cap the client's window at 2**N bytes, 8 to 15, when
            the client allows it by offering client_max_window_bits (RFC 7692 section
            7.1.2.2); a smaller value offered by the client wins.
        compress_settings: keyword arguments for :func:`zlib.compressobj` other than
            ``wbits``; ``None`` means :data:`DEFAULT_COMPRESS_SETTINGS`.
        require_client_max_window_bits: decline offers without client_max_window_bits,
            so every accepted client honours ``client_max_window_bits``. Otherwise,
            such clients keep the full 32 KiB window.
        min_size: see :class:`PerMessageDeflate`.

    Raises:
        ValueError: a parameter is out of range.
    """

    name = NAME

    def __init__(
        self,
        server_no_context_takeover: bool = False,
        client_no_context_takeover: bool = False,
        server_max_window_bits: int | None = None,
        client_max_window_bits: int | None = None,
        compress_settings: Mapping[str, Any] | None = None,
        require_client_max_window_bits: bool = False,
        min_size: int = 0,
    ) -> None:
        if server_max_window_bits is not None:
            _check_window_bits("server_max_window_bits", server_max_window_bits)
        if client_max_window_bits is not None:
            _check_window_bits("client_max_window_bits", client_max_window_bits)
        if compress_settings is not None:
            _check_compress_settings(compress_settings)
        if min_size < 0:
            raise ValueError(f"min_size must be non-negative, got {min_size}")
        self.server_no_context_takeover = server_no_context_takeover
        self.client_no_context_takeover = client_no_context_takeover
        self.server_max_window_bits = server_max_window_bits
        self.client_max_window_bits = client_max_window_bits
        self.compress_settings = compress_settings
        self.require_client_max_window_bits = require_client_max_window_bits
        self.min_size = min_size

    def __repr__(self) -> str:
        return (
            f"ServerPerMessageDeflateFactory("
            f"server_no_context_takeover={self.server_no_context_takeover}, "
            f"client_no_context_takeover={self.client_no_context_takeover}, "
            f"server_max_window_bits={self.server_max_window_bits}, "
            f"client_max_window_bits={self.client_max_window_bits}, "
            f"require_client_max_window_bits={self.require_client_max_window_bits}, "
            f"min_size={self.min_size})"
        )

    def process_request_params(
        self,
        params: Sequence[ExtensionParameter],
        accepted_extensions: Sequence[Extension],
    ) -> tuple[list[ExtensionParameter], PerMessageDeflate]:
        """Accept one offer: build the response parameters and the extension.

        Args:
            params: the parameters of one ``permessage-deflate`` offer.
            accepted_extensions: the extensions accepted before this one.

        Returns:
            The response parameters, in the order of RFC 7692 section 7.1, and the
            negotiated extension.

        Raises:
            NegotiationError: the offer can't be accepted; the server may try the next.
            DuplicateParameter: a parameter appears twice.
            InvalidParameterName: a parameter is unknown.
            InvalidParameterValue: a parameter has a bad value.
        """
        if any(extension.name == NAME for extension in accepted_extensions):
            raise NegotiationError("skipped duplicate permessage-deflate")

        server_nct, client_nct, server_bits, client_bits = _parse_params(params, response=False)

        # RFC 7692 section 7.1.1.1: accepting server_no_context_takeover means
        # including it; the server may also include it unasked.
        server_nct = server_nct or self.server_no_context_takeover

        # RFC 7692 section 7.1.1.2: the server may include client_no_context_takeover
        # unasked; when the client offers it, keeping it lets the server free its
        # decompressor between messages.
        client_nct = client_nct or self.client_no_context_takeover

        # RFC 7692 section 7.1.2.1: a server that accepts server_max_window_bits=N uses
        # N or less and says which; it may also limit its window unasked.
        if server_bits is None:
            server_bits = self.server_max_window_bits
        elif self.server_max_window_bits is not None:
            server_bits = min(server_bits, self.server_max_window_bits)

        # RFC 7692 section 7.1.2.2: the server may answer client_max_window_bits only
        # when the client offered it, with a value no larger than the offered one.
        # _parse_params reports the parameter offered without a value as 0.
        if client_bits is None:
            if self.require_client_max_window_bits:
                raise NegotiationError("required client_max_window_bits")
        elif client_bits == 0:
            client_bits = self.client_max_window_bits
        elif self.client_max_window_bits is not None:
            client_bits = min(client_bits, self.client_max_window_bits)

        response: list[ExtensionParameter] = []
        if server_nct:
            response.append(("server_no_context_takeover", None))
        if client_nct:
            response.append(("client_no_context_takeover", None))
        if server_bits is not None:
            response.append(("server_max_window_bits", str(server_bits)))
        if client_bits:
            response.append(("client_max_window_bits", str(client_bits)))

        extension = PerMessageDeflate(
            remote_no_context_takeover=client_nct,
            local_no_context_takeover=server_nct,
            remote_max_window_bits=client_bits or 15,
            local_max_window_bits=server_bits or 15,
            compress_settings=self.compress_settings,
            min_size=self.min_size,
        )
        return response, extension


def enable_client_permessage_deflate(
    extensions: Sequence[ClientExtensionFactory] | None,
) -> list[ClientExtensionFactory]:
    """Add permessage-deflate with the default settings to a client's extensions.

    The defaults cap both windows at :data:`DEFAULT_MAX_WINDOW_BITS` and use
    :data:`DEFAULT_COMPRESS_SETTINGS`. An extension list that already holds a
    permessage-deflate factory is returned as a copy, unchanged.

    Args:
        extensions: the extension factories configured so far, or ``None``.

    Returns:
        A new list of extension factories.
    """
    factories = list(extensions or [])
    if not any(factory.name == NAME for factory in factories):
        factories.append(
            ClientPerMessageDeflateFactory(
                server_max_window_bits=DEFAULT_MAX_WINDOW_BITS,
                client_max_window_bits=DEFAULT_MAX_WINDOW_BITS,
                compress_settings=DEFAULT_COMPRESS_SETTINGS,
            )
        )
    return factories


def enable_server_permessage_deflate(
    extensions: Sequence[ServerExtensionFactory] | None,
) -> list[ServerExtensionFactory]:
    """Add permessage-deflate with the default settings to a server's extensions.

    See :func:`enable_client_permessage_deflate`.

    Args:
        extensions: the extension factories configured so far, or ``None``.

    Returns:
        A new list of extension factories.
    """
    factories = list(extensions or [])
    if not any(factory.name == NAME for factory in factories):
        factories.append(
            ServerPerMessageDeflateFactory(
                server_max_window_bits=DEFAULT_MAX_WINDOW_BITS,
                client_max_window_bits=DEFAULT_MAX_WINDOW_BITS,
                compress_settings=DEFAULT_COMPRESS_SETTINGS,
            )
        )
    return factories


# Private functions


def _check_window_bits(name: str, bits: int) -> None:
    if not 8 <= bits <= 15:
        raise ValueError(f"{name} must be between 8 and 15, got {bits}")


def _check_compress_settings(settings: Mapping[str, Any]) -> None:
    if "wbits" in settings:
        raise ValueError("compress_settings must not include wbits, set max_window_bits instead")


def _parse_params(
    params: Sequence[ExtensionParameter], *, response: bool
) -> tuple[bool, bool, int | None, int | None]:
    """Validate the parameters of an offer or a response (RFC 7692 section 7.1).

    Returns:
        server_no_context_takeover, client_no_context_takeover, server_max_window_bits
        and client_max_window_bits; a window size is ``None`` when absent and, in an
        offer only, 0 for client_max_window_bits without a value.
    """
    seen: set[str] = set()
    server_nct = client_nct = False
    server_bits: int | None = None
    client_bits: int | None = None
    for name, value in params:
        if name not in _PARAMETER_NAMES:
            raise InvalidParameterName(name)
        # RFC 7692 section 7.1: a parameter appears at most once.
        if name in seen:
            raise DuplicateParameter(name)
        seen.add(name)
        if name.endswith("_no_context_takeover"):
            # RFC 7692 sections 7.1.1.1 and 7.1.1.2: these parameters have no value.
            if value is not None:
                raise InvalidParameterValue(name, value)
            if name == "server_no_context_takeover":
                server_nct = True
            else:
                client_nct = True
        elif value is None and name == "client_max_window_bits" and not response:
            # RFC 7692 section 7.1.2.2: in an offer, client_max_window_bits may have
            # no value; it then only says the client supports the parameter.
            client_bits = 0
        else:
            bits = _WINDOW_BITS_VALUES.get(value) if value is not None else None
            if bits is None:
                raise InvalidParameterValue(name, value)
            if name == "server_max_window_bits":
                server_bits = bits
            else:
                client_bits = bits
    return server_nct, client_nct, server_bits, client_bits
