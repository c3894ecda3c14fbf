"""A wheel ships the sandbox compiled for its architecture (`_shipped`, setup.py): a first
start whose cache key is the one it was compiled for copies it into the cache, checked,
and compiles nothing; a damaged or foreign one is not used."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import time
from pathlib import Path

from conftest import RecordingHost, empty_cache_but_the_component

from codemode.wasm_runtime import SandboxPool, _build, _shipped
from codemode.wasm_runtime._engine import BASELINE, OPTIMIZED


def _package(pool: SandboxPool, folder: Path, key: str | None = None) -> Path:
    """A package's prebuilt folder as the build hook leaves it: the session's optimized
    artifact (compiled as `ship` compiles) and its record."""
    folder.mkdir()
    shipped = folder / _shipped.SHIPPED_NAME
    shutil.copyfile(pool.artifact.compiled, shipped)
    record = {
        "key": key or _build.cache_key(OPTIMIZED),
        "strategy": OPTIMIZED,
        "compiled_size": shipped.stat().st_size,
        "compiled_sha256": hashlib.sha256(shipped.read_bytes()).hexdigest(),
        "built_at": 0.0,
    }
    (folder / _shipped.SHIPPED_META).write_text(json.dumps(record))
    return shipped


def _damage(shipped: Path) -> None:
    """The same size, one byte changed."""
    with shipped.open("r+b") as f:
        f.seek(shipped.stat().st_size // 2)
        byte = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([byte[0] ^ 0xFF]))


def _empty_cache(tmp_path: Path, monkeypatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("CODEMODE_CACHE_DIR", str(cache))
    monkeypatch.setattr(_build, "_verified_cache", {})
    return cache


async def test_a_first_start_copies_the_shipped_code_and_compiles_nothing(
    pool, tmp_path, monkeypatch
):
    assert pool.artifact.strategy == OPTIMIZED
    shipped = _package(pool, tmp_path / "prebuilt")
    monkeypatch.setattr(_shipped, "PREBUILT_DIR", tmp_path / "prebuilt")
    cache = _empty_cache(tmp_path, monkeypatch)
    stale = cache / "sandbox" / ("0" * 24)  # another version's build, unused for 60 days
    stale.mkdir(parents=True)
    (stale / "meta.json").write_text("{}")
    long_ago = time.time() - 60 * 86400
    for path in (stale / "meta.json", stale):
        os.utime(path, (long_ago, long_ago))

    assert not _build.build_ahead()  # nothing to compile ahead
    assert _build._ahead is None
    messages: list[str] = []
    async with SandboxPool(size=1, progress=messages.append) as fresh:
        result = await fresh.execute("6 * 7", RecordingHost())
        assert result.ok and result.result == 42, result
        assert fresh.artifact.strategy == OPTIMIZED and fresh.artifact.shipped
        folder = fresh.artifact.compiled.parent
        assert folder.parent == cache / "sandbox"
        # the pool records what runs touch in the background, after the first answer
        for _ in range(300):
            if (folder / "pages.json").exists():
                break
            await asyncio.sleep(0.1)
        assert (folder / "pages.json").exists()
    assert any("shipped with the package; no compile" in m for m in messages), messages
    assert not any("compil" in m and "no compile" not in m for m in messages), messages
    assert not any(p.name.startswith("component-") for p in (cache / "sandbox").iterdir())
    assert not stale.exists()  # pruned after the copy, as after a build
    assert any("removed a cached sandbox unused for 30 days" in m for m in messages), messages
    assert not [p for p in (cache / "sandbox").iterdir() if ".tmp" in p.name]
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["shipped"] is True and meta["key"] == _build.cache_key(OPTIMIZED)
    assert (folder / "sandbox.cwasm").read_bytes() == shipped.read_bytes()
    # a later start trusts the checked copy (its stamp) without hashing it again
    assert (folder / "verified.json").exists()
    monkeypatch.setattr(_build, "_verified_cache", {})
    monkeypatch.setattr(_build, "sha256_file", None)  # would raise if it were called
    assert _build._cached(OPTIMIZED).compiled == folder / "sandbox.cwasm"


async def test_a_damaged_shipped_file_is_not_used(pool, tmp_path, monkeypatch):
    shipped = _package(pool, tmp_path / "prebuilt")
    _damage(shipped)
    monkeypatch.setattr(_shipped, "PREBUILT_DIR", tmp_path / "prebuilt")
    cache = _empty_cache(tmp_path, monkeypatch)
    key = _build.cache_key(OPTIMIZED)
    folder = cache / "sandbox" / key[:24]
    folder.parent.mkdir(parents=True)
    messages: list[str] = []
    found = _shipped.find(key)
    assert found is not None  # its size is right: only its sha256 can tell
    assert not _build._install_shipped(folder, key, found, messages.append)
    assert not folder.exists() and list(folder.parent.iterdir()) == []  # no copy, no staging
    (message,) = messages
    assert "not using the compiled sandbox shipped with the package" in message
    assert "is not the file its package was built with" in message and "compiling it" in message


def test_code_shipped_for_another_key_or_cut_short_is_not_found(pool, tmp_path, monkeypatch):
    monkeypatch.setattr(_shipped, "PREBUILT_DIR", tmp_path / "prebuilt")
    key = _build.cache_key(OPTIMIZED)
    assert _shipped.find(key) is None  # nothing shipped (an editable install)
    shipped = _package(pool, tmp_path / "prebuilt", key="another wasmtime's key")
    assert _shipped.find(key) is None
    assert _shipped.find("another wasmtime's key") is not None
    with shipped.open("r+b") as f:
        f.truncate(1000)
    assert _shipped.find("another wasmtime's key") is None


async def test_a_first_start_whose_shipped_file_fails_compiles_quickly(pool, tmp_path, monkeypatch):
    empty_cache_but_the_component(pool, tmp_path, monkeypatch)
    _damage(_package(pool, tmp_path / "prebuilt"))
    monkeypatch.setattr(_shipped, "PREBUILT_DIR", tmp_path / "prebuilt")
    messages: list[str] = []
    async with SandboxPool(size=1, progress=messages.append) as fresh:
        result = await fresh.execute("6 * 7", RecordingHost())
        assert result.ok and result.result == 42, result
        # the quick path's baseline compile, as where nothing is shipped (not Cranelift's)
        assert fresh.artifact.strategy == BASELINE and not fresh.artifact.shipped
    assert any("not using the compiled sandbox shipped with the package" in m for m in messages)
    assert any("wasmtime, baseline" in m for m in messages), messages


def _unwritable_cache(tmp_path: Path, monkeypatch) -> Path:
    """A cache dir that cannot be made: under a file (ENOTDIR, for root too, as a
    read-only file system or a full disk refuses it)."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("CODEMODE_CACHE_DIR", str(blocker / "cache"))
    monkeypatch.setattr(_build, "_verified_cache", {})
    return blocker / "cache"


