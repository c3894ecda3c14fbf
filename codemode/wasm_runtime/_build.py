"""Build the guest into a WebAssembly component, compile it to native code, cache both.

The cache lives in the user cache dir (or $CODEMODE_CACHE_DIR; see `_paths`), in a folder
named by a key that covers everything the compiled artifact depends on: the guest sources
and WIT, the componentize-py, wasmtime and tzdata versions, the engine flags and the
platform. A change of any of them builds anew. `meta.json` records the size and sha256 of
the compiled file; a stale, truncated or foreign file fails that check and is rebuilt,
never loaded.

The heavy steps (componentize ~15 s and ~430 MB, compile ~10 s and ~400 MB) run in a child
process, so the memory they take is given back when they finish. Progress goes to stderr.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import dataclasses
import functools
import hashlib
import json
import logging
import os
import runpy
import sys
import time
from pathlib import Path

from .._paths import cache_dir
from ..errors import SandboxBuildError
from . import _child, _pagecache, _shipped
from ._component import GUEST_DIR, component_key, dist_version, find_component, sha256_file
from ._engine import BASELINE, ENGINE_FLAGS, OPTIMIZED, machine
from ._warmup import record_pages

COMPILED_NAME = "sandbox.cwasm"
META_NAME = "meta.json"
STAMP_NAME = "verified.json"

Progress = _child.Progress

log = logging.getLogger("codemode.sandbox")


def _stderr_progress(message: str) -> None:
    print(f"codemode: {message}", file=sys.stderr, flush=True)


@dataclasses.dataclass(frozen=True)
class Artifact:
    """A compiled sandbox component, verified and ready to load in a worker."""

    compiled: Path
    key: str
    built_now: bool
    build_s: float | None = None
    strategy: str = OPTIMIZED
    """How it was compiled (`_engine`): a worker's engine must be made the same way."""
    warm: bool = True
    """False for a build of this process whose `warm_up` is still owed (the quick path
    leaves it to its caller); an artifact found in the cache counts as warm."""
    shipped: bool = False
    """Copied into the cache now from the package, which ships it compiled (`_shipped`)."""
    in_place: bool = False
    """`compiled` is the package's own file (the cache could not take a copy): nothing
    is written beside it (no record of the pages runs touch)."""


@functools.lru_cache(maxsize=1)
def sandbox_modules() -> tuple[str, ...]:
    """The stdlib modules a program can import in the sandbox (`guest/_cm_stdlib.py`)."""
    return tuple(runpy.run_path(str(GUEST_DIR / "_cm_stdlib.py"))["OFFERED"])


def cache_key(strategy: str = OPTIMIZED) -> str:
    """Everything a compiled artifact depends on: its component (`component_key`), the
    wasmtime version, the engine flags, the compile strategy and the platform."""
    facts = {
        "component": component_key(),
        "wasmtime": dist_version("wasmtime"),
        "engine": ENGINE_FLAGS,
        "strategy": strategy,
        "machine": machine(),
        "platform": sys.platform,
    }
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()


def _verified(folder: Path, key: str) -> bool:
    """Whether `folder` holds the finished build for `key`. The file's sha256 (~75 ms of
    a 44 MB file) is checked once; `verified.json` then records the file's identity, and a
    later start that finds the same identity trusts the earlier check."""
    try:
        meta = json.loads((folder / META_NAME).read_text())
        compiled = folder / COMPILED_NAME
        if meta.get("key") != key or compiled.stat().st_size != meta.get("compiled_size"):
            return False
        stamp = folder / STAMP_NAME
        stamped = {"key": key, "file": _pagecache.file_identity(compiled)}
        with contextlib.suppress(OSError, ValueError):
            if json.loads(stamp.read_text()) == stamped:
                return True
        if sha256_file(compiled) != meta.get("compiled_sha256"):
            return False
        _pagecache.drop(compiled)  # read whole: workers would map most of it
        _stamp(folder, key)
        return True
    except (OSError, ValueError, AttributeError):
        return False


