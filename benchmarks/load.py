"""Load: many executions over one MCP session, and what a long run leaves behind.

    python benchmarks/load.py [--concurrent 50] [--sequential 1000]

1. `--concurrent` execute_code calls at once over one MCP session to `codemode serve`,
   each making 20 parallel tool calls to a fixture server; every result is checked.
2. `--sequential` executions one after another (each with one tool call), with the serve
   process's RSS, open file descriptors and child processes measured before and after
   (after a warm-up of 50 executions, so one-time allocations are not counted as growth).

Last line: one JSON object with concurrent_ok, exec_per_s, rss_growth_mb (target <= 20),
leaked_fds and leaked_processes (targets 0).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from codemode.demo.workflows import codemode_session

FAULTY = str(Path(__file__).resolve().parents[1] / "tests" / "servers" / "faulty.py")

PROGRAM = """\
values = await asyncio.gather(*[f.echo(value=f"{tag}-{{i}}") for i in range(20)])
return values == [f"{tag}-{{i}}" for i in range(20)]
"""


def log(message: str) -> None:
    print(f"[load] {message}", file=sys.stderr, flush=True)


def snapshot(pid: int) -> dict[str, float]:
    status = Path(f"/proc/{pid}/status").read_text()
    rss_kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
    children = subprocess.run(
        ["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True
    ).stdout.split()
    child_rss = 0
    for child in children:
        try:
            child_status = Path(f"/proc/{child}/status").read_text()
        except OSError:
            continue
        child_rss += next(
            (
                int(line.split()[1])
                for line in child_status.splitlines()
                if line.startswith("VmRSS:")
            ),
            0,
        )
    return {
        "rss_mb": rss_kb / 1024,
        "children_rss_mb": child_rss / 1024,
        "fds": len(os.listdir(f"/proc/{pid}/fd")),
        "children": len(children),
    }


def serve_pid(marker: str) -> int:
    out = subprocess.run(
        ["ps", "-ww", "-o", "pid=,args=", "--ppid", str(os.getpid())],
        capture_output=True,
        text=True,
    ).stdout
    return next(int(line.split()[0]) for line in out.splitlines() if marker in line)


async def main(concurrent: int, sequential: int) -> dict[str, float | int]:
    with tempfile.TemporaryDirectory(prefix="codemode-load-") as tmp:
        config = Path(tmp) / "config.json"
        config.write_text(
            json.dumps({"mcpServers": {"f": {"command": sys.executable, "args": [FAULTY]}}})
        )
        async with codemode_session(config) as session:
            pid = serve_pid(str(config))

            async def run(code: str) -> object:
                result = await session.call_tool("execute_code", {"code": code})
                return (result.structured_content or {}).get("result")

            await run("return 1")
            log(f"{concurrent} concurrent executions of 20 parallel calls each")
            started = time.perf_counter()
            results = await asyncio.gather(
                *(run(PROGRAM.format(tag=f"c{i}")) for i in range(concurrent))
            )
            concurrent_s = time.perf_counter() - started
            concurrent_ok = sum(r is True for r in results)

            for i in range(50):
                await run(f"await f.echo(value='warm{i}')")
            before = snapshot(pid)
            log(f"{sequential} sequential executions; before: {before}")
            started = time.perf_counter()
            wrong = 0
            for i in range(sequential):
                if await run(f"await f.echo(value='s{i}')") != f"s{i}":
                    wrong += 1
            elapsed = time.perf_counter() - started
            await asyncio.sleep(1.0)  # let replaced workers settle, if any
            after = snapshot(pid)
            log(f"after: {after}")
    return {
        "concurrent_ok": concurrent_ok,
        "concurrent_total": concurrent,
        "concurrent_wall_s": round(concurrent_s, 2),
        "sequential_wrong": wrong,
        "exec_per_s": round(sequential / elapsed, 1),
        "rss_before_mb": round(before["rss_mb"], 1),
        "rss_growth_mb": round(after["rss_mb"] - before["rss_mb"], 1),
        "children_rss_growth_mb": round(after["children_rss_mb"] - before["children_rss_mb"], 1),
        "leaked_fds": int(after["fds"] - before["fds"]),
        "leaked_processes": int(after["children"] - before["children"]),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrent", type=int, default=50)
    parser.add_argument("--sequential", type=int, default=1000)
    args = parser.parse_args()
    figures = asyncio.run(main(args.concurrent, args.sequential))
    print(
        f"| figure | value | target |\n|---|---|---|\n"
        f"| concurrent executions correct | {figures['concurrent_ok']} of "
        f"{figures['concurrent_total']} ({figures['concurrent_wall_s']} s) | all |\n"
        f"| sequential executions per second | {figures['exec_per_s']} | |\n"
        f"| serve RSS growth over {args.sequential} executions | {figures['rss_growth_mb']} MB "
        f"(from {figures['rss_before_mb']} MB) | <= 20 MB |\n"
        f"| workers' RSS growth | {figures['children_rss_growth_mb']} MB | |\n"
        f"| leaked fds / processes | {figures['leaked_fds']} / {figures['leaked_processes']} "
        f"| 0 / 0 |"
    )
    print(json.dumps(figures))
