"""The ASGI examples run end to end."""

import importlib.util
import pathlib


def load_example(name):
    path = pathlib.Path(__file__).parents[2] / "examples" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_asgi_starlette_example():
    example = load_example("asgi_starlette")
    assert await example.demo() == ["hello from starlette", "ping", "ann: hi"]


async def test_asgi_handoff_example():
    example = load_example("asgi_handoff")
    assert await example.demo() == [
        "ok",
        '{"saved":"buy milk","client":"127.0.0.1"}',
        "same port",
    ]
