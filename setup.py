"""Build the optional C accelerator; fall back to pure Python when it cannot build."""

import os

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class OptionalBuildExt(build_ext):
    """Treat a failure to compile the accelerator as a warning, not an error."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:
            print(f"tether: C accelerator not built ({exc}); using pure Python")

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:
            print(f"tether: C accelerator {ext.name} not built ({exc}); using pure Python")


ext_modules = []
if os.environ.get("TETHER_NO_EXTENSIONS") != "1":
    ext_modules += [
        Extension(
            "tether.protocol._speedups",
            sources=["src/tether/protocol/_speedups.c"],
            depends=["src/tether/protocol/_protocol_core.h"],
            optional=True,
        ),
        Extension(
            "tether.asyncio._speedups",
            sources=["src/tether/asyncio/_speedups.c"],
            depends=["src/tether/protocol/_protocol_core.h"],
            include_dirs=["src/tether/protocol"],
            optional=True,
        ),
    ]

setup(ext_modules=ext_modules, cmdclass={"build_ext": OptionalBuildExt})
