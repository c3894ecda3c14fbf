"""The tool bridge: calls cross in batches, run concurrently, and results flow as they come."""

from __future__ import annotations

import asyncio
import contextvars
import json

import pytest

from codemode.wasm_runtime import FunctionSpec, Param, SandboxPool


async def test_gather_of_20_calls_crosses_in_one_batch(run):
    r = await run("await asyncio.gather(*[echo(i) for i in range(20)])")
    assert r.ok and r.result == list(range(20))
    # one or two waits carry all 20; a call-at-a-time bridge would need 20 or more
    assert r.stats.crossings <= 4, r.stats


async def test_gather_of_100_slow_calls_runs_concurrently(run, host):
    r = await run("await asyncio.gather(*[sleep_ms(200, i) for i in range(100)])")
    assert r.ok and r.result == list(range(100))
    starts = [t for kind, _, t in host.log if kind == "start"]
    ends = [t for kind, _, t in host.log if kind == "end"]
    # all 100 started before the first one finished
    assert max(starts) < min(ends)


async def test_early_result_lets_its_task_continue_while_slow_calls_run(run, host):
    code = """
async def chain(first_ms, tag):
    await sleep_ms(first_ms, tag + "-1")
    return await sleep_ms(10, tag + "-2")
await asyncio.gather(chain(20, "fast"), chain(400, "slow"))
"""
    r = await run(code)
    assert r.ok and r.result == ["fast-2", "slow-2"]
    events = {(kind, tag): t for kind, tag, t in host.log}
    del events  # tags are in results; use the ordered log instead
    fast_second_start = next(
        t for i, (kind, target, t) in enumerate(host.log) if kind == "start" and i >= 2
    )
    slow_first_end = [t for kind, target, t in host.log if kind == "end"][-2:]
    # the fast chain's second call started long before the slow chain's first call ended
    assert fast_second_start < max(slow_first_end) - 0.2


async def test_tool_call_limit_names_the_limit(run):
    code = """
results = await asyncio.gather(*[echo(i) for i in range(8)], return_exceptions=True)
[type(x).__name__ for x in results], str(results[-1])
"""
    r = await run(code, max_tool_calls=5)
    assert r.ok, r.error
    kinds, message = r.result
    assert kinds == ["int"] * 5 + ["ToolError"] * 3
    assert "max_tool_calls" in message and "5" in message


async def test_max_concurrent_calls_is_respected(run, host):
    r = await run(
        "await asyncio.gather(*[sleep_ms(30) for i in range(12)])", max_concurrent_calls=3
    )
    assert r.ok
    running = peak = 0
    for kind, _, _ in host.log:
        running += 1 if kind == "start" else -1
        peak = max(peak, running)
    assert peak == 3


async def test_malformed_messages_to_the_host_functions_are_refused_safely(run):
    code = """
from wit_world.imports import host
out = []
for batch in ['not json', '{"a": 1}', '[1, 2, 3]', '[{"id": "x"}]', '[{"id": 7, "target": 5}]', '[' * 10000]:
    out.append(host.wait(batch, 0))
out.append(host.wait("", 0))
out.append(host.wait("[]", 1))
out
"""
    r = await run(code, timeout_s=5)
    assert r.ok, r.error
    assert all(isinstance(x, str) for x in r.result)
    assert (await run("await echo('still fine')")).result == "still fine"


async def test_calls_run_concurrently_across_executions(pool: SandboxPool, host):
    code = "await sleep_ms(300)\n1"
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    results = await asyncio.gather(pool.execute(code, host), pool.execute(code, host))
    assert all(r.ok for r in results)
    assert loop.time() - t0 < 0.55  # two workers: side by side, not one after the other


