"""Per-caller fairness in the sandbox pool: when every worker is busy, waiting executions
are served one caller at a time in rotation, so one caller's burst of long programs does
not starve another's; and the time spent waiting is `queue_ms`, not `duration_ms`."""

from __future__ import annotations

import asyncio

from codemode.context import CallContext
from codemode.wasm_runtime import SandboxPool
from codemode.wasm_runtime._pool import FairLine

LONG = "import time\ntime.sleep(0.4)\n'done'"


async def test_a_burst_does_not_starve_another_caller():
    async with SandboxPool(size=1) as pool:
        await pool.start(workers=1)
        finished: list[str] = []

        async def one(who: str, n: int):
            result = await pool.execute(LONG, context=CallContext(identity=who))
            assert result.ok, result.error
            finished.append(f"{who}{n}")
            return result

        burst = [asyncio.create_task(one("alice", n)) for n in range(4)]
        await asyncio.sleep(0.1)  # alice's first runs, three of hers wait
        other = asyncio.create_task(one("bob", 0))
        results = await asyncio.gather(*burst, other)
    # bob waited for the one run under way, not for alice's whole queue
    assert finished.index("bob0") <= 2, finished
    last = results[3]
    assert last.stats.queue_ms > 800  # waited for the runs before it
    assert last.stats.duration_ms < last.stats.queue_ms  # and that is not its duration
    assert 350 < last.stats.duration_ms < 5000


def test_the_line_rotates_callers_and_keeps_order_within_one():
    line = FairLine()
    a1, a2, a3 = line.join("a"), line.join("a"), line.join("a")
    b1 = line.join("b")
    order = []
    for _ in range(4):
        ticket = next(t for t in (a1, a2, a3, b1) if line.first(t))
        order.append(ticket)
        line.served(ticket)
        line.leave(ticket)
    assert order == [a1, b1, a2, a3]
    # a caller who gives up leaves no hole
    c1, c2 = line.join("c"), line.join("d")
    line.leave(c1)
    assert line.first(c2)
