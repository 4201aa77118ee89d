"""Interop with a real browser: headless Chromium's WebSocket client against tether's server.

The page is served by the same tether server (plain HTTP handoff). Its script talks to
``/echo`` (text, binary, a large compressible message, a close with a code) and reports
what it saw over ``/report``; the test asserts on that report and on what the server saw.
"""

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile

from tether.asyncio.server import serve
from tether.protocol.handshake import reject


PAGE = """<!doctype html><meta charset="utf-8"><script>
(async () => {
  const results = {};
  const base = `ws://${location.host}`;
  const open = (path) => new Promise((resolve, reject) => {
    const ws = new WebSocket(base + path);
    ws.binaryType = "arraybuffer";
    ws.onopen = () => resolve(ws);
    ws.onerror = () => reject(new Error("error on " + path));
  });
  const next = (ws) => new Promise((resolve) => { ws.onmessage = (e) => resolve(e.data); });
  try {
    const ws = await open("/echo");
    results.extensions = ws.extensions;
    ws.send("héllo ☃");
    results.text = await next(ws);
    ws.send(new Uint8Array([0, 1, 2, 255]));
    results.binary = Array.from(new Uint8Array(await next(ws)));
    const big = "tether ".repeat(100000);
    ws.send(big);
    results.big = (await next(ws)) === big;
    const closed = new Promise((resolve) => { ws.onclose = (e) => resolve([e.code, e.reason]); });
    ws.send("close please");
    results.close = await closed;
  } catch (e) {
    results.error = String(e);
  }
  const report = await open("/report");
  report.send(JSON.stringify(results));
})();
</script>"""


def chromium():
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    assert path, "chromium is required for the browser test: `make test` installs it"
    return path


async def test_chromium_client_against_tether_server():
    loop = asyncio.get_running_loop()
    report = loop.create_future()
    server_extensions = []

    async def echo(ws):
        server_extensions.append([type(e).__name__ for e in ws.protocol.extensions])
        async for message in ws:
            if message == "close please":
                await ws.close(4321, "bye from tether")
                return
            await ws.send(message)

    async def receive_report(ws):
        report.set_result(json.loads(await ws.recv()))

    def http(request):
        response = reject(200, PAGE)
        response.headers["Content-Type"] = "text/html; charset=utf-8"
        return response

    async with serve(
        {"/echo": echo, "/report": receive_report}, "127.0.0.1", 0, http_handler=http
    ) as server:
        # Chromium's helper processes may still be going when the directory is removed.
        with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile:
            browser = await asyncio.create_subprocess_exec(
                chromium(),
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-crash-reporter",
                f"--user-data-dir={profile}",
                f"http://127.0.0.1:{server.port}/",
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # its own process group, helpers included
            )
            try:
                async with asyncio.timeout(30):
                    results = await report
            finally:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(browser.pid, signal.SIGKILL)
                await browser.wait()

    assert "error" not in results, results
    assert results["text"] == "héllo ☃"
    assert results["binary"] == [0, 1, 2, 255]
    assert results["big"] is True
    assert results["close"] == [4321, "bye from tether"]
    # Chromium offers permessage-deflate and tether accepts it.
    assert results["extensions"].startswith("permessage-deflate")
    assert server_extensions == [["PerMessageDeflate"]]
