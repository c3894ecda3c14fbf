"""The product brief's comparison, measured over the real stack.

    python benchmarks/brief.py [--sizes 20,100,1000,10000] [--latencies 0,50] [--repeat 3]

codemode: an MCP client -> `codemode serve` (stdio) -> the demo MCP servers, running the
brief's programs through `execute_code`. Plain tool calling: the same tool calls made
directly on the same servers the way a model with (parallel) tool calling would make them,
one model round per dependency level, every tool result read into its context.

What is counted:
- model calls: every tool-calling turn plus the turn that answers, on both sides;
- context bytes: the text content of every tool result (plain) vs the text content of
  execute_code's result (codemode); tokens are estimated as bytes / 4 (a common rule of
  thumb for JSON and English with BPE tokenizers; real tokenizers differ by +-25%);
- wall time: tool time as the client sees it, with each demo tool call delayed by the
  given latency. Model time is not included (it can't be measured without a model); plain
  tool calling has more turns, each adding one.
- CPU per tool call (team expenses as it grows; Linux, read from /proc): of the
  `codemode serve` process (MCP, federation, pool) and of its sandbox workers, over the
  program's runs; beside it the plain client's own CPU per call, for scale.

Writes benchmarks/results/brief.md, brief.json and brief_context.png (matplotlib, from
the `bench` extra). Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from codemode.demo.workflows import (
    EXPENSES,
    WORKFLOWS,
    PlainAgent,
    codemode_session,
    plain_connections,
    plain_expenses,
    run_program,
    write_config,
)

RESULTS = Path(__file__).resolve().parent / "results"

SUMMARY = """\
import asyncio

team = await get_team_members()
expenses = await asyncio.gather(*[get_expenses(m["id"], "Q3") for m in team])
totals = sorted(((sum(e["amount"] for e in exp), m["name"]) for m, exp in zip(team, expenses)),
                reverse=True)
over = [(total, name) for total, name in totals if total > 10000]
return {"exceeded_count": len(over), "total_overage": round(sum(t - 10000 for t, _ in over), 2),
        "top5": [name for _, name in over[:5]]}
"""

SEQUENTIAL_BUDGET_S = 20.0
"""Plain one-at-a-time tool calling is measured only where calls x latency stays under this
(at 10,000 members and 50 ms it would take over 8 minutes of sleeping)."""


def log(message: str) -> None:
    print(f"[brief] {message}", file=sys.stderr, flush=True)


def tokens(n_bytes: int) -> int:
    return round(n_bytes / 4)


async def plain(config: Path, fn: Any, parallel: bool) -> PlainAgent:
    async with plain_connections(config) as connections:
        agent = PlainAgent(connections, parallel=parallel)
        started = time.process_time()
        await fn(agent)
        agent.cpu_s = time.process_time() - started  # the client's own CPU (MCP, JSON)
        return agent


def _cpu_s(pid: int) -> float:
    """A process's CPU time so far (user + system), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[tuple[int, str]]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if int((entry / "stat").read_text().rpartition(")")[2].split()[1]) == pid:
                found.append((int(entry.name), (entry / "cmdline").read_bytes().decode()))
        except (OSError, ValueError, IndexError):
            continue
    return found


def host_cpu() -> dict[str, float] | None:
    """CPU seconds so far of `codemode serve` (the host: MCP, federation, pool) and of its
    sandbox workers; None where /proc is not there to read."""
    if not Path("/proc/self/stat").exists():
        return None
    serve = [pid for pid, cmd in _children(os.getpid()) if "codemode\0serve" in cmd]
    if not serve:
        return None
    workers = [
        pid
        for pid, cmd in _children(serve[0])
        if "codemode-worker" in cmd or "_worker.py" in cmd  # native, or its Python twin
    ]
    return {"serve": _cpu_s(serve[0]), "workers": sum(_cpu_s(p) for p in workers)}


async def codemode_runs(config: Path, programs: dict[str, str], repeat: int) -> dict[str, Any]:
    """Each program `repeat` times over one session; wall time is the median, host CPU per
    tool call is over all its runs."""
    out: dict[str, Any] = {}
    async with codemode_session(config) as session:
        for key, code in programs.items():
            before = host_cpu()
            runs = [await run_program(session, code) for _ in range(repeat)]
            after = host_cpu()
            bad = [r for r in runs if not r.ok]
            if bad:
                raise RuntimeError(f"{key} failed: {bad[0].text}")
            calls = runs[0].structured["stats"]["tool_calls"]
            out[key] = {
                "wall_ms": statistics.median(r.wall_ms for r in runs),
                "context_bytes": runs[0].context_bytes,
                "bytes_returned": runs[0].structured["stats"]["bytes_returned"],
                "tool_calls": calls,
            }
            if before and after and calls:
                per = 1000 / (calls * repeat)
                out[key]["serve_cpu_ms_per_call"] = (after["serve"] - before["serve"]) * per
                out[key]["worker_cpu_ms_per_call"] = (after["workers"] - before["workers"]) * per
    return out


