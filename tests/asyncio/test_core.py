"""The per-message paths of a connection: the C core, and the Python core it must equal.

The connection and server test modules run unchanged against the pure-Python core (in a
subprocess with ``TETHER_NO_SPEEDUPS=1``); the tests below check what only the C core
has: an awaitable that is also its task's future, and a send that is done when called.
"""

import asyncio
import os
import pathlib
import subprocess
import sys

import pytest

from tether.asyncio import _core, _speedups, transport as transport_module
from tether.asyncio.client import connect
from tether.asyncio.connection import Connection
from tether.asyncio.server import serve
from tether.exceptions import ConcurrencyError, ConnectionClosedOK

from ..utils import until


HERE = pathlib.Path(__file__).parent


async def echo(ws):
    async for message in ws:
        await ws.send(message)


@pytest.fixture
async def echo_server():
    async with serve(echo, "127.0.0.1", 0) as server:
        yield server


def url(server):
    return f"ws://127.0.0.1:{server.port}/"


def feed(ws, payload):
    """Hand ``ws`` (a client) a binary message as if the socket had read it."""
    frame = bytes([0x82, len(payload)]) + payload  # unmasked, as from a server
    buffer = ws.get_buffer(-1)
    buffer[: len(frame)] = frame
    ws.buffer_updated(len(frame))


def test_the_c_core_is_the_one_in_use():
    assert _core.SPEEDUPS
    assert _core.ConnectionCore is _speedups.ConnectionCore
    assert Connection.__mro__[1] is _speedups.ConnectionCore
    assert _core.wake is _speedups.wake
    assert _speedups.COALESCE_FRAMES == _core.COALESCE_FRAMES
    assert _speedups.MAX_READS == transport_module._MAX_READS


def test_connection_tests_pass_with_the_python_core():
    env = dict(os.environ, TETHER_NO_SPEEDUPS="1")
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "from tether.asyncio import _core, connection; "
            "print(_core.SPEEDUPS, connection.Connection.__mro__[1].__name__)",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert probe.stdout.split() == ["False", "PyConnectionCore"]
    modules = ["test_connection.py", "test_server.py", "test_transport.py", "test_core.py"]
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
        + ["-k", "not c_core and not python_core"]
        + [str(HERE / name) for name in modules],
        env=env,
        capture_output=True,
        text=True,
        cwd=HERE.parent.parent,
    )
    assert result.returncode == 0, result.stdout[-3000:]
    assert " passed" in result.stdout


# Behaviour both cores share (run under each).


async def test_anext_and_recv_give_messages_in_order(echo_server):
    async with connect(url(echo_server)) as ws:
        for n in range(5):
            await ws.send(f"m{n}")
        got = [await ws.__anext__(), await ws.recv(), await anext(ws)]
        async for message in ws:
            got.append(message)
            if len(got) == 5:
                break
        assert got == [f"m{n}" for n in range(5)]


async def test_a_receive_can_run_as_its_own_task(echo_server):
    async with connect(url(echo_server)) as ws:
        receiving = asyncio.create_task(ws.__anext__())
        await until(lambda: ws._recv_waiter is not None)
        await ws.send("to the task")
        assert await receiving == "to the task"
        sending = asyncio.ensure_future(ws.send("sent by a task"))
        assert await sending is None
        assert await asyncio.wait_for(ws.recv(), 5) == "sent by a task"


async def test_a_second_receiver_is_refused_and_the_first_still_gets_its_message(echo_server):
    async with connect(url(echo_server)) as ws:
        first = asyncio.create_task(ws.recv())
        await until(lambda: ws._recv_waiter is not None)
        with pytest.raises(ConcurrencyError):
            await ws.recv()
        with pytest.raises(ConcurrencyError):
            await ws.__anext__()
        await ws.send("one")
        assert await first == "one"


