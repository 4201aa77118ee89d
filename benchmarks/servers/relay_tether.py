"""tether relay node for ``benchmarks/relay_run.py``.

    python benchmarks/servers/relay_tether.py PORT [--redis URL]

Serves the relay on ``/ws`` (127.0.0.1 only) with the default :class:`RelayConfig`, on the
memory backend or, with ``--redis``, on a Redis backend shared with other nodes. Clients
subscribe to ``bench``; a client subscribed to ``control`` that sends
``{"type":"message","topic":"control","event":"burst","payload":{"n":N}}`` makes this node
push N messages to ``bench``, one ``relay.push`` each, the way an application would.
Prints ``ready`` once listening and runs until terminated.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from _common import HOST, raise_nofile_limit, ready

from tether.relay import ChannelContext, Relay, RelayConfig
from tether.relay.backends.base import Backend


TOPIC = "bench"
CONTROL = "control"


def make_relay(redis_url: str | None) -> Relay:
    """A relay with the default configuration and a ``control`` channel that bursts."""
    backend: Backend | None = None
    if redis_url is not None:
        from tether.relay.backends.redis import RedisBackend

        backend = RedisBackend(redis_url)
    relay = Relay(RelayConfig(), backend=backend)

    @relay.channel(CONTROL)
    class Control:
        async def message(self, ctx: ChannelContext, event: str, payload: Any) -> None:
            if event == "burst":
                for i in range(int(payload["n"])):
                    await ctx.relay.push(TOPIC, "tick", {"i": i})

    return relay


async def main(port: int, redis_url: str | None) -> None:
    """Serve one relay node until the process is terminated."""
    async with make_relay(redis_url) as relay:
        async with relay.serve(HOST, port, compression=None):
            ready()
            await asyncio.Future()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("port", type=int)
    parser.add_argument("--redis", default=None, help="redis://... shared by the nodes")
    args = parser.parse_args()
    raise_nofile_limit()
    try:
        asyncio.run(main(args.port, args.redis))
    except KeyboardInterrupt:
        sys.exit(0)
