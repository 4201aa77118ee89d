"""The sans-I/O modules never import an I/O or concurrency module, not even lazily."""

import ast
import pathlib

import pytest


SRC = pathlib.Path(__file__).resolve().parents[1] / "src" / "tether"
FORBIDDEN = {"asyncio", "socket", "ssl", "threading"}


def sans_io_modules():
    modules = sorted((SRC / "protocol").rglob("*.py"))
    modules += [path for name in ("repe.py", "beve.py") if (path := SRC / "rpc" / name).exists()]
    return modules


def forbidden_imports(source):
    """Top-level names of forbidden modules that ``source`` imports, anywhere in the file."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif (
            isinstance(node, ast.Call)
            and (
                (isinstance(node.func, ast.Name) and node.func.id == "__import__")
                or (isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
            )
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names = [node.args[0].value]
        found.update(name.split(".")[0] for name in names if name.split(".")[0] in FORBIDDEN)
    return found


def test_the_scan_covers_the_engine():
    names = {path.relative_to(SRC).as_posix() for path in sans_io_modules()}
    for expected in (
        "protocol/connection.py",
        "protocol/handshake.py",
        "protocol/http11.py",
        "protocol/headers.py",
        "protocol/uri.py",
        "protocol/limits.py",
        "protocol/extensions/permessage_deflate.py",
    ):
        assert expected in names


@pytest.mark.parametrize(
    "path", sans_io_modules(), ids=lambda path: path.relative_to(SRC).as_posix()
)
def test_module_is_sans_io(path):
    assert forbidden_imports(path.read_text(encoding="utf-8")) == set()


@pytest.mark.parametrize(
    "source",
    [
        "import asyncio",
        "import socket as s",
        "import os, ssl",
        "from threading import Lock",
        "from asyncio.events import AbstractEventLoop",
        "def f():\n    import ssl",
        "if TYPE_CHECKING:\n    import asyncio",
        "mod = __import__('socket')",
        "mod = importlib.import_module('threading')",
    ],
)
def test_the_scan_finds_forbidden_imports(source):
    assert forbidden_imports(source)


@pytest.mark.parametrize(
    "source",
    [
        "import os",
        "from . import asyncio",
        "from .socket import x",
        "import asyncio_compat",
        "from sslib import y",
    ],
)
def test_the_scan_allows_other_imports(source):
    assert forbidden_imports(source) == set()
