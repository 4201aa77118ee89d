"""Test helpers shared by the asyncio tests."""

import asyncio
import os


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
