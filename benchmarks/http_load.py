"""HTTP load: many authenticated clients at once against `codemode serve --transport http`.

    python benchmarks/http_load.py [--clients 20] [--runs 10]

`--clients` clients, each with its own bearer token (so its own identity, queued fairly)
and its own MCP session, run `--runs` programs each, alternating a short one (pure
Python) and one that calls the demo servers (the brief's team workflow, 20 expense
lookups in parallel). Every result is checked. Printed: latency p50/p95/p99, errors (the
target is 0), executions per second, and the server's RSS (with its workers), open file
descriptors and child processes before and after (after a warm-up).

Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx2
import mcp
from mcp.client.streamable_http import streamable_http_client

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from load import snapshot  # noqa: E402 - the same measure of RSS, fds and children

SHORT = "sum(i * i for i in range(10_000))"
TEAM = """\
members = await team.get_team_members()
spent = await asyncio.gather(*[team.get_expenses(member_id=m.id, quarter='Q3') for m in members[:20]])
return len(members), sum(len(s) for s in spent)
"""


def log(message: str) -> None:
    print(f"[http_load] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def client(url: str, token: str, runs: int, latencies: list[float], errors: list[str]):
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx2.AsyncClient(headers=headers, timeout=120) as http:
        async with mcp.Client(streamable_http_client(url, http_client=http), mode="legacy") as c:
            await c.list_tools()
            for i in range(runs):
                code = SHORT if i % 2 == 0 else TEAM
                started = time.perf_counter()
                try:
                    result = await c.call_tool("execute_code", {"code": code})
                    out = result.structured_content or {}
                    if out.get("error") is not None:
                        errors.append(str(out["error"].get("message"))[:200])
                    elif code == SHORT and out.get("result") != 333283335000:
                        errors.append(f"wrong result {out.get('result')!r}")
                except Exception as exc:  # noqa: BLE001 - counted, the run goes on
                    errors.append(f"{type(exc).__name__}: {exc}"[:200])
                latencies.append((time.perf_counter() - started) * 1000)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def main(clients: int, runs: int) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="codemode-http-load-"))
    tokens = [f"load-token-{i:02d}-0123456789abcdef" for i in range(clients)]
    (tmp / "tokens.txt").write_text("\n".join(tokens) + "\n")
    (tmp / "tokens.txt").chmod(0o600)
    latency_ms = 0.0
    config = {
        "mcpServers": {
            "team": {"command": sys.executable,
                     "args": ["-m", "codemode.demo.servers", "team", "--latency-ms", str(latency_ms)]},
        },
    }  # fmt: skip
    (tmp / "config.json").write_text(json.dumps(config))
    port = free_port()
    env = {**os.environ, "CODEMODE_SHAPES_FILE": str(tmp / "shapes.json")}
    env.pop("CODEMODE_CONFIG", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "codemode", "serve", "--transport", "http", "--port", str(port),
         "--config", str(tmp / "config.json"), "--auth-tokens", str(tmp / "tokens.txt"),
         "--log-level", "warning"],
        cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/mcp"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx2.get(f"http://127.0.0.1:{port}/readyz").status_code == 200:
                    break
            except httpx2.TransportError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("the server did not become ready")
            await asyncio.sleep(0.2)
        warm: list[float] = []
        await client(url, tokens[0], 10, warm, [])  # one-time allocations
        before = snapshot(proc.pid)
        latencies: list[float] = []
        errors: list[str] = []
        log(f"{clients} clients x {runs} programs")
        started = time.perf_counter()
        await asyncio.gather(*(client(url, t, runs, latencies, errors) for t in tokens))
        wall = time.perf_counter() - started
        await asyncio.sleep(1.0)  # sessions closed, workers back
        after = snapshot(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    figures = {
        "clients": clients,
        "executions": len(latencies),
        "errors": len(errors),
        "p50_ms": statistics.median(latencies),
        "p95_ms": percentile(latencies, 0.95),
        "p99_ms": percentile(latencies, 0.99),
        "exec_per_s": len(latencies) / wall,
        "rss_before_mb": before["rss_mb"] + before["children_rss_mb"],
        "rss_after_mb": after["rss_mb"] + after["children_rss_mb"],
        "leaked_fds": after["fds"] - before["fds"],
        "leaked_processes": after["children"] - before["children"],
    }
    for message in errors[:5]:
        log(f"error: {message}")
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--runs", type=int, default=10, help="programs per client")
    args = parser.parse_args()
    figures = asyncio.run(main(args.clients, args.runs))
    for name, value in figures.items():
        shown = f"{value:.1f}" if isinstance(value, float) else str(value)
        print(f"{name:<20} {shown}")
    print(json.dumps({k: round(v, 2) if isinstance(v, float) else v for k, v in figures.items()}))
