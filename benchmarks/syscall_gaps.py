"""Time a server's own work between its system calls in the round-trip scenario.

Usage::

    python benchmarks/syscall_gaps.py [--servers tether,picows] [--duration 4] [--rounds 3]
    python benchmarks/syscall_gaps.py --servers tether,tether@/path/to/other/src,picows

In scenario 2 (one 64-byte message in flight) every round trip is the same sequence of
system calls in the server: ``epoll_wait`` returns, ``recvfrom`` reads the frame,
``sendto`` writes the reply (it also wakes the load generator), and ``epoll_wait`` waits
again. What the server does between the end of ``recvfrom`` and the start of ``sendto`` is
its own code on the critical path of the round trip; what it does after ``sendto``
overlaps with the load generator's work. This script starts each server (pinned to CPU 0,
the load generator to CPU 1, as ``run.py`` does), records those system calls' tracepoints
with ``perf record`` while the load generator runs, and prints, for each stretch, the
median time in microseconds over every round trip seen. The tracepoints cost the same
for every server, and the figure does not depend on how fast the other CPU happens to
be, so it separates libraries whose throughput figures are within the VM's noise.

A server named ``tether@PATH`` is the tether server run with ``PATH`` first on
``PYTHONPATH`` (see ``run.py``), so two versions are compared in the same rounds.

Needs ``perf`` with access to the ``syscalls`` tracepoints (root, or a permissive
``perf_event_paranoid``).
"""

from __future__ import annotations

import argparse
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import LOGS, ServerProcess, log_name, pinning  # noqa: E402


EVENTS = (
    "syscalls:sys_exit_epoll_wait",
    "syscalls:sys_enter_recvfrom",
    "syscalls:sys_exit_recvfrom",
    "syscalls:sys_enter_sendto",
    "syscalls:sys_exit_sendto",
    "syscalls:sys_enter_epoll_wait",
)

# Stretches of one round trip: (name, from event, to event).
STRETCHES = (
    ("wake -> read", "sys_exit_epoll_wait", "sys_enter_recvfrom"),
    ("read -> reply", "sys_exit_recvfrom", "sys_enter_sendto"),
    ("reply (syscall)", "sys_enter_sendto", "sys_exit_sendto"),
    ("reply -> wait", "sys_exit_sendto", "sys_enter_epoll_wait"),
)


def parse_script(text: str) -> list[tuple[float, str]]:
    """``perf script -F time,event`` output -> (seconds, event name) in order."""
    events = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 2:
            continue
        stamp, name = parts[0].rstrip(":"), parts[1].rstrip(":")
        try:
            seconds = float(stamp)
        except ValueError:
            continue
        events.append((seconds, name.rsplit(":", 1)[-1]))
    return events


def round_trips(events: list[tuple[float, str]]) -> dict[str, list[float]]:
    """Durations in µs of each stretch, over every complete round trip in ``events``.

    A round trip is counted only when its calls come in the expected order with exactly
    one of each (a read that found nothing, or a reply split over two calls, is skipped).
    """
    order = [event.rsplit(":", 1)[-1] for event in EVENTS]
    durations: dict[str, list[float]] = {name: [] for name, _, _ in STRETCHES}
    names = [name for _, name in events]
    size = len(order)
    i = 0
    while i + size <= len(events):
        if names[i : i + size] != order:
            i += 1
            continue
        stamps = {name: events[i + k][0] for k, name in enumerate(order)}
        for stretch, first, last in STRETCHES:
            durations[stretch].append((stamps[last] - stamps[first]) * 1e6)
        i += size - 1  # the wait that ends this one starts the next
    return durations


def server_process(server: str, loop: str, prefix: list[str]) -> ServerProcess:
    """The server process for ``server``: a name from ``servers/``, or ``tether@PATH``."""
    return ServerProcess(server, loop, prefix, LOGS / f"gaps-{log_name(server)}-{loop}.log")


def record(server: str, loop: str, duration: float, perf: str) -> dict[str, list[float]]:
    server_pin, gen_pin = pinning()
    with tempfile.TemporaryDirectory() as tmp, server_process(server, loop, server_pin) as proc:
        data = Path(tmp) / "perf.data"
        command = [perf, "record", "-q", "-o", str(data), "-p", str(proc.pid)]
        for event in EVENTS:
            command += ["-e", event]
        recorder = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(0.5)  # let perf attach
        gen = [*gen_pin, sys.executable, str(HERE / "loadgen.py"), "--port", str(proc.port)]
        gen += ["--scenario", "2", "--duration", str(duration), "--warmup", "0.5"]
        subprocess.run(gen, capture_output=True, text=True, timeout=duration + 60, check=True)
        recorder.send_signal(signal.SIGINT)
        try:
            recorder.wait(30)
        except subprocess.TimeoutExpired:
            recorder.kill()
            recorder.wait()
        script = subprocess.run(
            [perf, "script", "-i", str(data), "-F", "time,event", "--ns"],
            capture_output=True,
            text=True,
            check=True,
        )
    return round_trips(parse_script(script.stdout))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else "")
    parser.add_argument("--servers", default="tether,picows")
    parser.add_argument("--loop", default="asyncio", choices=("asyncio", "uvloop"))
    parser.add_argument("--duration", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    perf = shutil.which("perf")
    if perf is None:
        raise SystemExit("perf is not installed (Debian: linux-perf)")
    servers = args.servers.split(",")
    samples: dict[str, dict[str, list[float]]] = {
        s: {name: [] for name, _, _ in STRETCHES} for s in servers
    }
    for number in range(args.rounds):
        for server in servers if number % 2 == 0 else reversed(servers):
            for stretch, values in record(server, args.loop, args.duration, perf).items():
                samples[server][stretch] += values
    header = "| server | round trips | " + " | ".join(n for n, _, _ in STRETCHES) + " |"
    print(header)
    print("|---|---:|" + "---:|" * len(STRETCHES))
    for server in servers:
        counts = samples[server]
        trips = len(counts[STRETCHES[0][0]])
        cells = [
            f"{statistics.median(counts[name]):.1f}" if counts[name] else "-"
            for name, _, _ in STRETCHES
        ]
        print(f"| {server} | {trips} | " + " | ".join(cells) + " |")
    rounds = f"{args.rounds} rounds of {args.duration} s"
    print(f"\nmedian µs per round trip, {args.loop} loop, {rounds}")


if __name__ == "__main__":
    main()
