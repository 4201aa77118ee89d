"""Compare JSON libraries for REPE bodies (body_format 2).

Standalone: ``python benchmarks/micro/bench_json.py``. Measures the stdlib ``json``
(as tether calls it: compact separators, ``ensure_ascii=False``, UTF-8 bytes) against
``orjson`` and ``msgspec`` when they are importable. Prints the best of 5 runs per case.
"""

from __future__ import annotations

import json
import sys
import timeit
from collections.abc import Callable
from typing import Any


SMALL = {"name": "sensor-7", "count": 42, "ratio": -3.5, "active": True, "values": [1, 2, 3]}
MEDIUM = [
    {"id": i, "name": f"item-{i}", "price": i * 1.25, "tags": ["a", "b"], "ok": i % 2 == 0}
    for i in range(200)
]
CASES = {"small": SMALL, "medium": MEDIUM}


def stdlib_dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def stdlib_loads(data: bytes) -> Any:
    return json.loads(data.decode())


def libraries() -> dict[str, tuple[Callable[[Any], bytes], Callable[[bytes], Any]]]:
    found: dict[str, tuple[Callable[[Any], bytes], Callable[[bytes], Any]]] = {
        "json": (stdlib_dumps, stdlib_loads)
    }
    try:
        import orjson
    except ImportError:
        pass
    else:
        found["orjson"] = (orjson.dumps, orjson.loads)
    try:
        import msgspec
    except ImportError:
        pass
    else:
        encoder = msgspec.json.Encoder()
        decoder = msgspec.json.Decoder()
        found["msgspec"] = (encoder.encode, decoder.decode)
    return found


def best(function: Callable[[], Any], number: int) -> float:
    return min(timeit.repeat(function, number=number, repeat=5)) / number


def main() -> None:
    print(f"python {sys.version.split()[0]}")
    print(f"{'library':10} {'case':8} {'encode us':>10} {'decode us':>10}")
    for name, (dumps, loads) in libraries().items():
        for case, value in CASES.items():
            data = dumps(value)
            assert loads(data) == value
            number = 20000 if case == "small" else 200
            encode = best(lambda: dumps(value), number) * 1e6  # noqa: B023
            decode = best(lambda: loads(data), number) * 1e6  # noqa: B023
            print(f"{name:10} {case:8} {encode:10.2f} {decode:10.2f}")


if __name__ == "__main__":
    main()
