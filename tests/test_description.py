"""The execute_code description: catalog within the budget, then names, then namespaces;
always deterministic. Tool definitions come from real demo servers."""

from __future__ import annotations

import pytest
from serve_client import demo

from codemode.config import parse_config
from codemode.server._description import describe
from codemode.tool_adapters import Federation
from codemode.wasm_runtime import Limits


@pytest.fixture(scope="module")
async def federation():
    config = parse_config(
        {"mcpServers": {"team": demo("team"), "crm": demo("leads"), "jobs": demo("jobs")}}
    )
    async with Federation(config) as fed:
        yield fed


def text(fed: Federation, budget: int, unavailable: list[str] | None = None) -> str:
    return describe(Limits(), fed.tools, fed.namespaces, unavailable or [], budget)


async def test_full_catalog_within_the_budget(federation):
    full = text(federation, 8192)
    assert "await crm.score_lead(lead: dict) -> float  # Score a lead" in full
    assert "Limits per run: 30 s, 256 MB of memory, 1000 tool calls" in full
    assert text(federation, 8192) == full


async def test_names_only_past_the_budget_then_namespaces_only(federation):
    full = text(federation, 100_000)
    names = text(federation, len(full.encode()) - 1)
    assert "crm: get_company, get_leads, score_lead" in names
    assert "jobs: get_company_details, get_job_offers" in names
    assert "score_lead(lead: dict)" not in names
    assert 'tools.describe("namespace.tool")' in names
    assert len(names.encode()) < len(full.encode())
    tight = text(federation, len(names.encode()) - 1)
    assert "crm (3 tools), jobs (2 tools), team (2 tools)" in tight
    assert "get_company" not in tight.split("Namespaces")[1]
    # the budget can cut the catalog, never the guide on how to write programs
    assert text(federation, 10).startswith("Run a Python program")


async def test_unavailable_servers_are_named(federation):
    out = text(federation, 8192, unavailable=["jobs"])
    assert "Not connected: jobs." in out and "raise ToolError" in out
