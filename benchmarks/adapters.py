"""Adapter benchmark: start-up of many downstream servers, and the cost of the adapter layer.

    python benchmarks/adapters.py [--calls N]

connect_10_servers_ms: 10 fixture stdio servers started, initialized and listed at once.
adapter_overhead_ratio: one tool call through Federation (name lookup, jsonschema check,
result unwrapping) vs the same call on a bare `mcp` ClientSession to the same kind of
server, in the same run (median per call, sequential). Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

from codemode.config import parse_config
from codemode.tool_adapters import Federation

FAULTY = str(Path(__file__).resolve().parents[1] / "tests" / "servers" / "faulty.py")


def server() -> dict[str, object]:
    return {"command": sys.executable, "args": [FAULTY]}


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


async def connect_many(n: int) -> float:
    config = parse_config({"mcpServers": {f"s{i}": server() for i in range(n)}})
    started = time.perf_counter()
    fed = Federation(config)
    status = await fed.start()
    elapsed = (time.perf_counter() - started) * 1000
    await fed.close()
    failed = {k: v for k, v in status.items() if v}
    if failed:
        raise SystemExit(f"servers failed to start: {failed}")
    return elapsed


async def through_adapter(calls: int) -> list[float]:
    async with Federation(parse_config({"mcpServers": {"f": server()}})) as fed:
        for _ in range(20):
            await fed.call_tool("f", "echo", {"value": "x", "times": 2})
        times = []
        for _ in range(calls):
            started = time.perf_counter()
            await fed.call_tool("f", "echo", {"value": "x", "times": 2})
            times.append((time.perf_counter() - started) * 1000)
    return times


async def bare_session(calls: int) -> list[float]:
    params = StdioServerParameters(command=sys.executable, args=[FAULTY])
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        await session.list_tools()
        for _ in range(20):
            await session.call_tool("echo", {"value": "x", "times": 2})
        times = []
        for _ in range(calls):
            started = time.perf_counter()
            await session.call_tool("echo", {"value": "x", "times": 2})
            times.append((time.perf_counter() - started) * 1000)
    return times


async def main(calls: int) -> dict[str, float]:
    log("connecting 10 servers at once (3 rounds)")
    connect = statistics.median([await connect_many(10) for _ in range(3)])
    log(f"{calls} sequential calls, adapter and bare session, alternating rounds")
    adapter: list[float] = []
    bare: list[float] = []
    for _ in range(3):  # alternate, so drift on a noisy machine hits both alike
        adapter += await through_adapter(calls)
        bare += await bare_session(calls)
    a, b = statistics.median(adapter), statistics.median(bare)
    return {
        "connect_10_servers_ms": round(connect, 1),
        "adapter_call_ms": round(a, 3),
        "bare_session_call_ms": round(b, 3),
        "adapter_overhead_ratio": round(a / b, 3),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()
    figures = asyncio.run(main(args.calls))
    targets = {"adapter_overhead_ratio": 1.10}
    for name, value in figures.items():
        target = targets.get(name)
        verdict = (
            ""
            if target is None
            else f"  (target <= {target}: {'met' if value <= target else 'MISSED'})"
        )
        print(f"{name:24} {value}{verdict}")
    print(json.dumps(figures))
