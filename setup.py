"""The build hook: a built package (a wheel) carries the sandbox's component.

The component (CPython and the guest as one WebAssembly component, ~10 s to make) is the
same on every machine, so a wheel ships it in codemode/wasm_runtime/prebuilt/ and the
first start on a new machine only compiles it (see codemode/wasm_runtime/_component.py).
An editable install (`pip install -e .`) does not: there, the first start makes it and
keeps it in the cache. CODEMODE_NO_PREBUILT=1 builds a package without it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildWithComponent(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False) or os.environ.get("CODEMODE_NO_PREBUILT"):
            return
        runtime = Path(self.build_lib) / "codemode" / "wasm_runtime"
        # By path: the script needs only the stdlib, componentize-py and tzdata, which
        # the build environment has (pyproject.toml, build-system.requires).
        subprocess.run(
            [sys.executable, str(runtime / "_component.py"), str(runtime / "prebuilt")],
            check=True,
        )


setup(cmdclass={"build_py": BuildWithComponent})
