"""The ``tether`` command."""

from __future__ import annotations

import argparse
import sys


__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Run the ``tether`` command line."""
    parser = argparse.ArgumentParser(prog="tether", description="real-time WebSockets")
    parser.add_argument("--version", action="version", version="tether 0.1.0")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the demo server")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8765)
    args = parser.parse_args(argv)
    if args.command == "serve":
        print(f"tether demo server on ws://{args.host}:{args.port}", file=sys.stderr)
        return 0
    return 2  # pragma: no cover
