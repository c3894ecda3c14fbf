"""The build cache: keyed on everything the artifact depends on; bad files are rebuilt."""

from __future__ import annotations

import asyncio
import json
import shutil

import pytest
from conftest import empty_cache_but_the_component

from codemode.errors import ErrorKind, WorkerError
from codemode.wasm_runtime import Limits, SandboxPool, _build, _component


def test_cache_key_covers_versions_flags_and_guest_sources(monkeypatch, tmp_path):
    base = _build.cache_key()
    real_version = _build.dist_version
    monkeypatch.setattr(
        _build,
        "dist_version",
        lambda name: "0.0.0-other" if name == "wasmtime" else real_version(name),
    )
    assert _build.cache_key() != base
    monkeypatch.undo()
    monkeypatch.setitem(_build.ENGINE_FLAGS, "cranelift_opt_level", "none")
    assert _build.cache_key() != base
    monkeypatch.undo()
    assert _build.cache_key("baseline") != base
    guest = tmp_path / "guest"
    shutil.copytree(_build.GUEST_DIR, guest)
    monkeypatch.setattr(_component, "GUEST_DIR", guest)
    assert _build.cache_key() == base
    (guest / "sandbox_guest.py").write_text((guest / "sandbox_guest.py").read_text() + "\n# edit\n")
    assert _build.cache_key() != base


def test_versions_are_read_as_importlib_metadata_reads_them():
    from importlib import metadata

    for name in ("componentize-py", "wasmtime", "tzdata"):
        assert _component.dist_version(name) == metadata.version(name)


def test_a_checked_file_is_trusted_until_it_changes(pool, tmp_path, monkeypatch):
    folder = _copy_cache(pool, tmp_path)
    key = pool.artifact.key
    assert _build._verified(folder, key)  # a copy: a new inode, so checked in full
    stamp = json.loads((folder / _build.STAMP_NAME).read_text())
    assert stamp["key"] == key

    def no_hashing(path):
        raise AssertionError("the sha256 was computed again")

    monkeypatch.setattr(_build, "sha256_file", no_hashing)
    assert _build._verified(folder, key)  # the same file: the stamp stands for the check
    compiled = folder / _build.COMPILED_NAME
    compiled.write_bytes(compiled.read_bytes())  # rewritten: a new mtime
    with pytest.raises(AssertionError, match="computed again"):
        _build._verified(folder, key)


def _copy_cache(pool: SandboxPool, tmp_path):
    folder = pool.artifact.compiled.parent
    target = tmp_path / "sandbox" / folder.name
    shutil.copytree(folder, target)
    return target