async def brief_case(tmp: Path, latency: float, repeat: int) -> list[dict[str, Any]]:
    """The brief's three workflows at its own size (20 members)."""
    config = write_config(tmp / f"brief-{latency:g}.json", latency, 20, timeout_s=300)
    cm = await codemode_runs(config, {wf.key: wf.program for wf in WORKFLOWS}, repeat)
    rows = []
    for wf in WORKFLOWS:
        seq = await plain(config, wf.plain, parallel=False)
        par = await plain(config, wf.plain, parallel=True)
        rows.append(
            {
                "workflow": wf.key,
                "title": wf.title,
                "latency_ms": latency,
                "tool_calls": par.tool_calls,
                "model_calls_plain": par.model_calls,
                "model_calls_codemode": 2,
                "context_bytes_plain": par.context_bytes,
                "context_bytes_codemode": cm[wf.key]["context_bytes"],
                "wall_ms_plain_sequential": seq.tool_ms,
                "wall_ms_plain_parallel": par.tool_ms,
                "wall_ms_codemode": cm[wf.key]["wall_ms"],
            }
        )
        log(f"brief {wf.key} @ {latency:g} ms: done")
    return rows


async def scaling_case(tmp: Path, size: int, latency: float, repeat: int) -> dict[str, Any]:
    """The expense workflow at `size` members: the brief's program and a summary one."""
    config = write_config(tmp / f"scale-{size}-{latency:g}.json", latency, size, timeout_s=600)
    cm = await codemode_runs(
        config, {"brief": EXPENSES, "summary": SUMMARY}, repeat if size <= 1000 else 1
    )
    par = await plain(config, plain_expenses, parallel=True)
    calls = par.tool_calls
    seq_ms = None
    if calls * latency / 1000 <= SEQUENTIAL_BUDGET_S and calls * 2 / 1000 <= SEQUENTIAL_BUDGET_S:
        seq_ms = (await plain(config, plain_expenses, parallel=False)).tool_ms
    log(f"scaling {size} @ {latency:g} ms: done")
    return {
        "team_size": size,
        "latency_ms": latency,
        "tool_calls": calls,
        "model_calls_plain": par.model_calls,
        "model_calls_codemode": 2,
        "context_bytes_plain": par.context_bytes,
        "context_bytes_codemode": cm["brief"]["context_bytes"],
        "context_bytes_codemode_summary": cm["summary"]["context_bytes"],
        "bytes_returned": cm["brief"]["bytes_returned"],
        "bytes_returned_summary": cm["summary"]["bytes_returned"],
        "wall_ms_plain_sequential": seq_ms,
        "wall_ms_plain_parallel": par.tool_ms,
        "wall_ms_codemode": cm["brief"]["wall_ms"],
        "serve_cpu_ms_per_call": cm["brief"].get("serve_cpu_ms_per_call"),
        "worker_cpu_ms_per_call": cm["brief"].get("worker_cpu_ms_per_call"),
        "client_cpu_ms_per_call_plain": par.cpu_s * 1000 / calls if calls else None,
    }


def ms(value: float | None) -> str:
    return "not run" if value is None else f"{value:,.0f} ms"


