"""Test helpers shared by the asyncio tests."""

import asyncio
import contextlib
import importlib.util
import os
import sys
from pathlib import Path


# Scale every time budget on slow machines: TETHER_TESTS_TIMEOUT_FACTOR=4 make test.
TIMEOUT_FACTOR = float(os.environ.get("TETHER_TESTS_TIMEOUT_FACTOR", "1"))


async def until(predicate, timeout=5.0):
    """Wait until ``predicate()`` is true, checking on every event loop turn.

    For conditions that no event announces (a transport paused its reading, say). Fails
    the test instead of hanging when the condition never comes.
    """
    async with asyncio.timeout(timeout * TIMEOUT_FACTOR):
        while not predicate():
            await asyncio.sleep(0.001)


@contextlib.contextmanager
def benchmark_module(filename, name):
    """Import ``benchmarks/FILENAME`` as module ``name`` for the duration of the block.

    The benchmarks directory is first on ``sys.path`` meanwhile, so that the scripts'
    imports of each other (``import run``) resolve; both are undone afterwards.
    """
    bench = Path(__file__).resolve().parent.parent / "benchmarks"
    sys.path.insert(0, str(bench))
    spec = importlib.util.spec_from_file_location(name, bench / filename)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[name]
        sys.path.remove(str(bench))
        sys.modules.pop("run", None)
