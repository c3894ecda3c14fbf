"""`codemode doctor`: check the config, start each server, self-test the sandbox.

Prints one verdict line per item (ok / warn / FAIL) with what to do about a failure, and
exits 1 if anything failed.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import Any

from .config import Config, default_config_path, load_config, resolve_config_path
from .errors import CallFailed, CodeModeError
from .wasm_runtime import FunctionSpec, Param, SandboxPool
from .wasm_runtime._component import zone_data
from .wasm_runtime._native import choice as worker_choice
from .wasm_runtime._native import status as worker_status

SELF_TEST = """\
import asyncio, json, statistics
values = await asyncio.gather(*[echo(i) for i in range(10)])
try:
    await fail()
except ToolError as exc:
    caught = str(exc)
return {"sum": sum(values), "mean": statistics.mean(values), "caught": caught}
"""


class _SelfTestHost:
    """Two functions that need no server: enough to prove the bridge both ways."""

    def functions(self) -> Sequence[FunctionSpec]:
        return [FunctionSpec("echo", "echo", (Param("value", True),)), FunctionSpec("fail", "fail")]

    async def call(self, target: str, args: dict[str, Any], context: Any = None) -> Any:
        if target == "echo":
            return args["value"]
        raise CallFailed("self-test error")


class _Report:
    def __init__(self) -> None:
        self.failures: list[str] = []

    def line(self, verdict: str, item: str, text: str) -> None:
        if verdict == "FAIL":
            self.failures.append(item)
        first, *rest = text.splitlines() or [""]
        print(f"{verdict:<5} {item:<16} {first}", flush=True)
        for extra in rest:
            print(f"{'':<22} {extra}", flush=True)


async def doctor(config_arg: str | None) -> int:
    report = _Report()
    print(f"codemode doctor (python {sys.version.split()[0]})\n", flush=True)
    config = _check_config(report, config_arg)
    if config is not None:
        await _check_servers(report, config)
    await _check_sandbox(report)
    print()
    if report.failures:
        print(f"verdict: {len(report.failures)} problem(s): {', '.join(report.failures)}")
        return 1
    print("verdict: all good. Add `codemode serve` to your MCP client (README: setup).")
    return 0


def _check_config(report: _Report, config_arg: str | None) -> Config | None:
    try:
        path = resolve_config_path(config_arg)
    except CodeModeError as exc:
        report.line("FAIL", "config", str(exc))
        return None
    if path is None:
        report.line(
            "warn",
            "config",
            f"no config file at {default_config_path()}: `codemode serve` will start "
            "with no servers. Create it (or `codemode import`), or pass --config FILE.",
        )
        return None
    try:
        config = load_config(path)
    except CodeModeError as exc:
        report.line("FAIL", "config", str(exc))
        return None
    names = ", ".join(config.enabled_servers) or "none"
    report.line(
        "ok", "config", f"{config.source}: {len(config.enabled_servers)} server(s): {names}"
    )
    return config


async def _check_servers(report: _Report, config: Config) -> None:
    from .server import Engine

    started = time.monotonic()
    async with Engine(config, sandbox=False) as engine:
        await engine.servers_ready()
        took = time.monotonic() - started
        by_server: dict[str, list[str]] = {}
        for tool in engine.tools:
            by_server.setdefault(tool.server, []).append(tool.py_name)
        for name, error in engine.status().items():
            item = f"server {name}"
            if error is not None:
                report.line(
                    "FAIL",
                    item,
                    f"{error}\nFix the command or URL in {config.source}, "
                    "or run the server by hand to see its output.",
                )
                continue
            tools = sorted(by_server.get(name, []))
            shown = ", ".join(tools[:12]) + (
                f", … ({len(tools) - 12} more)" if len(tools) > 12 else ""
            )
            verdict = "ok" if tools else "warn"
            ns = engine.federation.namespaces[name]
            report.line(verdict, item, f"{len(tools)} tool(s) as `{ns}.*`: {shown or 'none'}")
        description = len(engine.description().encode("utf-8"))
        budget = config.codemode.description_budget_bytes
        report.line(
            "ok",
            "description",
            f"{description:,} bytes (budget {budget:,}); all servers answered in {took:.1f} s",
        )


async def _check_sandbox(report: _Report) -> None:
    started = time.monotonic()
    try:
        async with SandboxPool(size=1, quick_start=False) as pool:
            artifact = pool.artifact
            ready_s = time.monotonic() - started
            result = await pool.execute(SELF_TEST, _SelfTestHost())
    except CodeModeError as exc:
        report.line(
            "FAIL",
            "sandbox",
            f"{exc}\nRun `codemode build --force` and look at its "
            "output; report it if it persists.",
        )
        return
    how = f"built in {artifact.build_s:.1f} s" if artifact.built_now else "cached"
    if artifact.shipped:
        how = "copied from the package, which ships it compiled"
    if artifact.in_place:
        how = "the package's own compiled file, run where it is (the cache cannot be written)"
    report.line("ok", "sandbox build", f"{how}: {artifact.compiled} (ready in {ready_s:.1f} s)")
    report.line("ok", "sandbox zones", zone_data())
    native, why = worker_status()
    if native is not None:
        report.line("ok", "sandbox worker", f"native: {native}")
    elif worker_choice() == "python":
        report.line("ok", "sandbox worker", f"Python: {why}")
    else:
        report.line(
            "warn",
            "sandbox worker",
            f"Python (~11 MB more and ~40 ms slower to start per worker): {why}\n"
            "Install a C compiler (gcc or clang) and run again for the native worker.",
        )
    expected = {"sum": 45, "mean": 4.5, "caught": "self-test error"}
    if result.ok and result.result == expected:
        report.line(
            "ok",
            "sandbox run",
            f"self-test passed in {result.stats.duration_ms:.1f} ms "
            f"({result.stats.tool_calls} bridge calls)",
        )
    else:
        got = result.error.message if result.error else repr(result.result)
        report.line("FAIL", "sandbox run", f"self-test failed: {got}")