async def test_results_cross_with_their_text_and_structure_intact(run):
    # Values cross embedded in the reply's JSON: non-ASCII text, quotes, nesting and null
    # arrive as sent, and bytes are counted as UTF-8. A lone surrogate (valid in a Python
    # str, not in UTF-8) crosses both ways without breaking the sandbox, and leaves it as
    # U+FFFD, because neither the component model nor an MCP client's JSON can carry it.
    value = {"text": 'héllo ✓ 日本 "q" \\ \n', "lone": "\ud800", "nested": [{"a": None}], "n": 1.5}
    r = await run(
        f"v = await echo({value!r})\n[v, v.nested[0].a, v.lone == '\\ud800', await echo(None)]"
    )
    assert r.ok, r.error
    assert r.result == [{**value, "lone": "\ufffd"}, None, True, None]
    sent = json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")
    assert r.stats.bytes_from_tools == len(sent) + len(b"null")


async def test_a_lone_surrogate_in_an_error_or_the_output_does_not_break_the_sandbox(run):
    r = await run("print('out \\ud800')\nraise ValueError('bad \\udfff')")
    assert r.error is not None and r.error.type == "ValueError", r.error
    assert r.error.message == "bad \ufffd"
    assert r.stdout.startswith("out ")
    assert (await run("'\\ud800 ok'")).result == "\ufffd ok"


class _ChangingHost:
    """A host whose catalog changes between runs: as a tuple it keeps (as ToolBridge
    does) or as a new list on every call."""

    def __init__(self, as_tuple: bool) -> None:
        self.as_tuple = as_tuple
        self.names = ("alpha",)

    def functions(self):
        specs = [FunctionSpec(n, n, (Param("x", True),), f"{n}(x)", "") for n in self.names]
        return tuple(specs) if self.as_tuple else specs

    async def call(self, target, args, context=None):
        return f"{target}:{args['x']}"


@pytest.mark.parametrize("as_tuple", [True, False])
async def test_a_changed_catalog_reaches_every_worker_and_an_old_one_comes_back(as_tuple):
    # A worker keeps the last catalog it was sent, and its next instance is prepared
    # with it: each run must still see the catalog of its own moment.
    host = _ChangingHost(as_tuple)
    see = "[n for n in ('alpha', 'beta', 'gamma') if n in globals()], await {}(1)"
    async with SandboxPool(size=2) as pool:
        await pool.start(workers=2)
        for names in [("alpha",), ("beta", "gamma"), ("alpha",), ("alpha",), ("gamma",)]:
            host.names = names
            # two at once: both workers serve this catalog, whatever they held before
            runs = await asyncio.gather(
                *(pool.execute(see.format(names[-1]), host) for _ in range(2))
            )
            for r in runs:
                assert r.ok, r.error
                assert r.result == [list(names), f"{names[-1]}:1"]


async def test_a_session_sees_a_new_catalog_and_keeps_its_names(pool):
    host = _ChangingHost(True)
    kept = await pool.keep_instance()
    try:
        r = await kept.run("mine = 41\nawait alpha(1)", host)
        assert r.ok and r.result == "alpha:1", r.error
        host.names = ("beta",)
        r = await kept.run("[mine + 1, 'alpha' in globals(), await beta(2)]", host)
        assert r.ok and r.result == [42, False, "beta:2"], r.error
    finally:
        await kept.close()


REQUEST = contextvars.ContextVar("request", default="none")


class _ContextHost:
    """Reads the caller's context var in each call, and sets its own in each."""

    def functions(self):
        return (FunctionSpec("who", "who", (Param("i", True),), "who(i)", ""),)

    async def call(self, target, args, context=None):
        seen = REQUEST.get()
        REQUEST.set(f"call {args['i']}")  # in the call's own context: never the others'
        await asyncio.sleep(0.01)
        return [seen, REQUEST.get()]


async def test_tool_calls_run_in_the_callers_context_each_in_a_copy_of_its_own(pool):
    # Calls start in the frame reader's callback; they must still see the caller's
    # context (its trace, its request), and a call's own changes stay its own.
    REQUEST.set("request 7")
    r = await pool.execute("await asyncio.gather(*[who(i) for i in range(3)])", _ContextHost())
    assert r.ok, r.error
    assert r.result == [["request 7", f"call {i}"] for i in range(3)]
    assert REQUEST.get() == "request 7"
