"""Profile a benchmark server under load with py-spy and summarize where the time goes.

Usage::

    python benchmarks/profile.py --scenario 1 [--server tether] [--duration 5] [--uvloop]

Starts the server, attaches ``py-spy record`` to it (collapsed stacks, native frames off),
drives it with ``benchmarks/loadgen.py`` for the same duration, stops everything and
prints the functions with the most samples on top of the stack (self time) and anywhere
in it (inclusive time). The raw stacks stay in ``benchmarks/results/``.
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import time
from pathlib import Path


HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import RPC_SCENARIOS, ServerProcess  # noqa: E402


def summarize(path: Path, top: int) -> str:
    own: collections.Counter[str] = collections.Counter()
    own_lines: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = [short(frame) for frame in stack.split(";")]
        total += count
        own_lines[frames[-1]] += count
        functions = [frame.rsplit(":", 1)[0] + ")" for frame in frames]
        own[functions[-1]] += count
        for function in set(functions):
            inclusive[function] += count
    if not total:
        return "no samples"
    lines = [f"{total} samples", ""]
    for title, counter in (
        ("self time by function", own),
        ("self time by line", own_lines),
        ("inclusive time by function", inclusive),
    ):
        lines.append(f"{title}:")
        lines += [f"  {n / total:6.1%}  {name}" for name, n in counter.most_common(top)]
        lines.append("")
    return "\n".join(lines)


def short(frame: str) -> str:
    """``func (path/to/module.py:123)`` -> ``func (module.py:123)``."""
    name, _, where = frame.partition(" (")
    if not where:
        return frame
    return f"{name} ({where.rstrip(')').rsplit('/', 1)[-1]})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else "")
    parser.add_argument("--scenario", type=int, default=1)
    parser.add_argument("--server", default="tether")
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--uvloop", action="store_true")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    loop = "uvloop" if args.uvloop else "asyncio"
    out = HERE / "results" / f"profile-{args.server}-{loop}-{args.scenario}.txt"
    log = HERE / "results" / "logs" / f"profile-{args.server}-{loop}-{args.scenario}.log"
    rpc = args.scenario in RPC_SCENARIOS
    with ServerProcess(args.server, loop, [], log, rpc=rpc) as server:
        record = [py_spy, "record", "--pid", str(server.pid), "--format", "raw"]
        record += ["--rate", "250", "--duration", str(int(args.duration) + 1)]
        record += ["--output", str(out), "--nonblocking"]
        recorder = subprocess.Popen(
            record,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(0.5)
        gen = [sys.executable, str(HERE / "loadgen.py"), "--port", str(server.port)]
        gen += ["--scenario", str(args.scenario), "--duration", str(args.duration)]
        gen += ["--server-pid", str(server.pid)]
        if args.scenario == 10:  # as run.py: 1000 peers, 100 broadcasts a round
            gen += ["--clients", "1000", "--messages", "100"]
        result = subprocess.run(gen, capture_output=True, text=True, timeout=300, check=False)
        print(result.stdout.strip())
        try:
            _, errors = recorder.communicate(timeout=args.duration + 30)
        except subprocess.TimeoutExpired:
            recorder.kill()
            _, errors = recorder.communicate()
    if not out.exists():
        raise SystemExit(f"py-spy wrote nothing: {errors.strip()}")
    print(summarize(out, args.top))


if __name__ == "__main__":
    main()
