"""`codemode serve` end to end: a real MCP client, real downstream servers (ours, PyPI's and
npm's), real code in the real sandbox."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time

import jsonschema
import pytest
from mcp import types
from serve_client import BIN, NPM_BIN, Serve, children_of, demo, faulty, inspector, text_of

from codemode.demo import data
from codemode.server import OUTPUT_SCHEMA

EXPENSES = """\
import asyncio
team = await get_team_members()
expenses = await asyncio.gather(*[get_expenses(m["id"], "Q3") for m in team])
exceeded = [m for m, exp in zip(team, expenses) if sum(e["amount"] for e in exp) > 10000]
return {"exceeded_count": len(exceeded), "list": [m["name"] for m in exceeded]}
"""


def expected_overages() -> list[str]:
    return [
        m["name"]
        for m in data.team(20)
        if sum(e["amount"] for e in data.expenses(m["id"], "Q3")) > data.BUDGET
    ]


@pytest.fixture(scope="module")
async def serve(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serve")
    config = {
        "mcpServers": {
            "team": demo("team"),
            "crm": demo("leads"),
            "f": faulty(),
            "time": {"command": str(BIN / "mcp-server-time"), "args": ["--local-timezone", "UTC"]},
            "mem": {
                "command": str(NPM_BIN / "mcp-server-memory"),
                "env": {"MEMORY_FILE_PATH": str(tmp / "memory.json")},
            },
        },
        "codemode": {"limits": {"timeout_s": 20}, "workers": 2},
    }
    async with Serve(config, tmp / "main") as s:
        yield s


def check_structured(result: types.CallToolResult) -> dict:
    assert result.structured_content is not None
    jsonschema.validate(result.structured_content, OUTPUT_SCHEMA)
    return result.structured_content


async def test_one_tool_with_catalog_description_and_schemas(serve):
    listed = await serve.session.list_tools()
    assert [t.name for t in listed.tools] == ["execute_code"]
    tool = listed.tools[0]
    assert tool.input_schema["required"] == ["code"]
    assert tool.output_schema == OUTPUT_SCHEMA
    description = tool.description or ""
    for expected in (
        "asyncio.gather",
        "ToolError",
        "tools.search",
        "Limits per run: 20 s",  # the configured timeout, not the default
        "await team.get_expenses(member_id: str, quarter: str) -> list[dict]",
        "await time.get_current_time(",
        "await mem.create_entities(",
        "await f.weird_name(some_value: int) -> int",
    ):
        assert expected in description, expected
    assert len(description.encode()) <= 8192
    assert serve.init.capabilities.tools is not None
    assert serve.init.capabilities.tools.list_changed is True


async def test_brief_workflow_gives_result_text_and_structured_stats(serve):
    result = await serve.run(EXPENSES)
    assert not result.is_error, text_of(result)
    out = check_structured(result)
    names = expected_overages()
    assert out["result"] == {"exceeded_count": len(names), "list": names}
    assert out["error"] is None and out["stdout"] == ""
    assert out["stats"]["tool_calls"] == 21
    assert out["stats"]["bytes_from_tools"] > 20_000 > out["stats"]["bytes_returned"]
    assert {c["tool"] for c in out["calls"]} == {"team.get_team_members", "team.get_expenses"}
    assert all(c["ok"] for c in out["calls"])
    first_line = text_of(result).splitlines()[0]
    assert json.loads(first_line) == out["result"]


async def test_error_carries_type_message_and_line_of_the_code(serve):
    result = await serve.run("x = 1\ny = [x]\nz = y[5]\n")
    assert result.is_error
    out = check_structured(result)
    assert out["error"]["type"] == "IndexError"
    assert out["error"]["line"] == 3
    assert "line 3" in out["error"]["traceback"] and "z = y[5]" in out["error"]["traceback"]
    assert "IndexError" in text_of(result) and "line 3" in text_of(result)


async def test_downstream_tool_error_is_a_catchable_tool_error(serve):
    code = """
try:
    await f.error(message="card declined")
except ToolError as exc:
    caught = str(exc)
await get_expenses("nobody", "Q3")
"""
    result = await serve.run(code)
    out = check_structured(result)
    assert result.is_error and out["error"]["type"] == "ToolError"
    assert "no team member with id 'nobody'" in out["error"]["message"]
    assert out["error"]["line"] == 6
    assert [c["ok"] for c in out["calls"]] == [False, False]


async def test_bad_arguments_and_unknown_tool_are_clear_errors(serve):
    result = await serve.session.call_tool("execute_code", {"code": 5})
    assert result.is_error and "takes `code` (the Python program, a string)" in text_of(result)
    assert "Got: code (int)" in text_of(result)
    assert check_structured(result)["error"]["type"] == "InvalidArguments"
    result = await serve.session.call_tool("execute_code", {"code": "1", "timeout": 3})
    assert result.is_error and "timeout (int)" in text_of(result)
    result = await serve.session.call_tool("run_python", {"code": "1"})
    assert result.is_error and "one tool, 'execute_code'" in text_of(result)


async def test_printed_output_and_third_party_servers(serve):
    code = """
