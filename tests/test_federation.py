"""Downstream federation against real MCP servers over stdio and HTTP: ours and third-party."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time

import pytest
from serve_client import BIN, FAULTY, NPM_BIN, children_of, demo, faulty

from codemode.config import parse_config
from codemode.errors import ToolCallError
from codemode.server import ToolBridge
from codemode.tool_adapters import Federation, render_catalog


def children(marker: str = "faulty.py") -> set[int]:
    """Child processes of this test process whose command line contains `marker`."""
    return set(children_of(os.getpid(), marker))


BRIEF_EXPENSES = """
import asyncio
team = await get_team_members()
expenses = await asyncio.gather(*[get_expenses(m["id"], "Q3") for m in team])
exceeded = [m for m, exp in zip(team, expenses) if sum(e["amount"] for e in exp) > 10000]
return {"exceeded_count": len(exceeded), "list": [m["name"] for m in exceeded]}
"""

BRIEF_LEADS = """
leads = await get_leads(query="unqualified")
results = []
for lead in leads:
    score = await score_lead(lead)
    if score > 0.8:
        company = await get_company(lead.company_id)
        results.append({"lead": lead.id, "score": score, "company": company.name})
return results
"""

BRIEF_JOBS = """
import asyncio, json
offers = await get_job_offers()
companies = await asyncio.gather(*[get_company_details(o.company_id) for o in offers])
tech_offers = [o for o, c in zip(offers, companies) if 'tech' in c.industry.lower()]
best_offer = max(tech_offers, key=lambda o: o.salary)
print(json.dumps({
    "offer": best_offer.to_dict(),
    "company": companies[offers.index(best_offer)].to_dict(),
    "salary": best_offer.salary,
}))
"""


@pytest.fixture(scope="module")
async def brief():
    config = parse_config(
        {"mcpServers": {"team": demo("team"), "crm": demo("leads"), "jobs": demo("jobs")}}
    )
    async with Federation(config) as fed:
        yield ToolBridge(fed)


async def test_brief_expense_workflow_runs_unchanged(pool, brief):
    from codemode.demo import data

    r = await pool.execute(BRIEF_EXPENSES, brief)
    assert r.ok, r.error
    expected = [
        m["name"]
        for m in data.team(20)
        if sum(e["amount"] for e in data.expenses(m["id"], "Q3")) > 10000
    ]
    assert r.result == {"exceeded_count": len(expected), "list": expected}
    assert 0 < len(expected) < 20
    assert r.stats.tool_calls == 21 and r.stats.bytes_from_tools > 10 * r.stats.bytes_returned


async def test_brief_lead_workflow_with_attribute_access(pool, brief):
    r = await pool.execute(BRIEF_LEADS, brief, pool.limits.replace(timeout_s=60))
    assert r.ok, r.error
    assert r.result and all(item["score"] > 0.8 for item in r.result)


async def test_brief_job_offer_workflow_prints_json(pool, brief):
    import json

    r = await pool.execute(BRIEF_JOBS, brief)
    assert r.ok, r.error
    printed = json.loads(r.stdout)
    assert "tech" in printed["company"]["industry"].lower()
    assert printed["salary"] == printed["offer"]["salary"]


async def test_namespaces_and_bare_globals(pool, brief):
    r = await pool.execute(
        "[len(await team.get_team_members()), (await crm.get_company('c001')).id]", brief
    )
    assert r.ok and r.result == [20, "c001"]
    assert "await team.get_expenses(member_id: str, quarter: str)" in render_catalog(
        brief.federation.tools
    )


async def test_bad_argument_names_parameter_expected_type_and_value(pool, brief):
    r = await pool.execute("await get_expenses(42, 'Q3')", brief)
    assert r.error.type == "ToolError"
    assert (
        r.error.message == "team.get_expenses(): parameter 'member_id' expected a str, got 42 (int)"
    )
    assert r.error.details["kind"] == "InvalidArguments"


async def test_tool_error_carries_server_message(pool, brief):
    r = await pool.execute("await get_expenses('nobody', 'Q3')", brief)
    assert r.error.type == "ToolError" and "no team member with id 'nobody'" in r.error.message


async def test_failing_server_does_not_stop_others_and_reports_stderr(pool):
    config = parse_config({"mcpServers": {"ok": faulty(), "bad": faulty("--exit-at-start")}})
    async with Federation(config) as fed:
        status = fed.status()
        assert status["ok"] is None
        assert "missing API key FAULTY_TOKEN" in status["bad"]
        r = await pool.execute("await bad.anything()", ToolBridge(fed))
        assert r.error.type == "ToolError" and "FAULTY_TOKEN" in r.error.message
        r = await pool.execute("await ok.echo('hi', times=2)", ToolBridge(fed))
        assert r.result == "hihi"


async def test_garbage_on_stdout_at_start_is_survived_or_reported():
    config = parse_config(
        {
            "mcpServers": {"g": faulty("--garbage-at-start")},
            "codemode": {"servers": {"g": {"connect_timeout_s": 10}}},
        }
    )
    async with Federation(config) as fed:
        if fed.status()["g"] is None:
            assert await fed.call_tool("g", "echo", {"value": "x"}) == "x"
        else:
            assert fed.status()["g"]


async def test_crash_mid_call_then_restart_on_next_call():
    async with Federation(parse_config({"mcpServers": {"f": faulty()}})) as fed:
        first_pid = await fed.call_tool("f", "pid")
        with pytest.raises(ToolCallError) as err:
            await fed.call_tool("f", "crash")
        assert err.value.kind == "ServerUnavailable" and "crashing on purpose" in err.value.message
        second_pid = await fed.call_tool("f", "pid")
        assert second_pid != first_pid and fed.connections["f"].restarts == 1


async def test_hung_call_times_out_naming_server_tool_and_limit():
    config = parse_config(
        {"mcpServers": {"f": faulty()}, "codemode": {"servers": {"f": {"call_timeout_s": 0.5}}}}
    )
    async with Federation(config) as fed:
        started = time.monotonic()
        with pytest.raises(ToolCallError) as err:
            await fed.call_tool("f", "hang")
        assert time.monotonic() - started < 3
        assert err.value.kind == "Timeout"
        assert "f.hang" in err.value.message and "call_timeout_s" in err.value.message
        assert await fed.call_tool("f", "echo", {"value": "still"}) == "still"


async def test_slow_calls_run_concurrently(pool):
    async with Federation(parse_config({"mcpServers": {"f": faulty()}})) as fed:
        r = await pool.execute(
            "await asyncio.gather(*[f.slow(300) for _ in range(10)])", ToolBridge(fed)
        )
        assert r.ok and r.result == [300] * 10
        assert r.stats.duration_ms < 1500


async def test_ten_megabyte_result_and_mixed_content(pool):
    async with Federation(parse_config({"mcpServers": {"f": faulty()}})) as fed:
        r = await pool.execute("len(await f.big(10))", ToolBridge(fed))
        assert r.ok and r.result == 10 * 1024 * 1024
        mixed = await fed.call_tool("f", "mixed")
        assert mixed[0] == "caption"
        assert (
            mixed[1]["type"] == "image"
            and mixed[1]["mime_type"] == "image/png"
            and mixed[1]["size"] == 24
        )


async def test_hyphenated_name_as_snake_case_and_through_call_tool(pool):
    async with Federation(parse_config({"mcpServers": {"f": faulty()}})) as fed:
        code = "[await f.weird_name(4), await weird_name(some_value=5), await call_tool('f', 'weird-name', {'some_value': 6})]"
        r = await pool.execute(code, ToolBridge(fed))
        assert r.ok and r.result == [8, 10, 12], r.error


async def test_tools_list_changed_refreshes_the_catalog():
    async with Federation(parse_config({"mcpServers": {"f": faulty()}})) as fed:
        changed = asyncio.Event()

        async def listener() -> None:
            changed.set()

        fed.on_tools_changed(listener)
        assert "f.late_tool()" not in render_catalog(fed.tools)
        assert await fed.call_tool("f", "add_tool") == "added"
        await asyncio.wait_for(changed.wait(), 5)
        assert "f.late_tool()" in render_catalog(fed.tools)
        assert await fed.call_tool("f", "late_tool") == "late"


async def test_allow_and_deny_lists_block_with_the_rule():
    config = parse_config(
        {
            "mcpServers": {"f": faulty()},
            "codemode": {"servers": {"f": {"deny": ["cra*", "hang"]}}},
        }
    )
    async with Federation(config) as fed:
        assert "crash" not in render_catalog(fed.tools) and "echo" in render_catalog(fed.tools)
        with pytest.raises(ToolCallError) as err:
            await fed.call_tool("f", "crash")
        assert err.value.kind == "PolicyBlocked" and "'cra*'" in err.value.message


async def test_read_only_mode_exposes_only_read_only_tools_and_names_the_rule():
    for codemode in ({"read_only": True}, {"servers": {"f": {"read_only": True}}}):
        async with Federation(
            parse_config({"mcpServers": {"f": faulty()}, "codemode": codemode})
        ) as fed:
            assert [t.name for t in fed.tools] == ["peek"]
            assert await fed.call_tool("f", "peek") == "peeked"
            with pytest.raises(ToolCallError) as err:
                await fed.call_tool("f", "echo", {"value": "x"})
            assert err.value.kind == "PolicyBlocked"
            assert "read_only is on" in err.value.message and "'echo'" in err.value.message
    # a server's own setting overrides the global one
    config = {
        "mcpServers": {"f": faulty()},
        "codemode": {"read_only": True, "servers": {"f": {"read_only": False}}},
    }
    async with Federation(parse_config(config)) as fed:
        assert await fed.call_tool("f", "echo", {"value": "x"}) == "x"


async def test_calls_per_minute_caps_name_the_rule(pool):
    config = parse_config(
        {
            "mcpServers": {"f": faulty(), "g": faulty()},
            "codemode": {
                "max_tool_calls_per_minute": 5,
                "servers": {"f": {"max_calls_per_minute": 2}},
            },
        }
    )
    async with Federation(config) as fed:
        code = """
