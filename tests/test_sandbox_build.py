"""The build cache: keyed on everything the artifact depends on; bad files are rebuilt."""

from __future__ import annotations

import json
import shutil

import pytest

from codemode.wasm_runtime import SandboxPool, _build


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
    guest = tmp_path / "guest"
    shutil.copytree(_build.GUEST_DIR, guest)
    monkeypatch.setattr(_build, "GUEST_DIR", guest)
    assert _build.cache_key() == base
    (guest / "sandbox_guest.py").write_text((guest / "sandbox_guest.py").read_text() + "\n# edit\n")
    assert _build.cache_key() != base


def test_versions_are_read_as_importlib_metadata_reads_them():
    from importlib import metadata

    for name in ("componentize-py", "wasmtime", "tzdata"):
        assert _build.dist_version(name) == metadata.version(name)


def test_a_checked_file_is_trusted_until_it_changes(pool, tmp_path, monkeypatch):
    folder = _copy_cache(pool, tmp_path)
    key = pool.artifact.key
    assert _build._verified(folder, key)  # a copy: a new inode, so checked in full
    stamp = json.loads((folder / _build.STAMP_NAME).read_text())
    assert stamp["key"] == key

    def no_hashing(path):
        raise AssertionError("the sha256 was computed again")

    monkeypatch.setattr(_build, "_sha256_file", no_hashing)
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
    async with SandboxPool(size=1, progress=messages.append) as fresh:
        assert fresh.artifact.built_now and fresh.artifact.compiled == compiled
        result = await fresh.execute("6 * 7")
    assert result.result == 42
    assert any("discarding cached sandbox" in m for m in messages)
    meta = json.loads((folder / _build.META_NAME).read_text())
    assert meta["compiled_size"] == compiled.stat().st_size