def _stamp(folder: Path, key: str) -> None:
    """Record that `folder`'s file has been checked against its sha256 (`_verified`)."""
    stamp = folder / STAMP_NAME
    stamped = {"key": key, "file": _pagecache.file_identity(folder / COMPILED_NAME)}
    with contextlib.suppress(OSError):  # a read-only cache is checked in full each time
        staging = stamp.with_name(f"{STAMP_NAME}.{os.getpid()}")
        staging.write_text(json.dumps(stamped))
        os.replace(staging, stamp)


UNUSED_DAYS = 30
"""Cached builds of other versions (other keys) unused this long are removed after a
build, so upgrades do not pile up ~120 MB each (a component, a baseline and an optimized
artifact); another installed version that still wants one builds it again."""
USED_NAME = "used"


def _mark_used(folder: Path) -> None:
    """Note that `folder`'s artifact is in use (its `used` file's mtime, at most daily)."""
    used = folder / USED_NAME
    with contextlib.suppress(OSError):  # a read-only cache: nothing to note, nothing pruned
        if time.time() - used.stat().st_mtime < 86400:
            return
    with contextlib.suppress(OSError):
        used.touch()


def prune(root: Path, keep: set[str], days: float = UNUSED_DAYS) -> list[Path]:
    """Remove cached builds under `root` that are not `keep` (folder names) and were not
    used (or, never used, made) in `days`, and staging left by killed builds; returns
    what it removed."""
    cutoff = time.time() - days * 86400
    removed = []
    for folder in root.iterdir() if root.is_dir() else ():
        if not folder.is_dir() or folder.name in keep:
            continue
        name = folder.name.removeprefix("component-")
        staging = ".tmp" in name
        if not staging and not (len(name) == 24 and all(c in "0123456789abcdef" for c in name)):
            continue  # not ours
        marks = [folder / USED_NAME, folder / META_NAME, folder]
        last = max((m.stat().st_mtime for m in marks if m.exists()), default=0)
        if last < (time.time() - 86400 if staging else cutoff):
            _child.rmtree(folder, ignore_errors=True)
            with contextlib.suppress(OSError):
                (root / f"{folder.name}.lock").unlink()
            removed.append(folder)
    return removed


_ahead: _child.Ahead | None = None


def build_ahead() -> bool:
    """Start now, in its child, the build a first start is about to ask for, where the
    cache has none: `codemode serve` spends ~1 s importing the MCP SDK and starting its
    loop before its pool asks for the sandbox, and the compile (2-3 s) need not wait for
    that. The quick path's build (`ensure_built_async(quick=True)`), and only when no other
    process builds it (its lock is free); that call takes the running build over (its
    output, its lock, its staging folder), and an exit before it stops the child and
    removes what it made. Returns whether a build was started."""
    global _ahead
    if _ahead is not None:
        return False
    try:
        if _cached(OPTIMIZED) is not None or _cached(BASELINE) is not None:
            return False
        if _shipped.find(cache_key(OPTIMIZED)) is not None:
            return False  # nothing to compile: the pool copies the package's in (~0.1 s)
        key = cache_key(BASELINE)
        root = cache_dir() / "sandbox"
        _ahead = _child.start_ahead(key, root, BASELINE, lambda: _verified(root / key[:24], key))
    except Exception as exc:  # noqa: BLE001 - only a head start: the build reports it when asked
        log.debug("no build ahead: %s", exc)
        return False
    if _ahead is None:
        return False
    atexit.unregister(_abandon_ahead)  # once, however often a process builds ahead
    atexit.register(_abandon_ahead)
    return True


def _take_ahead(key: str) -> _child.Ahead | None:
    """The build `build_ahead` started for `key`, now the caller's to finish."""
    global _ahead
    ahead = _ahead
    if ahead is None or ahead.key != key:
        return None
    _ahead = None
    return ahead


