"""Autobahn fuzzingserver driver for the tether client (client conformance).

    python compliance/client_driver.py [URL] [AGENT]

URL defaults to $AUTOBAHN_URL (set by run.sh client) or ws://127.0.0.1:9001. For each
case the driver connects to /runCase, echoes every message until the server closes,
then asks the server to write its reports.
"""

import asyncio
import json
import os
import sys
import time
from urllib.parse import quote

from tether.asyncio.client import connect
from tether.exceptions import ConnectionClosed, TetherError
from tether.protocol.limits import Limits


LIMITS = Limits(max_message_size=2**25, max_frame_size=2**25, max_decompressed_size=2**25)


async def case_count(url):
    async with connect(url + "/getCaseCount") as ws:
        return json.loads(await ws.recv())


async def run_case(url, agent, n):
    uri = f"{url}/runCase?case={n}&agent={quote(agent)}"
    async with connect(uri, limits=LIMITS, max_queue=2**26, ping_interval=None) as ws:
        async for message in ws:
            await ws.send(message)


async def main(url, agent):
    n = await case_count(url)
    print(f"{agent}: {n} cases from {url}", flush=True)
    started = time.monotonic()
    errors = 0
    for i in range(1, n + 1):
        try:
            await run_case(url, agent, i)
        except ConnectionClosed:
            pass  # the case closed or failed the connection on purpose
        except (TetherError, OSError) as exc:
            errors += 1
            print(f"case {i}: {type(exc).__name__}: {exc}", flush=True)
    async with connect(
        f"{url}/updateReports?agent={quote(agent)}", open_timeout=300, close_timeout=300
    ):
        pass
    elapsed = time.monotonic() - started
    print(f"{agent}: ran {n} cases in {elapsed:.1f}s ({errors} errors), reports updated")


if __name__ == "__main__":
    url = (
        sys.argv[1] if len(sys.argv) > 1 else os.environ.get("AUTOBAHN_URL", "ws://127.0.0.1:9001")
    )
    agent = sys.argv[2] if len(sys.argv) > 2 else "tether"
    asyncio.run(main(url.rstrip("/"), agent))