def render(brief: list[dict[str, Any]], scaling: list[dict[str, Any]]) -> str:
    lines = [
        "## The brief's workflows (20 team members)",
        "",
        "| workflow | latency | model calls plain → codemode | context plain → codemode "
        "(~tokens) | smaller by | wall: plain one at a time / plain parallel / codemode |",
        "|---|---|---|---|---|---|",
    ]
    for r in brief:
        cut = 100 * (1 - r["context_bytes_codemode"] / r["context_bytes_plain"])
        lines.append(
            f"| {r['title']} | {r['latency_ms']:g} ms | {r['model_calls_plain']} → 2 | "
            f"{r['context_bytes_plain']:,} B (~{tokens(r['context_bytes_plain']):,}) → "
            f"{r['context_bytes_codemode']:,} B (~{tokens(r['context_bytes_codemode']):,}) | "
            f"{cut:.1f}% | {ms(r['wall_ms_plain_sequential'])} / "
            f"{ms(r['wall_ms_plain_parallel'])} / {ms(r['wall_ms_codemode'])} |"
        )
    lines += [
        "",
        "## Team expenses as the team grows",
        "",
        "codemode (brief) returns the names of everyone over budget, as the brief's program "
        "does; codemode (summary) returns a count, the total overage and the top five.",
        "",
        "| team | latency | tool calls | context: plain | codemode (brief) | codemode (summary) "
        "| wall: plain one at a time / plain parallel / codemode | codemode / parallel "
        "| CPU per call: serve + workers (plain client) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in scaling:
        ratio = r["wall_ms_codemode"] / r["wall_ms_plain_parallel"]
        cpu = "–"
        if r.get("serve_cpu_ms_per_call") is not None:
            cpu = (
                f"{r['serve_cpu_ms_per_call']:.2f} + {r['worker_cpu_ms_per_call']:.2f} ms "
                f"({r['client_cpu_ms_per_call_plain']:.2f} ms)"
            )
        lines.append(
            f"| {r['team_size']:,} | {r['latency_ms']:g} ms | {r['tool_calls']:,} | "
            f"{r['context_bytes_plain']:,} B | {r['context_bytes_codemode']:,} B | "
            f"{r['context_bytes_codemode_summary']:,} B | {ms(r['wall_ms_plain_sequential'])} / "
            f"{ms(r['wall_ms_plain_parallel'])} / {ms(r['wall_ms_codemode'])} | {ratio:.2f} "
            f"| {cpu} |"
        )
    return "\n".join(lines) + "\n"


def plot(scaling: list[dict[str, Any]], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("matplotlib is not installed (pip install -e '.[bench]'): no plot")
        return False
    rows = sorted(
        (r for r in scaling if r["latency_ms"] == scaling[0]["latency_ms"]),
        key=lambda r: r["team_size"],
    )
    sizes = [r["team_size"] for r in rows]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for key, label in (
        ("context_bytes_plain", "plain tool calling (every tool result)"),
        ("context_bytes_codemode", "codemode, the brief's program (names)"),
        ("context_bytes_codemode_summary", "codemode, a summary program"),
    ):
        ax.plot(sizes, [r[key] for r in rows], marker="o", label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("team members")
    ax.set_ylabel("bytes into the model's context")
    ax.set_title("Team expenses: context cost vs team size")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


async def main(sizes: list[int], latencies: list[float], repeat: int) -> dict[str, Any]:
    RESULTS.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="codemode-brief-") as tmp:
        brief = [row for lat in latencies for row in await brief_case(Path(tmp), lat, repeat)]
        scaling = [
            await scaling_case(Path(tmp), size, lat, repeat) for lat in latencies for size in sizes
        ]
    text = render(brief, scaling)
    print(text)
    (RESULTS / "brief.md").write_text(text)
    (RESULTS / "brief.json").write_text(
        json.dumps({"brief": brief, "scaling": scaling}, indent=2) + "\n"
    )
    plot(scaling, RESULTS / "brief_context.png")

    def pick(rows: list[dict[str, Any]], **match: Any) -> dict[str, Any] | None:
        return next((r for r in rows if all(r[k] == v for k, v in match.items())), None)

    expenses = pick(brief, workflow="expenses")
    slow = pick(brief, workflow="expenses", latency_ms=50.0)
    big = pick(scaling, team_size=10_000)
    figures: dict[str, Any] = {}
    if expenses:
        figures["context_reduction_pct"] = round(
            100 * (1 - expenses["context_bytes_codemode"] / expenses["context_bytes_plain"]), 1
        )
        figures["model_calls_traditional"] = expenses["model_calls_plain"]
        figures["model_calls_codemode"] = expenses["model_calls_codemode"]
    if slow:
        figures["speedup_50ms"] = round(
            slow["wall_ms_plain_sequential"] / slow["wall_ms_codemode"], 2
        )
        figures["speedup_50ms_vs_parallel_tool_calling"] = round(
            slow["wall_ms_plain_parallel"] / slow["wall_ms_codemode"], 2
        )
    for latency in sorted({r["latency_ms"] for r in scaling}):
        row = pick(scaling, team_size=10_000, latency_ms=latency)
        if row:
            tag = f"10000_{latency:g}ms"
            figures[f"wall_ratio_vs_parallel_{tag}"] = round(
                row["wall_ms_codemode"] / row["wall_ms_plain_parallel"], 3
            )
            figures[f"serve_cpu_ms_per_call_{tag}"] = row.get("serve_cpu_ms_per_call")
    if big:
        figures["bytes_returned_10000"] = big["bytes_returned"]
        figures["bytes_returned_10000_summary"] = big["bytes_returned_summary"]
        figures["context_bytes_plain_10000"] = big["context_bytes_plain"]
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="20,100,1000,10000")
    parser.add_argument("--latencies", default="0,50", help="per-call tool latency, ms")
    parser.add_argument("--repeat", type=int, default=3, help="codemode runs per program")
    args = parser.parse_args()
    figures = asyncio.run(
        main(
            [int(s) for s in args.sizes.split(",")],
            [float(x) for x in args.latencies.split(",")],
            args.repeat,
        )
    )
    print(json.dumps(figures))