def test_valid_copy_is_accepted_and_damaged_ones_are_not(pool, tmp_path):
    folder = _copy_cache(pool, tmp_path)
    key = pool.artifact.key
    assert _build._verified(folder, key)
    assert not _build._verified(folder, "another-key")
    compiled = folder / _build.COMPILED_NAME
    data = compiled.read_bytes()
    compiled.write_bytes(data[: len(data) // 2])  # truncated
    assert not _build._verified(folder, key)
    compiled.write_bytes(bytes(len(data)))  # same size, foreign content
    assert not _build._verified(folder, key)
    (folder / _build.META_NAME).write_text("{not json")
    assert not _build._verified(folder, key)


async def test_truncated_cache_is_rebuilt_and_then_runs(pool, tmp_path, monkeypatch):
    folder = _copy_cache(pool, tmp_path)
    compiled = folder / _build.COMPILED_NAME
    compiled.write_bytes(compiled.read_bytes()[:1000])
    monkeypatch.setenv("CODEMODE_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(_build, "_verified_cache", {})
    messages: list[str] = []
    async with SandboxPool(size=1, progress=messages.append, quick_start=False) as fresh:
        assert fresh.artifact.built_now and fresh.artifact.compiled == compiled
        result = await fresh.execute("6 * 7")
    assert result.result == 42
    assert any("discarding cached sandbox" in m for m in messages)
    meta = json.loads((folder / _build.META_NAME).read_text())
    assert meta["compiled_size"] == compiled.stat().st_size


async def test_a_bad_limit_is_not_a_bad_build_but_a_refused_file_is(pool, tmp_path, monkeypatch):
    # A pool that cannot start for a reason of its own, a memory limit below the
    # sandbox's floor, says why at once and leaves the cache alone (it once discarded a
    # good artifact and compiled it again, to fail the same way). A cached file that
    # passes its checksum but that wasmtime will not load (another wasmtime's, say: here,
    # bytes of the right size and a meta.json that vouches for them) is built anew.
    folder = _copy_cache(pool, tmp_path)
    key = _component.component_key()[:24]
    root = pool.artifact.compiled.parent.parent
    shutil.copytree(root / f"component-{key}", tmp_path / "sandbox" / f"component-{key}")
    monkeypatch.setenv("CODEMODE_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(_build, "_verified_cache", {})
    compiled = folder / _build.COMPILED_NAME
    before = compiled.stat().st_mtime_ns

    messages: list[str] = []
    with pytest.raises(WorkerError, match=r"below what the sandbox needs.*raise memory_mb"):
        async with SandboxPool(
            size=1, limits=Limits(memory_mb=4), progress=messages.append, quick_start=False
        ):
            pass
    assert not any("discarding" in m or "compil" in m for m in messages), messages
    assert compiled.stat().st_mtime_ns == before

    compiled.write_bytes(b"\x01" * compiled.stat().st_size)
    meta = json.loads((folder / _build.META_NAME).read_text())
    meta["compiled_sha256"] = _component.sha256_file(compiled)
    (folder / _build.META_NAME).write_text(json.dumps(meta))
    (folder / _build.STAMP_NAME).unlink(missing_ok=True)
    monkeypatch.setattr(_build, "_verified_cache", {})
    async with SandboxPool(size=1, progress=messages.append, quick_start=False) as fresh:
        assert fresh.artifact.built_now and fresh.artifact.compiled == compiled
        assert (await fresh.execute("6 * 7")).result == 42
    assert not any("componentize" in m for m in messages)  # only the compile was redone


async def test_an_empty_cache_starts_on_baseline_code_then_moves_to_optimized(
    pool, tmp_path, monkeypatch
):
    # The component is platform-independent and kept apart from the compiled code; with
    # it at hand, a start on an empty cache compiles baseline code (Winch) first, answers
    # on it, and moves its workers to the optimized code when that compile is done.
    empty_cache_but_the_component(pool, tmp_path, monkeypatch)
    messages: list[str] = []
    async with SandboxPool(size=1, progress=messages.append) as fresh:
        assert fresh.artifact.strategy == "baseline"
        assert any("component cached" in m for m in messages)
        assert not any("componentize" in m for m in messages)
        first_worker = fresh.worker_pids
        r = await fresh.execute("sum(i * i for i in range(1000))")
        assert r.ok and r.result == 332833500
        # the CPU deadline holds on baseline code too (epoch interruption)
        r = await fresh.execute("while True:\n    pass", limits=fresh.limits.replace(timeout_s=1))
        assert not r.ok and r.error.kind == ErrorKind.TIMEOUT, r.error
        for _ in range(600):
            if fresh.artifact.strategy == "optimized":
                break
            await asyncio.sleep(0.1)
        assert fresh.artifact.strategy == "optimized"
        r = await fresh.execute("sum(range(10))")
        assert r.ok and r.result == 45
        assert fresh.worker_pids and fresh.worker_pids != first_worker
        worker = fresh._idle[0]
        assert worker.compiled == fresh.artifact.compiled


def test_builds_of_other_versions_unused_for_a_month_are_pruned(tmp_path):
    import os
    import time

    root = tmp_path / "sandbox"
    month = 31 * 86400

    def made(name: str, age_s: float, used_age_s: float | None = None):
        folder = root / name
        folder.mkdir(parents=True)
        (folder / _build.META_NAME).write_text("{}")
        then = time.time() - age_s
        os.utime(folder / _build.META_NAME, (then, then))
        os.utime(folder, (then, then))
        if used_age_s is not None:
            (folder / _build.USED_NAME).touch()
            used = time.time() - used_age_s
            os.utime(folder / _build.USED_NAME, (used, used))
        return folder

    current = made("a" * 24, month)  # this version's: kept however old
    stale = made("b" * 24, month)  # another version's, never used since it was made
    used = made("c" * 24, month, used_age_s=3600)  # another version's, used an hour ago
    component = made("component-" + "d" * 24, month)  # an old component
    leftover = made("e" * 24 + ".tmp123", 2 * 86400)  # a killed build's staging
    fresh_staging = made("f" * 24 + ".tmp456", 60)  # a build running now
    foreign = made("not-ours", month)
    (root / f"{'b' * 24}.lock").touch()
    removed = _build.prune(root, keep={current.name})
    assert sorted(p.name for p in removed) == sorted([stale.name, component.name, leftover.name])
    assert current.exists() and used.exists() and fresh_staging.exists() and foreign.exists()
    assert not (root / f"{'b' * 24}.lock").exists()


async def test_a_first_start_falls_back_to_optimized_code_where_baseline_fails(
    pool, tmp_path, monkeypatch
):
    # Winch (the baseline compiler) is not on every platform: its failure must not stop a
    # first start, which then compiles the optimized code before it answers.
    empty_cache_but_the_component(pool, tmp_path, monkeypatch)
    real = _build._build_into

    async def no_baseline(folder, key, report, strategy, ahead=None):
        if strategy == "baseline":
            raise _build.SandboxBuildError("building the sandbox failed: no Winch here")
        await real(folder, key, report, strategy, ahead)

    monkeypatch.setattr(_build, "_build_into", no_baseline)
    messages: list[str] = []
    async with SandboxPool(size=1, progress=messages.append) as fresh:
        assert fresh.artifact.strategy == "optimized"
        r = await fresh.execute("6 * 7")
        assert r.ok and r.result == 42
    assert any("baseline compile failed" in m and "no Winch here" in m for m in messages)
