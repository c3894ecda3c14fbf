"""The layout holds: imports go one way (server -> wasm_runtime, server -> tool_adapters),
so the sandbox loads no MCP code and the federation no wasm code, and no module grows
past the size one idea takes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
MAX_MODULE_LINES = 500


def modules_after_import(module: str) -> set[str]:
    code = f"import sys, {module}; print('\\n'.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_tool_adapters_load_no_sandbox_code():
    loaded = modules_after_import("codemode.tool_adapters")
    assert "wasmtime" not in loaded
    assert not {m for m in loaded if m.startswith("codemode.wasm_runtime")}
    assert not {m for m in loaded if m.startswith("codemode.server")}


def test_the_sandbox_loads_no_mcp_code():
    loaded = modules_after_import("codemode.wasm_runtime")
    assert not {m for m in loaded if m == "mcp" or m.startswith(("mcp.", "mcp_types"))}
    assert not {m for m in loaded if m.startswith(("codemode.tool_adapters", "codemode.server"))}


def test_the_server_side_of_the_sandbox_loads_neither_wasmtime_nor_anyio():
    # Only worker processes run wasm; the pool that drives them needs neither (each
    # was tens of milliseconds of every cold start, and memory in every server).
    loaded = modules_after_import("codemode.wasm_runtime")
    assert "wasmtime" not in loaded and "anyio" not in loaded
    assert "importlib.metadata" not in loaded  # versions are read off .dist-info names
    assert not loaded & {"platform", "shutil"}  # ~5 ms of every start, for a build only


def test_a_worker_loads_its_own_binding_and_not_wasmtime_py():
    # A worker runs as `python -E -S _worker.py`: importing wasmtime-py (ctypes for the
    # whole C API, typing, dataclasses) was ~95 ms and ~7 MB of every worker's start;
    # `_capi` declares the calls it makes. Nothing of codemode or asyncio either.
    folder = ROOT / "codemode" / "wasm_runtime"
    code = f"import sys; sys.path.insert(0, {str(folder)!r}); import _worker; print(*sys.modules)"
    out = subprocess.run(
        [sys.executable, "-E", "-S", "-c", code], capture_output=True, text=True, check=True
    )
    roots = {name.split(".")[0] for name in out.stdout.split()}
    assert {"_capi", "_protocol"} <= roots
    assert not roots & {"wasmtime", "typing", "dataclasses", "asyncio", "codemode"}


@pytest.mark.parametrize(
    "path", sorted(p for p in (ROOT / "codemode").rglob("*.py")), ids=lambda p: p.name
)
def test_modules_stay_small(path):
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_MODULE_LINES, f"{path.relative_to(ROOT)} has {lines} lines"
