"""The build's child process: its command and environment, the lock that keeps two
processes from building the same key, running it while its steps are reported, and one
started ahead (`_build.build_ahead`, with `subprocess` before any event loop) taken over
by the build that asks for its key."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import IO

Progress = Callable[[str], None]


def rmtree(path: Path, ignore_errors: bool = False) -> None:
    import shutil  # here: a start that finds its build cached never needs it (~3 ms)

    shutil.rmtree(path, ignore_errors=ignore_errors)


LOCK_POLL_S = 0.2
"""How often a build waits for another process's build of the same key to finish."""


@contextlib.asynccontextmanager
async def locked(path: Path, held: IO[str] | None = None) -> AsyncIterator[None]:
    """Serialize builds of the same key across processes (two servers starting at once);
    waiting for the lock can be cancelled. `held`: the lock, taken already (by
    `build_ahead`), released here."""
    if held is not None:
        with held:
            try:
                yield
            finally:
                unlock(held)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        try:
            import fcntl  # noqa: F401 - whether there is a cross-process lock at all
        except ImportError:  # Windows: no cross-process lock; builds then race harmlessly
            yield
            return
        while not try_lock(handle):
            await asyncio.sleep(LOCK_POLL_S)
        try:
            yield
        finally:
            unlock(handle)


def lock_path(root: Path, key: str) -> Path:
    """The file whose lock a build of `key` under `root` holds."""
    return root / f"{key[:24]}.lock"


def try_lock(handle: IO[str]) -> bool:
    """Take `handle`'s exclusive lock if no other holds it."""
    import fcntl

    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def unlock(handle: IO[str]) -> None:
    import fcntl

    fcntl.flock(handle, fcntl.LOCK_UN)


@dataclasses.dataclass
class Ahead:
    """A build started ahead (`_build.build_ahead`): its key, staging folder, child and lock
    (held)."""

    key: str
    staging: Path
    proc: subprocess.Popen[bytes]
    lock: IO[str]


def staging_for(folder: Path) -> Path:
    """A new, empty staging folder beside `folder` for this process's build of it."""
    staging = folder.with_name(folder.name + f".tmp{os.getpid()}")
    rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    return staging


def command(staging: Path, strategy: str) -> list[str]:
    # -I: no PYTHONPATH, no user site and not the working directory, where another copy
    # of codemode (a checkout, say) would be imported instead of this one.
    root = str(Path(__file__).resolve().parents[2])
    launch = (
        f"import sys; sys.path.insert(0, {root!r}); "
        "from codemode.wasm_runtime._build import _child_build; _child_build(*sys.argv[1:])"
    )
    return [sys.executable, "-I", "-c", launch, str(staging), strategy]


PARENT_ENV = "CODEMODE_BUILD_PARENT"


def child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    env["PYTHONUNBUFFERED"] = "1"  # its progress lines arrive as they are printed
    env[PARENT_ENV] = str(os.getpid())
    return env


def die_with_parent() -> None:
    """In the build child: end with the process that started it, however that one ends
    (SIGKILL, `os._exit`, a signal before any handler), where an exit hook or a
    cancellation would not run: Linux's parent-death signal, then a check that the parent
    did not go before it was set."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    PR_SET_PDEATHSIG = 1
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    parent = os.environ.get(PARENT_ENV)
    if parent and parent.isdigit() and os.getppid() != int(parent):
        os._exit(1)


BUILD_TICK_S = 5.0
"""While a build step runs, its elapsed time is reported this often."""


class _Adopted:
    """A build child `build_ahead` started with `subprocess`, read and awaited as an
    asyncio child is (its output through a read pipe, its exit in a thread)."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        self.stdout: asyncio.StreamReader | None = None
        self._transport: asyncio.BaseTransport | None = None

    async def open(self) -> _Adopted:
        loop = asyncio.get_running_loop()
        self.stdout = reader = asyncio.StreamReader()
        self._transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), self.proc.stdout
        )
        return self

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode

    def kill(self) -> None:
        self.proc.kill()

    async def wait(self) -> int:
        try:
            return await asyncio.to_thread(self.proc.wait)
        finally:
            if self._transport is not None:
                self._transport.close()


async def run_reporting(
    cmd: list[str], report: Progress, started: subprocess.Popen[bytes] | None = None
) -> tuple[int, list[str]]:
    """Run the build child (or take over `started`, the one `build_ahead` started);
    report each step as it starts and, while one runs, its elapsed seconds every
    BUILD_TICK_S. Returns the exit code and the child's output."""
    proc: asyncio.subprocess.Process | _Adopted
    if started is not None:
        proc = await _Adopted(started).open()
    else:
        proc = await asyncio.create_subprocess_exec(
            *cmd,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=child_env(),
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


def start_ahead(key: str, root: Path, strategy: str, built: Callable[[], bool]) -> Ahead | None:
    """Start the child building `key` (with `strategy`) into a staging folder beside
    `root / key[:24]`, holding that key's lock; None where the lock is taken (another
    process builds it), `built()` says, under the lock, that it is built already, or
    nothing could start. Without a cross-process lock (Windows), never."""
    try:
        import fcntl  # noqa: F401 - whether there is a cross-process lock at all
    except ImportError:
        return None
    try:
        root.mkdir(parents=True, exist_ok=True)
        handle = lock_path(root, key).open("a")
    except OSError:
        return None  # a read-only cache, say: the build reports it when asked
    try:
        taken = try_lock(handle)  # not taken: another process builds it
    except OSError:
        taken = False
    if not taken:
        handle.close()
        return None
    staging = None
    try:
        if built():  # finished by another process meanwhile
            raise FileExistsError
        staging = staging_for(root / key[:24])
        proc = subprocess.Popen(
            command(staging, strategy),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=child_env(),
        )
    except OSError:
        if staging is not None:
            rmtree(staging, ignore_errors=True)
        unlock(handle)
        handle.close()
        return None
    return Ahead(key, staging, proc, handle)


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Kill a build child started with `subprocess` (if it still runs) and reap it."""
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


def abandon(ahead: Ahead) -> None:
    """Stop a build started ahead that nobody took over, remove what it made, and let go
    of its lock."""
    stop(ahead.proc)
    rmtree(ahead.staging, ignore_errors=True)
    with ahead.lock:
        unlock(ahead.lock)
