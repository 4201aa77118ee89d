"""tether echo server for the Autobahn fuzzingclient (server conformance).

    python compliance/echo_server.py [PORT]      # default 9001, 127.0.0.1 only

Limits are raised to 32 MiB so the 9.* cases (messages up to 16 MiB) pass; permessage-
deflate is on for 12.* and 13.*; keepalive is off so the suite sees only its own frames.
"""

import asyncio
import sys

from tether.asyncio.server import serve
from tether.exceptions import ConnectionClosed
from tether.protocol.limits import Limits


async def echo(ws):
    try:
        async for message in ws:
            await ws.send(message)
    except ConnectionClosed:
        pass


async def main(port):
    limits = Limits(max_message_size=2**25, max_frame_size=2**25, max_decompressed_size=2**25)
    async with serve(
        echo,
        "127.0.0.1",
        port,
        limits=limits,
        max_queue=2**26,
        ping_interval=None,
        compression="deflate",
    ) as server:
        print(f"tether echo server on ws://127.0.0.1:{port}", flush=True)
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 9001))
