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


ZONES_ENV = "CODEMODE_TZDATA"
ZONES_CHOICES = ("package", "installed")


def zones_choice() -> str:
    """CODEMODE_TZDATA, checked: where the sandbox's zone data comes from. "package" (the
    default): a package that ships its component ships that component's zones too, and
    they are used whatever tzdata is installed. "installed": always the installed tzdata's
    (the first start then makes the component for it, ~15 s, once per tzdata version)."""
    value = os.environ.get(ZONES_ENV, "").strip().lower() or "package"
    if value not in ZONES_CHOICES:
        message = (
            f"{ZONES_ENV}={value!r} is not a choice: use one of {', '.join(ZONES_CHOICES)} "
            "(or leave it unset: the zone data the package ships, else the installed tzdata's)"
        )
        try:  # in the package, an error the CLI reports in a line
            from ..errors import SandboxBuildError
        except ImportError:  # run by path (setup.py's build hook): stdlib only
            raise ValueError(message) from None
        raise SandboxBuildError(message)
    return value


def _installed_tzdata() -> str | None:
    try:
        return dist_version("tzdata")
    except Exception:  # noqa: BLE001 - PackageNotFoundError: none installed
        return None


def _key(guest: hashlib._Hash, tzdata_version: str | None) -> str:
    digest = guest.copy()
    facts = {"componentize-py": dist_version("componentize-py"), "tzdata": tzdata_version}
    digest.update(json.dumps(facts, sort_keys=True).encode())
    return digest.hexdigest()


def component_key() -> str:
    """Everything the component depends on: the guest sources and WIT, and the versions
    of componentize-py (its CPython) and tzdata (the zone data copied in, `zone_data`)."""
    return _resolve()[0]


def zone_data() -> str:
    """Which tzdata's zones the sandbox has, and why (for `codemode doctor`)."""
    _, version, packaged, installed = _resolve()
    if packaged:
        return (
            f"tzdata {version}, shipped with the package (installed: {installed or 'none'}; "
            f"{ZONES_ENV}=installed builds the sandbox with that)"
        )
    return f"tzdata {version or '(none installed)'}, installed"


def _resolve() -> tuple[str, str | None, bool, str | None]:
    """(key, the zones' tzdata version, whether they are the package's, the installed
    tzdata's version). The zones are the installed tzdata's, except where the package
    ships a component made from these sources with this componentize-py: its zones are
    then the package's, as a browser's or Node's are theirs, and the tzdata installed
    beside it (pip keeps any that satisfies `tzdata>=...`, older or newer than the wheel
    build's) does not make a first start build the sandbox again (`zones_choice`)."""
    guest = hashlib.sha256()
    for path in guest_files():
        guest.update(path.relative_to(GUEST_DIR).as_posix().encode())
        guest.update(b"\0")
        guest.update(path.read_bytes())
        guest.update(b"\0")
    installed = _installed_tzdata()
    if zones_choice() == "package":
        shipped = _shipped_zones()
        if shipped is not None and shipped[0] != installed:
            key = _key(guest, shipped[0])
            if key == shipped[1]:
                return key, shipped[0], True, installed
    return _key(guest, installed), installed, False, installed


def _shipped_zones() -> tuple[str, str] | None:
    """(tzdata version, key) of the component the package ships, as its build recorded
    them; None where it ships none (a source checkout) or its record predates this."""
    try:
        meta = json.loads((PREBUILT_DIR / META_NAME).read_text())
        if (PREBUILT_DIR / COMPONENT_NAME).stat().st_size != meta.get("size", -1):
            return None  # its sha256 is checked when it is used
        version, key = meta["tzdata"], meta["key"]
        return (version, key) if isinstance(version, str) and isinstance(key, str) else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


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
    meta = {
        "key": key,
        "sha256": sha256_file(component),
        "size": component.stat().st_size,
        "tzdata": _installed_tzdata(),  # the zones copied in: the key's, and `tzdata`'s
        "built_at": time.time(),
    }
    (staging / META_NAME).write_text(json.dumps(meta, indent=2))
    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(target)
    os.replace(staging, target)
    return target / COMPONENT_NAME


if __name__ == "__main__":  # python -m codemode.wasm_runtime._component FOLDER: for packaging
    started = time.monotonic()
    made = componentize(Path(sys.argv[1]), component_key())
    print(f"component built in {time.monotonic() - started:.1f} s: {made}", file=sys.stderr)
