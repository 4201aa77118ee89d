"""Timing helper shared by the micro-benchmarks (stdlib ``timeit``, best of N runs)."""

from __future__ import annotations

import timeit
from collections.abc import Callable


def best(func: Callable[[], object], number: int, repeat: int = 5) -> float:
    """Seconds per call of ``func``: the best of ``repeat`` runs of ``number`` calls."""
    timer = timeit.Timer(func)
    return min(timer.repeat(repeat=repeat, number=number)) / number


def row(name: str, seconds: float, size: int | None = None, per: int = 1) -> str:
    """One line: time per item (``per`` items per call) and throughput for ``size`` bytes."""
    text = f"{name:<44} {seconds / per * 1e9:>10.0f} ns"
    if size is not None:
        text += f"  {size * per / seconds / 1e6:>9.0f} MB/s"
    return text