def _abandon_ahead() -> None:
    """Stop a build `build_ahead` started that nobody took over (at exit, or when the
    cache turned out to hold what it builds)."""
    global _ahead
    ahead, _ahead = _ahead, None
    if ahead is not None:
        _child.abandon(ahead)


_verified_cache: dict[str, Artifact] = {}


def ensure_built(progress: Progress | None = None, *, force: bool = False) -> Artifact:
    """Return the compiled sandbox (optimized), building and compiling it first if the
    cache has no valid copy. Blocking (for commands without an event loop)."""
    return asyncio.run(ensure_built_async(progress, force=force))


async def ensure_built_async(
    progress: Progress | None = None,
    *,
    force: bool = False,
    strategy: str = OPTIMIZED,
    quick: bool = False,
    warm: bool = True,
) -> Artifact:
    """Return the compiled sandbox, building and compiling it first if the cache has no
    valid copy. The build runs in a child process; cancelling this stops it (the child is
    killed, its half-made folder removed). Progress messages go to `progress` (default:
    stderr), each step as it starts.

    `quick`: the optimized artifact if it is there, else the baseline one, compiled now
    if need be (~3x faster) and without its warm-up; the caller then has the optimized
    one built in the background, and the baseline's `warm_up` run (`SandboxPool` does).
    `warm`: a build ends with `warm_up` (~0.3-0.45 s here) before it returns."""
    report = progress or _stderr_progress
    if quick and not force:
        found = _cached(OPTIMIZED) or _cached(BASELINE)
        if found is not None:
            _abandon_ahead()  # another process finished one meanwhile
            return found
        found = await _from_package(report, warm=False)  # compiled where it was built
        if found is not None:
            return found  # (else none for this key, or it did not pass: the quick compile)
        try:
            # its warm-up waits: the caller runs `warm_up` in the background
            return await ensure_built_async(progress, strategy=BASELINE, warm=False)
        except SandboxBuildError as exc:
            if isinstance(exc.__cause__, OSError):
                raise  # the cache cannot be written: no compile could be kept either
            # Winch is not there on every platform: the optimized code, then, from the start
            report(f"the baseline compile failed; compiling the optimized code instead ({exc})")
            return await ensure_built_async(progress)
    if not force:
        found = _cached(strategy)  # no lock needed (a read-only cache works)
        if found is None and strategy == OPTIMIZED:
            found = await _from_package(report, warm)
        if found is not None:
            return found
    key = cache_key(strategy)
    root = cache_dir() / "sandbox"
    try:
        return await _build_locked(root, key, report, strategy, warm, force)
    except OSError as exc:
        raise SandboxBuildError(
            f"the sandbox cannot be built into {root}: {exc}. Set CODEMODE_CACHE_DIR to a "
            "writable folder, or run `codemode build` once where this one can be written "
            "(a read-only cache that holds the build is used as it is)"
        ) from exc


async def _build_locked(
    root: Path, key: str, report: Progress, strategy: str, warm: bool, force: bool
) -> Artifact:
    """`ensure_built_async`'s build of `key` under its lock, or what another process
    finished meanwhile."""
    folder = root / key[:24]
    ahead = _take_ahead(key)  # a build of this key started ahead: new, as `force` asks
    async with _child.locked(_child.lock_path(root, key), ahead.lock if ahead else None):
        if ahead is None and not force and _verified(folder, key):
            artifact = Artifact(folder / COMPILED_NAME, key, built_now=False, strategy=strategy)
        else:
            if folder.exists():
                report(f"discarding cached sandbox at {folder} (stale or incomplete)")
            started = time.monotonic()
            await _build_into(folder, key, report, strategy, ahead)
            artifact = Artifact(
                folder / COMPILED_NAME,
                key,
                built_now=True,
                build_s=time.monotonic() - started,
                strategy=strategy,
                warm=warm,
            )
            if warm:
                await warm_up(artifact)
    _verified_cache[key] = artifact
    return artifact


