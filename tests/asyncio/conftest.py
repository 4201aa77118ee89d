"""The transport and server tests run on asyncio's default loop and on uvloop.

tether accepts and runs plain connections with its own socket transport on both loops
(``tether.asyncio.transport.supports_loop``), so every test of that path runs on each.
"""

import asyncio

import uvloop


DEFAULT_LOOP = {"asyncio": asyncio.new_event_loop}
BOTH_LOOPS = {**DEFAULT_LOOP, "uvloop": uvloop.new_event_loop}
ON_BOTH_LOOPS = {"test_bad_input.py", "test_connection.py", "test_server.py", "test_transport.py"}


def pytest_asyncio_loop_factories(config, item):
    if item.path.name in ON_BOTH_LOOPS:
        return BOTH_LOOPS
    return DEFAULT_LOOP
