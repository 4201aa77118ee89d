"""Fuzz the REPE message codec: ``python fuzzing/fuzz_repe.py [libFuzzer options]``.

Every input goes to :func:`tether.rpc.repe.decode` whole, and to a
:class:`~tether.rpc.repe.StreamDecoder` in chunks. The only accepted exception is
:class:`~tether.rpc.repe.RepeError`; a decoded message must re-encode to the same bytes
apart from the notify byte, which is normalised to 0 or 1.
"""

from __future__ import annotations

import sys

from tether.rpc.repe import RepeError, StreamDecoder, decode


try:
    import atheris
except ImportError:  # pragma: no cover
    atheris = None


def test_one_input(data: bytes) -> None:
    try:
        message = decode(data, max_size=1 << 20)
    except RepeError:
        pass
    else:
        encoded = message.encode()
        assert len(encoded) == len(data)
        assert encoded[:11] + encoded[12:] == data[:11] + data[12:]
        assert encoded[11] == (1 if data[11] else 0)

    decoder = StreamDecoder(max_size=1 << 20)
    step = (data[0] % 16 + 1) if data else 1
    try:
        for start in range(0, len(data), step):
            decoder.feed(data[start : start + step])
        decoder.feed_eof()
    except RepeError:
        pass


def main() -> None:
    if atheris is None:
        sys.exit("atheris is not installed: pip install atheris")
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