results = []
for server in (f, f, f, g, g, g, g):
    try:
        results.append(await server.echo(value="ok"))
    except ToolError as exc:
        results.append(str(exc))
results
"""
        r = await pool.execute(code, ToolBridge(fed))
        assert r.ok, r.error
        assert r.result[:2] == ["ok", "ok"]
        assert "codemode.servers.f.max_calls_per_minute is 2" in r.result[2]
        assert r.result[3:6] == ["ok", "ok", "ok"]  # 5 allowed in all: f twice, g three times
        assert "codemode.max_tool_calls_per_minute is 5" in r.result[6]
        # blocked calls do not count: the window still holds exactly five calls
        assert sum(len(w) for k, w in fed.policy._recent.items() if k == "*") == 5


async def test_shutdown_leaves_no_child_process():
    before = children()
    config = parse_config({"mcpServers": {f"s{i}": faulty() for i in range(4)}})
    async with Federation(config) as fed:
        assert all(v is None for v in fed.status().values())
        assert len(children() - before) >= 4
    await asyncio.sleep(0.2)
    assert children() - before == set()


@pytest.fixture
def http_server():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, FAULTY, "--http-port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    yield f"http://127.0.0.1:{port}/mcp"
    proc.kill()
    proc.wait()


async def test_streamable_http_downstream(pool, http_server):
    config = parse_config({"mcpServers": {"web": {"url": http_server}}})
    async with Federation(config) as fed:
        assert fed.status() == {"web": None}
        r = await pool.execute("await asyncio.gather(web.echo('a'), web.slow(10))", ToolBridge(fed))
        assert r.ok and r.result == ["a", 10], r.error


# -- third-party servers, installed by .ci/run (PyPI and npm) ---------------------------


async def test_third_party_time_server_from_pypi(pool):
    config = parse_config(
        {
            "mcpServers": {
                "time": {
                    "command": str(BIN / "mcp-server-time"),
                    "args": ["--local-timezone", "UTC"],
                }
            }
        }
    )
    async with Federation(config) as fed:
        assert fed.status() == {"time": None}, fed.status()
        r = await pool.execute(
            "(await time.get_current_time(timezone='UTC'))['timezone']", ToolBridge(fed)
        )
        assert r.ok and r.result == "UTC", r.error


async def test_third_party_git_server_from_pypi(pool, tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "a.txt").write_text("hello\n")
    subprocess.run([*git, "add", "a.txt"], check=True)
    subprocess.run([*git, "commit", "-qm", "first commit"], check=True)
    config = parse_config(
        {
            "mcpServers": {
                "git": {"command": str(BIN / "mcp-server-git"), "args": ["--repository", str(repo)]}
            }
        }
    )
    async with Federation(config) as fed:
        assert fed.status() == {"git": None}, fed.status()
        r = await pool.execute(f"await git.git_log(repo_path={str(repo)!r})", ToolBridge(fed))
        assert r.ok and "first commit" in str(r.result), r.error


async def test_third_party_everything_server_with_hyphenated_names(pool):
    config = parse_config(
        {"mcpServers": {"everything": {"command": str(NPM_BIN / "mcp-server-everything")}}}
    )
    async with Federation(config) as fed:
        assert fed.status() == {"everything": None}, fed.status()
        names = [t.name for t in fed.tools]
        assert any("-" in n for n in names), names
        r = await pool.execute("await everything.echo(message='hi')", ToolBridge(fed))
        assert r.ok and "hi" in str(r.result), r.error
        hyphenated = next(t for t in fed.tools if "-" in t.name)
        assert hyphenated.py_name == hyphenated.name.replace("-", "_")


async def test_third_party_filesystem_server(pool, tmp_path):
    (tmp_path / "notes.txt").write_text("codemode was here\n")
    config = parse_config(
        {
            "mcpServers": {
                "fs": {"command": str(NPM_BIN / "mcp-server-filesystem"), "args": [str(tmp_path)]}
            }
        }
    )
    async with Federation(config) as fed:
        assert fed.status() == {"fs": None}, fed.status()
        r = await pool.execute(
            f"await fs.read_text_file(path={str(tmp_path / 'notes.txt')!r})", ToolBridge(fed)
        )
        assert r.ok and "codemode was here" in str(r.result), r.error


async def test_third_party_memory_server(pool, tmp_path):
    config = parse_config(
        {
            "mcpServers": {
                "mem": {
                    "command": str(NPM_BIN / "mcp-server-memory"),
                    "env": {"MEMORY_FILE_PATH": str(tmp_path / "m.json")},
                }
            }
        }
    )
    async with Federation(config) as fed:
        assert fed.status() == {"mem": None}, fed.status()
        code = """
await mem.create_entities(entities=[{"name": "Ada", "entityType": "person", "observations": ["wrote code"]}])
graph = await mem.read_graph()
[e["name"] for e in graph["entities"]]
"""
        r = await pool.execute(code, ToolBridge(fed))
        assert r.ok and r.result == ["Ada"], r.error