async def _from_package(report: Progress, warm: bool) -> Artifact | None:
    """The optimized artifact copied from the package (`_install_shipped`), or found made
    by another process meanwhile; None if the package ships none for this key or the copy
    failed. `warm`: as `ensure_built_async`'s (False: the warm-up is the caller's)."""
    key = cache_key(OPTIMIZED)
    shipped = _shipped.find(key)
    if shipped is None:
        return None
    folder = cache_dir() / "sandbox" / key[:24]
    try:
        async with _child.locked(_child.lock_path(folder.parent, key)):
            if _verified(folder, key):
                artifact = Artifact(folder / COMPILED_NAME, key, built_now=False)
            elif await _install_shipped_async(folder, key, shipped, report):
                artifact = Artifact(
                    folder / COMPILED_NAME, key, built_now=False, warm=warm, shipped=True
                )
                if warm:
                    await warm_up(artifact)
            else:
                return None
    except OSError as exc:  # the cache cannot be written: a read-only or full disk, say
        try:
            found = await asyncio.to_thread(_shipped.in_place, shipped)
        except (OSError, _shipped.Damaged) as bad:
            report(f"not using the compiled sandbox shipped with the package: {bad}")
            return None
        report(
            f"the cache cannot be written ({exc.strerror or exc}): running the compiled "
            f"sandbox shipped with the package where it is ({found}); set "
            "CODEMODE_CACHE_DIR to a writable folder to have it copied"
        )
        artifact = Artifact(found, key, built_now=False, shipped=True, in_place=True)
    _verified_cache[key] = artifact
    return artifact


async def warm_up(artifact: Artifact) -> None:
    """What runs touch of a new build, read once and recorded (`_warmup`), so that later
    starts read it ahead instead of page by page. (Until a quick build's runs in the
    background, its first workers read what they touch of it a page at a time.)"""
    await record_pages(artifact.compiled, artifact.strategy)
    if _verified_cache.get(artifact.key) is artifact:
        _verified_cache[artifact.key] = dataclasses.replace(artifact, warm=True)


async def _install_shipped_async(
    folder: Path, key: str, shipped: tuple[Path, dict], report: Progress
) -> bool:
    """`_install_shipped` in a thread (~0.1 s of reading and writing, off the loop); its
    progress lines reach `report` on the loop."""
    loop = asyncio.get_running_loop()
    return await asyncio.to_thread(
        _install_shipped, folder, key, shipped, lambda line: loop.call_soon_threadsafe(report, line)
    )


def _install_shipped(folder: Path, key: str, shipped: tuple[Path, dict], report: Progress) -> bool:
    """Copy the compiled file the package ships for `key` (`shipped`: `_shipped.find`'s
    answer) into the cache; False if it fails its check (said: it is compiled instead).
    Raises OSError where the cache cannot be written. Runs under the key's lock."""
    source, recorded = shipped
    staging: Path | None = None
    try:
        staging = _child.staging_for(folder)
        compiled = staging / COMPILED_NAME
        _shipped.install(source, recorded, compiled)
        _pagecache.drop(compiled)  # written whole: workers would map most of it
        meta = {
            "key": key,
            "strategy": OPTIMIZED,  # the only one shipped (`_shipped.find` matched its key)
            "compiled_size": compiled.stat().st_size,
            "compiled_sha256": recorded["compiled_sha256"],  # checked on the way in
            "built_at": recorded.get("built_at"),
            "shipped": True,
        }
        (staging / META_NAME).write_text(json.dumps(meta, indent=2))
        _child.rmtree(folder, ignore_errors=True)
        os.replace(staging, folder)
    except BaseException as exc:
        if staging is not None:
            _child.rmtree(staging, ignore_errors=True)
        if not isinstance(exc, _shipped.Damaged):
            raise  # (an OSError: the cache cannot be written, and the file is used in place)
        report(f"not using the compiled sandbox shipped with the package: {exc}; compiling it")
        return False
    _stamp(folder, key)  # its sha256 was checked on the way in
    report(f"sandbox ready: {folder} (the compiled code shipped with the package; no compile)")
    _prune_others(folder.parent, report)
    return True


