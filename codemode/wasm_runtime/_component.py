"""The sandbox's platform-independent stage: the guest as a WebAssembly component.

componentize-py turns CPython and the guest sources into one component (~10 s here); it
depends on nothing of the machine, so it is made once per `component_key` and kept
beside the compiled artifacts (`component-<key>/sandbox.wasm`), where every compile
strategy reads it. A package built as a wheel can carry it (`prebuilt/`, made by the
build hook in setup.py): then a first start compiles only. Stdlib only, plus
componentize-py and tzdata in the build child.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import sys
import time
from pathlib import Path

GUEST_DIR = Path(__file__).parent / "guest"
PREBUILT_DIR = Path(__file__).parent / "prebuilt"
GUEST_MODULE = "sandbox_guest"
WORLD = "sandbox"
COMPONENT_NAME = "sandbox.wasm"
META_NAME = "meta.json"


def dist_version(name: str) -> str:
    """The installed version of distribution `name`, read off its `.dist-info` folder's
    name on sys.path (the first, as imports find it). `importlib.metadata` says the same
    but costs ~35 ms to import and search, on every server start; it is the fallback."""
    found = _dist_infos().get(name.replace("-", "_").lower())
    if found is not None:
        return found
    from importlib import metadata

    return metadata.version(name)


@functools.lru_cache(maxsize=1)
def _dist_infos() -> dict[str, str]:
    """Each distribution's version as the first `.dist-info` folder on sys.path names it
    (one scan per process: a start asks for three)."""
    versions: dict[str, str] = {}
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for folder in names:
            if folder.endswith(".dist-info") and "-" in folder:
                dist, _, version = folder[: -len(".dist-info")].partition("-")
                versions.setdefault(dist.lower(), version)
    return versions


def guest_files() -> list[Path]:
    return sorted([*GUEST_DIR.glob("*.py"), *(GUEST_DIR / "wit").glob("*.wit")])


def component_key() -> str:
    """Everything the component depends on: the guest sources and WIT, and the versions
    of componentize-py (its CPython) and tzdata (the zone data copied in)."""
    digest = hashlib.sha256()
    for path in guest_files():
        digest.update(path.relative_to(GUEST_DIR).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    facts = {"componentize-py": dist_version("componentize-py"), "tzdata": dist_version("tzdata")}
    digest.update(json.dumps(facts, sort_keys=True).encode())
    return digest.hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _valid(folder: Path, key: str) -> Path | None:
    """`folder`'s component, if its meta names `key` and the file's sha256 matches."""
    try:
        meta = json.loads((folder / META_NAME).read_text())
        path = folder / COMPONENT_NAME
        if meta.get("key") == key and sha256_file(path) == meta.get("sha256"):
            return path
    except (OSError, ValueError, AttributeError):
        pass
    return None


def find_component(cache_root: Path, key: str) -> tuple[Path | None, str]:
    """The component for `key`, and where it came from: the cache, or one the package
    carries; (None, "") when it must be made."""
    cached = _valid(cache_root / f"component-{key[:24]}", key)
    if cached is not None:
        return cached, "cached"
    shipped = _valid(PREBUILT_DIR, key)
    if shipped is not None:
        return shipped, "shipped with the package"
    return None, ""


def componentize(target: Path, key: str) -> Path:
    """Make the component into `target` (a folder, replaced as a whole when done)."""
    import shutil

    import componentize_py
    import tzdata

    target = target.resolve()  # componentize-py runs in the staging folder
    staging = target.with_name(target.name + f".tmp{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    # Packages the guest reads at build time only (zone data), on a path of their own so
    # that nothing else of this environment's site-packages is visible to the guest.
    extra = staging / "build-path"
    shutil.copytree(Path(tzdata.__file__).parent, extra / "tzdata")
    component = staging / COMPONENT_NAME
    sys.argv = [
        "componentize-py", "--wit-path", str(GUEST_DIR / "wit"), "--world", WORLD, "--quiet",
        "componentize", "--python-path", str(GUEST_DIR), "--python-path", str(extra),
        GUEST_MODULE, "--output", str(component),
    ]  # fmt: skip
    cwd = os.getcwd()
    os.chdir(staging)  # componentize-py may write scratch files in the working directory
    try:
        componentize_py.script()
    except SystemExit as exit_:
        if exit_.code not in (0, None):
            raise
    finally:
        os.chdir(cwd)
    shutil.rmtree(extra, ignore_errors=True)
    meta = {"key": key, "sha256": sha256_file(component), "built_at": time.time()}
    (staging / META_NAME).write_text(json.dumps(meta, indent=2))
    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(target)
    os.replace(staging, target)
    return target / COMPONENT_NAME


if __name__ == "__main__":  # python -m codemode.wasm_runtime._component FOLDER: for packaging
    started = time.monotonic()
    made = componentize(Path(sys.argv[1]), component_key())
    print(f"component built in {time.monotonic() - started:.1f} s: {made}", file=sys.stderr)
