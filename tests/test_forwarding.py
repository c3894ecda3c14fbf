"""Everything a downstream server says reaches the user: its log messages (tagged with its
name), the progress of a long call (in the execute_code progress stream), and its
questions (elicitation: a request in the handshake era, an input-required result in
2026-07-28), passed to the client that made the call and answered back. Driven through
`codemode serve` by the official `mcp` client in both protocol eras, against a fixture
server (tests/servers/chatty.py) spoken to in both eras too."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import mcp
import mcp_types as types
import pytest
from mcp.client.stdio import StdioServerParameters
from serve_client import no_user_config, text_of

CHATTY = str(Path(__file__).parent / "servers" / "chatty.py")
ERAS = ["legacy", "2026-07-28"]


def both_sides(test: Any) -> Any:
    """Run `test` for each era of our client (`mode`) by each of the downstream server
    (`protocol`)."""
    return pytest.mark.parametrize("protocol", ERAS)(pytest.mark.parametrize("mode", ERAS)(test))


def serve_params(tmp_path: Path, *flags: str, **options: Any) -> StdioServerParameters:
    config = {
        "mcpServers": {"chatty": {"command": sys.executable, "args": [CHATTY, *flags]}},
        "codemode": {"servers": {"chatty": options}},
    }
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "codemode", "serve", "--config", str(path)],
        env={**no_user_config(tmp_path), "CODEMODE_SHAPES_FILE": str(tmp_path / "shapes.json")},
    )


class Seen:
    """What the client was told: log messages, progress, questions (answered by `reply`)."""

    def __init__(self, reply: dict[str, Any] | None = None, delay_s: float = 0.0) -> None:
        self.logs: list[types.LoggingMessageNotificationParams] = []
        self.progress: list[tuple[float, str | None]] = []
        self.questions: list[Any] = []
        self.reply = reply or {"action": "accept", "content": {"ok": True, "note": "go"}}
        self.delay_s = delay_s

    async def on_log(self, params: types.LoggingMessageNotificationParams) -> None:
        self.logs.append(params)

    async def on_progress(self, progress: float, total: float | None, message: str | None):
        self.progress.append((progress, message))

    async def on_elicit(self, context: Any, params: Any) -> types.ElicitResult:
        self.questions.append(params)
        await asyncio.sleep(self.delay_s)
        return types.ElicitResult.model_validate(self.reply)


async def run(client: mcp.Client, seen: Seen, code: str) -> dict[str, Any]:
    result = await client.call_tool(
        "execute_code", {"code": code}, progress_callback=seen.on_progress
    )
    out = result.structured_content
    assert out is not None, text_of(result)
    out["text"] = text_of(result)
    return out


def connect(params: StdioServerParameters, mode: str, seen: Seen, elicit: bool = True):
    return mcp.Client(
        params, mode=mode, logging_callback=seen.on_log, log_level="info",
        elicitation_callback=seen.on_elicit if elicit else None,
    )  # fmt: skip


async def once(
    params: StdioServerParameters, mode: str, seen: Seen, code: str, elicit: bool = True
) -> dict[str, Any]:
    """One `codemode serve`, one client of `mode`, one program."""
    async with connect(params, mode, seen, elicit) as client:
        return await run(client, seen, code)


@both_sides
async def test_logs_progress_and_questions_reach_the_client(tmp_path, mode, protocol):
    """Both eras upstream (our client) by both eras downstream (chatty)."""
    seen = Seen()
    code = (
        "done = await chatty.steps(n=3)\nsaid = await chatty.confirm_either(what='tidy up')\n"
        "[done, said]"
    )
    out = await once(serve_params(tmp_path, protocol=protocol), mode, seen, code)
    assert out["error"] is None, out["text"]
    assert out["result"] == ["did 3 steps", "accept:go"]  # the answer reached the tool
    # log messages, tagged with the server's name (and its own logger's)
    tagged = [(m.level, m.logger, m.data) for m in seen.logs]
    assert ("info", "chatty", "starting 3 steps") in tagged
    assert ("warning", "chatty.worker", {"steps": 3, "careful": True}) in tagged
    # the downstream call's progress shows in execute_code's progress stream
    lines = [m or "" for _, m in seen.progress]
    assert any("chatty.steps: " in line and "of 3" in line for line in lines), lines
    values = [v for v, _ in seen.progress]
    assert values == sorted(values) and len(set(values)) == len(values)  # only ever grows
    # the question, saying which server asks, with the server's own form
    (question,) = seen.questions
    assert question.message == "MCP server 'chatty' asks: May chatty tidy up?"
    assert "ok" in question.requested_schema["properties"]


@pytest.mark.parametrize("mode", ERAS)
async def test_a_declined_question_is_the_servers_to_handle(tmp_path, mode):
    seen = Seen(reply={"action": "decline"})
    out = await once(serve_params(tmp_path), mode, seen, "await chatty.confirm(what='delete it')")
    assert out["error"] is None and out["result"] == "decline", out["text"]


@pytest.mark.parametrize("mode", ERAS)
async def test_a_url_question_names_the_address(tmp_path, mode):
    seen = Seen(reply={"action": "accept"})
    out = await once(serve_params(tmp_path), mode, seen, "await chatty.link()")
    assert out["error"] is None and out["result"] == "accept", out["text"]
    (question,) = seen.questions
    assert "https://example.invalid/sign-in" in question.message
    assert question.requested_schema["properties"] == {}


@both_sides
async def test_a_client_that_cannot_ask_gets_the_servers_refusal_path(tmp_path, mode, protocol):
    seen = Seen()
    code = (
        "try:\n    said = await chatty.confirm_either(what='x')\n"
        "except ToolError as e:\n    said = str(e)\nsaid"
    )
    out = await once(serve_params(tmp_path, protocol=protocol), mode, seen, code, elicit=False)
    assert out["error"] is None, out["text"]
    assert seen.questions == []
    if protocol == "legacy":  # the server's request is refused as by a client without it
        assert "Elicitation not supported" in out["result"]
    else:  # a 2026-07-28 input request is answered "cancel"
        assert out["result"] == "cancel"


async def test_a_persons_wait_is_not_the_calls_timeout(tmp_path):
    """call_timeout_s is 1 s, and the person takes 2 s: the call is not timed out."""
    seen = Seen(delay_s=2.0)
    params = serve_params(tmp_path, call_timeout_s=1)
    async with connect(params, "legacy", seen) as client:
        out = await run(client, seen, "await chatty.confirm(what='wait')")
        slow = await run(
            client, seen, "try:\n    await chatty.wait(ms=3000)\nexcept ToolError as e:\n"
            "    kind = e.kind\nkind",
        )  # fmt: skip
    assert out["error"] is None and out["result"] == "accept:go", out["text"]
    assert slow["result"] == "Timeout"  # without a question, the timeout still holds


async def test_a_question_that_could_be_anyones_is_refused(tmp_path):
    """Two programs call one stdio server at once: its question says not for which, so it
    is asked of no one (the server sees a refusal), and the other program is untouched."""
    seen = Seen()
    async with connect(serve_params(tmp_path), "legacy", seen) as client:
        waiting = asyncio.create_task(run(client, seen, "await chatty.wait(ms=4000)"))
        await asyncio.sleep(2.0)  # the first program's call is in flight
        asking = await run(
            client, seen,
            "try:\n    said = await chatty.confirm(what='x')\nexcept ToolError as e:\n"
            "    said = str(e)\nsaid",
        )  # fmt: skip
        first = await waiting
    assert seen.questions == []
    assert "2 codemode programs are calling this server at once" in asking["result"]
    assert first["error"] is None and first["result"] == 4000


@pytest.mark.parametrize("mode", ERAS)
async def test_a_server_that_speaks_only_2026_is_spoken_to_in_2026(tmp_path, mode):
    """protocol "auto": the handshake is refused, so the session opens in 2026-07-28, where
    the server's question comes back as an input-required result and is answered."""
    seen = Seen()
    async with connect(serve_params(tmp_path, "--modern-only"), mode, seen) as client:
        out = await run(
            client, seen, "[await chatty.steps(n=2), await chatty.confirm_either(what='go')]"
        )
    assert out["error"] is None, out["text"]
    assert out["result"] == ["did 2 steps", "accept:go"] and len(seen.questions) == 1
