"""tether installs and works where the C accelerator cannot be built.

Builds a wheel with the extension disabled (as on a machine without a compiler), installs
it into a fresh virtual environment and runs a WebSocket echo over loopback with it.
"""

import pathlib
import subprocess
import sys
import zipfile


ROOT = pathlib.Path(__file__).resolve().parent.parent

SCRIPT = """
import asyncio
from tether.asyncio.client import connect
from tether.asyncio.server import serve
from tether.protocol import fastpath, masking

async def echo(ws):
    async for message in ws:
        await ws.send(message)

async def main():
    async with serve(echo, "127.0.0.1", 0) as server:
        async with connect(f"ws://127.0.0.1:{server.port}/") as ws:
            await ws.send("pure")
            assert await ws.recv() == "pure"
            await ws.send(bytes(range(256)) * 100)
            assert await ws.recv() == bytes(range(256)) * 100
    print(masking.SPEEDUPS, fastpath.SPEEDUPS, masking.__file__)

asyncio.run(main())
"""


def test_pure_python_wheel_installs_and_runs(tmp_path):
    env = {"TETHER_NO_EXTENSIONS": "1", "PATH": "/usr/bin:/bin"}
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(ROOT)],
        check=True,
        env=env,
        cwd=tmp_path,
    )
    (wheel,) = wheels.glob("tether-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert not [name for name in names if name.endswith((".so", ".pyd"))]
    assert "tether/protocol/fastpath.py" in names

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--no-deps", str(wheel)],
        check=True,
        env=env,
    )
    result = subprocess.run(
        [str(python), "-c", SCRIPT], check=True, capture_output=True, text=True, cwd=tmp_path
    )
    speedups_masking, speedups_fastpath, location = result.stdout.split()
    assert (speedups_masking, speedups_fastpath) == ("False", "False")
    assert location.startswith(str(venv))
