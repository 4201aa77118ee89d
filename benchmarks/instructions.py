"""Count the instructions a server runs per round trip, with valgrind's callgrind.

Usage::

    python benchmarks/instructions.py [--servers tether,picows] [--window 2]
    python benchmarks/instructions.py --servers tether,tether@/path/to/other/src
    python benchmarks/instructions.py --scenario 8 --per repe_decode --servers tether

Each server runs under ``valgrind --tool=callgrind`` (default asyncio loop) while the load
generator drives scenario 2 (one 64-byte message in flight). After a warm-up the counters
are zeroed, and ``--window`` seconds later they are dumped; the figure is the number of
instructions the server's process executed in user space in that window divided by the
number of replies it wrote (its calls to the C library's ``send``). With ``--scenario``
another scenario drives the server (RPC scenarios use the ``_rpc_server.py`` variant),
and ``--per`` names the C function whose calls are the unit: ``repe_decode`` counts the
requests an RPC server decoded, for example. Instruction counts do not
depend on the machine's load or on the other CPU, so they compare two versions of a
server exactly, where the round trip's throughput moves by more than the difference;
they say nothing of cache misses or of the kernel's share.

``tether@PATH`` runs the tether server with ``PATH`` first on ``PYTHONPATH`` (see
``run.py``).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import RPC_SCENARIOS, SERVERS_DIR, free_port, variant  # noqa: E402


REPLY_FUNCTION = "send"


def parse_callgrind(text: str, function: str = REPLY_FUNCTION) -> tuple[int, int]:
    """Total instructions and calls to ``function`` in a callgrind output file."""
    names: dict[str, str] = {}
    total = 0
    calls = 0
    callee: str | None = None
    for line in text.splitlines():
        if line.startswith(("summary:", "totals:")):
            total = max(total, int(line.split()[1]))
            continue
        match = re.match(r"c?fn=\((\d+)\)(?: (.*))?$", line)
        if match:
            ident, name = match.groups()
            if name:
                names[ident] = name
            callee = names.get(ident) if line.startswith("cfn=") else None
            continue
        if line.startswith("calls=") and callee == function:
            calls += int(line.split("=", 1)[1].split()[0])
            callee = None
    return total, calls


def measure(
    server: str,
    window: float,
    warmup: float,
    scenario: int = 2,
    per: str = REPLY_FUNCTION,
    uvloop: bool = False,
) -> tuple[int, int]:
    """Instructions and calls to ``per`` in ``window`` seconds of ``scenario``."""
    valgrind = shutil.which("valgrind")
    control = shutil.which("callgrind_control")
    if valgrind is None or control is None:
        raise SystemExit("valgrind is not installed (Debian: valgrind)")
    name, env = variant(server)
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        command = [valgrind, "--tool=callgrind", f"--callgrind-out-file={out}", "-q"]
        kind = "rpc_server" if scenario in RPC_SCENARIOS else "server"
        command += [sys.executable, str(SERVERS_DIR / f"{name}_{kind}.py"), str(port)]
        if uvloop:
            command.append("--uvloop")
        proc = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        try:
            assert proc.stdout is not None
            if proc.stdout.readline().strip() != "ready":
                raise RuntimeError(f"{server} did not start under valgrind")
            gen = [sys.executable, str(HERE / "loadgen.py"), "--port", str(port)]
            gen += ["--scenario", str(scenario), "--warmup", "0"]
            gen += ["--duration", str(warmup + window + 2)]
            loadgen = subprocess.Popen(gen, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                time.sleep(1.0 + warmup)
                subprocess.run([control, "-z", str(proc.pid)], capture_output=True, check=True)
                time.sleep(window)
                subprocess.run([control, "-d", str(proc.pid)], capture_output=True, check=True)
            finally:
                loadgen.kill()
                loadgen.wait()
        finally:
            proc.kill()
            proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
        dumps = sorted(Path(tmp).glob("callgrind.out.*"))
        if not dumps:
            raise RuntimeError(f"callgrind wrote no dump for {server}")
        return parse_callgrind(dumps[0].read_text(), per)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else "")
    parser.add_argument("--servers", default="tether,picows")
    parser.add_argument("--window", type=float, default=2.0)
    parser.add_argument("--warmup", type=float, default=1.5)
    parser.add_argument("--scenario", type=int, default=2)
    parser.add_argument("--per", default=REPLY_FUNCTION, help="C function counted as the unit")
    parser.add_argument("--uvloop", action="store_true", help="servers on uvloop")
    args = parser.parse_args()
    print(f"| server | calls to {args.per} | instructions per call |")
    print("|---|---:|---:|")
    for server in args.servers.split(","):
        total, calls = measure(
            server, args.window, args.warmup, args.scenario, args.per, args.uvloop
        )
        per = f"{total / calls:,.0f}" if calls else "-"
        print(f"| {server} | {calls} | {per} |", flush=True)


if __name__ == "__main__":
    main()
