"""Memory kept resident between runs (`codemode.resident_mb`, off by default): each run
still starts in a new instance whose memory is the build's heap image, reset in place by
wasmtime's pooling allocator instead of mapped anew. Nothing of one run may reach the next, in either worker,
and the reset has to spare the next run its page faults (what it is for)."""

from __future__ import annotations

import asyncio
import os

import pytest
from conftest import RecordingHost, proc_stat

from codemode.config import parse_config
from codemode.errors import ConfigError
from codemode.server import Engine
from codemode.wasm_runtime import SandboxPool

pytestmark = pytest.mark.skipif(
    not os.path.exists("/proc/self/stat"), reason="reads a worker's page faults from /proc"
)

WRITES = """\
import builtins, json, random, re, sys
re.compile("leak-marker-[0-9]+")
json.leaked = 1
builtins.leaked = 2
sys.modules["leak_module"] = sys
sys.setrecursionlimit(321)
random.seed(7)
held = ["leak-%d" % i * 4 for i in range(200_000)]  # grows the heap past the image
len(held)
"""
READS = """\
import builtins, json, random, re, sys
caches = [v for k, v in vars(re).items() if "cache" in k.lower()]
[
    any("leak-marker" in repr(c) for c in caches),
    hasattr(json, "leaked"),
    hasattr(builtins, "leaked"),
    "leak_module" in sys.modules,
    sys.getrecursionlimit() == 321,
    random.random() == random.Random(7).random(),
]
"""


@pytest.mark.parametrize("worker", ["native", "python"])
async def test_a_run_finds_nothing_of_the_last_one_in_a_reset_memory(monkeypatch, worker):
    monkeypatch.setenv("CODEMODE_WORKER", worker)
    host = RecordingHost()
    async with SandboxPool(size=1, quick_start=False, resident_mb=32) as pool:
        for _ in range(3):  # the same slot, reset each time
            wrote = await pool.execute(WRITES, host)
            assert wrote.ok and wrote.result == 200_000, wrote.error
            read = await pool.execute(READS, host)
            assert read.ok and read.result == [False] * 6, (read.result, read.error)
        # a memory limit hit in one run is not carried into the next
        limits = pool.limits.replace(memory_mb=64)
        over = await pool.execute("x = bytearray(200 * 1024 * 1024)", host, limits)
        assert not over.ok and over.error.limit == "memory_mb"
        again = await pool.execute("len(bytearray(40 * 1024 * 1024))", host, limits)
        assert again.ok and again.result == 40 * 1024 * 1024, again.error


def _minor_faults(pid: int) -> int:
    return int(proc_stat(pid)[7])


async def _faults_per_run(resident_mb: int) -> float:
    """A worker's minor page faults over 8 runs of a small program (each run and the
    preparing of the instance after it)."""
    host = RecordingHost()
    code = (
        "import json\nrows = [{'id': i, 'name': str(i)} for i in range(500)]\nlen(json.dumps(rows))"
    )
    async with SandboxPool(size=1, quick_start=False, resident_mb=resident_mb) as pool:
        for _ in range(3):
            assert (await pool.execute(code, host)).ok
        (pid,) = pool.worker_pids
        await asyncio.sleep(0.2)  # the next instance is prepared
        before = _minor_faults(pid)
        for _ in range(8):
            assert (await pool.execute(code, host)).ok
            await asyncio.sleep(0.05)
        return (_minor_faults(pid) - before) / 8


async def test_memory_kept_resident_spares_each_run_its_page_faults(monkeypatch):
    monkeypatch.setenv("CODEMODE_WORKER", "native")
    mapped_anew = await _faults_per_run(0)
    kept = await _faults_per_run(32)
    assert mapped_anew > 100, mapped_anew  # a new mapping faults in what a run touches
    assert kept < mapped_anew / 4, (kept, mapped_anew)


def test_the_setting_reaches_the_pool_and_bad_values_are_refused_by_name():
    config = parse_config({"mcpServers": {}, "codemode": {"resident_mb": 32}})
    assert Engine(config).pool.resident_bytes == 32 << 20
    assert Engine(parse_config({"mcpServers": {}})).pool.resident_bytes == 0  # the default
    with pytest.raises(ConfigError, match="resident_mb"):
        parse_config({"mcpServers": {}, "codemode": {"resident_mb": -1}})
