"""Fuzz the BEVE codec: ``python fuzzing/fuzz_beve.py [libFuzzer options]``.

Every input goes to :func:`tether.rpc.beve.decode`. The only accepted exception is
:class:`~tether.rpc.beve.BeveDecodeError`. A decoded value must encode again, except for
the values the encoder documents as unsupported (integers beyond 64 bits, which only
128-bit inputs produce), and decode back to something equal (NaN aside).
"""

from __future__ import annotations

import math
import sys
from typing import Any

from tether.rpc.beve import BeveDecodeError, BeveEncodeError, decode, encode


try:
    import atheris
except ImportError:  # pragma: no cover
    atheris = None


def has_nan(value: Any) -> bool:
    if isinstance(value, float):
        return math.isnan(value)
    if isinstance(value, complex):
        return math.isnan(value.real) or math.isnan(value.imag)
    if isinstance(value, dict):
        return any(has_nan(item) for item in value.values())
    if isinstance(value, list):
        return any(has_nan(item) for item in value)
    return False


def test_one_input(data: bytes) -> None:
    try:
        value = decode(data, max_depth=64)
    except BeveDecodeError:
        return
    error = None
    try:
        encoded = encode(value)
    except BeveEncodeError as exc:
        error = str(exc)
    if error is not None:
        assert "out of range" in error, error
        return
    if not has_nan(value):
        assert decode(encoded) == value


def main() -> None:
    if atheris is None:
        sys.exit("atheris is not installed: pip install atheris")
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
