"""Sessions: calls with the same `session` share module globals, each session in an
instance of its own, reachable only by the client that made it; with the official `mcp`
client in both protocol eras, over stdio and HTTP, against real downstream servers."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import mcp
import pytest
from mcp.client.stdio import StdioServerParameters
from serve_client import Serve, demo, faulty, no_user_config, serve_http, text_of

from codemode.demo import data

TEAM = data.team(20)


async def call(client: Any, code: str, **arguments: Any) -> dict[str, Any]:
    result = await client.call_tool("execute_code", {"code": code, **arguments})
    out = result.structured_content
    assert out is not None, text_of(result)
    out["text"] = text_of(result)
    return out


@pytest.fixture(scope="module")
async def serve(tmp_path_factory):
    config = {
        "mcpServers": {"team": demo("team"), "f": faulty()},
        "codemode": {
            "limits": {"timeout_s": 5},
            "sessions": {"max": 3, "idle_expiry_s": 4},
        },
    }
    async with Serve(config, tmp_path_factory.mktemp("sessions")) as s:
        yield s


async def test_a_session_keeps_names_functions_classes_and_imports(serve):
    c = serve.session
    out = await call(
        c,
        "import statistics\nmembers = await team.get_team_members()\n"
        "class Box:\n    size = 2\ndef count():\n    return len(members)\nlen(members)",
        session="keep",
    )
    assert out["result"] == len(TEAM) and out["session"]["name"] == "keep"
    out = await call(c, "[count(), Box.size, statistics.mean([1, 3])]", session="keep")
    assert out["error"] is None and out["result"] == [len(TEAM), 2, 2]
    assert out["session"]["calls"] == 2 and 0 < out["session"]["expires_in_s"] <= 4
    assert "session 'keep' call 2" in out["text"]


async def test_without_a_session_every_run_is_fresh(serve):
    await call(serve.session, "leftover = 1")
    out = await call(serve.session, "'leftover' in globals()")
    assert out["result"] is False and out["session"] is None


async def test_a_failed_call_keeps_what_it_assigned_and_reset_starts_anew(serve):
    c = serve.session
    out = await call(c, "before = 41\n1 / 0\nafter = 1", session="nb")
    assert out["error"]["type"] == "ZeroDivisionError"
    out = await call(c, "[before + 1, 'after' in globals()]", session="nb")
    assert out["result"] == [42, False]
    out = await call(c, "'before' in globals()", session="nb", reset=True)
    assert out["result"] is False and "was reset" in out["text"]


async def test_tool_functions_are_rebound_on_every_call(serve):
    c = serve.session
    await call(c, "team_size = len(await team.get_team_members())", session="tools")
    out = await call(c, "await f.add_tool()", session="tools")
    assert out["result"] == "added"
    for _ in range(50):  # the new tool reaches the catalog after the server's notice
        out = await call(c, "[team_size, await f.late_tool()]", session="tools")
        if out["error"] is None:
            break
        await asyncio.sleep(0.1)
    assert out["result"] == [len(TEAM), "late"], out["error"]
    # a name the program bound itself is its own, even if a namespace has it
    out = await call(c, "team = 'mine'\nteam", session="tools")
    assert (await call(c, "team", session="tools"))["result"] == "mine"


async def test_expiry_and_eviction_say_so_on_the_next_call(serve):
    c = serve.session
    await call(c, "x = 'old'", session="idle")
    await asyncio.sleep(5.5)
    out = await call(c, "x", session="idle")
    assert out["error"]["type"] == "CheckError"  # `x` is gone, and the note says why
    assert any("session 'idle' expired after 4 s idle" in n for n in out["notes"])
    for name in ("e1", "e2", "e3", "e4"):  # max is 3: the least recently used goes
        await call(c, f"v = {name!r}", session=name)
    out = await call(c, "v", session="e1")
    assert any("least recently used of 3 live sessions" in n for n in out["notes"])


async def test_a_session_that_runs_past_its_timeout_is_lost_and_says_so(serve):
    c = serve.session
    await call(c, "kept = 1", session="spin")
    out = await call(c, "while True:\n    pass", session="spin")
    assert out["error"]["kind"] == "Timeout", out["error"]
    assert any("lost its state" in n for n in out["notes"])
    out = await call(c, "'kept' in globals()", session="spin")
    assert out["result"] is False
    assert any("lost its state" in n for n in out["notes"])


async def test_sessions_do_not_see_each_others_objects(serve):
    c = serve.session
    await call(c, "secret_of_a = ['hunter2-' + 'session-a']", session="sa")
    code = (
        "import gc\n"
        "needle = 'hunter2-' + 'session-a'\n"
        "[sum(1 for o in gc.get_objects() if type(o) is list and needle in o), "
        "'secret_of_a' in globals()]"
    )
    assert (await call(c, code, session="sa"))["result"] == [1, True]  # the search works
    out = await call(c, code, session="sb")
    assert out["error"] is None and out["result"] == [0, False]  # and finds nothing of a's


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_sessions_work_in_both_protocol_eras_over_stdio(tmp_path, mode):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"mcpServers": {"team": demo("team")}}))
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "codemode", "serve", "--config", str(config)],
        env=no_user_config(tmp_path),
    )
    async with mcp.Client(params, mode=mode) as client:
        await call(client, "n = len(await team.get_team_members())", session="era")
        out = await call(client, "n * 2", session="era")
    assert out["error"] is None and out["result"] == 2 * len(TEAM)


# -- over HTTP: two clients, two eras ------------------------------------------------------


@pytest.fixture(scope="module")
def http_url(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("http-sessions")
    config = tmp / "config.json"
    config.write_text(json.dumps({"mcpServers": {"team": demo("team")}}))
    env = {**no_user_config(tmp), "CODEMODE_SHAPES_FILE": str(tmp / "shapes.json")}
    with serve_http(config, env) as url:
        yield url


async def test_two_http_clients_never_share_a_session_name(http_url):
    async with (
        mcp.Client(http_url, mode="legacy") as one,
        mcp.Client(http_url, mode="legacy") as two,
    ):
        await call(one, "mine = 'one'", session="shared")
        await call(two, "mine = 'two'", session="shared")
        assert (await call(one, "mine", session="shared"))["result"] == "one"
        assert (await call(two, "mine", session="shared"))["result"] == "two"


async def test_a_stateless_client_gets_an_unguessable_handle_to_pass(http_url):
    async with mcp.Client(http_url, mode="2026-07-28") as client:
        first = await call(client, "counter = 1", session="s")
        handle = first["session"]["handle"]
        assert handle.startswith("s.") and len(handle) > 20
        assert any(handle in n for n in first["notes"])
        # the bare name is not enough without a scope: it starts another session
        other = await call(client, "'counter' in globals()", session="s")
        assert other["result"] is False and other["session"]["handle"] != handle
        again = await call(client, "counter + 1", session=handle)
        assert again["result"] == 2 and again["session"]["handle"] == handle
        forged = await call(client, "'counter' in globals()", session="s.AAAAAAAAAAAAAAAAAAAAAAAA")
        assert forged["result"] is False and forged["session"]["handle"] != handle
    async with mcp.Client(http_url, mode="2026-07-28") as stranger:
        # another client that does know the handle reaches it: the handle is the secret
        assert (await call(stranger, "counter", session=handle))["result"] == 1


async def test_bad_session_arguments_are_refused_with_the_shape(serve):
    result = await serve.session.call_tool("execute_code", {"code": "1", "reset": True})
    assert result.is_error and "optionally `session`" in text_of(result)
    out = await call(serve.session, "1", session="has space")
    assert out["error"]["kind"] == "InvalidArguments" and "session name" in out["error"]["message"]


def test_the_description_teaches_sessions(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "codemode", "tools"], capture_output=True, text=True,
        env=no_user_config(Path(tmp_path)), timeout=60,
    )  # fmt: skip
    assert 'Pass `session: "name"`' in out.stdout and "`reset: true`" in out.stdout
