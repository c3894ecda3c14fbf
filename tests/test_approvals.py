"""Approvals: a call the config names waits for a person's yes, asked through MCP
elicitation, before anything is sent downstream. With the official `mcp` client in both
protocol eras (handshake-era `elicitation/create` requests; 2026-07-28 input-required
results and a resumed, never re-run program), against the npm memory server as the write
target: its JSONL file shows what was really created."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import mcp
import mcp_types as types
import pytest
from mcp.client.stdio import StdioServerParameters
from serve_client import NPM_BIN, HeldInTask, demo, faulty, no_user_config, serve_http, text_of

ERAS = ["legacy", "2026-07-28"]

Answerer = Callable[[types.ElicitRequestFormParams], Awaitable[types.ElicitResult]]


async def accept(params: Any) -> types.ElicitResult:
    return types.ElicitResult(action="accept", content={})


def entities(path: Path) -> list[str]:
    """The names of the entities the memory server really stored."""
    if not path.exists():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r["name"] for r in rows if r.get("type") == "entity"]


def create_call(*names: str) -> str:
    items = ", ".join(f"{{'name': {n!r}, 'entityType': 'test', 'observations': []}}" for n in names)
    return f"memory.create_entities(entities=[{items}])"


def create(*names: str) -> str:
    return f"await {create_call(*names)}"


class Client(HeldInTask):
    """`codemode serve` over stdio with an `mcp.Client` of one era whose elicitation
    callback is `self.answer` (replaceable per test); every question asked is recorded."""

    def __init__(self, workdir: Path, mode: str, codemode: dict[str, Any], elicit: bool = True):
        super().__init__()
        self.workdir = workdir
        self.mode = mode
        self.memory = workdir / "memory.jsonl"
        self.record = workdir / "record.txt"
        config = {
            "mcpServers": {
                "memory": {
                    "command": str(NPM_BIN / "mcp-server-memory"),
                    "env": {"MEMORY_FILE_PATH": str(self.memory)},
                },
                "team": demo("team"),
                "f": {**faulty(), "env": {"FAULTY_RECORD_FILE": str(self.record)}},
            },
            "codemode": codemode,
        }
        path = workdir / "config.json"
        path.write_text(json.dumps(config))
        self.params = StdioServerParameters(
            command=sys.executable,
            args=["-m", "codemode", "serve", "--config", str(path)],
            env={**no_user_config(workdir), "CODEMODE_SHAPES_FILE": str(workdir / "shapes.json")},
        )
        self.elicit = elicit
        self.answer: Answerer = accept
        self.asked: list[types.ElicitRequestFormParams] = []
        self.client: mcp.Client

    async def _elicited(self, context: Any, params: Any) -> types.ElicitResult:
        self.asked.append(params)
        return await self.answer(params)

    async def _run(self, ready: asyncio.Future[None]) -> None:
        callback = self._elicited if self.elicit else None
        try:
            async with mcp.Client(
                self.params, mode=self.mode, elicitation_callback=callback
            ) as client:
                self.client = client
                ready.set_result(None)
                await self._stop.wait()
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(exc)
            raise

    async def run(self, code: str, **arguments: Any) -> dict[str, Any]:
        self.asked.clear()
        result = await self.client.call_tool("execute_code", {"code": code, **arguments})
        out = result.structured_content
        assert out is not None, text_of(result)
        out["text"] = text_of(result)
        return out


@pytest.fixture(scope="module", params=ERAS)
async def writes(request, tmp_path_factory):
    """A server where every memory tool not marked readOnlyHint needs approval (all of
    its tools: it marks none read-only), and the program's timeout is 3 s."""
    workdir = tmp_path_factory.mktemp(f"approvals-{request.param}")
    codemode = {
        "approve": "writes",
        "servers": {"team": {"approve": []}},  # a server's own setting wins: none here
        "approval_timeout_s": 4,
        "limits": {"timeout_s": 3},
    }
    async with Client(workdir, request.param, codemode) as client:
        yield client


