"""Limits: each one stops the code with an error naming it; the host is unaffected."""

from __future__ import annotations

import time

import pytest

from codemode.wasm_runtime import Limits


@pytest.mark.parametrize(
    "code",
    [
        "while True:\n    pass",
        "import time\ntime.sleep(10**9)",
        "import time\nwhile True:\n    time.sleep(0.001)",
        "import asyncio\nawait asyncio.sleep(10**6)",
        "import select\nselect.select([], [], [], 10**6)",
        "await sleep_ms(10**7)",
    ],
    ids=["cpu-loop", "time-sleep", "sleep-loop", "asyncio-sleep", "select", "slow-tool"],
)
async def test_timeout_always_returns_within_timeout_plus_one_second(run, code):
    started = time.monotonic()
    r = await run(code, timeout_s=1)
    elapsed = time.monotonic() - started
    assert elapsed < 2.0, elapsed
    assert not r.ok and r.error.limit == "timeout_s"
    assert "timeout_s" in r.error.message and "1 s" in r.error.message
    assert (await run("'next'")).result == "next"


async def test_output_before_a_timeout_is_kept(run):
    r = await run("print('started')\nwhile True:\n    pass", timeout_s=0.5)
    assert r.error.limit == "timeout_s" and r.stdout == "started\n"


async def test_memory_cap_raises_memory_error_in_the_code(run):
    code = """
try:
    blocks = [bytearray(10 * 1024 * 1024) for _ in range(100)]
    got = 'no error'
except MemoryError:
    got = 'MemoryError'
got
"""
    r = await run(code, memory_mb=64)
    assert r.ok and r.result == "MemoryError", r.error


async def test_uncaught_memory_error_names_the_limit(run):
    r = await run("x = 'a' * (512 * 1024 * 1024)", memory_mb=64)
    assert not r.ok and r.error.type == "MemoryError" and r.error.limit == "memory_mb"
    assert "64 MB" in r.error.message
    assert (await run("len('a' * 1000)")).result == 1000


async def test_a_memory_limit_below_the_sandboxs_own_floor_says_so_and_the_worker_lives(pool, run):
    # The guest's heap snapshot is ~21 MB: an instance cannot be made within less. The
    # code never runs; the answer says so and names the limit, and the worker serves the
    # next run (it once died making its next instance with the same limit).
    workers = set(pool.worker_pids)
    r = await run("1 + 1", memory_mb=4)
    assert not r.ok and r.error.type == "MemoryError" and r.error.limit == "memory_mb"
    assert "the code did not run" in r.error.message and "4 MB" in r.error.message
    assert "Raise memory_mb" in r.error.message
    for _ in range(2):
        assert (await run("6 * 7")).result == 42
    assert set(pool.worker_pids) == workers  # none died and was replaced


async def test_deep_recursion_is_a_recursion_error(run):
    r = await run("def f(n):\n    return f(n + 1)\nf(0)")
    assert not r.ok and r.error.type == "RecursionError"
    assert (await run("2")).result == 2


async def test_stdout_is_capped_with_a_visible_marker(run):
    r = await run("for i in range(100000):\n    print('line', i)", max_stdout_bytes=1000)
    assert r.ok
    assert len(r.stdout.encode()) < 1200
    assert "stdout truncated" in r.stdout and "max_stdout_bytes" in r.stdout


async def test_200_mb_print_flood_keeps_host_memory_bounded(run, pool):
    r = await run(
        "chunk = 'x' * (1024 * 1024)\nfor _ in range(200):\n    print(chunk)", timeout_s=20
    )
    assert r.ok, r.error
    assert len(r.stdout) < 70_000 and "209,715,400 more bytes" not in r.stdout[:10]
    assert "stdout truncated" in r.stdout


async def test_result_is_capped_with_a_visible_marker(run):
    r = await run("['x' * 100 for _ in range(1000)]", max_result_bytes=2000)
    assert r.ok
    assert isinstance(r.result, str) and "result truncated" in r.result
    assert "max_result_bytes" in r.result
    assert r.stats.bytes_returned < 2400


async def test_code_size_limit_is_checked_before_running(run):
    r = await run("x = 1\n" * 1000, max_code_bytes=100)
    assert r.error.type == "CodeTooLarge" and r.error.limit == "max_code_bytes"


def test_limits_reject_bad_values_by_name():
    with pytest.raises(ValueError, match="timeout_s"):
        Limits(timeout_s=0)
    with pytest.raises(ValueError, match="unknown limit"):
        Limits().replace(timeout=3)


async def test_cancelling_an_execution_frees_its_worker(pool, host):
    import asyncio

    task = asyncio.create_task(pool.execute("while True:\n    pass", host))
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    r = await asyncio.wait_for(pool.execute("'after cancel'", host), 10)
    assert r.result == "after cancel"