async def test_receives_run_under_wait_for_gather_and_ensure_future(echo_server):
    async with connect(url(echo_server)) as ws:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(ws.__anext__(), 0.01)
        assert ws._recv_waiter is None
        await ws.send("later")
        assert await asyncio.wait_for(anext(ws), 5) == "later"
        await ws.send("gathered")
        assert await asyncio.gather(ws.__anext__()) == ["gathered"]
        await ws.send("ensured")
        assert await asyncio.ensure_future(ws.__anext__()) == "ensured"


async def test_end_of_iteration_and_closed_errors(echo_server):
    async with connect(url(echo_server)) as ws:
        await ws.send("last")
        assert await ws.recv() == "last"
        await ws.close()
        with pytest.raises(StopAsyncIteration):
            await ws.__anext__()
        with pytest.raises(ConnectionClosedOK):
            await ws.recv()
        with pytest.raises(ConnectionClosedOK):
            await ws.send("too late")


async def test_a_waiting_receiver_hears_the_close(echo_server):
    async with connect(url(echo_server)) as ws:
        got = []

        async def iterate():
            async for message in ws:
                got.append(message)

        task = asyncio.create_task(iterate())
        await until(lambda: ws._recv_waiter is not None)
        feed(ws, b"before the close")
        await ws.close()
        await task
        assert got == [b"before the close"]


# What only the C core has.


async def test_c_core_receive_is_the_future_its_task_waits_on(echo_server):
    async with connect(url(echo_server)) as ws:
        receive = ws.__anext__()
        assert type(receive) is _speedups.Receive
        assert asyncio.iscoroutine(receive)
        assert not receive.done()
        with pytest.raises(asyncio.InvalidStateError):
            receive.result()
        task = asyncio.create_task(receive)
        await until(lambda: ws._recv_waiter is receive)
        assert receive.get_loop() is asyncio.get_running_loop()
        assert not receive.done()
        seen = []
        receive.add_done_callback(seen.append)  # a second callback: the loop runs both
        feed(ws, b"hello")
        assert receive.done()
        assert receive.result() == b"hello"
        assert receive.exception() is None
        assert not receive.cancelled()
        assert await task == b"hello"
        assert seen == [receive]
        late = []
        receive.add_done_callback(late.append)  # added when done: scheduled at once
        await until(lambda: late == [receive])
        with pytest.raises(RuntimeError, match="already awaited"):
            receive.send(None)


async def test_c_core_receive_callbacks_can_be_removed(echo_server):
    async with connect(url(echo_server)) as ws:
        receive = ws.__anext__()
        task = asyncio.create_task(receive)
        await until(lambda: ws._recv_waiter is receive)
        calls = []

        def first(fut):
            calls.append("first")

        def second(fut):
            calls.append("second")

        receive.add_done_callback(first)
        receive.add_done_callback(second)
        receive.add_done_callback(first)
        assert receive.remove_done_callback(first) == 2
        assert receive.remove_done_callback(first) == 0
        feed(ws, b"x")
        assert await task == b"x"
        await until(lambda: calls == ["second"])


async def test_c_core_cancelled_receive_raises_and_leaves_the_message_queued(echo_server):
    async with connect(url(echo_server)) as ws:
        receive = ws.__anext__()
        task = asyncio.create_task(receive)
        await until(lambda: ws._recv_waiter is receive)
        task.cancel("stop")
        with pytest.raises(asyncio.CancelledError):
            await task
        assert receive.cancelled()
        with pytest.raises(asyncio.CancelledError):
            receive.result()
        assert not receive.cancel()
        assert ws._recv_waiter is None
        feed(ws, b"kept")
        assert await ws.recv() == b"kept"