async def test_an_approved_call_goes_through_and_is_marked(writes):
    out = await writes.run(f"{create('approved-1')}\nlen(await team.get_team_members())")
    assert out["error"] is None, out["text"]
    assert "approved-1" in entities(writes.memory)
    (asked,) = writes.asked  # the team server's call was not asked about
    assert "'create_entities' on the server 'memory'" in asked.message
    assert "approved-1" in asked.message and 'codemode.approve is "writes"' in asked.message
    if writes.mode == "legacy":  # the full call in _meta too (2026-07-28 carries none)
        assert asked.meta["codemode/call"]["arguments"]["entities"][0]["name"] == "approved-1"
    assert "full_arguments" not in asked.requested_schema["properties"]  # short: shown whole
    assert out["stats"]["approvals"] == {
        "asked": 1, "granted": 1, "declined": 0, "waited_ms": out["stats"]["approvals"]["waited_ms"]
    }  # fmt: skip
    marks = {c["tool"]: c["approved"] for c in out["calls"]}
    assert marks == {"memory.create_entities": True, "team.get_team_members": False}
    assert "1 approval asked (1 granted, 0 declined)" in out["text"]


@pytest.mark.parametrize("action", ["decline", "cancel"])
async def test_a_declined_call_is_a_catchable_error_and_nothing_is_sent(writes, action):
    async def refuse(params: Any) -> types.ElicitResult:
        return types.ElicitResult(action=action)

    writes.answer = refuse
    name = f"refused-{action}"
    try:
        out = await writes.run(
            f"try:\n    {create(name)}\nexcept ToolError as e:\n    caught = [e.kind, str(e)]\n"
            f"caught"
        )
    finally:
        writes.answer = accept
    assert out["error"] is None, out["text"]
    kind, message = out["result"]
    assert kind == "Declined" and "was not sent" in message
    assert ("declined" if action == "decline" else "dismissed") in message
    assert name not in entities(writes.memory)
    assert out["stats"]["approvals"]["declined"] == 1
    assert out["calls"][0]["approved"] is False and out["calls"][0]["ok"] is False


async def test_uncaught_declines_fail_the_program_with_the_kind(writes):
    writes.answer = lambda p: asyncio.sleep(0, types.ElicitResult(action="decline"))
    try:
        out = await writes.run(create("uncaught"))
    finally:
        writes.answer = accept
    assert out["error"]["kind"] == "Declined", out["error"]
    assert "uncaught" not in entities(writes.memory)


async def test_long_arguments_are_shortened_and_reachable_in_full(writes):
    note = "x" * 5000
    code = (
        "await memory.create_entities(entities=[{'name': 'long-1', 'entityType': 't', "
        f"'observations': [{note!r}]}}])"
    )
    out = await writes.run(code)
    assert out["error"] is None, out["text"]
    (asked,) = writes.asked
    assert "(5,000 characters)" in asked.message and note not in asked.message
    assert len(asked.message) < 2000
    full = asked.requested_schema["properties"]["full_arguments"]["default"]
    assert json.loads(full)["entities"][0]["observations"] == [note]


