"""One sandbox worker process, as the pool sees it: the process and the parent's end of
its socketpair, framed as `_protocol` says. Stdout is never shared with a worker (on
stdio it is the MCP channel)."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import importlib.util
import os
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path

from ..errors import WorkerError
from . import _native, _pagecache
from . import _protocol as P
from ._engine import EPOCH_TICK_S, OPTIMIZED, engine_settings, machine
from ._outcome import memory_floor_mb

WORKER_SCRIPT = Path(__file__).with_name("_worker.py")


@functools.lru_cache(maxsize=1)
def _wasmtime_path() -> str:
    """The folder wasmtime is imported from, found without importing it here. The worker
    runs with `-S` (no site: no .pth files, no editable-install finders, ~15 ms less per
    start) and this folder on its path."""
    spec = importlib.util.find_spec("wasmtime")
    if spec is None or not spec.submodule_search_locations:
        raise WorkerError("wasmtime is not installed: pip install -e . (it pins wasmtime)")
    return str(Path(next(iter(spec.submodule_search_locations))).parent)


def library_path() -> str:
    """wasmtime's library, as wasmtime-py ships it in its package folder."""
    name = {"linux": "_libwasmtime.so", "darwin": "_libwasmtime.dylib", "win32": "_wasmtime.dll"}
    aliases = {"AMD64": "x86_64", "arm64": "aarch64", "ARM64": "aarch64"}
    arch = machine()
    arch = aliases.get(arch, arch)
    system = "linux" if sys.platform.startswith("linux") else sys.platform
    return os.path.join(_wasmtime_path(), "wasmtime", f"{system}-{arch}", name.get(system, "?"))


RESIDENT_MB = 0
"""How much of its sandbox memory a worker keeps resident between runs, by default: none
(`codemode.resident_mb` sets it). Each run starts in a new instance whose memory is the
heap image as the build left it. Mapped anew (0), every page a run touches faults in
again: ~800 page faults for a trivial run and the warm-up of the next instance here,
~1,000 for the expense workflow. Kept resident (wasmtime's pooling allocator), the memory
is reset in place instead: wasmtime 50 cannot tell which pages a run wrote (its
PAGEMAP_SCAN option is not in its C API), so it copies the image back over the first
`resident` bytes of the memory and drops the rest. The ~20 MB heap image and what runs
write past it fit in 32 MB: no faults at all, for ~28 MB more RSS per worker and a copy
of those 32 MB after each run, off the run's path (back to back, still less CPU than the
faults it spares; `benchmarks/sandbox.py` measures both). Off by default for that RSS."""


def worker_settings(strategy: str, resident_bytes: int = RESIDENT_MB << 20) -> list[str]:
    """A worker's arguments after LIBRARY: SETTINGS, the warm-up program, its options and
    the catalog a first instance is prepared with."""
    settings = P.settings(engine_settings(strategy), EPOCH_TICK_S, resident_bytes)
    return [settings, P.WARMUP_CODE, P.prepare_options(None), P.EMPTY_CATALOG]


def worker_command(
    native: Path | None,
    fd: int,
    compiled: Path,
    memory_bytes: int,
    strategy: str,
    resident_bytes: int = RESIDENT_MB << 20,
) -> list[str]:
    """How a worker is started: the native program, or `_worker.py` under this Python
    (`-E -S`) where there is none; then the arguments both take (see `worker.c`)."""
    program = [str(native)] if native else [sys.executable, "-E", "-S", str(WORKER_SCRIPT)]
    place = [str(fd), str(compiled), str(memory_bytes), library_path()]
    return [*program, *place, *worker_settings(strategy, resident_bytes)]


WORKER_START_TIMEOUT_S = 60.0
"""A worker that has not said it is ready by then is killed (a cold page cache and a
loaded machine take seconds; a healthy start takes ~0.3 s)."""


class ArtifactRefused(WorkerError):
    """A worker could not start because wasmtime refused the compiled artifact itself
    (another wasmtime, other flags, another machine): a new build may help. Any other
    failure to start would only happen again."""


class BelowFloor(WorkerError):
    """A worker could not start because the memory limit is below what the sandbox needs
    before any code runs (its heap snapshot)."""


Handler = Callable[[int, bytes], bool]
"""Called with each frame as it arrives; returns whether it took the frame."""


READ_CHUNK = 256 * 1024
"""Bytes read from a worker at a time, into one buffer kept for the process's life.
(asyncio's plain Protocol reads into a new 256 KiB bytes object each time: above
malloc's mmap threshold, that is an mmap and an munmap per frame, ~16 us here.)"""


