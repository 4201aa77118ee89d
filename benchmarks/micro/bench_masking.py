"""Masking: the C accelerator against the pure-Python fallback.

Standalone: ``python benchmarks/micro/bench_masking.py``. ``apply_mask`` is the C version
when the extension is built (``SPEEDUPS`` says so), ``py_apply_mask`` the fallback.
"""

from __future__ import annotations

import os

from _timing import best, row

from tether.protocol.masking import SPEEDUPS, apply_mask, py_apply_mask


SIZES = {"64 B": 64, "4 KiB": 4096, "1 MiB": 1024 * 1024}


def main() -> None:
    mask = os.urandom(4)
    print(f"C accelerator loaded: {SPEEDUPS}")
    for label, size in SIZES.items():
        data = os.urandom(size)
        assert apply_mask(data, mask) == py_apply_mask(data, mask)
        number = max(10, 2_000_000 // size)
        c = best(lambda data=data: apply_mask(data, mask), number)
        py = best(lambda data=data: py_apply_mask(data, mask), number)
        print(row(f"apply_mask (C) {label}", c, size))
        print(row(f"py_apply_mask {label}", py, size))
        print(f"{'':<44} C is {py / c:.1f}x faster")


if __name__ == "__main__":
    main()
