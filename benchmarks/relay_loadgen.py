"""Load generator for the relay fan-out benchmark (``benchmarks/relay_run.py`` drives it).

    python benchmarks/relay_loadgen.py --kind tether|socketio --ports P[,P2] \
        --trigger-port P --subscribers 1000 --messages 200 --rounds 3

It opens ``--subscribers`` raw WebSocket connections (the HTTP upgrade written by hand,
frames masked once before measuring; see ``loadgen.py``), spread round-robin over
``--ports``, and makes each one join the benchmark topic or room:

* tether relay: ``{"type":"subscribe","topic":"bench"}``, then waits for ``subscribed``;
* Socket.IO (Engine.IO v4 / Socket.IO v5 on ``/socket.io/?EIO=4&transport=websocket``):
  waits for the open packet ``0{...}``, sends ``40``, waits for ``40{...}``, emits
  ``join`` with an acknowledgement id (``420["join","bench"]``) and waits for ``430[...]``;
  Engine.IO pings (``2``) are answered with ``3``.

A trigger connection on ``--trigger-port`` then asks the server for N pushes (relay: a
``burst`` message on the ``control`` topic; Socket.IO: a ``burst`` event), and the round is
timed from that write until the last subscriber has its last message. Received frames are
walked header by header in the bytes they arrive in; a push (relay: a text frame starting
with ``{"type":"push"``; Socket.IO: one starting with ``42["tick"``) only increments a
counter, so no object is built per message. One warm-up round, then the median of
``--rounds``. The result is one JSON line on stdout. Only 127.0.0.1 is contacted and
every wait is bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


sys.path.insert(0, str(Path(__file__).resolve().parent))

from loadgen import (  # the shared raw-socket helpers live next to this file
    OP_CLOSE,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    Client,
    client_frame,
    close_all,
    open_many,
    own_cpu,
    process_cpu,
    raise_nofile_limit,
    upgrade_request,
)


TOPIC = "bench"
RELAY_PATH = "/ws"
SIO_PATH = "/socket.io/?EIO=4&transport=websocket"
RELAY_PUSH = b'{"type":"push"'
SIO_TICK = b'42["tick"'
STEP_TIMEOUT = 30.0


def relay_frame(message: dict[str, Any]) -> bytes:
    """A masked text frame carrying one relay JSON message."""
    return client_frame(OP_TEXT, json.dumps(message, separators=(",", ":")).encode())


RELAY_SUBSCRIBE = relay_frame({"type": "subscribe", "topic": TOPIC})
SIO_CONNECT = client_frame(OP_TEXT, b"40")
SIO_JOIN = client_frame(OP_TEXT, b'420["join","bench"]')
SIO_PONG = client_frame(OP_TEXT, b"3")


class Subscriber(Client):
    """Walks the frames it receives; counts pushes, hands other messages to :meth:`on_text`."""

    push_prefix = RELAY_PUSH

    def __init__(self, request: bytes) -> None:
        super().__init__(request)
        self.pending = b""
        self.count = 0
        self.target = 0
        self.bad = 0
        self.reached: asyncio.Future[None] | None = None
        self.joined: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def on_data(self, data: bytes) -> None:
        if self.closing:
            return
        if self.pending:
            data = self.pending + data
        size = len(data)
        pos = 0
        count = 0
        prefix = self.push_prefix
        while size - pos >= 2:
            first = data[pos]
            length = data[pos + 1]
            start = pos + 2
            if length >= 126:  # never for pushes; small frames only carry a 7-bit length
                width = 2 if length == 126 else 8
                if size - start < width:
                    break
                length = int.from_bytes(data[start : start + width], "big")
                start += width
            end = start + length
            if end > size:
                break
            if data.startswith(prefix, start, end):
                count += 1
            elif first == 0x80 | OP_TEXT:
                self.on_text(data[start:end])
            else:
                self.on_control(first & 0x0F, data[start:end])
            pos = end
        self.pending = data[pos:] if pos < size else b""
        if count:
            self.count += count
            if self.count >= self.target and self.reached is not None:
                if not self.reached.done():
                    self.reached.set_result(None)

    def on_text(self, payload: bytes) -> None:
        """A text message that is not a push."""
        if payload.startswith(b'{"type":"subscribed"'):
            self.set_joined()
        else:
            self.bad += 1

    def on_control(self, opcode: int, payload: bytes) -> None:
        if opcode == OP_PING:
            assert self.transport is not None
            self.transport.write(client_frame(OP_PONG, payload))
        elif opcode == OP_CLOSE:
            self.bad += 1
        elif opcode != OP_PONG:
            self.bad += 1

    def set_joined(self) -> None:
        if not self.joined.done():
            self.joined.set_result(None)

    def start(self) -> None:
        """Send the join request (after the WebSocket handshake)."""
        assert self.transport is not None
        self.transport.write(RELAY_SUBSCRIBE)


class SocketIOSubscriber(Subscriber):
    """Engine.IO v4 / Socket.IO v5 over a raw WebSocket: connect, join, answer pings."""

    push_prefix = SIO_TICK

    def on_text(self, payload: bytes) -> None:
        assert self.transport is not None
        if payload == b"2":  # Engine.IO ping
            self.transport.write(SIO_PONG)
        elif payload.startswith(b"0{"):  # Engine.IO open
            self.transport.write(SIO_CONNECT)
        elif payload.startswith(b"40"):  # Socket.IO namespace connected
            self.transport.write(SIO_JOIN)
        elif payload.startswith(b"430"):  # acknowledgement of join
            self.set_joined()
        else:
            self.bad += 1

    def start(self) -> None:
        """Nothing to send: the server speaks first with the open packet."""


def factory(kind: str, port: int) -> Callable[[], Subscriber]:
    if kind == "tether":
        request = upgrade_request(port, RELAY_PATH)
        return lambda: Subscriber(request)
    request = upgrade_request(port, SIO_PATH)
    return lambda: SocketIOSubscriber(request)


def trigger_frame(kind: str, messages: int) -> bytes:
    if kind == "tether":
        message = {"type": "message", "topic": "control", "event": "burst"}
        return relay_frame({**message, "payload": {"n": messages}})
    return client_frame(OP_TEXT, f'42["burst",{messages}]'.encode())


async def join_all(clients: list[Subscriber]) -> None:
    for client in clients:
        client.start()
    await asyncio.wait_for(asyncio.gather(*(c.joined for c in clients)), STEP_TIMEOUT)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    ports = [int(p) for p in args.ports.split(",")]
    subscribers: list[Subscriber] = []
    failures = 0
    for index, port in enumerate(ports):
        share = args.subscribers // len(ports) + (index < args.subscribers % len(ports))
        opened, failed = await open_many(port, factory(args.kind, port), share)
        subscribers += opened
        failures += failed
    trigger: Subscriber | None = None
    try:
        if failures:
            return {"failure": f"{failures} of {args.subscribers} connections failed"}
        await join_all(subscribers)
        port = args.trigger_port
        triggers, failed = await open_many(port, factory(args.kind, port), 1)
        if failed:
            return {"failure": "trigger connection failed"}
        trigger = triggers[0]
        if args.kind == "tether":
            trigger.transport.write(relay_frame({"type": "subscribe", "topic": "control"}))  # type: ignore[union-attr]
        else:
            trigger.start()
        await asyncio.wait_for(trigger.joined, STEP_TIMEOUT)
        frame = trigger_frame(args.kind, args.messages)
        pids = [int(p) for p in args.server_pids.split(",") if p]
        rates: list[float] = []
        srv_cpu = gen_cpu = 0.0
        window = 0.0
        loop = asyncio.get_running_loop()
        for round_ in range(args.rounds + 1):
            target = (round_ + 1) * args.messages
            for client in subscribers:
                client.target = target
                client.reached = loop.create_future() if client.count < target else None
            waits = [c.reached for c in subscribers if c.reached is not None]
            cpu0 = [process_cpu(pid) for pid in pids], own_cpu()
            start = time.perf_counter()
            trigger.transport.write(frame)  # type: ignore[union-attr]
            await asyncio.wait_for(asyncio.gather(*waits), args.round_timeout)
            took = time.perf_counter() - start
            if round_ == 0:
                continue  # warm-up
            rates.append(len(subscribers) * args.messages / took)
            window += took
            srv_cpu += sum(process_cpu(pid) for pid in pids) - sum(cpu0[0])
            gen_cpu += own_cpu() - cpu0[1]
        bad = sum(c.bad for c in subscribers)
        extra = sum(c.count for c in subscribers) - len(subscribers) * args.messages * (
            args.rounds + 1
        )
        return {
            "value": statistics.median(rates),
            "unit": "deliveries/s",
            "rounds": [round(r) for r in rates],
            "errors": bad + abs(extra),
            "srv_cpu": srv_cpu / window if window else None,
            "gen_cpu": gen_cpu / window if window else None,
            "subscribers": len(subscribers),
        }
    except TimeoutError:
        behind = sum(1 for c in subscribers if c.count < c.target)
        return {"failure": f"timed out; {behind} subscribers behind"}
    finally:
        everyone = [*subscribers, *([trigger] if trigger is not None else [])]
        await close_all(everyone)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", choices=["tether", "socketio"], required=True)
    parser.add_argument("--ports", required=True, help="subscriber ports, comma-separated")
    parser.add_argument("--trigger-port", type=int, required=True)
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=200, help="pushes per round")
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds")
    parser.add_argument("--round-timeout", type=float, default=60.0)
    parser.add_argument("--server-pids", default="", help="for CPU use, comma-separated")
    args = parser.parse_args()
    raise_nofile_limit()
    try:
        import uvloop

        result = uvloop.run(run(args))
    except ImportError:
        result = asyncio.run(run(args))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
