"""The product brief's three workflows, two ways: as one codemode program, and as the
tool calls a model would make with plain tool calling (one model round per dependency
level, every tool result into its context).

`PlainAgent` plays the model's part of plain tool calling against the real demo servers:
it makes the same calls, round by round, and counts what would enter the context (the text
content of every tool result, as MCP clients pass it to the model). It cannot measure a
model's own latency, so its wall time is tool time only.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

from ..config import parse_config
from ..tool_adapters import Connection, unwrap

EXPENSES = """\
import asyncio

team = await get_team_members()
expenses = await asyncio.gather(*[
    get_expenses(m["id"], "Q3") for m in team
])

exceeded = [
    m for m, exp in zip(team, expenses)
    if sum(e["amount"] for e in exp) > 10000
]

return {"exceeded_count": len(exceeded), "list": [m["name"] for m in exceeded]}
"""

LEADS = """\
import asyncio

leads = await get_leads(query="unqualified")

async def qualify(lead):
    score = await score_lead(lead)
    if score > 0.8:
        company = await get_company(lead.company_id)
        return {"lead": lead.name, "score": score, "company": company.name}

results = [r for r in await asyncio.gather(*[qualify(l) for l in leads]) if r]
return results
"""

JOBS = """\
import asyncio, json

offers = await get_job_offers()

company_tasks = [get_company_details(o.company_id) for o in offers]
companies = await asyncio.gather(*company_tasks)

tech_offers = [
    o for o, c in zip(offers, companies)
    if 'tech' in c.industry.lower()
]
best_offer = max(tech_offers, key=lambda o: o.salary)

print(json.dumps({
    "offer": best_offer.to_dict(),
    "company": companies[offers.index(best_offer)].to_dict(),
    "salary": best_offer.salary
}))
"""


@dataclass
class PlainAgent:
    """Plain tool calling, measured: `round()` is one model turn that calls tools."""

    connections: dict[str, Connection]
    parallel: bool = True
    rounds: int = 0
    tool_calls: int = 0
    context_bytes: int = 0
    tool_ms: float = 0.0

    async def _call(self, server: str, tool: str, args: dict[str, Any]) -> Any:
        connection = self.connections[server]
        result = await connection.call(tool, args)
        self.context_bytes += sum(
            len(getattr(c, "text", "").encode("utf-8")) for c in result.content
        )
        schema = next((t.output_schema for t in connection.tools if t.name == tool), None)
        return unwrap(result, server, tool, schema)

    async def round(self, calls: list[tuple[str, str, dict[str, Any]]]) -> list[Any]:
        """One model turn: these calls (concurrently if `parallel`), all results read."""
        self.rounds += 1
        self.tool_calls += len(calls)
        started = time.perf_counter()
        if self.parallel:
            values = await asyncio.gather(*(self._call(*c) for c in calls))
        else:
            values = [await self._call(*c) for c in calls]
        self.tool_ms += (time.perf_counter() - started) * 1000
        return list(values)

    @property
    def model_calls(self) -> int:
        """Every tool-calling turn, plus the turn that writes the answer."""
        return self.rounds + 1


async def plain_expenses(agent: PlainAgent) -> None:
    (team,) = await agent.round([("team", "get_team_members", {})])
    await agent.round(
        [("team", "get_expenses", {"member_id": m["id"], "quarter": "Q3"}) for m in team]
    )


async def plain_leads(agent: PlainAgent) -> None:
    (leads,) = await agent.round([("crm", "get_leads", {"query": "unqualified"})])
    scores = await agent.round([("crm", "score_lead", {"lead": lead}) for lead in leads])
    hot = [lead for lead, score in zip(leads, scores) if score > 0.8]
    await agent.round([("crm", "get_company", {"company_id": lead["company_id"]}) for lead in hot])


async def plain_jobs(agent: PlainAgent) -> None:
    (offers,) = await agent.round([("jobs", "get_job_offers", {})])
    await agent.round(
        [("jobs", "get_company_details", {"company_id": o["company_id"]}) for o in offers]
    )


@dataclass(frozen=True)
class Workflow:
    key: str
    title: str
    program: str
    plain: Callable[[PlainAgent], Awaitable[None]]


WORKFLOWS = (
    Workflow("expenses", "Team members over their Q3 budget", EXPENSES, plain_expenses),
    Workflow("leads", "Qualify the unqualified leads", LEADS, plain_leads),
    Workflow("jobs", "Highest-paying offer from a tech company", JOBS, plain_jobs),
)


def demo_servers(python: str, latency_ms: float, team_size: int) -> dict[str, Any]:
    """The demo servers as a config's "mcpServers" section."""

    def server(which: str, *extra: str) -> dict[str, Any]:
        args = ["-m", "codemode.demo.servers", which, "--latency-ms", f"{latency_ms:g}", *extra]
        return {"command": python, "args": args}

    return {
        "team": server("team", "--team-size", str(team_size)),
        "crm": server("leads"),
        "jobs": server("jobs"),
    }


# -- measuring both ways against a config file -------------------------------------------


@asynccontextmanager
async def codemode_session(config_path: Path) -> AsyncIterator[ClientSession]:
    """`codemode serve --config config_path` as a child process, with an MCP client session.
    The sandbox is warmed up first (its first use may build it, ~20 s once per machine)."""
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "codemode", "serve", "--config", str(config_path), "--log-level", "warning"],
    )
    async with stdio_client(params, errlog=sys.stderr) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            warm = await run_program(session, "return 1")
            if not warm.ok:
                raise RuntimeError(f"the sandbox does not work: {warm.text}")
            yield session


@dataclass
class ProgramRun:
    ok: bool
    text: str
    """What the model reads: the text content of execute_code's result."""
    wall_ms: float
    structured: dict[str, Any]

    @property
    def context_bytes(self) -> int:
        return len(self.text.encode("utf-8"))


async def run_program(session: ClientSession, code: str) -> ProgramRun:
    started = time.perf_counter()
    result = await session.call_tool("execute_code", {"code": code})
    wall_ms = (time.perf_counter() - started) * 1000
    text = "\n".join(getattr(c, "text", "") for c in result.content)
    return ProgramRun(not result.is_error, text, wall_ms, result.structured_content or {})


@asynccontextmanager
async def plain_connections(config_path: Path) -> AsyncIterator[dict[str, Connection]]:
    """Direct MCP connections to a config's servers, for `PlainAgent`."""
    config = parse_config(json.loads(config_path.read_text()), str(config_path))
    connections = {
        name: Connection(name, server, config.options(name))
        for name, server in config.servers.items()
    }
    try:
        await asyncio.gather(*(c.start() for c in connections.values()))
        yield connections
    finally:
        await asyncio.gather(*(c.close() for c in connections.values()))


def write_config(path: Path, latency_ms: float, team_size: int, **limits: Any) -> Path:
    """A config with the demo servers, and limits that let the brief's programs run at
    `team_size` (one call per member, plus one)."""
    limits.setdefault("max_tool_calls", max(1000, 2 * team_size + 10))
    path.write_text(
        json.dumps(
            {
                "mcpServers": demo_servers(sys.executable, latency_ms, team_size),
                "codemode": {"limits": limits},
            },
            indent=2,
        )
    )
    return path