async def test_a_cache_that_cannot_be_written_runs_the_shipped_code_where_it_is(
    pool, tmp_path, monkeypatch
):
    shipped = _package(pool, tmp_path / "prebuilt")
    monkeypatch.setattr(_shipped, "PREBUILT_DIR", tmp_path / "prebuilt")
    _unwritable_cache(tmp_path, monkeypatch)
    before = {p.name for p in (tmp_path / "prebuilt").iterdir()}
    messages: list[str] = []
    async with SandboxPool(size=1, progress=messages.append) as fresh:
        result = await fresh.execute("sum(range(10))", RecordingHost())
        assert result.ok and result.result == 45, result
        artifact = fresh.artifact
        assert artifact.compiled == shipped and artifact.shipped and artifact.in_place
        assert artifact.strategy == OPTIMIZED and artifact.warm  # no warm-up to record
        for _ in range(20):  # past the runs after which a pool records what runs touch
            assert (await fresh.execute("6 * 7", RecordingHost())).result == 42
    said = [m for m in messages if "the cache cannot be written" in m]
    assert said and str(shipped) in said[0] and "CODEMODE_CACHE_DIR" in said[0], messages
    assert not any("compil" in m and "compiled sandbox" not in m for m in messages), messages
    assert {p.name for p in (tmp_path / "prebuilt").iterdir()} == before  # nothing written


async def test_a_cache_that_cannot_be_written_says_so_and_how_to_fix_it(
    pool, tmp_path, monkeypatch
):
    from codemode.errors import SandboxBuildError

    monkeypatch.setattr(_shipped, "PREBUILT_DIR", tmp_path / "prebuilt")  # nothing shipped
    cache = _unwritable_cache(tmp_path, monkeypatch)
    messages: list[str] = []
    for quick in (True, False):
        try:
            await _build.ensure_built_async(messages.append, quick=quick)
        except SandboxBuildError as exc:
            text = str(exc)
        else:
            raise AssertionError("a build into a cache that cannot be written succeeded")
        assert f"the sandbox cannot be built into {cache / 'sandbox'}" in text
        assert "Not a directory" in text and "Set CODEMODE_CACHE_DIR to a writable" in text
    assert not any("baseline compile failed" in m for m in messages), messages
    # a shipped file that fails its check is not run in place either
    _damage(_package(pool, tmp_path / "prebuilt"))
    messages.clear()
    try:
        await _build.ensure_built_async(messages.append, quick=True)
    except SandboxBuildError as exc:
        assert "Set CODEMODE_CACHE_DIR to a writable" in str(exc)
    else:
        raise AssertionError("a damaged shipped file was run")
    assert any("is not the file its package was built with" in m for m in messages), messages
