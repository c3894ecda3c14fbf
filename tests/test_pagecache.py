"""What a worker maps of the artifact, and the page-cache record that keeps what runs touch
cached (`_pagecache`): both workers, on a copy of the real artifact."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from pathlib import Path

import pytest
from conftest import proc_stat

from codemode.wasm_runtime import SandboxPool, _build, _engine, _pagecache, _process, _warmup

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="page-cache advice is Linux's"
)


def _mappings(pid: int, path: Path) -> list[dict[str, str]]:
    """The process's mappings of `path`: each one's permissions, size and smaps fields."""
    found: list[dict[str, str]] = []
    current: dict[str, str] | None = None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            key, _, value = line.partition(":")
            if " " not in key:  # a field of the mapping above ("Rss:", "VmFlags:")
                if current is not None:
                    current[key] = value.strip()
                continue
            head = line.split()  # a mapping: range perms offset dev inode path
            current = None
            if head[-1] == str(path):
                lo, hi = (int(x, 16) for x in head[0].split("-"))
                current = {"perms": head[1], "size_kb": str((hi - lo) // 1024)}
                found.append(current)
    return found


def _kb(field: str) -> int:
    return int(field.split()[0])


@pytest.fixture
def copied(monkeypatch, tmp_path, pool) -> Path:
    """A cache holding a copy of the session's artifact, written and synced as a build
    leaves it (so every page of it is cached), and no record. A copy of its own: the
    session's workers map the shared file, and a page some process maps stays cached."""
    folder = tmp_path / "sandbox" / pool.artifact.compiled.parent.name
    shutil.copytree(pool.artifact.compiled.parent, folder)
    (folder / _pagecache.RECORD_NAME).unlink(missing_ok=True)
    compiled = (folder / pool.artifact.compiled.name).resolve()
    with open(compiled, "rb") as f:
        os.fsync(f.fileno())
    monkeypatch.setenv("CODEMODE_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(_build, "_verified_cache", {})  # this process found the shared one
    return compiled


async def _settled(pid: int, compiled: Path) -> list[dict[str, str]]:
    """The worker's mappings of the artifact once its next instance is made and warmed
    up (it makes one after each result: the mappings stop changing)."""
    last = None
    for _ in range(100):
        await asyncio.sleep(0.05)
        mappings = _mappings(pid, compiled)
        if mappings == last and any(m["perms"] == "rw-p" for m in mappings):
            return mappings
        last = mappings
    raise AssertionError(f"the worker's mappings kept changing: {last}")


@pytest.mark.parametrize("worker", ["native", "python"])
async def test_a_worker_maps_the_pages_it_touches_not_the_whole_cached_artifact(
    monkeypatch, copied, worker
):
    # With the file cached whole, the kernel maps the cached pages around every fault:
    # ~70% of the heap image into each instance, ~80% of the code. The checksum that
    # finds the copy drops its cache, and every mapping is advised MADV_RANDOM.
    monkeypatch.setenv("CODEMODE_WORKER", worker)
    async with SandboxPool(size=1, quick_start=False) as fresh:
        for code in ("1 + 1", "import json, re\njson.dumps({'a': re.escape('x')})"):
            assert (await fresh.execute(code, None)).ok
        assert fresh.artifact.compiled.resolve() == copied
        pid = fresh.worker_pids[0]
        mappings = await _settled(pid, copied)
    for mapping in mappings:
        assert "rr" in mapping["VmFlags"].split(), mapping  # MADV_RANDOM: no read-ahead
    image = [m for m in mappings if m["perms"] == "rw-p"]
    code = [m for m in mappings if "x" in m["perms"]]
    assert len(image) == 1 and len(code) == 1, mappings
    for mapping in (*image, *code):
        assert _kb(mapping["Rss"]) < _kb(mapping["size_kb"] + " kB") * 0.6, mapping


def _regions(record: Path, path: Path) -> dict[tuple[int, int], tuple[str, bytes]]:
    return {(o, n): v for (p, o, n), v in _pagecache._load(record).items() if p == str(path)}


async def test_the_pool_records_the_pages_runs_use_and_reads_them_back(copied):
    record = copied.parent / _pagecache.RECORD_NAME
    async with SandboxPool(size=1, quick_start=False) as fresh:
        assert (await fresh.execute("import json\njson.dumps([1])", None)).ok
        await asyncio.sleep(0.1)  # the record is written after the caller has its answer
        image = _pagecache.image_of(fresh.worker_pids[0], str(copied))
        assert image is not None
        regions = _regions(record, copied)
        assert _regions(record, Path(_process.library_path()))  # the library's too
    kinds = {kind for kind, _ in regions.values()}
    assert kinds == {"image", "mapped"}, regions.keys()
    wanted = regions[image][1]
    assert regions[image][0] == "image"
    # what runs touched: some of the image, far from all of it
    assert 0.02 * len(wanted) < wanted.count(1) < 0.6 * len(wanted)
    code = max((r for r, (kind, _) in regions.items() if kind == "mapped"), key=lambda r: r[1])
    assert 0 < regions[code][1].count(1) < len(regions[code][1])
    # No worker maps it now: the kernel's reclaim (or a reboot) would take it all.
    _pagecache.drop(copied)
    for offset, length in (image, code):
        assert _pagecache.cached_pages(copied, offset, length).count(1) < 0.1 * len(wanted)
    _pagecache.settle(record)
    for (offset, length), (_, pages) in ((r, regions[r]) for r in (image, code)):
        for _ in range(100):  # read ahead asynchronously
            cached = _pagecache.cached_pages(copied, offset, length)
            if _pagecache._minus(pages, cached).count(1) == 0:
                break
            await asyncio.sleep(0.02)
        assert _pagecache._minus(pages, cached).count(1) == 0, "recorded pages not read back"
        # and only those: no read-ahead around them
        assert _pagecache._minus(cached, pages).count(1) < pages.count(1) * 0.1


async def test_a_record_keeps_only_the_files_this_environments_workers_use(copied, tmp_path):
    """A cache shared by two environments (two venvs, each with its own wasmtime
    library): each one's record is of its own library only, not of both."""
    record = copied.parent / _pagecache.RECORD_NAME
    other = tmp_path / "other-venv" / "_libwasmtime.so"  # another environment's library
    other.parent.mkdir()
    shutil.copyfile(_process.library_path(), other)
    _pagecache._save(record, {(str(other), 0, 4 * 4096): ("mapped", bytes([1, 1, 0, 1]))})
    assert _regions(record, other)  # as the other environment's start left it
    async with SandboxPool(size=1, quick_start=False) as fresh:
        assert (await fresh.execute("1 + 1", None)).ok
        await asyncio.sleep(0.1)  # the record is written after the caller has its answer
    assert _regions(record, copied) and _regions(record, Path(_process.library_path()))
    assert _regions(record, other) == {}


async def test_a_record_of_another_file_or_a_damaged_one_is_not_used(copied, tmp_path):
    record = copied.parent / _pagecache.RECORD_NAME
    record.write_text("{not json")
    _pagecache.settle(record)  # nothing to do, and no error
    assert _pagecache._load(record) == {}
    async with SandboxPool(size=1, quick_start=False) as fresh:
        assert (await fresh.execute("1 + 1", None)).ok
        await asyncio.sleep(0.1)
    assert _regions(record, copied)  # written anew
    # Another file at the same path (a rebuild, say): the record is not used for it.
    staging = tmp_path / "other.cwasm"
    shutil.copyfile(copied, staging)
    os.replace(staging, copied)
    assert _regions(record, copied) == {}
    _pagecache.drop(copied)
    _pagecache.settle(record)
    await asyncio.sleep(0.2)
    assert _pagecache.cached_pages(copied, 0, copied.stat().st_size).count(1) == 0


async def test_the_warm_up_programs_end_the_ways_they_are_meant_to(pool):
    # Each goes one common way through the guest; one that failed early would leave the
    # rest of its way out of the record.
    ends = []
    for code in _warmup.PROGRAMS:
        result = await pool.execute(code, _warmup._Host())
        ends.append(None if result.ok else result.error.type)
        if result.ok and isinstance(result.result, dict):
            assert all(value is not None for value in result.result.values()), result.result
    assert ends[:3] == [None, None, None], ends
    assert ends[3] in ("gaierror", "ConnectionRefusedError", "OSError", "PermissionError"), ends
    assert ends[4:] == ["KeyError", "FileNotFoundError", "CheckError", "ZeroDivisionError",
                        "SyntaxError"], ends  # fmt: skip


def _major_faults(pid: int) -> int:
    return int(proc_stat(pid)[9])


async def test_a_build_records_what_runs_touch_so_a_cold_cache_is_read_in_ranges(copied):
    # After a build nothing of the artifact is cached; without a record, every page the
    # first runs touch would be read alone (MADV_RANDOM): a thousand reads and more.
    record = copied.parent / _pagecache.RECORD_NAME
    _pagecache.drop(copied)
    await _warmup.record_pages(copied, _engine.OPTIMIZED)
    regions = _regions(record, copied)
    assert {kind for kind, _ in regions.values()} == {"image", "mapped"}, regions.keys()
    image = next(pages for kind, pages in regions.values() if kind == "image")
    assert 0.05 * len(image) < image.count(1) < 0.8 * len(image)
    _pagecache.drop(copied)  # cold again: the kernel's reclaim, a reboot
    assert _pagecache.cached_pages(copied, 0, copied.stat().st_size).count(1) < 64
    async with SandboxPool(size=1, quick_start=False) as fresh:
        for _ in range(100):  # the worker's start read the recorded pages ahead
            missing = sum(
                _pagecache._minus(pages, _pagecache.cached_pages(copied, o, n)).count(1)
                for (o, n), (_, pages) in regions.items()
            )
            if missing == 0:
                break
            await asyncio.sleep(0.02)
        assert missing == 0, f"{missing} recorded pages were not read back"
        pid = fresh.worker_pids[0]
        before = _major_faults(pid)
        result = await fresh.execute("open('/etc/hostname').read()", None)
        assert result.error is not None and result.error.type == "FileNotFoundError"
        # the run found what it touched cached: a few pages read, not hundreds
        assert _major_faults(pid) - before < 40
