"""Faults downstream and in the sandbox, end to end through a live `codemode serve`: each
gives a clear error naming what failed, the server keeps serving, and afterwards no child
process, thread or file descriptor is left over."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time

import pytest
from serve_client import Serve, children_of, faulty, proc_stats, text_of


@pytest.fixture(scope="module")
async def serve(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("faults")
    config = {
        "mcpServers": {
            "f": faulty(),
            "g": faulty("--garbage-at-start"),
            "x": faulty("--exit-at-start"),
        },
        "codemode": {
            "limits": {"timeout_s": 15},
            "workers": 2,
            "servers": {"f": {"call_timeout_s": 1.5}},
            "sessions": {"idle_expiry_s": 2},  # gone again before `nothing_left_over`
        },
    }
    async with Serve(config, tmp / "serve") as s:
        await s.run("return 1")
        s.baseline = proc_stats(s.pid)  # type: ignore[attr-defined]
        s.first_pid = s.pid  # type: ignore[attr-defined]
        s.baseline_children = len(children_of(s.pid, ""))  # type: ignore[attr-defined]
        yield s


def error_of(result) -> dict:
    out = result.structured_content
    assert out is not None and out["error"] is not None, text_of(result)
    return out["error"]


async def test_server_that_exits_at_start_is_named_with_its_stderr(serve):
    description = (await serve.session.list_tools()).tools[0].description or ""
    assert "Not connected: x." in description
    error = error_of(await serve.run("await x.anything()"))
    assert error["type"] == "ToolError"
    assert "'x'" in error["message"] and "missing API key FAULTY_TOKEN" in error["message"]


async def test_garbage_on_stdout_at_start_does_not_break_the_server(serve):
    result = await serve.run("await g.echo(value='fine')")
    out = result.structured_content
    if out["error"] is None:
        assert out["result"] == "fine"
    else:  # refused: then it says which server
        assert "'g'" in out["error"]["message"]
    assert (await serve.run("return 2")).structured_content["result"] == 2


async def test_crash_mid_call_names_the_server_then_restarts(serve):
    pid_before = (await serve.run("await f.pid()")).structured_content["result"]
    error = error_of(await serve.run("await f.crash()"))
    assert error["type"] == "ToolError"
    assert "'f'" in error["message"] and "crash" in error["message"]
    pid_after = (await serve.run("await f.pid()")).structured_content["result"]
    assert pid_after != pid_before  # restarted between calls, transparently


async def test_hung_call_times_out_naming_server_tool_and_limit(serve):
    started = time.monotonic()
    error = error_of(await serve.run("await f.hang()"))
    assert time.monotonic() - started < 6
    assert "call_timeout_s" in error["message"] and "hang" in error["message"]
    assert (await serve.run("await f.echo(value='after')")).structured_content["result"] == "after"


async def test_slow_calls_overlap(serve):
    started = time.monotonic()
    result = await serve.run("await asyncio.gather(*[f.slow(ms=800) for _ in range(10)])")
    assert result.structured_content["result"] == [800] * 10
    assert time.monotonic() - started < 3


async def test_fifty_megabyte_result_is_delivered_or_refused_clearly(serve):
    result = await serve.run("r = await f.big(mb=50)\nlen(r)")
    out = result.structured_content
    if out["error"] is None:
        assert out["result"] == 50 * 1024 * 1024
    else:
        assert out["error"]["type"] in ("ToolError", "MemoryError"), out["error"]
    assert (await serve.run("return 3")).structured_content["result"] == 3


async def test_worker_killed_mid_execution_is_reported_and_replaced(serve):
    await serve.run("return 0")
    workers = set(serve.workers())
    task = asyncio.create_task(serve.run("import time\ntime.sleep(5)\nreturn 'slept'"))
    await asyncio.sleep(1.0)
    for pid in workers:
        os.kill(pid, signal.SIGKILL)  # the busy one, and the idle one too
    error = error_of(await task)
    assert error["type"] == "WorkerDied" and "ended unexpectedly" in error["message"]
    assert (await serve.run("return 'replaced'")).structured_content["result"] == "replaced"


async def test_a_hundred_cancellations_in_a_row(serve):
    for _ in range(100):
        task = asyncio.create_task(serve.run("while True:\n    pass"))
        await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    result = await serve.run("return 'still serving'")
    assert result.structured_content["result"] == "still serving"


# -- the same faults, in a session (a kept instance of its own) ----------------------------


async def session_run(serve, code: str, name: str) -> dict:
    result = await serve.session.call_tool("execute_code", {"code": code, "session": name})
    out = result.structured_content
    assert out is not None, text_of(result)
    return out


async def test_faults_downstream_keep_a_sessions_variables(serve):
    await session_run(serve, "kept = 'still here'", "fs")
    for code in ("await f.crash()", "await f.hang()", "await f.error(message='no')"):
        out = await session_run(serve, code, "fs")
        assert out["error"]["type"] == "ToolError", out["error"]
    out = await session_run(serve, "[kept, await f.echo(value='after')]", "fs")
    assert out["result"] == ["still here", "after"], out


async def test_a_sessions_worker_killed_mid_call_is_reported_then_starts_fresh(serve):
    await session_run(serve, "kept = 1", "fk")
    task = asyncio.create_task(session_run(serve, "import time\ntime.sleep(5)", "fk"))
    await asyncio.sleep(1.0)
    for pid in serve.workers():
        os.kill(pid, signal.SIGKILL)  # the session's, and every other too
    out = await task
    assert out["error"]["type"] == "WorkerDied", out["error"]
    assert any("lost its state" in n for n in out["notes"]), out["notes"]
    again = await session_run(serve, "'kept' in globals()", "fk")
    assert again["result"] is False and any("lost its state" in n for n in again["notes"])


async def test_cancelled_session_calls_leave_the_server_and_the_session_usable(serve):
    await session_run(serve, "kept = 2", "fc")
    for _ in range(20):
        task = asyncio.create_task(session_run(serve, "while True:\n    pass", "fc"))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    out = await session_run(serve, "'kept' in globals()", "fc")
    assert out["error"] is None and out["result"] is False  # a cancel costs the state
    assert any("lost its state" in n for n in out["notes"]), out["notes"]
    assert (await session_run(serve, "kept = 3\nkept", "fc"))["result"] == 3


async def test_nothing_left_over(serve):
    await asyncio.sleep(1.0)  # replacement workers settle
    assert serve.pid == serve.first_pid
    after = proc_stats(serve.pid)
    before = serve.baseline
    assert after["fds"] - before["fds"] <= 2, (before, after)
    assert after["threads"] - before["threads"] <= 2, (before, after)
    deadline = time.monotonic() + 10
    while len(children_of(serve.pid, "")) > serve.baseline_children:
        listing = subprocess.run(
            ["ps", "-ww", "-o", "pid=,stat=,args=", "--ppid", str(serve.pid)],
            capture_output=True,
            text=True,
        ).stdout
        assert time.monotonic() < deadline, listing
        await asyncio.sleep(0.2)
