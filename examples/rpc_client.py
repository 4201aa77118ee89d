"""Talk to ``examples/rpc_server.py``: calls, a batch, and pushed notifies."""

from __future__ import annotations

import asyncio

from tether.rpc.client import rpc_connect
from tether.rpc.errors import ServerError


async def main() -> None:
    async with (
        rpc_connect("ws://127.0.0.1:8081/repe") as alice,
        rpc_connect("ws://127.0.0.1:8081/repe") as bob,
    ):
        inbox = bob.subscribe_notifies()
        print("welcome:", bytes((await inbox.recv()).body).decode())
        print(await alice.call_json("/login", "alice"), await bob.call_json("/login", "bob"))
        print("batch:", await alice.batch_json([("/sum", [1, 2, 3]), ("/sum", [0.5, 0.25])]))
        await alice.call_json("/say", {"to": "bob", "text": "hello"})
        print("bob got:", bytes((await inbox.recv()).body).decode())
        try:
            await alice.call_json("/say", {"to": "carol", "text": "?"})
        except ServerError as exc:
            print("error:", exc)


if __name__ == "__main__":
    asyncio.run(main())
