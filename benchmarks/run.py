"""Run every benchmark scenario against every server and print one markdown table.

Each measurement starts a fresh server process (``benchmarks/servers/NAME_server.py``)
pinned to CPU 0 and a load generator process (``benchmarks/loadgen.py``) pinned to CPU 1,
both with ``taskset`` when it is available. The throughput scenarios are measured in
five rounds of 3 s (``--rounds``, ``--duration``), every server once per round (in
reverse order every other round), and each figure is the median of its rounds; the
table shows the spread. Results also go to
``benchmarks/results/latest.md`` with the machine and the library versions.

Usage::

    python benchmarks/run.py                    # every scenario, asyncio and uvloop
    python benchmarks/run.py --quick            # ~1 s per measurement, smaller counts
    python benchmarks/run.py --scenarios 1,2 --servers tether,picows --loops asyncio
    python benchmarks/run.py --short            # capacity (7) with 1,000 connections for 8 s
    python benchmarks/run.py --scenarios 1,4,8,9,10 --servers tether --loops asyncio

The REPE RPC scenarios 8-10 run against ``benchmarks/servers/NAME_rpc_server.py`` (only
tether has one); their target column compares them with tether's own engine figures of
the same run: scenario 8 with scenario 1 (64 B echo) and 10 with 4 (fan-out).
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any


HERE = Path(__file__).resolve().parent
SERVERS_DIR = HERE / "servers"
RESULTS = HERE / "results" / "latest.md"
LOGS = HERE / "results" / "logs"
# In this order in every round (reversed every other round): tether is measured right
# before or right after picows, the peer most of its targets name, so that the two
# figures of a round are seconds apart.
LIBRARIES = ("tether", "picows", "aiohttp", "websockets")
PEERS = ("picows", "aiohttp", "websockets")
CALIBRATION = "raw"
RAW_SCENARIOS = {1, 2, 3}  # the raw server has no fan-out; memory and churn say little

SCENARIO_NAMES = {
    1: "64 B echo, 64 in flight",
    2: "64 B echo, 1 in flight",
    3: "1 MiB echo, 4 in flight",
    4: "fan-out",
    5: "memory per idle connection",
    6: "churn (connect+handshake+close)",
    7: "capacity (1 msg/s each, keepalive on)",
    8: "REPE call_json pipelined, 1 connection, 64 in flight",
    9: "REPE call_json, 100 connections, 8 in flight each",
    10: "broadcast_notify to 1,000 peers",
}
# RPC scenarios run against SERVER_rpc_server.py (only tether has one) and are compared
# with the same server's engine figure measured in the same invocation.
RPC_SCENARIOS = {8, 9, 10}
# Scenario -> (engine scenario it is compared with, target ratio).
RPC_TARGETS: dict[int, tuple[int, float]] = {8: (1, 0.5), 10: (4, 0.8)}
LOWER_IS_BETTER = {5, 7}
# Throughput scenarios are measured in rounds (every server once per round, one after the
# other) and each figure is the median of its rounds: on a shared VM one figure can move
# by 10-20% from one minute to the next, and 2-3x for the round trip. More, shorter rounds
# sample more of that drift for the same measuring time. Memory (5) and capacity (7) are
# measured once.
ROUNDED_SCENARIOS = {1, 2, 3, 4, 6, 8, 9, 10}

# Scenario -> (peer to compare with, or None for the best peer; target ratio; kind).
TARGETS: dict[int, tuple[str | None, float, str]] = {
    1: ("picows", 1.3, ">="),
    2: ("picows", 1.0, ">="),
    3: ("picows", 1.0, ">="),
    4: ("picows", 1.5, ">="),
    5: ("aiohttp", 0.5, "<="),
    6: (None, 1.0, ">="),
    7: (None, 0.0, "errors"),
}


@dataclass
class Result:
    scenario: int
    server: str
    loop: str
    value: float | None
    unit: str
    errors: int = 0
    srv_cpu: float | None = None
    gen_cpu: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    failure: str = ""
    rounds: list[float] = field(default_factory=list)
    # Every round's figure in round order, None where it failed (with two rounds or more).
    round_values: list[float | None] = field(default_factory=list)


def round_order(servers: list[str], number: int) -> list[str]:
    """The order of the servers in round ``number`` (from 0): reversed every other round.

    No server is always measured first, or always right after the same other one.
    """
    return list(servers) if number % 2 == 0 else list(reversed(servers))


def median_of_rounds(rounds: list[Result]) -> Result:
    """The round with the median figure, carrying every round's figure and errors.

    Failed rounds count as errors; the figure is the median of the rounds that produced
    one (with an even count, the lower of the two middle ones).
    """
    measured = sorted((r for r in rounds if r.value is not None), key=lambda r: r.value or 0.0)
    errors = sum(r.errors for r in rounds)
    if not measured:
        failed = rounds[-1]
        return Result(
            failed.scenario, failed.server, failed.loop, None, "", errors, failure=failed.failure
        )
    middle = measured[(len(measured) - 1) // 2]
    values = [r.value for r in rounds if r.value is not None]
    return Result(
        middle.scenario,
        middle.server,
        middle.loop,
        middle.value,
        middle.unit,
        errors=errors,
        srv_cpu=middle.srv_cpu,
        gen_cpu=middle.gen_cpu,
        extra=middle.extra,
        rounds=values if len(rounds) > 1 else [],
        round_values=[r.value for r in rounds] if len(rounds) > 1 else [],
    )


def paired_ratios(a: Result, b: Result) -> list[float]:
    """``a``'s figure over ``b``'s in every round both measured, sorted."""
    return sorted(
        x / y for x, y in zip(a.round_values, b.round_values, strict=False) if x is not None and y
    )


def paired_ratio(a: Result, b: Result) -> float | None:
    """The median over rounds of ``a``'s figure over ``b``'s in the same round.

    The two figures of a round are taken seconds apart, so this ratio follows less of
    the VM's drift between rounds than the ratio of the two medians; ``None`` with fewer
    than two rounds measured by both.
    """
    return sorted_median(paired_ratios(a, b))


def sorted_median(ratios: list[float]) -> float | None:
    """The median of sorted ``ratios``; ``None`` with fewer than two."""
    if len(ratios) < 2:
        return None
    middle = len(ratios) // 2
    if len(ratios) % 2:
        return ratios[middle]
    return (ratios[middle - 1] + ratios[middle]) / 2


def median_interval(values: list[float], confidence: float = 0.95) -> tuple[float, float] | None:
    """A distribution-free confidence interval for the median of what ``values`` sample.

    The interval runs from the k-th smallest to the k-th largest value, with the largest
    k for which fewer than k of n values fall below the median with probability at most
    (1 - confidence) / 2 (each value is below it with probability 1/2: a binomial tail).
    It assumes only that the rounds are independent draws of one distribution, not that
    they are normal. ``None`` when there are too few values for that confidence.
    """
    ordered = sorted(values)
    n = len(ordered)
    tail = (1.0 - confidence) / 2
    k = 0
    below = 0.0  # P(fewer than k + 1 of the n values below the median)
    while k < n // 2:
        below += math.comb(n, k) / 2**n
        if below > tail:
            break
        k += 1
    if k == 0:
        return None
    return ordered[k - 1], ordered[n - k]


def paired_cell(a: Result, b: Result) -> str:
    """The paired ratio with its 95% interval and the rounds ``a`` was ahead in."""
    ratios = paired_ratios(a, b)
    ratio = sorted_median(ratios)
    if ratio is None:
        return ""
    cell = f"paired {ratio:.2f}x"
    interval = median_interval(ratios)
    if interval is not None:
        cell += f" (95% {interval[0]:.2f}-{interval[1]:.2f}x"
        cell += f", ahead in {sum(r > 1.0 for r in ratios)} of {len(ratios)})"
    return cell


# Processes


def pinning() -> tuple[list[str], list[str]]:
    """``taskset`` prefixes for the server and the load generator (empty if unusable)."""
    taskset = shutil.which("taskset")
    if taskset is None or (os.cpu_count() or 1) < 2:
        return [], []
    probe = subprocess.run([taskset, "-c", "1", "true"], capture_output=True, check=False)
    if probe.returncode != 0:
        return [], []
    return [taskset, "-c", "0"], [taskset, "-c", "1"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def variant(server: str) -> tuple[str, dict[str, str] | None]:
    """``NAME`` or ``NAME@PATH`` -> the server script's name and its environment.

    ``tether@PATH`` is the tether server run with ``PATH`` first on ``PYTHONPATH``
    (another checkout's ``src``, with its C accelerators built there), so that two
    versions are measured in the same rounds; ``None`` keeps this process's environment.
    """
    name, _, path = server.partition("@")
    if not path:
        return name, None
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [path, env.get("PYTHONPATH")]))
    return name, env


def log_name(server: str) -> str:
    """``server`` as part of a file name."""
    return server.replace(os.sep, "_").replace("@", "-")


class ServerProcess:
    """A benchmark server in its own process; always terminated on exit.

    ``name`` is a script of ``servers/`` without ``_server.py``, or ``NAME@PATH`` (see
    :func:`variant`).
    """

    def __init__(
        self,
        name: str,
        loop: str,
        prefix: list[str],
        log: Path,
        *,
        rpc: bool = False,
        env: dict[str, str] | None = None,
    ) -> None:
        self.port = free_port()
        self.log = log
        name, self.env = variant(name)
        if env is not None:
            self.env = env
        script = SERVERS_DIR / f"{name}_{'rpc_' if rpc else ''}server.py"
        command = [*prefix, sys.executable, str(script)]
        command.append(str(self.port))
        if loop == "uvloop":
            command.append("--uvloop")
        self.command = command
        self.process: subprocess.Popen[str] | None = None

    def __enter__(self) -> ServerProcess:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("w") as log:
            self.process = subprocess.Popen(
                self.command, stdout=subprocess.PIPE, stderr=log, text=True, env=self.env
            )
        assert self.process.stdout is not None
        deadline = time.monotonic() + 20.0
        line = ""
        # readline() blocks, but a server that dies closes stdout and returns "".
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line or line.strip() == "ready":
                break
        if line.strip() != "ready":
            self.stop()
            raise RuntimeError(f"server did not start: {' '.join(self.command)}")
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def stop(self) -> None:
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(5.0)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stdout is not None:
            process.stdout.close()
        self.process = None

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def loadgen_options(args: argparse.Namespace, scenario: int) -> tuple[list[str], float]:
    """Command-line options of the load generator and a hard timeout for it."""
    options = ["--duration", str(args.duration), "--warmup", str(args.warmup)]
    budget = args.duration + args.warmup + 60.0
    if scenario == 4:
        options += ["--clients", str(args.clients), "--messages", str(args.messages)]
        budget += 120.0
    elif scenario == 10:
        options += ["--clients", str(args.peers), "--messages", str(args.notifies)]
        budget += 120.0
    elif scenario == 5:
        options += ["--connections", str(args.memory_connections)]
    elif scenario == 7:
        options += ["--connections", str(args.capacity_connections)]
        options += ["--seconds", str(args.capacity_seconds)]
        budget += args.capacity_seconds
    return options, budget


def measure(
    args: argparse.Namespace, scenario: int, server: str, loop: str, pins: tuple[list[str], ...]
) -> Result:
    server_pin, gen_pin = pins
    log = LOGS / f"{log_name(server)}-{loop}-{scenario}.log"
    try:
        rpc = scenario in RPC_SCENARIOS
        with ServerProcess(server, loop, server_pin, log, rpc=rpc) as proc:
            options, budget = loadgen_options(args, scenario)
            command = [*gen_pin, sys.executable, str(HERE / "loadgen.py")]
            command += ["--port", str(proc.port), "--scenario", str(scenario)]
            command += ["--server-pid", str(proc.pid), *options]
            completed = subprocess.run(
                command, capture_output=True, text=True, timeout=budget, check=False
            )
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        return Result(scenario, server, loop, None, "", errors=1, failure=str(exc)[:200])
    lines = [line for line in completed.stdout.splitlines() if line.startswith("{")]
    if completed.returncode != 0 or not lines:
        failure = (completed.stderr.strip().splitlines() or ["no output"])[-1][:200]
        return Result(scenario, server, loop, None, "", errors=1, failure=failure)
    data = json.loads(lines[-1])
    if data.get("failure"):
        failure = f"{data['failure'][:120]}; server log: {log.relative_to(HERE)}"
        return Result(scenario, server, loop, None, "", errors=1, failure=failure)
    return Result(
        scenario,
        server,
        loop,
        float(data["value"]),
        data.get("unit", ""),
        errors=int(data.get("errors", 0)),
        srv_cpu=data.get("srv_cpu"),
        gen_cpu=data.get("gen_cpu"),
        extra={k: v for k, v in data.items() if k not in {"value", "unit", "scenario"}},
    )


# Report


def best_peer(results: list[Result], scenario: int, loop: str) -> Result | None:
    peers = [
        r
        for r in results
        if r.scenario == scenario and r.loop == loop and r.server in PEERS and r.value is not None
    ]
    if not peers:
        return None
    if scenario in LOWER_IS_BETTER:
        return min(peers, key=lambda r: r.value or 0.0)
    return max(peers, key=lambda r: r.value or 0.0)


def find(results: list[Result], scenario: int, server: str, loop: str) -> Result | None:
    for r in results:
        if r.scenario == scenario and r.server == server and r.loop == loop:
            return r
    return None


def format_value(value: float) -> str:
    if value >= 1000:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def target_cell(results: list[Result], r: Result) -> str:
    if r.server != "tether" or r.value is None:
        return ""
    if r.scenario in RPC_SCENARIOS:
        return rpc_target_cell(results, r)
    peer_name, goal, kind = TARGETS[r.scenario]
    if kind == "errors":
        return f"0 errors: {'met' if r.value == 0 else 'NOT met'}"
    peer = (
        best_peer(results, r.scenario, r.loop)
        if peer_name is None
        else find(results, r.scenario, peer_name, r.loop)
    )
    if peer is None or not peer.value:
        return "no peer figure"
    ratio = r.value / peer.value
    met = ratio >= goal if kind == ">=" else ratio <= goal
    cell = f"{ratio:.2f}x {peer.server} ({kind}{goal}): {'met' if met else 'NOT met'}"
    paired = paired_cell(r, peer)
    return f"{cell}; {paired}" if paired else cell


def rpc_target_cell(results: list[Result], r: Result) -> str:
    """An RPC figure against the same server's engine figure from this run."""
    if r.scenario not in RPC_TARGETS or r.value is None:
        return ""
    base_scenario, goal = RPC_TARGETS[r.scenario]
    base = find(results, base_scenario, r.server, r.loop)
    if base is None or not base.value:
        return f"needs scenario {base_scenario} in the same run"
    ratio = r.value / base.value
    met = "met" if ratio >= goal else "NOT met"
    return f"{ratio:.2f}x {r.server} #{base_scenario} (>={goal}): {met}"


def ratio_cell(results: list[Result], r: Result) -> str:
    if r.value is None or r.scenario == 7 or r.scenario in RPC_SCENARIOS:
        return ""
    peer = best_peer(results, r.scenario, r.loop)
    if peer is None or not peer.value:
        return ""
    return f"{r.value / peer.value:.2f}x {peer.server}"


def rounds_cell(r: Result) -> str:
    if len(r.rounds) < 2:
        return ""
    return f"{format_value(min(r.rounds))}-{format_value(max(r.rounds))}"


def cpu_cell(value: float | None) -> str:
    if value is None or value < 0:
        return ""
    return f"{value * 100:.0f}%"


def table(results: list[Result]) -> str:
    rows = [
        "| # | scenario | server | loop | result | unit | rounds (min-max) | vs best peer "
        "| target (tether) | server CPU | loadgen CPU |",
        "|---|---|---|---|---:|---|---:|---|---|---:|---:|",
    ]
    order = {name: i for i, name in enumerate((*LIBRARIES, CALIBRATION))}
    for r in sorted(results, key=lambda r: (r.scenario, r.loop, order.get(r.server, len(order)))):
        if r.value is None:
            value, unit = "failed", r.failure.replace("|", "/")
        else:
            value, unit = format_value(r.value), r.unit
            if r.scenario == 7:
                unit = f"errors ({r.extra.get('connections', '?')} conns, "
                unit += f"p99 {r.extra.get('p99_ms', 0.0):.1f} ms)"
            elif r.errors:
                value += f" ({r.errors} errors)"
        server = r.server if r.server != CALIBRATION else "raw (calibration)"
        rows.append(
            f"| {r.scenario} | {SCENARIO_NAMES[r.scenario]} | {server} | {r.loop} | {value} "
            f"| {unit} | {rounds_cell(r)} | {ratio_cell(results, r)} "
            f"| {target_cell(results, r)} "
            f"| {cpu_cell(r.srv_cpu)} | {cpu_cell(r.gen_cpu)} |"
        )
    return "\n".join(rows)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def versions() -> str:
    found = []
    for name in ("tether", "websockets", "aiohttp", "picows", "uvloop"):
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            found.append(f"{name} (not installed)")
    return ", ".join(found)


def report(args: argparse.Namespace, results: list[Result], pinned: bool, took: float) -> str:
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Benchmark results",
        "",
        f"- date: {now}",
        f"- CPU: {cpu_model()}, {os.cpu_count()} logical CPUs; kernel {platform.release()}",
        f"- Python {platform.python_version()} ({platform.python_implementation()})",
        f"- versions: {versions()}",
        f"- pinning: {'server on CPU 0, load generator on CPU 1' if pinned else 'none'}",
        f"- command: `{' '.join(['python', 'benchmarks/run.py', *sys.argv[1:]])}`",
        f"- measured {args.duration:g} s per round after {args.warmup:g} s of warm-up; "
        f"scenarios {', '.join(str(n) for n in sorted(ROUNDED_SCENARIOS))}: the median of "
        f"{args.rounds} rounds (servers one after the other in each round, in reverse "
        f"order every other round); "
        f"fan-out {args.clients} clients x {args.messages} messages; broadcast "
        f"{args.peers} peers x {args.notifies} notifies; memory "
        f"{args.memory_connections} connections; capacity {args.capacity_connections} "
        f"connections for {args.capacity_seconds:g} s; whole run {took:.0f} s",
        "",
        table(results),
        "",
    ]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="tether side-by-side benchmarks")
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per round")
    parser.add_argument("--warmup", type=float, default=0.5)
    parser.add_argument("--quick", action="store_true", help="~1 s smoke run, small counts")
    parser.add_argument(
        "--short", action="store_true", help="capacity (7) with 1,000 connections for 8 s"
    )
    parser.add_argument("--scenarios", default="1,2,3,4,5,6,7,8,9,10", help="e.g. 1,2")
    parser.add_argument("--servers", default=",".join((*LIBRARIES, CALIBRATION)))
    parser.add_argument("--loops", default="asyncio,uvloop", help="asyncio,uvloop")
    parser.add_argument("--clients", type=int, default=1000, help="fan-out clients")
    parser.add_argument("--messages", type=int, default=200, help="fan-out messages each")
    parser.add_argument("--peers", type=int, default=1000, help="broadcast peers (10)")
    parser.add_argument("--notifies", type=int, default=200, help="broadcasts per round (10)")
    parser.add_argument("--memory-connections", type=int, default=5000)
    parser.add_argument(
        "--rounds", type=int, default=5, help="rounds of the throughput scenarios (median)"
    )
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--no-pin", action="store_true", help="do not use taskset")
    args = parser.parse_args(argv)
    # The defaults are the scenarios: 1,000 fan-out clients x 200 messages,
    # memory with 5,000 connections, capacity with 10,000 connections for 60 s.
    args.capacity_connections, args.capacity_seconds = 10_000, 60.0
    if args.short:
        args.capacity_connections, args.capacity_seconds = 1000, 8.0
    if args.quick:
        args.duration, args.warmup = 1.0, 0.2
        args.rounds = 1
        args.clients, args.messages = 50, 200
        args.peers, args.notifies = 200, 50
        args.memory_connections = 200
        args.capacity_connections, args.capacity_seconds = 200, 3.0
    args.scenario_list = [int(s) for s in args.scenarios.split(",") if s.strip()]
    args.server_list = [s.strip() for s in args.servers.split(",") if s.strip()]
    args.loop_list = [s.strip() for s in args.loops.split(",") if s.strip()]
    for s in args.scenario_list:
        if s not in SCENARIO_NAMES:
            parser.error(f"unknown scenario {s}")
    for s in args.server_list:
        if not (SERVERS_DIR / f"{variant(s)[0]}_server.py").exists():
            parser.error(f"unknown server {s}")
    args.has_rpc = {
        s for s in args.server_list if (SERVERS_DIR / f"{variant(s)[0]}_rpc_server.py").exists()
    }
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    pins = ([], []) if args.no_pin else pinning()
    loops = list(args.loop_list)
    if "uvloop" in loops:
        try:
            import uvloop  # noqa: F401
        except ImportError:
            print("uvloop is not installed: measuring the asyncio loop only", file=sys.stderr)
            loops.remove("uvloop")
    started = time.monotonic()
    results: list[Result] = []
    # Scenario by scenario, every server one after the other (and again in each round):
    # the VM's speed drifts over minutes, and the ratios compare figures taken within
    # seconds of each other.
    for loop in loops:
        for scenario in args.scenario_list:
            servers = [
                server
                for server in args.server_list
                if not (server == CALIBRATION and scenario not in RAW_SCENARIOS)
                and not (scenario in RPC_SCENARIOS and server not in args.has_rpc)
            ]
            rounds = args.rounds if scenario in ROUNDED_SCENARIOS else 1
            measured: dict[str, list[Result]] = {server: [] for server in servers}
            for number in range(rounds):
                for server in round_order(servers, number):
                    result = measure(args, scenario, server, loop, pins)
                    shown = "failed" if result.value is None else format_value(result.value)
                    print(
                        f"  [{time.monotonic() - started:5.0f} s] {scenario} {server:<10} "
                        f"{loop:<7} {shown} {result.unit}",
                        file=sys.stderr,
                        flush=True,
                    )
                    measured[server].append(result)
            results += [median_of_rounds(measured[server]) for server in servers]
    text = report(args, results, bool(pins[0]), time.monotonic() - started)
    print(table(results))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    print(f"\nwritten to {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