def recorded(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


async def test_several_approvals_in_flight_at_once(writes):
    # (the memory server loses concurrent writes, each rewriting its file: this test
    # writes through `f.record`, which appends)
    async def by_entry(params: Any) -> types.ElicitResult:
        refuse = '"many-2"' in params.message
        return types.ElicitResult(action="decline" if refuse else "accept")

    writes.answer = by_entry
    try:
        out = await writes.run(
            "await f.peek()\nresults = await asyncio.gather("
            + ", ".join(f"f.record(entry='many-{i}')" for i in range(4))
            + ", return_exceptions=True)\n"
            "[r.kind if isinstance(r, ToolError) else 'ok' for r in results]"
        )
    finally:
        writes.answer = accept
    assert out["error"] is None, out["text"]
    assert out["result"] == ["ok", "ok", "Declined", "ok"]
    assert sorted(e for e in recorded(writes.record) if e.startswith("many-")) == [
        "many-0", "many-1", "many-3"
    ]  # fmt: skip
    assert len(writes.asked) == 4  # f.peek is marked readOnlyHint: not asked
    assert out["stats"]["approvals"] == {**out["stats"]["approvals"], "asked": 4, "granted": 3}


async def test_approving_the_rest_of_the_run_asks_once_per_tool(writes):
    async def rest(params: Any) -> types.ElicitResult:
        return types.ElicitResult(action="accept", content={"rest_of_run": True})

    writes.answer = rest
    try:
        out = await writes.run("\n".join(create(f"rest-{i}") for i in range(3)))
        again = await writes.run(create("rest-next-run"))
    finally:
        writes.answer = accept
    assert out["error"] is None, out["text"]
    assert len(out["calls"]) == 3 and all(c["approved"] for c in out["calls"])
    assert out["stats"]["approvals"]["asked"] == 1
    assert again["stats"]["approvals"]["asked"] == 1  # the next run asks again


async def test_time_waiting_for_a_person_is_not_the_programs(writes):
    async def slowly(params: Any) -> types.ElicitResult:
        await asyncio.sleep(3.5)  # longer than timeout_s (3), shorter than the approval's 4
        return types.ElicitResult(action="accept")

    writes.answer = slowly
    try:
        out = await writes.run(f"{create('slow-1')}\n'done'")
    finally:
        writes.answer = accept
    assert out["error"] is None and out["result"] == "done", out["text"]
    assert out["stats"]["approvals"]["waited_ms"] >= 3000
    assert "slow-1" in entities(writes.memory)
    # the program's own time still counts: a loop that spins is stopped at timeout_s
    spin = await writes.run("while True:\n    pass")
    assert spin["error"]["kind"] == "Timeout"


async def test_an_unanswered_approval_times_out_and_nothing_is_sent(writes):
    async def never(params: Any) -> types.ElicitResult:
        await asyncio.sleep(6)  # past approval_timeout_s (4)
        return types.ElicitResult(action="accept")

    writes.answer = never
    started = time.monotonic()
    try:
        result = await writes.client.call_tool(
            "execute_code", {"code": f"{create('late-1')}\n'finished'"}
        )
    finally:
        writes.answer = accept
    out = result.structured_content
    assert out is not None and result.is_error, text_of(result)
    if writes.mode == "legacy":  # the program hears of it, and could go on
        assert out["error"]["kind"] == "ApprovalTimeout"
        assert "codemode.approval_timeout_s (4 s)" in out["error"]["message"]
    else:  # the paused program was stopped; the late retry is told so
        assert out["error"]["kind"] == "ApprovalTimeout"
        assert "cannot be resumed" in out["error"]["message"]
    assert time.monotonic() - started < 15
    await asyncio.sleep(0.5)
    assert "late-1" not in entities(writes.memory)
    # and the server goes on serving
    assert (await writes.run("1 + 1"))["result"] == 2


async def test_approvals_in_a_session_keep_its_variables(writes):
    first = await writes.run(f"kept = 'before'\n{create('in-session')}\nkept", session="ap")
    assert first["error"] is None and first["result"] == "before", first["text"]
    again = await writes.run("kept + '-after'", session="ap")
    assert again["result"] == "before-after"
    assert "in-session" in entities(writes.memory)


# -- a client that cannot be asked -----------------------------------------------------


@pytest.mark.parametrize("mode", ERAS)
async def test_a_client_without_elicitation_fails_closed(tmp_path, mode):
    codemode = {"servers": {"memory": {"approve": ["create_*"]}}}
    async with Client(tmp_path, mode, codemode, elicit=False) as c:
        out = await c.run(
            f"graph = await memory.read_graph()\ntry:\n    {create('never')}\n"
            "except ToolError as e:\n    caught = [e.kind, str(e)]\ncaught"
        )
    assert out["error"] is None, out["text"]
    kind, message = out["result"]
    assert kind == "ApprovalUnavailable"
    assert "'create_entities' matches 'create_*' in codemode.servers.memory.approve" in message
    assert "change codemode.servers.memory.approve" in message
    assert "never" not in entities(c.memory)


# -- 2026-07-28: the program is paused, then resumed, never re-run ----------------------


async def test_a_paused_program_is_resumed_where_it_stopped(tmp_path):
    codemode = {"servers": {"memory": {"approve": ["delete_*"]}}, "approval_timeout_s": 30}
    program = (
        "import random\nrun = f'run-{random.random()}'\n"
        "await memory.create_entities(entities=[{'name': run, 'entityType': 't', "
        "'observations': []}])\n"
        "await asyncio.gather(*(memory.delete_entities(entityNames=[f'gone-{i}']) "
        "for i in range(3)))\nrun"
    )
    async with Client(tmp_path, "2026-07-28", codemode) as c:
        session = c.client.session
        arguments = {"code": program}
        first = await session.call_tool("execute_code", arguments, allow_input_required=True)
        assert isinstance(first, types.InputRequiredResult), first
        assert len(first.input_requests or {}) == 3  # the three deletes, in one round
        # the program ran up to the approvals: its first call is already made, once
        (created,) = [n for n in entities(c.memory) if n.startswith("run-")]
        # a tampered request state is refused by the SDK's seal
        with pytest.raises(mcp.MCPError):
            await session.call_tool(
                "execute_code", arguments, request_state=first.request_state[:-4] + "AAAA",
                allow_input_required=True,
            )  # fmt: skip
        keys = sorted(first.input_requests or {})
        answers: dict[str, Any] = {keys[0]: types.ElicitResult(action="accept")}
        second = await session.call_tool(
            "execute_code", arguments, input_responses=answers,
            request_state=first.request_state, allow_input_required=True,
        )  # fmt: skip
        assert isinstance(second, types.InputRequiredResult)  # two still unanswered
        assert sorted(second.input_requests or {}) == keys[1:]
        rest = {k: types.ElicitResult(action="accept") for k in keys[1:]}
        final = await session.call_tool(
            "execute_code", arguments, input_responses=rest,
            request_state=second.request_state, allow_input_required=True,
        )  # fmt: skip
    assert isinstance(final, types.CallToolResult), final
    out = final.structured_content
    assert out is not None and out["error"] is None, text_of(final)
    assert out["result"] == created  # the run that made the first call is the one that ended
    assert [n for n in entities(c.memory) if n.startswith("run-")] == [created]
    assert out["stats"]["tool_calls"] == 4 and out["stats"]["approvals"]["granted"] == 3


def test_approval_settings_are_checked_with_the_fix(tmp_path):
    from codemode.config import parse_config
    from codemode.errors import ConfigError

    base = {"mcpServers": {"m": {"command": "x"}}}
    for bad in ("write", [""], 3):
        with pytest.raises(ConfigError) as info:
            parse_config({**base, "codemode": {"servers": {"m": {"approve": bad}}}})
        assert 'must be "writes"' in str(info.value) and "codemode.servers.m.approve" in str(
            info.value
        )
    config = parse_config({**base, "codemode": {"approve": "all"}})
    assert config.codemode.approve == "all" and config.codemode.approval_timeout_s == 300


async def test_the_description_names_the_tools_that_ask(writes):
    (tool,) = (await writes.client.list_tools()).tools
    line = next(x for x in (tool.description or "").splitlines() if "approve them first" in x)
    # "writes": every memory tool not marked readOnlyHint, f's tools but peek; team: none
    assert "f.* except f.peek" in line and "memory.* except memory.open_nodes" in line
    assert "team." not in line and '"Declined"' in line


async def test_approvals_over_stateless_http_in_the_2026_era(tmp_path):
    """Over HTTP a 2026-07-28 client has no back channel at all: the input-required round
    trip is the only way to ask, and the sealed state is all that ties the retry to the
    paused program."""
    record = tmp_path / "record.txt"
    config = tmp_path / "config.json"
    config.write_text(json.dumps({
        "mcpServers": {"f": {**faulty(), "env": {"FAULTY_RECORD_FILE": str(record)}}},
        "codemode": {"servers": {"f": {"approve": ["record"]}}},
    }))  # fmt: skip
    asked: list[str] = []

    async def answer(context: Any, params: Any) -> types.ElicitResult:
        asked.append(params.message)
        return types.ElicitResult(action="decline" if '"no"' in params.message else "accept")

    with serve_http(config, no_user_config(tmp_path)) as url:
        async with mcp.Client(url, mode="2026-07-28", elicitation_callback=answer) as client:
            code = (
                "first = await f.record(entry='yes')\n"
                "try:\n    await f.record(entry='no')\nexcept ToolError as e:\n    second = e.kind\n"
                "[first, second]"
            )
            result = await client.call_tool("execute_code", {"code": code})
    out = result.structured_content
    assert out is not None and out["error"] is None, text_of(result)
    assert out["result"] == [1, "Declined"] and recorded(record) == ["yes"]
    assert len(asked) == 2 and out["stats"]["approvals"]["asked"] == 2


async def test_a_round_answered_in_full_waits_for_the_program_to_end():
    """The retry that answers every question: the program goes on (its next call may
    take a while) and the round ends with its result, never with an empty round."""
    from codemode.context import Question
    from codemode.server._approvals import PausedRun
    from codemode.server._channel import Channel

    run = PausedRun(30, Channel())

    async def program() -> str:
        answer = await run.ask(Question("May I?", {"type": "object", "properties": {}}))
        await asyncio.sleep(0.3)  # the approved call, slower than a round's settling
        return answer.action

    run.task = asyncio.get_running_loop().create_task(program())
    first = await run.next_round()
    assert first is not None and len(first) == 1
    run.answer({key: {"action": "accept"} for key in first})
    assert await run.next_round() is None
    assert run.task.done() and run.task.result() == "accept"
