"""Run the Autobahn suite against tether's server and client.

    python compliance/run.py [CASES]      # default: all 517 cases, both modes

Needs ../shared/tools/autobahn next to the checkout (run.sh sets up wstest on first use).
Reports land in /tmp/autobahn-reports/tether-server and /tmp/autobahn-reports/tether-client.
"""

import pathlib
import socket
import subprocess
import sys
import time


HERE = pathlib.Path(__file__).resolve().parent
RUN_SH = HERE.parent.parent / "shared" / "tools" / "autobahn" / "run.sh"


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_listening(port, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"echo server did not listen on {port}")


def main(cases):
    if not RUN_SH.exists():
        sys.exit(f"autobahn runner not found at {RUN_SH}")
    status = 0
    port = free_port()
    server = subprocess.Popen([sys.executable, str(HERE / "echo_server.py"), str(port)])
    try:
        wait_listening(port)
        status |= subprocess.call(
            [
                "bash",
                str(RUN_SH),
                "server",
                f"ws://127.0.0.1:{port}",
                "tether",
                cases,
                "-o",
                "/tmp/autobahn-reports/tether-server",
                "--strict",
            ]
        )
    finally:
        server.terminate()
        server.wait()
    status |= subprocess.call(
        [
            "bash",
            str(RUN_SH),
            "client",
            str(free_port()),
            cases,
            "-o",
            "/tmp/autobahn-reports/tether-client",
            "--strict",
            "--",
            sys.executable,
            str(HERE / "client_driver.py"),
        ]
    )
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "all"))
