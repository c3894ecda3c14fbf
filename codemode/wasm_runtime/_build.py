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
import contextlib
import functools
import hashlib
import json
import os
import runpy
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

from .._paths import cache_dir
from ..errors import SandboxBuildError
from . import _pagecache
from ._component import GUEST_DIR, component_key, dist_version, find_component, sha256_file
from ._engine import BASELINE, ENGINE_FLAGS, OPTIMIZED, machine
from ._warmup import record_pages

COMPILED_NAME = "sandbox.cwasm"
META_NAME = "meta.json"
STAMP_NAME = "verified.json"

Progress = Callable[[str], None]


def _rmtree(path: Path, ignore_errors: bool = False) -> None:
    import shutil  # here: a start that finds its build cached never needs it (~3 ms)

    shutil.rmtree(path, ignore_errors=ignore_errors)


def _stderr_progress(message: str) -> None:
    print(f"codemode: {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Artifact:
    """A compiled sandbox component, verified and ready to load in a worker."""

    compiled: Path
    key: str
    built_now: bool
    build_s: float | None = None
    strategy: str = OPTIMIZED
    """How it was compiled (`_engine`): a worker's engine must be made the same way."""


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
        with contextlib.suppress(OSError):  # a read-only cache is checked in full each time
            staging = stamp.with_name(f"{STAMP_NAME}.{os.getpid()}")
            staging.write_text(json.dumps(stamped))
            os.replace(staging, stamp)
        return True
    except (OSError, ValueError, AttributeError):
        return False


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
            _rmtree(folder, ignore_errors=True)
            with contextlib.suppress(OSError):
                (root / f"{folder.name}.lock").unlink()
            removed.append(folder)
    return removed


LOCK_POLL_S = 0.2
"""How often a build waits for another process's build of the same key to finish."""


@contextlib.asynccontextmanager
async def _locked(path: Path) -> AsyncIterator[None]:
    """Serialize builds of the same key across processes (two servers starting at once);
    waiting for the lock can be cancelled."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        try:
            import fcntl
        except ImportError:  # Windows: no cross-process lock; builds then race harmlessly
            yield
            return
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                await asyncio.sleep(LOCK_POLL_S)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


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
) -> Artifact:
    """Return the compiled sandbox, building and compiling it first if the cache has no
    valid copy. The build runs in a child process; cancelling this stops it (the child is
    killed, its half-made folder removed). Progress messages go to `progress` (default:
    stderr), each step as it starts.

    `quick`: the optimized artifact if it is there, else the baseline one, compiled now
    if need be (~3x faster); the caller then has the optimized one built in the
    background (`SandboxPool` does)."""
    report = progress or _stderr_progress
    if quick and not force:
        found = _cached(OPTIMIZED) or _cached(BASELINE)
        if found is not None:
            return found
        try:
            return await ensure_built_async(progress, strategy=BASELINE)
        except SandboxBuildError as exc:
            # Winch is not there on every platform: the optimized code, then, from the start
            report(f"the baseline compile failed; compiling the optimized code instead ({exc})")
            return await ensure_built_async(progress)
    if not force:
        found = _cached(strategy)  # no lock needed (a read-only cache works)
        if found is not None:
            return found
    key = cache_key(strategy)
    root = cache_dir() / "sandbox"
    folder = root / key[:24]
    async with _locked(root / f"{key[:24]}.lock"):
        if not force and _verified(folder, key):
            artifact = Artifact(folder / COMPILED_NAME, key, built_now=False, strategy=strategy)
        else:
            if folder.exists():
                report(f"discarding cached sandbox at {folder} (stale or incomplete)")
            started = time.monotonic()
            await _build_into(folder, key, report, strategy)
            artifact = Artifact(
                folder / COMPILED_NAME,
                key,
                built_now=True,
                build_s=time.monotonic() - started,
                strategy=strategy,
            )
            # what runs touch of it, read once and recorded, before a user's first run
            await record_pages(artifact.compiled, strategy)
    _verified_cache[key] = artifact
    return artifact


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


async def _build_into(folder: Path, key: str, report: Progress, strategy: str) -> None:
    staging = folder.with_name(folder.name + f".tmp{os.getpid()}")
    _rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    component, source = find_component(folder.parent, component_key())
    if component is None:
        report(
            "building the sandbox (CPython -> WebAssembly -> native code; ~15-20 s, once "
            "per version)"
        )
    else:
        report(f"compiling the sandbox ({strategy}; its component {source})")
    # -I: no PYTHONPATH, no user site and not the working directory, where another copy
    # of codemode (a checkout, say) would be imported instead of this one.
    root = str(Path(__file__).resolve().parents[2])
    launch = (
        f"import sys; sys.path.insert(0, {root!r}); "
        "from codemode.wasm_runtime._build import _child_build; _child_build(*sys.argv[1:])"
    )
    cmd = [sys.executable, "-I", "-c", launch, str(staging), strategy]
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    env["PYTHONUNBUFFERED"] = "1"  # its progress lines arrive as they are printed
    try:
        returncode, output = await _run_reporting(cmd, env, report)
    except BaseException:
        _rmtree(staging, ignore_errors=True)
        raise
    if returncode != 0:
        _rmtree(staging, ignore_errors=True)
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
    _rmtree(folder, ignore_errors=True)
    os.replace(staging, folder)
    report(f"sandbox ready: {folder}")
    keep = {cache_key(s)[:24] for s in (OPTIMIZED, BASELINE)} | {
        f"component-{component_key()[:24]}"
    }
    for gone in prune(folder.parent, keep):
        report(f"removed a cached sandbox unused for {UNUSED_DAYS} days: {gone.name}")


BUILD_TICK_S = 5.0
"""While a build step runs, its elapsed time is reported this often."""


async def _run_reporting(
    cmd: list[str], env: dict[str, str], report: Progress
) -> tuple[int, list[str]]:
    """Run the build child; report each step as it starts and, while one runs, its
    elapsed seconds every BUILD_TICK_S. Returns the exit code and the child's output."""
    proc = await asyncio.create_subprocess_exec(
        *cmd,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=env,
    )
    step = {"name": "starting", "since": time.monotonic()}

    async def tick() -> None:
        while True:
            await asyncio.sleep(BUILD_TICK_S)
            elapsed = time.monotonic() - step["since"]
            if elapsed >= 1:
                report(f"  ... {step['name'].split(':')[0]}: {elapsed:.0f} s")

    output: list[str] = []
    ticker = asyncio.ensure_future(tick())
    try:
        assert proc.stdout is not None
        async for raw in proc.stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            output.append(line)
            if line.startswith("step: "):
                step.update(name=line.removeprefix("step: "), since=time.monotonic())
                report(step["name"])
            elif line.startswith("progress: "):
                report(line.removeprefix("progress: "))
        await proc.wait()
    except BaseException:  # cancelled: the child must not outlive the build
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await asyncio.shield(proc.wait())
        raise
    finally:
        ticker.cancel()
    return proc.returncode or 0, output


def _child_build(staging: Path | str, strategy: str = OPTIMIZED) -> None:
    """Runs in the build child: the component (from the cache or the package, else made
    now), then compiled with `strategy` and serialized."""
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