class _Frames(asyncio.BufferedProtocol):
    """The parent's end of the socketpair: frames cut from the stream as bytes arrive.
    Each is offered to the handler set now (called in the same loop turn, so the calls
    of a batch start without a trip through a reader task); one it does not take waits
    in a queue for `next()`, in order. The end of the stream is ConnectionError for
    whoever waits."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.handler: Handler | None = None
        self._buffer = bytearray()
        self._chunk = memoryview(bytearray(READ_CHUNK))
        self._queue: collections.deque[tuple[int, bytes]] = collections.deque()
        self._waiter: asyncio.Future[None] | None = None
        self._lost: BaseException | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._chunk

    def buffer_updated(self, nbytes: int) -> None:
        buffer = self._buffer
        buffer += self._chunk[:nbytes]  # copied out: the next read reuses the chunk
        start, end = 0, len(buffer)
        while end - start >= P.HEADER.size:
            size, kind = P.HEADER.unpack_from(buffer, start)
            stop = start + P.HEADER.size + size
            if stop > end:
                break
            frame = (kind, bytes(buffer[start + P.HEADER.size : stop]))
            start = stop
            if self._queue or self.handler is None or not self.handler(*frame):
                self._queue.append(frame)
        del buffer[:start]
        self._wake()

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = exc or ConnectionError("the sandbox worker closed its socket")
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done() and (self._queue or self._lost):
            self._waiter.set_result(None)

    async def next(self) -> tuple[int, bytes]:
        while not self._queue:
            if self._lost is not None:
                raise ConnectionError(str(self._lost)) from None
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._queue.popleft()


class WorkerProcess:
    """One worker: the process and the parent's end of its socketpair."""

    def __init__(self, proc: asyncio.subprocess.Process, frames: _Frames) -> None:
        self.proc = proc
        self._frames = frames
        self.ready_ms = 0.0
        self.catalog_id: str | None = None
        """The id of the last catalog sent to this worker (it keeps it)."""
        self.compiled: Path | None = None
        """The artifact it runs (the pool retires workers of a replaced one)."""

    @classmethod
    async def start(
        cls,
        compiled: Path,
        memory_bytes: int,
        strategy: str = OPTIMIZED,
        resident_bytes: int = RESIDENT_MB << 20,
    ) -> WorkerProcess:
        """A worker, ready: the native one, or its Python twin where there is none; and
        the twin if the native one cannot start (a cached program that does not run here,
        say: it is discarded, said on stderr), unless CODEMODE_WORKER=native chose it."""
        native = await _native.program()
        try:
            return await cls._start(native, compiled, memory_bytes, strategy, resident_bytes)
        except (ArtifactRefused, BelowFloor):
            raise  # the Python worker would fail the same way
        except WorkerError as exc:
            if native is None or _native.choice() == "native":
                raise
            _native.failed(native, str(exc))
        return await cls._start(None, compiled, memory_bytes, strategy, resident_bytes)

    @classmethod
    async def _start(
        cls,
        native: Path | None,
        compiled: Path,
        memory_bytes: int,
        strategy: str,
        resident_bytes: int,
    ) -> WorkerProcess:
        started = time.monotonic()
        parent_sock, child_sock = socket.socketpair()
        try:
            proc = await asyncio.create_subprocess_exec(
                *worker_command(
                    native, child_sock.fileno(), compiled, memory_bytes, strategy, resident_bytes
                ),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,  # stdout may be the MCP channel: never share it
                stderr=None,
                env={},  # the server's environment (its tokens, say) is not the worker's
                pass_fds=(child_sock.fileno(),),
                # a session of its own: a signal for the server's process group (Ctrl-C in
                # a terminal) is the server's to handle (a drain), not the workers'; a
                # worker still ends when the server does (its socket closes)
                start_new_session=True,
            )
        finally:
            child_sock.close()
        # while it starts: the heap-image pages runs touch, read ahead if not cached
        _pagecache.settle_soon(compiled.parent / _pagecache.RECORD_NAME)
        loop = asyncio.get_running_loop()
        _, frames = await loop.create_connection(_Frames, sock=parent_sock)
        worker = cls(proc, frames)
        worker.compiled = compiled
        try:
            kind, payload = await asyncio.wait_for(worker.recv(), WORKER_START_TIMEOUT_S)
        except (asyncio.TimeoutError, ConnectionError) as exc:
            await worker.kill()
            raise WorkerError(f"a sandbox worker did not start: {exc!r}") from None
        except BaseException:  # cancelled while starting: leave no process behind
            await asyncio.shield(worker.kill())
            raise
        if kind != P.READY:
            await worker.kill()
            cause, _, message = payload.decode(errors="replace").partition("\n")
            error = ArtifactRefused if cause == "artifact" else WorkerError
            floor = memory_floor_mb(message)
            if floor is not None:
                error = BelowFloor
                message = (
                    f"the memory limit ({memory_bytes >> 20} MB) is below what the sandbox "
                    f"needs before any code runs ({floor} MB): raise memory_mb"
                )
            raise error(f"a sandbox worker failed to start: {message}")
        worker.ready_ms = (time.monotonic() - started) * 1000
        _pagecache.image_of(proc.pid, str(compiled))  # found while its first instance is there
        return worker

    async def recv(self) -> tuple[int, bytes]:
        """The next frame not taken by a handler. Safe to cancel and call again (a frame
        is only taken when it is returned); ConnectionError once the worker is gone."""
        return await self._frames.next()

    def listen(self, handler: Handler | None) -> None:
        """Offer frames to `handler(kind, payload)` as they arrive; those it does not
        take (and all, with None) go to `recv()`."""
        self._frames.handler = handler

    def send(self, kind: int, payload: bytes) -> None:
        self.send_frames(P.frame(kind, payload))

    def send_frames(self, data: bytes) -> None:
        """Write whole frames (one, or several joined)."""
        transport = self._frames.transport
        if transport is not None and not transport.is_closing():
            transport.write(data)

    @property
    def writable(self) -> bool:
        transport = self._frames.transport
        return self.alive and transport is not None and not transport.is_closing()

    @property
    def alive(self) -> bool:
        return self.proc.returncode is None

    async def kill(self) -> None:
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
        if self._frames.transport is not None:
            self._frames.transport.close()
        with contextlib.suppress(Exception):
            await self.proc.wait()
