"""The two sandbox workers: the native one (`worker.c`, built with the machine's C
compiler) and its Python twin (`_worker.py`, where none is found). They take the same
arguments, speak the same frames and must give the same results: the same programs run
through both here and their answers are compared field by field."""

from __future__ import annotations

import logging
import os
import shutil
import struct
from pathlib import Path

import pytest
from conftest import RecordingHost

from codemode.errors import WorkerError
from codemode.wasm_runtime import SandboxPool, _native
from codemode.wasm_runtime import _protocol as P
from codemode.wasm_runtime._process import WorkerProcess

pytestmark = pytest.mark.skipif(
    not os.path.exists("/proc/self/cmdline"), reason="reads /proc to tell the workers apart"
)

CASES = [
    ("result", "1 + 1", {}),
    ("text both ways", "print('héllo 🦀')\n'é' * 3", {}),
    ("a lone surrogate in the code", "'\ud800'", {}),
    (
        "print to fd 1, bounded",
        "import os\nfor _ in range(20):\n    os.write(1, b'y' * 5000)",
        {"max_stdout_bytes": 1000},
    ),
    ("stderr too", "import sys\nprint('to stderr', file=sys.stderr)\n7", {}),
    ("sequential calls", "s = 0\nfor i in range(50):\n    s += await echo(i)\ns", {}),
    (
        "concurrent calls",
        "import asyncio\nawait asyncio.gather(*[sleep_ms(20, i) for i in range(30)])",
        {},
    ),
    ("a call that fails", "await fail('no such thing')", {}),
    ("a large value back", "len(await big(3_000_000))", {}),
    ("a timer", "import asyncio\nawait asyncio.sleep(0.05)\n'slept'", {}),
    ("cpu past the deadline", "while True:\n    pass", {"timeout_s": 0.5}),
    ("waiting past the deadline", "await sleep_ms(5000)", {"timeout_s": 0.5}),
    ("memory past the limit", "x = bytearray(400 * 1024 * 1024)", {"memory_mb": 64}),
    ("a limit below the sandbox's floor", "1 + 1", {"memory_mb": 4}),
    ("after that, a normal run", "6 * 7", {}),
    ("deep recursion", "def f(n):\n    return f(n + 1)\nf(0)", {}),
    ("a syntax error", "def (:", {}),
    ("an exception", "raise ValueError('bad value')", {}),
]


def _which(pid: int) -> str:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        args = f.read().split(b"\0")
    return "python" if any(a.endswith(b"_worker.py") for a in args) else "native"


def _answer(r) -> tuple:
    error = r.error
    return (
        r.ok,
        r.result,
        r.stdout,
        None if error is None else (error.type, error.kind, error.limit, error.message),
        sorted((c.tool, c.ok) for c in r.calls),
        r.stats.tool_calls,
    )


async def _run_all(monkeypatch, worker: str, resident_mb: int | None = None) -> dict[str, tuple]:
    monkeypatch.setenv("CODEMODE_WORKER", worker)
    host = RecordingHost()
    answers = {}
    async with SandboxPool(size=1, quick_start=False, resident_mb=resident_mb) as pool:
        await pool.start(workers=1)
        assert {_which(pid) for pid in pool.worker_pids} == {worker}
        for name, code, limits in CASES:
            r = await pool.execute(code, host, pool.limits.replace(**limits) if limits else None)
            answers[name] = _answer(r)
        kept = await pool.keep_instance()
        assert _which(kept.worker.proc.pid) == worker
        try:
            await kept.run("x = 41")
            answers["a kept instance"] = _answer(await kept.run("x + 1"))
        finally:
            await kept.close()
    return answers


async def test_both_workers_give_the_same_answers(monkeypatch):
    """And the same with memory kept resident between runs (`resident_mb`; the default
    maps each instance's memory anew)."""
    native = await _run_all(monkeypatch, "native")
    assert native["result"][1] == 2 and native["a kept instance"][1] == 42  # they ran
    assert native["cpu past the deadline"][3][0] == "TimeoutError"
    assert "did not run" in native["a limit below the sandbox's floor"][3][3]
    for worker, resident_mb in (("python", None), ("native", 32), ("python", 32)):
        other = await _run_all(monkeypatch, worker, resident_mb)
        for name in native:
            assert native[name] == other[name], (worker, resident_mb, name)


