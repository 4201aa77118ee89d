"""Shared start-up for the benchmark echo servers.

Every server script is run as ``python benchmarks/servers/NAME.py PORT [--uvloop]``. It
listens on 127.0.0.1 only, prints ``ready`` once the socket accepts connections and then
runs until it is terminated.

Two endpoints, the same for every library:

* ``/`` echoes every message back to its sender.
* ``/fanout``: every connected client is a subscriber; a text message ``"N"`` from any of
  them makes the server send N binary messages of :data:`FANOUT_PAYLOAD` (64 bytes) to
  every subscriber, with the library's idiomatic broadcast.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
from collections.abc import Callable, Coroutine
from typing import Any


HOST = "127.0.0.1"
FANOUT_PATH = "/fanout"
FANOUT_PAYLOAD = bytes(range(64))
MAX_MESSAGE = 4 * 1024 * 1024  # room for the 1 MiB echo scenario in every library


def raise_nofile_limit() -> int:
    """Raise the soft open-files limit to the hard limit; return the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    return soft


def parse_args(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("port", type=int)
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop")
    return parser.parse_args()


def ready() -> None:
    print("ready", flush=True)


def run(main: Callable[[int], Coroutine[Any, Any, None]], description: str) -> None:
    """Parse the command line, pick the event loop and run ``main(port)`` forever."""
    args = parse_args(description)
    raise_nofile_limit()
    if args.uvloop:
        import uvloop

        runner: Callable[[Coroutine[Any, Any, None]], None] = uvloop.run
    else:
        runner = asyncio.run
    try:
        runner(main(args.port))
    except KeyboardInterrupt:
        sys.exit(0)
