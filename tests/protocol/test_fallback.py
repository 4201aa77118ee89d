"""The pure-Python masking fallback runs the whole sans-I/O test module unchanged."""

import os
import pathlib
import subprocess
import sys


HERE = pathlib.Path(__file__).parent
PROBE = (
    "from tether.protocol import fastpath, handshake, masking; "
    "print(masking.SPEEDUPS or fastpath.SPEEDUPS or handshake.scan_head is not "
    "handshake.py_scan_head)"
)


def test_protocol_tests_pass_without_the_accelerator():
    env = dict(os.environ, TETHER_NO_SPEEDUPS="1")
    probe = subprocess.run(
        [sys.executable, "-c", PROBE],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert probe.stdout.strip() == "False"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            str(HERE / "test_connection.py"),
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout[-2000:]
    assert " passed" in result.stdout
