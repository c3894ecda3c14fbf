"""The build hook: a built package (a wheel) carries the sandbox, made and compiled.

The component (CPython and the guest as one WebAssembly component, ~10 s to make) is the
same on every machine, so a wheel ships it in codemode/wasm_runtime/prebuilt/ (see
codemode/wasm_runtime/_component.py). Its native code (~6 s to compile) is the same on
every machine of an architecture, since builds compile for the architecture's baseline
CPU: the wheel ships that too, compiled here, and is tagged for this platform; a first
start then copies it into the cache instead of compiling (_shipped.py). An editable
install (`pip install -e .`) ships neither: there, the first start makes both and keeps
them in the cache. CODEMODE_NO_PREBUILT=1 builds a pure package without them.
"""

from __future__ import annotations

import os
import runpy
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import Distribution, setup
from setuptools.command.bdist_wheel import bdist_wheel
from setuptools.command.build_py import build_py

ENGINE = Path(__file__).parent / "codemode" / "wasm_runtime" / "_engine.py"


def ships_compiled() -> bool:
    """Whether this build ships compiled code (a portable target is known here)."""
    if os.environ.get("CODEMODE_NO_PREBUILT"):
        return False
    return runpy.run_path(str(ENGINE))["compile_target"]() is not None


class BuildWithComponent(build_py):
    def run(self) -> None:
        super().run()
        runtime = Path(self.build_lib) / "codemode" / "wasm_runtime"
        # what an earlier build left in the build folder (setuptools keeps it) is not this one's
        shutil.rmtree(runtime / "prebuilt", ignore_errors=True)
        if getattr(self, "editable_mode", False) or os.environ.get("CODEMODE_NO_PREBUILT"):
            return
        # By path: the script needs only the stdlib, componentize-py and tzdata, which
        # the build environment has (pyproject.toml, build-system.requires).
        subprocess.run(
            [sys.executable, str(runtime / "_component.py"), str(runtime / "prebuilt")],
            check=True,
        )
        if ships_compiled():
            # The package as built, imported from the build folder: wasmtime and the
            # stdlib are all that import needs (build-system.requires).
            compile_it = "import sys; sys.path.insert(0, sys.argv[1]); " + (
                "from codemode.wasm_runtime._shipped import ship_compiled; ship_compiled()"
            )
            subprocess.run([sys.executable, "-c", compile_it, self.build_lib], check=True)


class SandboxDistribution(Distribution):
    def has_ext_modules(self) -> bool:
        """Compiled code makes the package a platform's, installed as extension modules
        are (platlib), though it has none."""
        return ships_compiled()


class PlatformWheel(bdist_wheel):
    """A wheel that ships compiled code is for this platform, and for any Python 3: the
    code is the sandbox's, which no Python version or ABI changes. On Linux it is for any
    glibc of the architecture (manylinux, which package indexes take; `linux_*` they
    refuse): the code links to nothing, it only runs inside wasmtime's own library,
    whose wheel is manylinux too, and it needs the architecture's baseline CPU only."""

    def get_tag(self) -> tuple[str, str, str]:
        python, abi, plat = super().get_tag()
        if self.root_is_pure:
            return python, abi, plat
        if plat.startswith("linux_"):
            arch = plat[len("linux_") :]
            plat = f"manylinux_2_17_{arch}.manylinux2014_{arch}"
        return "py3", "none", plat


setup(
    distclass=SandboxDistribution,
    cmdclass={"build_py": BuildWithComponent, "bdist_wheel": PlatformWheel},
)
