"""The demo MCP servers: `python -m codemode.demo.servers team|leads|jobs [--latency-ms N]`.

Each speaks MCP over stdio and serves the brief's data (see `data.py`). `--latency-ms`
adds a fixed delay per call, to show what parallel calls save; `--team-size` scales the
team for benchmarks.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from . import data


def _company(company_id: str) -> dict[str, Any]:
    company = data.companies().get(company_id)
    if company is None:
        raise ToolError(f"no company with id {company_id!r}")
    return company


def team_server(latency_s: float, size: int) -> MCPServer:
    server = MCPServer("team")

    @server.tool()
    async def get_team_members() -> list[dict[str, Any]]:
        """List every member of the team (id, name, email, role, department, location)."""
        await asyncio.sleep(latency_s)
        return data.team(size)

    @server.tool()
    async def get_expenses(member_id: str, quarter: str) -> list[dict[str, Any]]:
        """Expense records of one member for a quarter ("Q1".."Q4"); amounts in USD.
        The team budget is $10,000 per member per quarter."""
        await asyncio.sleep(latency_s)
        if member_id not in {m["id"] for m in data.team(size)}:
            raise ToolError(f"no team member with id {member_id!r}")
        if quarter not in ("Q1", "Q2", "Q3", "Q4"):
            raise ToolError(f"quarter must be one of Q1, Q2, Q3, Q4, not {quarter!r}")
        return data.expenses(member_id, quarter)

    return server


def leads_server(latency_s: float) -> MCPServer:
    server = MCPServer("leads")

    @server.tool()
    async def get_leads(query: str = "unqualified") -> list[dict[str, Any]]:
        """Leads whose status matches `query` ("unqualified", "qualified" or "all")."""
        await asyncio.sleep(latency_s)
        return [lead for lead in data.leads() if query in ("all", lead["status"])]

    @server.tool()
    async def score_lead(lead: dict[str, Any]) -> float:
        """Score a lead from 0 to 1 (likelihood to convert)."""
        await asyncio.sleep(latency_s)
        return data.score(lead)

    @server.tool()
    async def get_company(company_id: str) -> dict[str, Any]:
        """Company details by id: name, industry, employees, country, founded."""
        await asyncio.sleep(latency_s)
        return _company(company_id)

    return server


def jobs_server(latency_s: float) -> MCPServer:
    server = MCPServer("jobs")

    @server.tool()
    async def get_job_offers() -> list[dict[str, Any]]:
        """All open job offers: id, title, company_id, salary (USD per year), remote."""
        await asyncio.sleep(latency_s)
        return data.job_offers()

    @server.tool()
    async def get_company_details(company_id: str) -> dict[str, Any]:
        """Company details by id: name, industry, employees, country, founded."""
        await asyncio.sleep(latency_s)
        return _company(company_id)

    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("which", choices=["team", "leads", "jobs"])
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--team-size", type=int, default=20)
    args = parser.parse_args()
    latency = args.latency_ms / 1000
    if args.which == "team":
        team_server(latency, args.team_size).run()
    elif args.which == "leads":
        leads_server(latency).run()
    else:
        jobs_server(latency).run()


if __name__ == "__main__":
    main()
