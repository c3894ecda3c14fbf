"""A first start's compile begins before the server's imports (`_build.build_ahead`): the
pool that asks for the sandbox takes the running build over (one compile, its output,
its lock), the baseline's warm-up runs after the first answer, and a build nobody took
over is stopped at exit with nothing left behind."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import empty_cache_but_the_component, proc_stat
from serve_client import no_user_config

from codemode.wasm_runtime import SandboxPool, _build, _child, _pagecache
from codemode.wasm_runtime._engine import BASELINE, OPTIMIZED

fcntl = pytest.importorskip("fcntl")  # no cross-process lock: nothing is built ahead
pytestmark = pytest.mark.skipif(
    not os.path.exists("/proc/self/stat"), reason="reads the build child's state from /proc"
)

BASELINE_COMPILE = "compile: the component to native code (wasmtime, baseline)"
TAKEN_OVER = "started before the server's imports"


def _gone(pid: int) -> bool:
    return not os.path.exists(f"/proc/{pid}") or proc_stat(pid)[0] == "Z"


def _staging_left(cache: Path) -> list[str]:
    return [p.name for p in (cache / "sandbox").iterdir() if ".tmp" in p.name]


def _lock_is_free(cache: Path, strategy: str = BASELINE) -> bool:
    """Whether the build lock of `strategy`'s key is free (a new open file: it conflicts
    with a lock this process holds through another, as with another process's)."""
    lock = _child.lock_path(cache / "sandbox", _build.cache_key(strategy))
    with lock.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False
        fcntl.flock(handle, fcntl.LOCK_UN)
    return True


async def test_a_first_start_takes_over_the_build_started_ahead(pool, tmp_path, monkeypatch):
    empty_cache_but_the_component(pool, tmp_path, monkeypatch)
    try:
        assert _build.build_ahead()
        ahead = _build._ahead
        assert ahead is not None and ahead.staging.is_dir()
        assert not _build.build_ahead()  # one at a time
        messages: list[str] = []
        async with SandboxPool(size=1, progress=messages.append) as fresh:
            assert _build._ahead is None  # taken over, not started again
            assert ahead.proc.returncode == 0 and not ahead.staging.exists()
            assert messages.count(BASELINE_COMPILE) == 1, messages
            assert sum(TAKEN_OVER in m for m in messages) == 1, messages
            artifact = fresh.artifact
            assert artifact.strategy == BASELINE and artifact.built_now and not artifact.warm
            r = await fresh.execute("sum(i * i for i in range(1000))")
            assert r.ok and r.result == 332833500, r.error
            # the warm-up the first answer did not wait for runs in the background,
            # before the optimized compile, and the record holds the image's pages
            for _ in range(300):
                if _build._verified_cache[artifact.key].warm:
                    break
                await asyncio.sleep(0.1)
            assert _build._verified_cache[artifact.key].warm
            record = _pagecache._load(artifact.compiled.parent / _pagecache.RECORD_NAME)
            assert any(kind == "image" for kind, _ in record.values()), record
            assert not fresh.artifact.strategy == OPTIMIZED  # still compiling it
        # closed mid-compile: the optimized build's child is stopped, its staging removed
        assert _staging_left(tmp_path) == []
        assert _lock_is_free(tmp_path) and _lock_is_free(tmp_path, OPTIMIZED)
    finally:
        _build._abandon_ahead()


def _build_ahead_in_a_process(then: str) -> subprocess.CompletedProcess[str]:
    """A process that builds ahead, prints the child's pid and staging folder, then runs
    `then` and exits."""
    script = (
        "from codemode.wasm_runtime import _build\n"
        "assert _build.build_ahead()\n"
        "print(_build._ahead.proc.pid, _build._ahead.staging, flush=True)\n"
    ) + then
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )


def test_an_exit_stops_a_build_started_ahead_that_nobody_took_over(pool, tmp_path, monkeypatch):
    empty_cache_but_the_component(pool, tmp_path, monkeypatch)
    out = _build_ahead_in_a_process("")
    assert out.returncode == 0, out.stderr
    pid, staging = out.stdout.split()
    assert _gone(int(pid)), "the build child outlived its parent"
    assert not Path(staging).exists() and _staging_left(tmp_path) == []


def test_nothing_is_started_ahead_where_it_is_built_or_being_built(pool, tmp_path, monkeypatch):
    assert not _build.build_ahead()  # the session's cache holds the sandbox
    assert _build._ahead is None
    empty_cache_but_the_component(pool, tmp_path, monkeypatch)
    lock = _child.lock_path(tmp_path / "sandbox", _build.cache_key(BASELINE))
    with lock.open("a") as handle:  # another process builds it
        fcntl.flock(handle, fcntl.LOCK_EX)
        assert not _build.build_ahead()
    assert _build._ahead is None and _staging_left(tmp_path) == []
    # finished by another process between the cache's check and the lock: not started
    root = tmp_path / "sandbox"
    assert _child.start_ahead("k" * 24, root, BASELINE, lambda: True) is None
    assert _staging_left(tmp_path) == []


def test_a_build_child_ends_with_the_process_that_started_it(pool, tmp_path, monkeypatch):
    # a parent killed outright runs no exit hook: its build child must not compile on
    empty_cache_but_the_component(pool, tmp_path, monkeypatch)
    out = _build_ahead_in_a_process(
        "import os, signal, time\n"
        "time.sleep(1)\n"  # the child is past its start
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    assert out.returncode == -9, out.stderr
    pid = int(out.stdout.split()[0])
    for _ in range(100):
        if _gone(pid):
            break
        time.sleep(0.05)
    assert _gone(pid), "the build child outlived a parent that was killed"


def test_the_cli_answers_on_a_build_it_started_ahead(pool, tmp_path, monkeypatch):
    empty_cache_but_the_component(pool, tmp_path, monkeypatch)
    env = {**no_user_config(tmp_path), "CODEMODE_CACHE_DIR": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-m", "codemode", "run", "-c", "6 * 7"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "42"
    assert out.stderr.count(BASELINE_COMPILE) == 1, out.stderr
    assert out.stderr.count(TAKEN_OVER) == 1, out.stderr
    assert (tmp_path / "sandbox" / _build.cache_key(BASELINE)[:24] / _build.META_NAME).exists()
    assert _staging_left(tmp_path) == [] and _lock_is_free(tmp_path)