async def test_c_core_receive_resolved_by_the_connection_once(echo_server):
    async with connect(url(echo_server)) as ws:
        receive = ws.__anext__()
        task = asyncio.create_task(receive)
        await until(lambda: ws._recv_waiter is receive)
        receive.set_result(None)  # as connection_lost does: look at the state again
        with pytest.raises(asyncio.InvalidStateError):
            receive.set_result(None)
        with pytest.raises(asyncio.InvalidStateError):
            _speedups.wake(receive, ws.loop, b"late")
        # Woken with nothing, it waits again.
        await until(lambda: ws._recv_waiter is receive and not receive.done())
        feed(ws, b"after a wakeup with nothing")
        assert await task == b"after a wakeup with nothing"


async def test_c_core_wake_resolves_a_plain_future():
    loop = asyncio.get_running_loop()
    future = loop.create_future()
    _speedups.wake(future, loop, b"m")
    assert future.result() == b"m"


async def test_c_core_throw_and_close_give_the_message_back(echo_server):
    async with connect(url(echo_server)) as ws:
        for how in ("throw", "close"):
            receive = ws.__anext__()
            assert receive.send(None) is receive  # waiting: it yields itself
            assert receive._asyncio_future_blocking
            receive._asyncio_future_blocking = False
            feed(ws, how.encode())
            assert receive.result() == how.encode()
            if how == "throw":
                with pytest.raises(KeyError):
                    receive.throw(KeyError("from outside"))
                with pytest.raises(ValueError):
                    receive.throw(ValueError)
            else:
                receive.close()
            assert ws._recv_waiter is None
            assert await ws.recv() == how.encode()


async def test_c_core_a_receive_resumed_before_its_message_fails(echo_server):
    async with connect(url(echo_server)) as ws:
        receive = ws.__anext__()
        assert receive.send(None) is receive
        with pytest.raises(RuntimeError, match="await wasn't used with future"):
            receive.send(None)
        assert ws._recv_waiter is None


async def test_c_core_queued_messages_are_taken_without_waiting(echo_server):
    async with connect(url(echo_server)) as ws:
        feed(ws, b"a")
        feed(ws, b"b")
        receive = ws.__anext__()
        with pytest.raises(StopIteration) as stop:
            receive.send(None)
        assert stop.value.value == b"a"
        assert [message async for message in aiter_once(ws)] == [b"b"]


async def aiter_once(ws):
    yield await ws.__anext__()


async def test_a_fast_send_is_done_when_called(echo_server):
    done = _speedups.DONE if _core.SPEEDUPS else _core.DONE
    async with connect(url(echo_server)) as ws:
        server_side = next(iter(echo_server.connections))
        result = server_side.send("direct")  # written before it is awaited
        assert result is done
        assert await ws.recv() == "direct"
        assert asyncio.iscoroutine(result)
        assert await result is None
        assert await asyncio.create_task(server_side.send(b"in a task")) is None
        assert await ws.recv() == b"in a task"
        with pytest.raises(StopIteration):
            result.send(None)
        with pytest.raises(KeyError):
            result.throw(KeyError("k"))
        with pytest.raises(KeyError):
            result.throw(KeyError)
        assert result.close() is None
        assert list(result) == []
        # Other kinds of message take the general path: a coroutine.
        slow = server_side.send(bytearray(b"general"))
        assert asyncio.iscoroutine(slow)
        assert slow is not done
        await slow
        assert await ws.recv() == b"general"


async def test_c_core_receive_attributes_by_c_string(echo_server):
    # asyncio's C task looks up "result" with PyObject_GetAttrString; other names too.
    import ctypes

    get = ctypes.pythonapi.PyObject_GetAttrString
    get.restype = ctypes.py_object
    get.argtypes = [ctypes.py_object, ctypes.c_char_p]
    async with connect(url(echo_server)) as ws:
        receive = ws.__anext__()
        assert receive.send(None) is receive
        feed(ws, b"by name")
        assert get(receive, b"result")() == b"by name"
        assert get(receive, b"done")() is True
        with pytest.raises(AttributeError):
            get(receive, b"no_such_attribute")
        assert await receive == b"by name"
