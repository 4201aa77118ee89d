"""The ``tether`` command: the demo server (HTTP, echo, chat) and the ``send`` client."""

import asyncio
import contextlib
import signal
import socket

import pytest

from tether.asyncio.client import connect
from tether.cli import main, run_server
from tether.exceptions import InvalidStatus


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
async def demo():
    """Run the demo server in a task; yield its port; cancel it afterwards."""
    port = free_port()
    ready = asyncio.Event()
    task = asyncio.create_task(run_server("127.0.0.1", port, ready))
    ready_wait = asyncio.create_task(ready.wait())
    done, _ = await asyncio.wait({task, ready_wait}, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        ready_wait.cancel()
        task.result()  # raises why the server didn't start
    try:
        yield port
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        assert_signal_handlers_removed()


def assert_signal_handlers_removed():
    # A stopped demo gives SIGINT and SIGTERM back: remove_signal_handler finds nothing.
    loop = asyncio.get_running_loop()
    assert not loop.remove_signal_handler(signal.SIGINT)
    assert not loop.remove_signal_handler(signal.SIGTERM)


async def http_get(port, path):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        response = await reader.read()
    finally:
        writer.close()
        await writer.wait_closed()
    head, _, body = response.partition(b"\r\n\r\n")
    return head.decode("latin-1").split("\r\n"), body


async def test_healthz_over_plain_http(demo):
    head, body = await http_get(demo, "/healthz")
    assert head[0] == "HTTP/1.1 200 OK"
    assert body == b"ok\n"


async def test_index_page_and_404(demo):
    head, body = await http_get(demo, "/")
    assert head[0] == "HTTP/1.1 200 OK"
    assert "Content-Type: text/html; charset=utf-8" in head
    assert b"new WebSocket(`ws://${location.host}/chat`)" in body
    head, _ = await http_get(demo, "/nowhere")
    assert head[0] == "HTTP/1.1 404 Not Found"


async def test_echo(demo):
    async with connect(f"ws://127.0.0.1:{demo}/echo") as ws:
        await ws.send("hello")
        assert await ws.recv() == "hello"
        await ws.send(b"\x01\x02")
        assert await ws.recv() == b"\x01\x02"


async def test_unknown_websocket_path_is_404(demo):
    with pytest.raises(InvalidStatus) as info:
        await connect(f"ws://127.0.0.1:{demo}/nope")
    assert info.value.status == 404


async def test_chat_relays_between_clients(demo):
    uri = f"ws://127.0.0.1:{demo}/chat"
    async with connect(uri) as alice:
        alice_name = f"guest-{alice.transport.get_extra_info('sockname')[1]}"
        assert await alice.recv() == f"{alice_name} joined (1 online)"
        async with connect(uri) as bob:
            bob_name = f"guest-{bob.transport.get_extra_info('sockname')[1]}"
            assert await bob.recv() == f"{bob_name} joined (2 online)"
            assert await alice.recv() == f"{bob_name} joined (2 online)"
            await alice.send("hi bob")
            assert await bob.recv() == f"{alice_name}: hi bob"
            assert await alice.recv() == f"{alice_name}: hi bob"
            await bob.send(b"binary is not relayed")
            await bob.send("hi alice")
            assert await alice.recv() == f"{bob_name}: hi alice"
        assert await alice.recv() == f"{bob_name} left"


async def test_signal_stops_the_demo_gracefully(capsys):
    port = free_port()
    ready = asyncio.Event()
    task = asyncio.create_task(run_server("127.0.0.1", port, ready))
    await ready.wait()
    async with connect(f"ws://127.0.0.1:{port}/echo") as ws:
        signal.raise_signal(signal.SIGINT)  # handled by the demo's signal handler
        await asyncio.wait_for(task, 3)
        assert ws.close_code == 1001
    assert_signal_handlers_removed()
    out = capsys.readouterr().out
    assert f"tether demo on http://127.0.0.1:{port}/ (ws: /echo, /chat)" in out
    assert "shutting down" in out


async def test_send_command_prints_the_echo(demo, capsys):
    uri = f"ws://127.0.0.1:{demo}/echo"
    capsys.readouterr()
    assert await asyncio.to_thread(main, ["send", uri, "hi"]) == 0
    assert capsys.readouterr().out == "hi\n"
    assert await asyncio.to_thread(main, ["send", uri, "one", "two"]) == 0
    assert capsys.readouterr().out == "one\ntwo\n"


async def test_send_command_prints_one_answer_per_message(demo, capsys):
    # On /chat the first message received is the join announcement, not the echo.
    uri = f"ws://127.0.0.1:{demo}/chat"
    capsys.readouterr()
    assert await asyncio.to_thread(main, ["send", uri, "hi"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("guest-")
    assert out.endswith(" joined (1 online)\n")


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out == "tether 0.1.0\n"


def test_command_is_required(capsys):
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2
    assert "required" in capsys.readouterr().err
