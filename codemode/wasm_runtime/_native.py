"""The native worker (`worker.c`): compiled once per source version with the machine's C
compiler, into the cache beside the sandbox's artifact, and run instead of the Python
worker (`_worker.py`) wherever that works.

`CODEMODE_WORKER` chooses: `native` (fail, saying why, if it cannot be built), `python`
(never build it), or unset (native if a compiler builds it, else Python, said once on
stderr). A build takes ~0.5 s; the two workers behave the same (`_protocol`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import os
import sys
from pathlib import Path

from .._paths import cache_dir
from ..errors import WorkerError
from ._engine import machine

SOURCE = Path(__file__).with_name("worker.c")
PROGRAM_NAME = "codemode-worker"
CHOICES = ("native", "python")
BUILD_TIMEOUT_S = 120.0
log = logging.getLogger("codemode.sandbox")

_built: dict[str, Path | None] = {}
"""Per source key: the program, or None when it could not be built (not tried again)."""
_why_python = ""
"""Why the Python worker runs, once it does (the last reason)."""


def status() -> tuple[Path | None, str]:
    """The native worker this process runs, or None and why the Python one runs (after a
    worker has started)."""
    native = next((p for p in _built.values() if p is not None), None)
    if native is not None:
        return native, ""
    if choice() == "python":
        return None, "CODEMODE_WORKER=python chose it"
    return None, _why_python or "the native worker was not tried"


def choice() -> str | None:
    """CODEMODE_WORKER, checked: "native", "python" or None (unset: native if it builds)."""
    value = os.environ.get("CODEMODE_WORKER", "").strip().lower()
    if value and value not in CHOICES:
        raise WorkerError(
            f"CODEMODE_WORKER={value!r} is not a worker: use one of {', '.join(CHOICES)} "
            "(or leave it unset: native where a C compiler builds it, else Python)"
        )
    return value or None


@functools.lru_cache(maxsize=1)
def source_key() -> str:
    """What the program depends on: its source and the platform it is built for (read
    once per process: every worker start asks)."""
    digest = hashlib.sha256(SOURCE.read_bytes())
    digest.update(f"\0{sys.platform}\0{machine()}".encode())
    return digest.hexdigest()


def compiler() -> list[str] | None:
    """The C compiler's command: $CC (which may carry words of its own, `ccache gcc`), else
    cc, gcc or clang on PATH."""
    import shlex
    import shutil  # here: a server whose worker is built never needs it

    named = shlex.split(os.environ.get("CC", ""))
    if named and shutil.which(named[0]):
        return [shutil.which(named[0]) or named[0], *named[1:]]
    for candidate in ("cc", "gcc", "clang"):
        found = shutil.which(candidate)
        if found:
            return [found]
    return None


async def program() -> Path | None:
    """The native worker's program, built if need be; None where the Python worker is to
    run (chosen, or no compiler could build it: said once on stderr)."""
    chosen = choice()
    if chosen == "python" or not sys.platform.startswith("linux"):
        if chosen == "native":
            raise WorkerError("the native worker is Linux only: unset CODEMODE_WORKER")
        return None
    try:
        key, reason = source_key(), ""
    except OSError as exc:  # an install without the source (a package made without it)
        key, reason = "no source", f"the native worker's source is missing: {exc}"
    if key in _built:
        found = _built[key]
        if found is None and chosen == "native":
            raise WorkerError(f"the native worker cannot run here: {_why_python}")
        return found
    if not reason:
        path = cache_dir() / "worker" / key[:24] / PROGRAM_NAME
        try:
            if not os.access(path, os.X_OK):
                await _build(path)
            _built[key] = path
            return path
        except WorkerError as exc:
            reason = str(exc)
    _python_instead(key, reason, chosen)
    return None


def _python_instead(key: str, reason: str, chosen: str | None) -> None:
    """`key`'s native worker is not to run, for `reason`: an error where it was chosen,
    else the Python worker runs from now on, said once on stderr."""
    global _why_python
    _built[key] = None
    _why_python = reason
    if chosen == "native":
        raise WorkerError(reason)
    log.warning(
        "%s; sandbox workers run in Python instead (each ~11 MB more memory and ~40 ms "
        "slower to start). Set CODEMODE_WORKER=python to choose that.",
        reason,
    )


def failed(path: Path, reason: str) -> None:
    """The native worker at `path` did not start: it is removed (the next server builds
    it again) and this one runs the Python worker from now on, said on stderr."""
    with contextlib.suppress(OSError):
        path.unlink()
    for key, built in list(_built.items()):
        if built == path:
            _python_instead(key, f"the native worker did not start: {reason}", None)


async def _build(path: Path) -> None:
    """Compile `worker.c` to `path` (atomically: a half-written program is never run)."""
    cc = compiler()
    if cc is None:
        raise WorkerError("no C compiler (cc, gcc or clang; or $CC) to build the native worker")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a read-only cache (an image built without it, say)
        raise WorkerError(f"the native worker cannot be written to {path.parent}: {exc}") from None
    staging = path.with_name(f"{PROGRAM_NAME}.tmp{os.getpid()}")
    command = [*cc, "-O2", "-std=c11", "-o", str(staging), str(SOURCE), "-ldl", "-lpthread"]
    proc = await asyncio.create_subprocess_exec(
        *command,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,  # never the server's stdout (the MCP channel)
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), BUILD_TIMEOUT_S)
    except BaseException as exc:  # timed out or cancelled: no compiler left running
        if proc.returncode is None:
            proc.kill()
            await asyncio.shield(proc.wait())
        staging.unlink(missing_ok=True)
        if isinstance(exc, asyncio.TimeoutError):
            raise WorkerError(
                f"{Path(cc[0]).name} took over {BUILD_TIMEOUT_S:g} s to build the native worker"
            ) from None
        raise
    if proc.returncode != 0 or not staging.exists():
        staging.unlink(missing_ok=True)
        said = out.decode(errors="replace").strip().splitlines()[-5:]
        raise WorkerError(
            f"{Path(cc[0]).name} could not build the native worker (exit {proc.returncode}): "
            + " / ".join(said)
        )
    try:
        os.replace(staging, path)
    except OSError as exc:
        staging.unlink(missing_ok=True)
        raise WorkerError(f"the native worker cannot be written to {path}: {exc}") from None


def build_now() -> str:
    """Build the native worker if need be (`codemode build`): what was done, in a line."""
    if choice() == "python":
        return "native worker: not built (CODEMODE_WORKER=python)"
    try:
        found = asyncio.run(program())
    except WorkerError as exc:
        return f"native worker: not built ({exc}); workers run in Python"
    return f"native worker: {found}" if found else "native worker: none; workers run in Python"
