"""Relay fan-out benchmark: tether's relay against python-socketio, in one run.

    python benchmarks/relay_run.py                 # every scenario (about a minute)
    python benchmarks/relay_run.py --quick         # 200 subscribers, a smoke run
    python benchmarks/relay_run.py --subscribers 1000 --messages 200 --rounds 3

Scenarios, each with fresh server processes pinned to CPU 0 (``taskset``) and the load
generator (``benchmarks/relay_loadgen.py``) pinned to CPU 1:

* ``one node``: one tether relay node (memory backend, ``benchmarks/servers/relay_tether.py``)
  with every subscriber on it;
* ``two nodes, split``: two relay nodes sharing a ``redis-server`` started here on a free
  port (pinned to CPU 0 too, so the nodes and Redis share the single node's CPU), half of
  the subscribers on each node, the pushes made on node A;
* ``two nodes, all on B``: the same, every subscriber on node B, the pushes on node A, so
  every delivery crosses Redis;
* ``python-socketio``: ``sio.emit("tick", data, room="bench")`` from a python-socketio server
  on aiohttp (``benchmarks/servers/relay_socketio.py``) to a room of the same size.

A trigger connection asks the server for ``--messages`` pushes in a burst; a round is timed
until the last subscriber has the last push; the figure is the median of the rounds after
a warm-up round. The table goes to stdout and to ``benchmarks/results/relay.md``. Only
127.0.0.1 is used; every process started here is stopped at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from run import free_port, pinning  # the side-by-side harness next to this file


HERE = Path(__file__).resolve().parent
SERVERS = HERE / "servers"
RESULTS = HERE / "results" / "relay.md"
LOGS = HERE / "results" / "logs"
SOCKETIO = "python-socketio"
SINGLE = "one node"
TARGET_VS_SOCKETIO = 1.5
TARGET_VS_SINGLE = 0.5


@dataclass
class Result:
    """One scenario's figure, or why there is none."""

    scenario: str
    server: str
    value: float | None = None
    data: dict[str, Any] = field(default_factory=dict)
    failure: str = ""


# Processes


def stop(process: subprocess.Popen[Any]) -> None:
    """Terminate ``process`` and reap it (killed after 5 s)."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(5.0)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def server(script: str, prefix: list[str], log: Path, *options: str) -> Iterator[tuple[int, int]]:
    """Run ``servers/SCRIPT PORT OPTIONS`` until it prints ``ready``; yield (port, pid)."""
    port = free_port()
    command = [*prefix, sys.executable, str(SERVERS / script), str(port), *options]
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as err:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=err, text=True)
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 20.0
        line = ""
        # A server that dies closes stdout, so readline() returns "".
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line or line.strip() == "ready":
                break
        if line.strip() != "ready":
            raise RuntimeError(f"server did not start: {script}; log: {log.relative_to(HERE)}")
        yield port, process.pid
    finally:
        stop(process)
        if process.stdout is not None:
            process.stdout.close()


@contextlib.contextmanager
def redis_server(prefix: list[str]) -> Iterator[tuple[str, int]]:
    """A throw-away redis-server on a free port (no persistence); yield (url, pid)."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed (make redis)")
    port = free_port()
    command = [*prefix, binary, "--port", str(port), "--bind", "127.0.0.1"]
    command += ["--save", "", "--appendonly", "no"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10.0
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1.0) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(64).startswith(b"+PONG"):
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.02)  # polling for readiness, not synchronizing a measurement
        yield f"redis://127.0.0.1:{port}/0", process.pid
    finally:
        stop(process)


def load(
    args: argparse.Namespace,
    prefix: list[str],
    kind: str,
    ports: list[int],
    trigger: int,
    pids: list[int],
) -> dict[str, Any]:
    """Run the load generator once; its JSON result (or ``{"failure": ...}``)."""
    command = [*prefix, sys.executable, str(HERE / "relay_loadgen.py"), "--kind", kind]
    command += ["--ports", ",".join(map(str, ports)), "--trigger-port", str(trigger)]
    command += ["--subscribers", str(args.subscribers), "--messages", str(args.messages)]
    command += ["--rounds", str(args.rounds), "--server-pids", ",".join(map(str, pids))]
    try:
        completed = subprocess.run(
            command, capture_output=True, text=True, timeout=args.timeout, check=False
        )
    except subprocess.TimeoutExpired:
        return {"failure": f"load generator timed out after {args.timeout:g} s"}
    lines = [line for line in completed.stdout.splitlines() if line.startswith("{")]
    if completed.returncode != 0 or not lines:
        tail = (completed.stderr.strip().splitlines() or ["no output"])[-1]
        return {"failure": tail[:200]}
    result: dict[str, Any] = json.loads(lines[-1])
    return result


# Scenarios