def _cached(strategy: str) -> Artifact | None:
    """The artifact of `strategy` if the cache holds a valid one (no build)."""
    key = cache_key(strategy)
    if key in _verified_cache:
        return _verified_cache[key]
    folder = cache_dir() / "sandbox" / key[:24]
    if not _verified(folder, key):
        return None
    _mark_used(folder)
    artifact = _verified_cache[key] = Artifact(
        folder / COMPILED_NAME, key, built_now=False, strategy=strategy
    )
    return artifact


async def _build_into(
    folder: Path, key: str, report: Progress, strategy: str, ahead: _child.Ahead | None = None
) -> None:
    """Build `key` into `folder` (in a child; `ahead`: the one `build_ahead` started)."""
    staging = ahead.staging if ahead is not None else _child.staging_for(folder)
    try:
        component, source = find_component(folder.parent, component_key())
        early = "; started before the server's imports" if ahead is not None else ""
        if component is None:
            report(
                "building the sandbox (CPython -> WebAssembly -> native code; ~15-20 s, once "
                f"per version{early})"
            )
        else:
            report(f"compiling the sandbox ({strategy}; its component {source}{early})")
        returncode, output = await _child.run_reporting(
            _child.command(staging, strategy), report, ahead.proc if ahead else None
        )
    except BaseException:
        if ahead is not None:  # (one it took over is killed by run_reporting)
            _child.stop(ahead.proc)
        _child.rmtree(staging, ignore_errors=True)
        raise
    if returncode != 0:
        _child.rmtree(staging, ignore_errors=True)
        tail = output[-25:]
        raise SandboxBuildError(
            "building the sandbox failed (exit code %d):\n%s\n"
            "Check that componentize-py and wasmtime are installed at the pinned versions "
            "(pip install -e .), then run `codemode build`." % (returncode, "\n".join(tail))
        )
    compiled = staging / COMPILED_NAME
    meta = {
        "key": key,
        "strategy": strategy,
        "compiled_size": compiled.stat().st_size,
        "compiled_sha256": sha256_file(compiled),
        "built_at": time.time(),
    }
    _pagecache.drop(compiled)  # written and read whole: workers would map most of it
    (staging / META_NAME).write_text(json.dumps(meta, indent=2))
    _child.rmtree(folder, ignore_errors=True)
    os.replace(staging, folder)
    report(f"sandbox ready: {folder}")
    _prune_others(folder.parent, report)


def _prune_others(root: Path, report: Progress) -> None:
    """After a build or a copy: `prune` what other versions left unused."""
    keep = {cache_key(s)[:24] for s in (OPTIMIZED, BASELINE)} | {
        f"component-{component_key()[:24]}"
    }
    for gone in prune(root, keep):
        report(f"removed a cached sandbox unused for {UNUSED_DAYS} days: {gone.name}")


def _child_build(staging: Path | str, strategy: str = OPTIMIZED) -> None:
    """Runs in the build child: the component (from the cache or the package, else made
    now), then compiled with `strategy` and serialized."""
    _child.die_with_parent()
    from ._component import componentize

    staging = Path(staging)
    root = staging.parent
    key = component_key()
    component, _ = find_component(root, key)
    if component is None:
        print("step: componentize: CPython and the guest into a WebAssembly component", flush=True)
        started = time.monotonic()
        component = componentize(root / f"component-{key[:24]}", key)
        print(f"progress: component built in {time.monotonic() - started:.1f} s", flush=True)

    from wasmtime import component as wc

    from ._engine import make_engine

    print(f"step: compile: the component to native code (wasmtime, {strategy})", flush=True)
    started = time.monotonic()
    engine = make_engine(strategy)
    compiled = wc.Component.from_file(engine, str(component)).serialize()
    (staging / COMPILED_NAME).write_bytes(bytes(compiled))
    print(f"progress: compiled to native code in {time.monotonic() - started:.1f} s", flush=True)
