"""Shared fixtures. The sandbox is built once per machine (cached) and one pool serves the
whole session: tests run real code in the real wasm sandbox, never a stand-in."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from typing import Any

import pytest

# Learned tool shapes go to a file of this test session, so that what one test's calls
# teach never shows in another run's catalog (and the user's own file is not touched).
os.environ["CODEMODE_SHAPES_FILE"] = os.path.join(
    tempfile.mkdtemp(prefix="codemode-test-shapes-"), "shapes.json"
)

from codemode.errors import CallFailed, ErrorKind
from codemode.wasm_runtime import FunctionSpec, Param, SandboxPool, _build, _component


class RecordingHost:
    """A small in-process ToolHost for sandbox tests: `echo`, `sleep_ms`, `fail`, `big`.
    It records when each call starts and ends, so tests can see what ran concurrently."""

    def __init__(self) -> None:
        self.log: list[tuple[str, str, float]] = []

    def functions(self) -> list[FunctionSpec]:
        return [
            FunctionSpec("echo", "echo", (Param("value", True),), "echo(value)", "Return value."),
            FunctionSpec(
                "sleep_ms",
                "sleep_ms",
                (Param("ms", True), Param("tag")),
                "sleep_ms(ms, tag=None)",
                "Sleep ms milliseconds on the host, return tag.",
            ),
            FunctionSpec("fail", "fail", (Param("message", True),), "fail(message)", "Raise."),
            FunctionSpec("big", "big", (Param("size", True),), "big(size)", "A long string."),
            FunctionSpec(
                "demo.add",
                "add",
                (Param("a", True), Param("b", True)),
                "demo.add(a, b)",
                "Add two numbers.",
            ),
        ]

    async def call(self, target: str, args: dict[str, Any], context: Any = None) -> Any:
        loop = asyncio.get_running_loop()
        self.log.append(("start", target, loop.time()))
        try:
            if target == "echo":
                return args["value"]
            if target == "sleep_ms":
                await asyncio.sleep(args["ms"] / 1000)
                return args.get("tag")
            if target == "fail":
                raise CallFailed(args["message"], ErrorKind.TOOL_ERROR, server="demo", tool="fail")
            if target == "big":
                return "x" * args["size"]
            if target == "add":
                return args["a"] + args["b"]
            raise CallFailed(f"unknown target {target}", ErrorKind.UNKNOWN_TOOL)
        finally:
            self.log.append(("end", target, loop.time()))


@pytest.fixture(scope="session")
async def pool() -> AsyncIterator[SandboxPool]:
    async with SandboxPool(size=2, quick_start=False) as p:
        await p.start(workers=2)
        yield p


def empty_cache_but_the_component(pool: SandboxPool, tmp_path: Any, monkeypatch: Any) -> None:
    """A cache of its own for the test that holds only the (platform-independent)
    component, copied from the session's: a start then compiles, it does not make one."""
    root = pool.artifact.compiled.parent.parent
    key = _component.component_key()
    shutil.copytree(root / f"component-{key[:24]}", tmp_path / "sandbox" / f"component-{key[:24]}")
    monkeypatch.setenv("CODEMODE_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(_build, "_verified_cache", {})


def proc_stat(pid: int) -> list[str]:
    """The fields of /proc/PID/stat after the process's name (so `[7]` is minflt,
    `[9]` majflt: the man page's fields 10 and 12)."""
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rpartition(")")[2].split()


@pytest.fixture
def host() -> RecordingHost:
    return RecordingHost()


@pytest.fixture
def run(pool: SandboxPool, host: RecordingHost):
    """`await run(code, **limits)`: execute in the shared pool with the recording host."""

    async def _run(code: str, **limits: Any):
        return await pool.execute(code, host, pool.limits.replace(**limits) if limits else None)

    return _run