now = await time.get_current_time(timezone="UTC")
await mem.create_entities(entities=[{"name": "Ada", "entityType": "person", "observations": ["wrote code"]}])
graph = await mem.read_graph()
print("timezone", now["timezone"])
return [e["name"] for e in graph["entities"]]
"""
    result = await serve.run(code)
    out = check_structured(result)
    assert not result.is_error, out["error"]
    assert out["result"] == ["Ada"] and out["stdout"] == "timezone UTC\n"
    assert "printed:\ntimezone UTC" in text_of(result)


async def test_progress_notifications_count_tool_calls(serve):
    seen: list[float] = []

    async def progress(done: float, total: float | None, message: str | None) -> None:
        seen.append(done)

    code = "for i in range(12):\n    await f.slow(ms=60)\nreturn 'done'"
    result = await serve.run(code, progress_callback=progress)
    assert not result.is_error, text_of(result)
    assert len(seen) >= 2, seen
    assert seen == sorted(seen) and seen[0] >= 1
    assert seen[-1] == 12  # the final count is reported before the result


async def test_cancellation_stops_the_execution_and_frees_its_worker(serve):
    await serve.run("return 1")
    before = set(serve.workers())
    assert len(before) == 2
    task = asyncio.create_task(serve.run("while True:\n    pass"))
    await asyncio.sleep(1.5)
    assert not task.done()
    cancelled_at = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # the worker running the loop is killed at once (not after the 20 s timeout) ...
    while set(serve.workers()) >= before:
        assert time.monotonic() - cancelled_at < 5, "the busy worker was not stopped"
        await asyncio.sleep(0.05)
    # ... and replaced; the server keeps serving
    result = await serve.run("return sum(range(10))")
    assert not result.is_error and check_structured(result)["result"] == 45
    deadline = time.monotonic() + 10
    while len(serve.workers()) != 2:
        assert time.monotonic() < deadline, serve.workers()
        await asyncio.sleep(0.1)


async def test_downstream_list_changed_reaches_the_client(serve):
    description = (await serve.session.list_tools()).tools[0].description or ""
    assert "f.late_tool" not in description
    count = sum(isinstance(n, types.ToolListChangedNotification) for n in serve.notifications)
    result = await serve.run("await f.add_tool()")
    assert not result.is_error, text_of(result)
    deadline = time.monotonic() + 10
    while (
        sum(isinstance(n, types.ToolListChangedNotification) for n in serve.notifications) == count
    ):
        assert time.monotonic() < deadline, "no tools/list_changed reached the client"
        await asyncio.sleep(0.05)
    description = (await serve.session.list_tools()).tools[0].description or ""
    assert "await f.late_tool() -> str" in description
    result = await serve.run("await late_tool()")
    assert check_structured(result)["result"] == "late"


async def test_logs_go_to_stderr(serve):
    await serve.run("1/0")
    assert "execution failed: ZeroDivisionError" in serve.stderr()


# -- separate servers: no config, limits, determinism, raw stdout, http ----------------


async def test_no_config_still_serves_and_says_so(tmp_path):
    async with Serve(None, tmp_path / "bare") as s:
        tool = (await s.session.list_tools()).tools[0]
        assert "No downstream MCP servers are configured" in (tool.description or "")
        assert "no-user-config/codemode/config.json" in (tool.description or "")  # where it goes
        result = await s.run("import statistics\nstatistics.mean([3, 5, 10])")
        assert not result.is_error and check_structured(result)["result"] == 6


async def test_limits_from_config_stop_the_code_and_name_the_limit(tmp_path):
    config = {"mcpServers": {}, "codemode": {"limits": {"timeout_s": 1, "max_tool_calls": 3}}}
    async with Serve(config, tmp_path / "limits") as s:
        started = time.monotonic()
        result = await s.run("while True:\n    pass")
        assert time.monotonic() - started < 3
        out = check_structured(result)
        assert result.is_error and out["error"]["limit"] == "timeout_s"
        assert "timeout_s limit of 1 s" in text_of(result)
        result = await s.run("print('x' * 100_000)")
        assert "stdout truncated" in check_structured(result)["stdout"]
        result = await s.run("return 'still fine'")
        assert check_structured(result)["result"] == "still fine"


async def test_description_is_the_same_bytes_across_server_restarts(tmp_path):
    config = {"mcpServers": {"team": demo("team"), "crm": demo("leads"), "jobs": demo("jobs")}}
    texts = []
    for i in range(2):
        async with Serve(config, tmp_path / f"det{i}") as s:
            first = (await s.session.list_tools()).tools[0].description
            again = (await s.session.list_tools()).tools[0].description
            assert first == again
            texts.append(first)
    assert texts[0] == texts[1]


def raw_serve(config: dict, tmp_path, *calls: str) -> subprocess.Popen:
    """`codemode serve` with raw pipes, sent initialize and one tools/call per program in
    `calls` (ids 2, 3, ...)."""
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    proc = subprocess.Popen(
        [sys.executable, "-m", "codemode", "serve", "--config", str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    messages = [
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "raw", "version": "0"},
            },
        },
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
    ] + [
        {
            "jsonrpc": "2.0",
            "id": i,
            "method": "tools/call",
            "params": {"name": "execute_code", "arguments": {"code": code}},
        }
        for i, code in enumerate(calls, start=2)
    ]
    assert proc.stdin is not None
    for message in messages:
        proc.stdin.write(json.dumps(message) + "\n")
    proc.stdin.flush()
    return proc


def test_stdout_carries_only_protocol_messages(tmp_path):
    """Raw JSON-RPC over the pipes: every stdout line must be a protocol message, even
    when the code prints, downstream servers print garbage, and a server fails to start."""
    config = {
        "mcpServers": {
            "g": faulty("--garbage-at-start"),
            "x": faulty("--exit-at-start"),
            "f": faulty(),
        },
    }
    proc = raw_serve(
        config, tmp_path, "return 'listed'", "print('hello ' * 1000)\nawait f.echo(value='x')"
    )
    try:
        assert proc.stdin and proc.stdout
        answers = {}
        while 3 not in answers:
            line = proc.stdout.readline()
            assert line, "stdout closed early"
            message = json.loads(line)  # anything but JSON-RPC here is a failure
            assert message["jsonrpc"] == "2.0"
            if "id" in message:
                answers[message["id"]] = message
        result = answers[3]["result"]
        assert result["isError"] is False, result
        assert result["structuredContent"]["result"] == "x"
        assert result["structuredContent"]["stdout"].startswith("hello hello")
        proc.stdin.close()
        assert proc.wait(timeout=30) == 0
        assert proc.stdout.read() == ""
        stderr = proc.stderr.read() if proc.stderr else ""
        assert "failed to start" in stderr
    finally:
        proc.kill()


async def test_streamable_http_transport_on_localhost(tmp_path):
    from mcp.client.streamable_http import streamable_http_client

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"mcpServers": {"team": demo("team")}}))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "codemode",
            "serve",
            "--transport",
            "http",
            "--port",
            str(port),
            "--config",
            str(config),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline
                await asyncio.sleep(0.2)
        async with streamable_http_client(f"http://127.0.0.1:{port}/mcp") as (read, write):
            from mcp.client.session import ClientSession

            async with ClientSession(read, write) as session:
                await session.initialize()
                tools = (await session.list_tools()).tools
                assert [t.name for t in tools] == ["execute_code"]
                result = await session.call_tool(
                    "execute_code", {"code": "len(await get_team_members())"}
                )
                assert result.structured_content and result.structured_content["result"] == 20
    finally:
        proc.terminate()
        assert proc.wait(timeout=30) is not None
        out = proc.stdout.read() if proc.stdout else b""
        assert out == b"", out


def test_mcp_inspector_cli_lists_and_calls_the_tool(tmp_path):
    """The MCP Inspector (npm), in its CLI mode, as a third-party client."""
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"mcpServers": {"team": demo("team")}}))
    env = {**os.environ, "CODEMODE_CONFIG": str(config)}
    base = [
        *inspector(),
        "--cli",
        "-e",
        f"CODEMODE_CONFIG={config}",
        sys.executable,
        "-m",
        "codemode",
        "serve",
    ]
    listed = subprocess.run(
        [*base, "--method", "tools/list"], capture_output=True, text=True, timeout=120, env=env
    )
    assert listed.returncode == 0, listed.stderr
    assert [t["name"] for t in json.loads(listed.stdout)["tools"]] == ["execute_code"]
    called = subprocess.run(
        [
            *base,
            "--method",
            "tools/call",
            "--tool-name",
            "execute_code",
            "--tool-arg",
            "code=return len(await get_team_members())",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert called.returncode == 0, called.stderr
    answer = json.loads(called.stdout)
    assert answer["isError"] is False and answer["structuredContent"]["result"] == 20


def test_sigterm_stops_serve_and_its_children_promptly(tmp_path):
    """A client that terminates codemode (instead of closing stdin) leaves nothing behind."""
    proc = raw_serve({"mcpServers": {"team": demo("team"), "f": faulty()}}, tmp_path, "return 1")
    try:
        assert proc.stdin and proc.stdout
        while json.loads(proc.stdout.readline()).get("id") != 2:
            pass
        kids = children_of(proc.pid, "")
        assert len(kids) >= 3, kids  # two servers and at least one sandbox worker
        started = time.monotonic()
        proc.terminate()
        assert proc.wait(timeout=15) == 0
        assert time.monotonic() - started < 10
        time.sleep(0.5)
        alive = [
            k
            for k in kids
            if os.path.exists(f"/proc/{k}")
            and "zombie" not in open(f"/proc/{k}/status").read().lower()
        ]
        assert alive == [], alive
    finally:
        proc.kill()
