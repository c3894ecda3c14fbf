"""The compiled sandbox a wheel ships, so that a first start compiles nothing.

Builds compile for the architecture's baseline CPU (`_engine.compile_target`), so code
compiled where a wheel is built loads on every machine of that architecture. The build
hook (setup.py) compiles the component it ships (`ship`) into `prebuilt/sandbox.cwasm`,
with `compiled.json` naming the cache key it was compiled for. A first start whose key
is that one copies it into the cache (`install`, checking its sha256 on the way) instead
of compiling; any other start (another wasmtime, componentize-py or tzdata than the
wheel's build had, another machine) ignores it and compiles as before.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path

from ._component import COMPONENT_NAME, PREBUILT_DIR, sha256_file

SHIPPED_NAME = "sandbox.cwasm"
SHIPPED_META = "compiled.json"


class Damaged(Exception):
    """The shipped file is not the one its build recorded."""


def find(key: str) -> tuple[Path, dict] | None:
    """The compiled file the package carries and its record, if it was compiled for
    `key` (its size checked; its sha256 is checked when it is copied)."""
    folder = PREBUILT_DIR
    try:
        meta = json.loads((folder / SHIPPED_META).read_text())
        path = folder / SHIPPED_NAME
        if meta.get("key") == key and path.stat().st_size == meta.get("compiled_size"):
            return path, meta
    except (OSError, ValueError, AttributeError):
        pass
    return None


def install(source: Path, meta: dict, target: Path) -> None:
    """Copy `source` to `target`, hashing it on the way: one read of the 44 MB file
    (~0.1 s) instead of a copy and a check. Raises `Damaged` (and leaves no `target`)
    if its sha256 is not the one `meta` records."""
    digest = hashlib.sha256()
    try:
        with source.open("rb") as read, target.open("wb") as write:
            for block in iter(lambda: read.read(1 << 20), b""):
                digest.update(block)
                write.write(block)
        if digest.hexdigest() != meta.get("compiled_sha256"):
            raise Damaged(
                f"{source} is not the file its package was built with (sha256 "
                f"{digest.hexdigest()[:12]}, recorded {str(meta.get('compiled_sha256'))[:12]})"
            )
    except BaseException:
        target.unlink(missing_ok=True)
        raise


def ship_compiled() -> None:
    """Packaging (setup.py's build hook, after the component): compile the shipped
    component for this architecture (`ship`), where builds are portable."""
    from ._build import cache_key
    from ._engine import OPTIMIZED, compile_target

    if compile_target() is None:
        print("no portable target here: the package ships no compiled code", file=sys.stderr)
        return
    started = time.monotonic()
    made = ship(PREBUILT_DIR, cache_key(OPTIMIZED))
    took = time.monotonic() - started
    print(f"compiled for {compile_target()} in {took:.1f} s: {made}", file=sys.stderr)


def ship(folder: Path, key: str) -> Path:
    """Packaging (the build hook): compile the component in `folder` for `key` (the
    optimized strategy's cache key) and record it beside it; returns the compiled file."""
    from wasmtime import component as wc

    from ._engine import OPTIMIZED, make_engine

    compiled = bytes(
        wc.Component.from_file(make_engine(OPTIMIZED), str(folder / COMPONENT_NAME)).serialize()
    )
    staging = folder / f"{SHIPPED_NAME}.tmp{os.getpid()}"
    staging.write_bytes(compiled)
    os.replace(staging, folder / SHIPPED_NAME)
    meta = {
        "key": key,
        "strategy": OPTIMIZED,
        "compiled_size": len(compiled),
        "compiled_sha256": hashlib.sha256(compiled).hexdigest(),
        "built_at": time.time(),
    }
    (folder / SHIPPED_META).write_text(json.dumps(meta, indent=2))
    return folder / SHIPPED_NAME


def in_place(shipped: tuple[Path, dict]) -> Path:
    """The shipped file itself, for where the cache cannot take a copy, once its sha256
    is checked (on every such start, ~0.1 s: there is nowhere to note that it was).
    Raises `Damaged` if it is not the recorded file, OSError if it cannot be read."""
    source, meta = shipped
    if sha256_file(source) != meta.get("compiled_sha256"):
        raise Damaged(f"{source} is not the file its package was built with")
    from . import _pagecache

    _pagecache.drop(source)  # read whole: workers would map most of it
    return source