async def test_an_unknown_worker_choice_is_refused_by_name(monkeypatch):
    monkeypatch.setenv("CODEMODE_WORKER", "rust")
    with pytest.raises(WorkerError, match=r"CODEMODE_WORKER='rust'.*native, python"):
        await _native.program()


@pytest.fixture
def no_compiler(monkeypatch, tmp_path):
    """A machine with no C compiler and no native worker built yet."""
    monkeypatch.setenv("CODEMODE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.delenv("CC", raising=False)
    monkeypatch.setattr(_native, "_built", {})
    monkeypatch.setattr(_native, "_why_python", "")


async def test_without_a_compiler_workers_run_in_python_said_once(no_compiler, monkeypatch, caplog):
    monkeypatch.delenv("CODEMODE_WORKER", raising=False)
    with caplog.at_level(logging.WARNING, "codemode.sandbox"):
        assert await _native.program() is None
        assert await _native.program() is None
    said = [r.getMessage() for r in caplog.records if r.name == "codemode.sandbox"]
    assert len(said) == 1 and "no C compiler" in said[0] and "run in Python" in said[0]
    native, why = _native.status()  # what `codemode doctor` reports
    assert native is None and "no C compiler" in why


async def test_asking_for_the_native_worker_without_a_compiler_says_why(no_compiler, monkeypatch):
    monkeypatch.setenv("CODEMODE_WORKER", "native")
    with pytest.raises(WorkerError, match="no C compiler"):
        await _native.program()


async def test_a_compiler_that_fails_is_reported_and_leaves_nothing(monkeypatch, tmp_path):
    failing = tmp_path / "cc"
    failing.write_text("#!/bin/sh\necho 'worker.c:1: error: this compiler refuses' >&2\nexit 3\n")
    failing.chmod(0o755)
    monkeypatch.setenv("CODEMODE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("CC", str(failing))
    monkeypatch.setenv("CODEMODE_WORKER", "native")
    monkeypatch.setattr(_native, "_built", {})
    with pytest.raises(WorkerError, match=r"cc could not build .*exit 3.*this compiler refuses"):
        await _native.program()
    leftovers = [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]
    assert leftovers == []


async def test_a_built_worker_is_reused_from_the_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("CODEMODE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("CODEMODE_WORKER", "native")
    monkeypatch.setattr(_native, "_built", {})
    first = await _native.program()
    assert first is not None and first.is_relative_to(tmp_path / "cache")
    stamp = first.stat().st_mtime_ns
    monkeypatch.setattr(_native, "_built", {})  # a new server process
    assert await _native.program() == first and first.stat().st_mtime_ns == stamp


async def test_cc_may_carry_words_of_its_own(monkeypatch, tmp_path):
    # CC="ccache gcc" and the like: the whole command, not its first word, compiles
    if not (shutil.which("env") and shutil.which("cc")):
        pytest.skip("needs env and cc")
    monkeypatch.setenv("CODEMODE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("CC", "env cc")
    monkeypatch.setenv("CODEMODE_WORKER", "native")
    monkeypatch.setattr(_native, "_built", {})
    built = await _native.program()
    assert built is not None and os.access(built, os.X_OK)


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"\x00" * 10,
        P.EXECUTE_HEAD.pack(1, 64 << 20, 1.0, 100, 0, 0) + struct.pack(">I", 1 << 30),
        P.EXECUTE_HEAD.pack(1, 64 << 20, 1.0, 100, 0, 1) + P.fields(b"id", b"1", b"{}"),
    ],
    ids=["empty", "short", "a field past the end", "a catalog missing"],
)
@pytest.mark.parametrize("kind", ["native", "python"])
async def test_a_worker_refuses_a_frame_it_cannot_read(pool, monkeypatch, payload, kind):
    # The parent writes every frame, but a worker must never read past what it was sent:
    # a frame it cannot read ends it with exit code 4 (the pool reports a death), never
    # a crash or a run of half a request.
    monkeypatch.setenv("CODEMODE_WORKER", kind)
    worker = await WorkerProcess.start(pool.artifact.compiled, 64 << 20, pool.artifact.strategy)
    try:
        assert _which(worker.proc.pid) == kind
        worker.send(P.EXECUTE, payload)
        assert await worker.proc.wait() == 4
    finally:
        await worker.kill()


async def test_the_native_worker_holds_its_socket_its_artifact_and_nothing_else(pool):
    # Its stdin and stdout are /dev/null (stdout may be the MCP channel; stderr is the
    # server's, for logs); besides, it holds its end of the socketpair and the compiled
    # artifact that wasmtime maps, and no other file of the server's.
    assert (await pool.execute("import asyncio\nawait asyncio.sleep(0.01)", None)).ok
    pid = pool.worker_pids[0]
    if _which(pid) != "native":
        pytest.skip("this machine runs the Python worker")
    fds = {int(fd): os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
    assert fds.pop(0) == "/dev/null" and fds.pop(1) == "/dev/null"
    fds.pop(2)
    sockets = [fd for fd, target in fds.items() if target.startswith("socket:")]
    assert len(sockets) == 1
    # (wasmtime's own event loop for WASI makes an epoll and an eventfd: not files)
    others = {t for fd, t in fds.items() if fd not in sockets and not t.startswith("anon_inode:")}
    assert others <= {str(pool.artifact.compiled)}, others
    assert Path(os.readlink(f"/proc/{pid}/exe")).name == _native.PROGRAM_NAME


@pytest.mark.parametrize("worker", ["native", "python"])
async def test_a_run_on_an_instance_made_for_it_keeps_its_own_deadline(monkeypatch, worker):
    # A run whose memory limit differs from the prepared instance's gets one made on its
    # path; that instance's warm-up has a deadline of its own, which must not become the
    # run's: a wait past timeout_s ends in the worker, which lives on (the pool's hard
    # deadline, timeout_s + 1 s, would kill and replace it).
    monkeypatch.setenv("CODEMODE_WORKER", worker)
    host = RecordingHost()
    async with SandboxPool(size=1, quick_start=False) as pool:
        await pool.start(workers=1)
        workers = set(pool.worker_pids)
        limits = pool.limits.replace(timeout_s=0.5, memory_mb=pool.limits.memory_mb + 64)
        r = await pool.execute("await sleep_ms(5000)", host, limits)
        assert not r.ok and r.error.type == "TimeoutError"
        assert set(pool.worker_pids) == workers  # the worker ended the run itself
        assert (await pool.execute("6 * 7", host)).result == 42


async def test_a_native_worker_that_does_not_start_gives_way_to_the_python_one(
    pool, monkeypatch, tmp_path, caplog
):
    # A cached program that does not run here (copied from another machine, cut short):
    # the worker starts in Python, the program is discarded (the next server builds it
    # again), and stderr says so.
    monkeypatch.setenv("CODEMODE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("CODEMODE_WORKER", raising=False)
    monkeypatch.setattr(_native, "_built", {})
    broken = tmp_path / "cache" / "worker" / _native.source_key()[:24] / _native.PROGRAM_NAME
    broken.parent.mkdir(parents=True)
    broken.write_text("#!/bin/sh\nexit 1\n")
    broken.chmod(0o755)
    with caplog.at_level(logging.WARNING, "codemode.sandbox"):
        worker = await WorkerProcess.start(pool.artifact.compiled, 64 << 20, pool.artifact.strategy)
    try:
        assert _which(worker.proc.pid) == "python"
        assert not broken.exists()
        said = [r.getMessage() for r in caplog.records if r.name == "codemode.sandbox"]
        assert any("did not start" in m and "run in Python" in m for m in said), said
    finally:
        await worker.kill()
    monkeypatch.setenv("CODEMODE_WORKER", "native")  # chosen: a failure is the answer
    monkeypatch.setattr(_native, "_built", {})
    broken.write_text("#!/bin/sh\nexit 1\n")
    broken.chmod(0o755)
    with pytest.raises(WorkerError, match="did not start"):
        await WorkerProcess.start(pool.artifact.compiled, 64 << 20, pool.artifact.strategy)
