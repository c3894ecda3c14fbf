"""`codemode demo`: the product brief's workflows through the real stack, with figures.

1. Starts `codemode serve` (stdio) with the built-in demo servers, as an MCP client would.
2. Runs the brief's three programs through `execute_code` and prints what the model reads.
3. Makes the same tool calls the way plain tool calling would, round by round, against
   the same servers, and prints the comparison: model calls, bytes into the model's
   context, and tool wall time with and without parallel calls.
"""

from __future__ import annotations

import json
import tempfile
import textwrap
from pathlib import Path
from typing import Any

from .workflows import (
    WORKFLOWS,
    PlainAgent,
    ProgramRun,
    codemode_session,
    plain_connections,
    run_program,
    write_config,
)


def _say(text: str = "") -> None:
    print(text, flush=True)


async def _codemode_runs(config_path: Path) -> dict[str, ProgramRun]:
    """Each workflow's program through `execute_code`, over MCP stdio."""
    runs: dict[str, ProgramRun] = {}
    async with codemode_session(config_path) as session:
        tool = (await session.list_tools()).tools[0]
        description = tool.description or ""
        functions = sum(1 for line in description.splitlines() if line.startswith("await "))
        _say(
            f"codemode serve is up: it offers one tool, `{tool.name}`, whose description "
            f"lists {functions} functions ({len(description.encode()):,} bytes)."
        )
        for wf in WORKFLOWS:
            run = runs[wf.key] = await run_program(session, wf.program)
            _say(f"\n## {wf.title}\n")
            _say(textwrap.indent(wf.program.rstrip(), "    "))
            _say("\nWhat the model reads back:\n")
            shown = run.text if len(run.text) <= 1500 else run.text[:1500] + " …"
            _say(textwrap.indent(shown, "    "))
    return runs


async def _plain_runs(config_path: Path) -> dict[str, dict[str, PlainAgent]]:
    """Each workflow as plain tool calling, one call at a time and with parallel calls."""
    runs: dict[str, dict[str, PlainAgent]] = {}
    _say(
        "\n## The baseline: the same tool calls, made the way plain tool calling makes them\n"
        "\nConnecting to the demo servers directly (no codemode in between), then running "
        "each workflow round by round, once one call at a time and once with each round's "
        "calls in parallel, and counting what every result would add to the model's "
        "context..."
    )
    async with plain_connections(config_path) as connections:
        for wf in WORKFLOWS:
            runs[wf.key] = {}
            for mode, parallel in (("sequential", False), ("parallel", True)):
                agent = PlainAgent(connections, parallel=parallel)
                await wf.plain(agent)
                runs[wf.key][mode] = agent
            calls = runs[wf.key]["parallel"].tool_calls
            seconds = runs[wf.key]["sequential"].tool_ms / 1000
            _say(f"- {wf.title}: {calls} tool calls ({seconds:.1f} s one at a time)")
    return runs


def _table(
    codemode: dict[str, ProgramRun], plain: dict[str, dict[str, PlainAgent]]
) -> tuple[str, dict[str, Any]]:
    rows = [
        "| workflow | model calls: plain → codemode | context: plain → codemode | smaller by "
        "| tool wall time: plain one at a time / plain parallel / codemode |",
        "|---|---|---|---|---|",
    ]
    summary: dict[str, Any] = {}
    for wf in WORKFLOWS:
        cm, seq, par = codemode[wf.key], plain[wf.key]["sequential"], plain[wf.key]["parallel"]
        reduction = 100 * (1 - cm.context_bytes / par.context_bytes)
        rows.append(
            f"| {wf.title} | {par.model_calls} → 2 | {par.context_bytes:,} B → "
            f"{cm.context_bytes:,} B | {reduction:.1f}% | {seq.tool_ms:,.0f} ms / "
            f"{par.tool_ms:,.0f} ms / {cm.wall_ms:,.0f} ms |"
        )
        summary[wf.key] = {
            "ok": cm.ok,
            "tool_calls": par.tool_calls,
            "model_calls_plain": par.model_calls,
            "model_calls_codemode": 2,
            "context_bytes_plain": par.context_bytes,
            "context_bytes_codemode": cm.context_bytes,
            "context_reduction_pct": round(reduction, 1),
            "wall_ms_plain_sequential": round(seq.tool_ms, 1),
            "wall_ms_plain_parallel": round(par.tool_ms, 1),
            "wall_ms_codemode": round(cm.wall_ms, 1),
            "result": cm.structured.get("result"),
            "stdout": cm.structured.get("stdout", ""),
        }
    return "\n".join(rows), summary


async def demo(
    latency_ms: float = 20.0, team_size: int = 20, summary_path: str | None = None
) -> int:
    _say("# codemode demo: the product brief's workflows, measured live\n")
    _say(
        f"Demo MCP servers: team ({team_size} members, Q3 expenses, $10,000 budget each), "
        f"crm (500 leads, scores, companies), jobs (24 offers, company details); each "
        f"tool call takes {latency_ms:g} ms (--latency-ms).\n"
    )
    with tempfile.TemporaryDirectory(prefix="codemode-demo-") as tmp:
        config_path = write_config(Path(tmp) / "config.json", latency_ms, team_size)
        codemode = await _codemode_runs(config_path)
        plain = await _plain_runs(config_path)
    table, summary = _table(codemode, plain)
    _say("\n## Plain tool calling vs codemode, measured in this run\n")
    _say(table)
    _say(
        textwrap.dedent("""
        - Model calls count every turn: plain tool calling takes one turn per dependency
          level plus one to answer; codemode takes one to write the program plus one to
          answer (the brief's "1" leaves out the answer turn).
        - Context is the text of every tool result the model would read (plain), against
          the text of execute_code's result (codemode). Tool descriptions are in context
          either way and are not counted.
        - Wall time is tool time as the client sees it; each model turn adds its own
          latency (often 1-5 s) on top, and plain tool calling has more turns.
    """).rstrip()
    )
    if summary_path:
        Path(summary_path).write_text(json.dumps(summary, indent=2) + "\n")
    return 0 if all(run.ok for run in codemode.values()) else 1