def measure(args: argparse.Namespace, pins: tuple[list[str], list[str]]) -> list[Result]:
    """Every scenario, in one run."""
    srv, gen = pins
    results: list[Result] = []

    def record(scenario: str, name: str, data: dict[str, Any]) -> None:
        result = Result(scenario, name, data=data)
        if data.get("failure"):
            result.failure = str(data["failure"])
        else:
            result.value = float(data["value"])
        shown = "failed: " + result.failure if result.value is None else f"{result.value:,.0f}"
        print(f"  {scenario:<22} {name:<16} {shown}", file=sys.stderr, flush=True)
        results.append(result)

    def attempt(scenario: str, name: str, run: Any) -> None:
        try:
            record(scenario, name, run())
        except RuntimeError as exc:
            record(scenario, name, {"failure": str(exc)})

    def single() -> dict[str, Any]:
        with server("relay_tether.py", srv, LOGS / "relay-tether-1.log") as (port, pid):
            return load(args, gen, "tether", [port], port, [pid])

    def two(where: str) -> dict[str, Any]:
        with contextlib.ExitStack() as stack:
            url, redis_pid = stack.enter_context(redis_server(srv))
            port_a, pid_a = stack.enter_context(
                server("relay_tether.py", srv, LOGS / f"relay-tether-a-{where}.log", "--redis", url)
            )
            port_b, pid_b = stack.enter_context(
                server("relay_tether.py", srv, LOGS / f"relay-tether-b-{where}.log", "--redis", url)
            )
            ports = [port_a, port_b] if where == "split" else [port_b]
            return load(args, gen, "tether", ports, port_a, [pid_a, pid_b, redis_pid])

    def socketio() -> dict[str, Any]:
        with server("relay_socketio.py", srv, LOGS / "relay-socketio.log") as (port, pid):
            return load(args, gen, "socketio", [port], port, [pid])

    attempt(SOCKETIO, SOCKETIO, socketio)
    attempt(SINGLE, "tether", single)
    attempt("two nodes, split", "tether + redis", lambda: two("split"))
    attempt("two nodes, all on B", "tether + redis", lambda: two("remote"))
    return results


# Report


def cpu(value: Any) -> str:
    return "" if value is None else f"{float(value) * 100:.0f}%"


def table(results: list[Result]) -> str:
    """The markdown table: figures, ratios and whether the targets are met."""
    by_name = {r.scenario: r.value for r in results}
    sio, one = by_name.get(SOCKETIO), by_name.get(SINGLE)
    rows = [
        "| scenario | server | subscribers | deliveries/s | vs python-socketio | vs one node "
        "| target | server CPU | loadgen CPU |",
        "|---|---|---:|---:|---:|---:|---|---:|---:|",
    ]
    for r in results:
        if r.value is None:
            rows.append(f"| {r.scenario} | {r.server} | | failed: {r.failure} | | | | | |")
            continue
        vs_sio = f"{r.value / sio:.2f}x" if sio else ""
        vs_one = f"{r.value / one:.2f}x" if one and r.scenario != SOCKETIO else ""
        target = ""
        if r.scenario == SINGLE:
            met = sio is not None and r.value / sio >= TARGET_VS_SOCKETIO
            target = f">= {TARGET_VS_SOCKETIO}x python-socketio: {'met' if met else 'NOT met'}"
        elif r.scenario != SOCKETIO:
            met = one is not None and r.value / one >= TARGET_VS_SINGLE
            target = f">= {TARGET_VS_SINGLE}x one node: {'met' if met else 'NOT met'}"
        errors = int(r.data.get("errors", 0))
        value = f"{r.value:,.0f}" + (f" ({errors} errors)" if errors else "")
        rows.append(
            f"| {r.scenario} | {r.server} | {r.data.get('subscribers', '')} | {value} "
            f"| {vs_sio} | {vs_one} | {target} | {cpu(r.data.get('srv_cpu'))} "
            f"| {cpu(r.data.get('gen_cpu'))} |"
        )
    return "\n".join(rows)


def versions() -> str:
    found = []
    for name in ("tether", "python-socketio", "python-engineio", "aiohttp", "redis", "uvloop"):
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            found.append(f"{name} (not installed)")
    redis = shutil.which("redis-server")
    if redis is not None:
        out = subprocess.run([redis, "--version"], capture_output=True, text=True, check=False)
        found.append(out.stdout.split(" sha=")[0].strip())
    return ", ".join(found)


def cpu_model() -> str:
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def report(args: argparse.Namespace, results: list[Result], pinned: bool, took: float) -> str:
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    pins = "servers and redis-server on CPU 0, load generator on CPU 1" if pinned else "none"
    return "\n".join(
        [
            "# Relay fan-out results",
            "",
            f"- date: {now}",
            f"- CPU: {cpu_model()}, {os.cpu_count()} logical CPUs; kernel {platform.release()}",
            f"- Python {platform.python_version()}; {versions()}",
            f"- pinning: {pins}",
            f"- command: `{' '.join(['python', 'benchmarks/relay_run.py', *sys.argv[1:]])}`",
            f"- {args.subscribers} subscribers on one topic/room; {args.messages} pushes per "
            f"round; median of {args.rounds} rounds after a warm-up round; whole run "
            f"{took:.0f} s",
            "- server CPU: all server processes of the scenario (both nodes and redis-server "
            "for two nodes), over the measured rounds",
            "",
            table(results),
            "",
        ]
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=200, help="pushes per round")
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds")
    parser.add_argument("--timeout", type=float, default=170.0, help="per scenario, seconds")
    parser.add_argument("--quick", action="store_true", help="200 subscribers, 50 pushes")
    parser.add_argument("--no-pin", action="store_true", help="do not use taskset")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.quick:
        args.subscribers, args.messages, args.rounds = 200, 50, 2
    return args


def main(argv: list[str] | None = None) -> None:
    """Run every scenario, print the table and write it to ``--output``."""
    args = parse_args(argv)
    pins: tuple[list[str], list[str]] = ([], []) if args.no_pin else pinning()
    started = time.monotonic()
    results = measure(args, pins)
    text = report(args, results, bool(pins[0]), time.monotonic() - started)
    print(table(results))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    print(f"\nwritten to {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
