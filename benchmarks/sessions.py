"""Sessions benchmark: the cost of a call in a warm session against a fresh execution, the
memory a live session holds, and a loop of calls in one session with bounded memory.

    python benchmarks/sessions.py [--runs N] [--loop N]

The same program text on both sides of the ratio (a tool call and a small computation),
interleaved in one run, through the real sandbox pool and a kept instance; the tool is an
in-process host function, so what is compared is the sandbox's own cost. Prints a table
and, last, one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from codemode.wasm_runtime import FunctionSpec, Limits, Param, SandboxPool

PROGRAM = "v = await echo(value=21)\ntotal = sum(range(100))\nv * 2 + total - total"


class Host:
    def functions(self) -> list[FunctionSpec]:
        return [FunctionSpec("echo", "echo", (Param("value", True),), "echo(value)")]

    async def call(self, target: str, args: dict[str, Any], context: Any = None) -> Any:
        return args["value"]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def main(runs: int, loop: int) -> dict[str, Any]:
    host = Host()
    async with SandboxPool(size=1, limits=Limits(timeout_s=30)) as pool:
        await pool.start(workers=1)
        session = await pool.keep_instance()
        await session.run("warm = 1", host)
        for _ in range(10):
            await pool.execute(PROGRAM, host)
            await session.run(PROGRAM, host)
        fresh, kept = [], []
        for _ in range(runs):  # interleaved, with the pause an agent's turn leaves
            started = time.perf_counter()
            result = await pool.execute(PROGRAM, host)
            fresh.append((time.perf_counter() - started) * 1000)
            assert result.ok and result.result == 42, result.error
            await asyncio.sleep(0.02)
            started = time.perf_counter()
            result = await session.run(PROGRAM, host)
            kept.append((time.perf_counter() - started) * 1000)
            assert result.ok and result.result == 42, result.error
            await asyncio.sleep(0.02)
        fresh_worker = rss_mb(pool.worker_pids[0])
        sessions = [await pool.keep_instance() for _ in range(4)]
        for s in sessions:
            await s.run("data = list(range(1000))\nlen(data)", host)
        per_session = statistics.mean(rss_mb(s.worker.proc.pid) for s in sessions)
        pid = session.worker.proc.pid
        before = rss_mb(pid)
        for i in range(loop):
            result = await session.run(
                f"rows = [{{'i': j}} for j in range(200)]\nn{i % 50} = {i}", host
            )
            assert result.ok, result.error
        after = rss_mb(pid)
    return {
        "fresh_call_p50_ms": statistics.median(fresh),
        "session_call_p50_ms": statistics.median(kept),
        "session_over_fresh_ratio": statistics.median(kept) / statistics.median(fresh),
        "session_rss_mb": per_session,
        "fresh_worker_rss_mb": fresh_worker,
        "loop_calls": loop,
        "loop_rss_before_mb": before,
        "loop_rss_after_mb": after,
        "loop_rss_growth_mb": after - before,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200, help="calls timed on each side")
    parser.add_argument("--loop", type=int, default=1000, help="calls in one session")
    args = parser.parse_args()
    figures = asyncio.run(main(args.runs, args.loop))
    rows = [
        ("fresh execution, p50", f"{figures['fresh_call_p50_ms']:.2f} ms"),
        ("call in a warm session, p50", f"{figures['session_call_p50_ms']:.2f} ms"),
        ("session / fresh (target <= 1.0)", f"{figures['session_over_fresh_ratio']:.2f}"),
        ("RSS of a live session (its worker)", f"{figures['session_rss_mb']:.1f} MB"),
        ("RSS of a pool worker", f"{figures['fresh_worker_rss_mb']:.1f} MB"),
        (f"RSS growth over {args.loop} calls in one session",
         f"{figures['loop_rss_growth_mb']:+.1f} MB ({figures['loop_rss_before_mb']:.1f} -> "
         f"{figures['loop_rss_after_mb']:.1f})"),
    ]  # fmt: skip
    for name, value in rows:
        print(f"{name:<45} {value}")
    print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in figures.items()}))
