"""`asyncio.gather` of tool calls (guest/_cm_gather): the calls go to the bridge without a
task each, and what the program sees is what stock gather gives it. Each program runs
twice in the real sandbox: as written (the batch path), and with every awaitable wrapped
in a coroutine of the program's own (which stock gather takes); the answers must match."""

from __future__ import annotations

import pytest

STOCK = """
async def _own(aw):
    return await aw

def _gather(*aws, **kw):
    return asyncio.gather(*[_own(a) for a in aws], **kw)
"""
BATCH = "_gather = asyncio.gather\n"

PROGRAMS = {
    "values in order": "await _gather(*[sleep_ms(30 - i, i) for i in range(30)])",
    "dict results keep their field access": (
        "r = await _gather(echo({'a': 1}), echo({'a': 2}))\n[x.a for x in r]"
    ),
    "errors in place": """
r = await _gather(echo(1), fail("no"), echo(3), fail("again"), return_exceptions=True)
[(type(x).__name__, getattr(x, "kind", None), str(x)) for x in r]
""",
    "the first error raised, the rest run on": """
try:
    await _gather(sleep_ms(50, 1), fail("first"), sleep_ms(10, 3))
except ToolError as e:
    caught = (e.kind, str(e))
await asyncio.sleep(0.1)
caught, await echo("after")
""",
    "an uncaught error is the program's": "await _gather(echo(1), fail('boom'))",
    "positional arguments' hint": """
try:
    await _gather(demo.add(1, 2), demo.add("x", 2))
except ToolError as e:
    hint = getattr(e, "_cm_hint", None)
hint
""",
    "cancelled": """
g = _gather(*[sleep_ms(300, i) for i in range(5)])
await asyncio.sleep(0.02)
g.cancel()
try:
    await g
    state = "finished"
except asyncio.CancelledError:
    state = "cancelled"
state, g.cancelled(), await echo("later")
""",
    "timed out by wait_for": """
try:
    await asyncio.wait_for(_gather(sleep_ms(500, 1), sleep_ms(500, 2)), 0.05)
    state = "finished"
except TimeoutError:
    state = "timed out"
state, await _gather(echo(1), echo(2))
""",
    "nested gathers": "await _gather(_gather(echo(1), echo(2)), _gather(echo(3)))",
    "the call limit in place": """
r = await _gather(*[echo(i) for i in range(6)], return_exceptions=True)
[type(x).__name__ for x in r]
""",
    "a deadline": "await _gather(*[sleep_ms(5000, i) for i in range(3)])",
    "many calls": "sum(await _gather(*[echo(i) for i in range(3000)]))",
}
LIMITS = {
    "the call limit in place": {"max_tool_calls": 4},
    "a deadline": {"timeout_s": 0.5},
    "many calls": {"max_tool_calls": 5000},
}


def _answer(r):
    error = r.error
    return (
        r.ok,
        r.result,
        error and (error.type, error.message, error.hint),
        r.stats.tool_calls,
    )


@pytest.mark.parametrize("name", list(PROGRAMS))
async def test_a_gather_of_calls_answers_as_stock_gather_does(run, name):
    code, limits = PROGRAMS[name], LIMITS.get(name, {})
    batch = await run(BATCH + code, **limits)
    stock = await run(STOCK + code, **limits)
    assert _answer(batch) == _answer(stock), (batch, stock)
    assert batch.notes == stock.notes
    if name == "a deadline":
        assert batch.error.type == "TimeoutError" and not batch.notes
    elif name != "an uncaught error is the program's":
        assert batch.ok, batch.error


async def test_a_gather_of_calls_takes_the_batch_path(run):
    # A stock gather returns a _GatheringFuture; the batch path gives a _BatchFuture, and
    # anything else passed to gather (a task, a coroutine of the program's) takes stock.
    code = """
async def mine():
    return 5
t = asyncio.ensure_future(echo(4))
kinds = [type(asyncio.gather(echo(1), echo(2))).__name__,
         type(asyncio.gather(echo(3), mine())).__name__,
         type(asyncio.gather(t)).__name__]
await asyncio.sleep(0)
kinds
"""
    r = await run(code)
    assert r.ok, r.error
    assert r.result == ["_BatchFuture", "_GatheringFuture", "_GatheringFuture"]


async def test_the_same_call_twice_gives_its_result_twice(run, host):
    r = await run("c = echo(7)\nawait asyncio.gather(c, c)")
    assert r.ok and r.result == [7, 7]
    assert [kind for kind, _, _ in host.log].count("start") == 1


async def test_a_gather_never_awaited_is_noted_and_its_calls_not_called_unawaited(run):
    code = (
        "g = asyncio.gather(*[sleep_ms(2000, i) for i in range(3)])\nawait asyncio.sleep(0)\n'done'"
    )
    r = await run(code)
    assert r.ok and r.result == "done"
    note = " ".join(r.notes)
    assert "3 tool call(s) of an asyncio.gather(...) were still running" in note, r.notes
    assert "never awaited" not in note


async def test_a_gathered_call_is_not_reported_as_never_awaited(run):
    r = await run("a = echo(1)\nb = echo(2)\nawait asyncio.gather(a)")
    assert r.ok and r.result == [1]
    note = " ".join(r.notes)
    assert "line 2: echo() was called without `await`" in note, r.notes  # b, and only b
    assert note.count("echo()") == 1, r.notes
