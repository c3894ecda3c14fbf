"""SandboxPool: worker processes that run code, lent to one `Execution` at a time.

Each execution runs in one worker (a fresh instance there); concurrent executions run in
different workers, up to `size` at once, the rest queue. A worker that overruns the hard
deadline, dies, or whose execution is cancelled is killed and replaced in the background;
the caller always gets an answer within timeout + 1 s. Background work (replacements, the
cleanup after a cancelled execution) is owned by the pool and ends with `close()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator, Callable

from .._aio import Background
from ..context import CallContext
from ..errors import ErrorKind, WorkerError
from . import _native, _pagecache
from ._build import Artifact, Progress, _stderr_progress, ensure_built_async, warm_up
from ._engine import OPTIMIZED
from ._execution import Execution, memory_bytes
from ._process import RESIDENT_MB, ArtifactRefused, WorkerProcess, library_path
from ._types import ExecutionError, ExecutionResult, Limits, ToolHost

WARM_UP_WAIT_S = 10.0
"""How long a copied artifact's warm-up waits for the pool's first answer."""

log = logging.getLogger("codemode.sandbox")


class SandboxPool:
    """Runs Python code in WebAssembly sandboxes, held by a pool of worker processes.

    `async with SandboxPool() as pool: result = await pool.execute(code, host)`; or
    `open()` now and `start()` (which builds the sandbox if needed) when wanted.
    """

    def __init__(
        self,
        size: int | None = None,
        limits: Limits | None = None,
        progress: Progress | None = None,
        quick_start: bool = True,
        resident_mb: int | None = None,
    ) -> None:
        self.size = max(1, size or min(4, os.cpu_count() or 2))
        self.resident_bytes = (RESIDENT_MB if resident_mb is None else max(0, resident_mb)) << 20
        """How much of each worker's sandbox memory stays resident between runs (see
        `_process.RESIDENT_MB`)."""
        self.limits = limits or Limits()
        self._progress = progress
        self._quick_start = quick_start
        """On an empty cache, start on baseline-compiled code (~2 s) and move to the
        optimized code when its compile, in the background, is done (~6 s more)."""
        self._answered = asyncio.Event()  # set once a run has answered
        self._artifact: Artifact | None = None
        self._idle: list[WorkerProcess] = []
        self._busy: set[WorkerProcess] = set()
        self._starting = 0
        self._available = asyncio.Condition()
        self._line = FairLine()
        self._background = Background("codemode:sandbox-pool")
        self._cleanups: set[asyncio.Task[None]] = set()
        self._kept: set[KeptInstance] = set()
        self._seq = 0
        self._runs = 0
        self._last_run = time.monotonic()
        self._open = False
        self._closed = False
        self.last_worker_ready_ms = 0.0

    async def __aenter__(self) -> SandboxPool:
        await self.open()
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def artifact(self) -> Artifact:
        if self._artifact is None:
            raise WorkerError("the pool is not started: use `async with SandboxPool()` or start()")
        return self._artifact

    async def open(self) -> None:
        if not self._open:
            await self._background.open()
            self._open = True

    async def start(self, workers: int = 1) -> None:
        """Build (if needed) and start `workers` workers now; more start on demand."""
        await self.open()
        if self._artifact is None:
            quick = self._quick_start
            # the native worker is built (first use only, ~0.5 s) while the sandbox is
            # checked or compiled; its failure where it was chosen is raised here
            native = asyncio.ensure_future(_native.program())
            try:
                self._artifact = await ensure_built_async(self._progress, quick=quick)
            except BaseException:
                native.cancel()  # no compiler left running
                await asyncio.gather(native, return_exceptions=True)
                raise
            await native
            try:
                await self._add_worker()
            except ArtifactRefused as exc:
                # The cached file passed its checksum but this wasmtime cannot load it
                # (copied from another machine, say): build it anew, once. (Any other
                # failure to start, a memory limit below the sandbox's floor say, is
                # raised as it is: a new build would fail the same way.)
                log.warning("rebuilding the sandbox: a worker could not load it (%s)", exc)
                self._artifact = await ensure_built_async(
                    self._progress, force=True, strategy=self._artifact.strategy
                )
                await self._add_worker()
            if self._artifact.strategy != OPTIMIZED:
                self._background.start_soon(self._upgrade, name="compile the optimized sandbox")
            elif not self._artifact.warm:  # copied from the package: no record of its pages yet
                self._background.start_soon(self._warm_up_later, name="record the sandbox's pages")
            workers -= 1
        await asyncio.gather(*(self._add_worker() for _ in range(min(workers, self.size - 1))))

    async def close(self) -> None:
        self._closed = True
        await asyncio.gather(*self._cleanups, return_exceptions=True)
        await self._background.close()
        workers = [*self._idle, *self._busy]
        self._idle.clear()
        self._busy.clear()
        await asyncio.gather(
            *(w.kill() for w in workers),
            *(kept.close() for kept in list(self._kept)),
            return_exceptions=True,
        )

    @property
    def workers_busy(self) -> int:
        """Pool workers running an execution now."""
        return len(self._busy)

    @property
    def workers_up(self) -> int:
        """Pool workers started (idle or running an execution)."""
        return len(self._idle) + len(self._busy)

    @property
    def worker_pids(self) -> list[int]:
        return [w.proc.pid for w in [*self._idle, *self._busy, *(k.worker for k in self._kept)]]

    async def _upgrade(self) -> None:
        """Warm up the baseline build the pool started on (its record, for a later start
        that finds only it), compile the optimized artifact, then move to it: new workers
        start on it, idle ones on the old artifact are replaced now and busy ones when
        their run ends (sessions keep theirs until they close)."""
        await self._warm_up()
        optimized = await ensure_built_async(self._progress)
        self._artifact = optimized
        async with self._available:
            stale = [w for w in self._idle if w.compiled != optimized.compiled]
            for worker in stale:
                self._idle.remove(worker)
        for worker in stale:
            self._replace_later()
            await worker.kill()
        (self._progress or _stderr_progress)("the sandbox now runs optimized code")

    async def _warm_up_later(self) -> None:
        """`_warm_up` once the first answer is out (a worker and nine programs: ~0.3 s of
        CPU the first program need not share), or after `WARM_UP_WAIT_S` without one."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._answered.wait(), WARM_UP_WAIT_S)
        await self._warm_up()

    async def _warm_up(self) -> None:
        """The warm-up the quick path leaves to the pool (in the background): what
        runs touch of the artifact, recorded for later starts (`_build.warm_up`)."""
        if not self.artifact.warm:
            try:
                await warm_up(self.artifact)
            except Exception as exc:  # noqa: BLE001 - advice only: what follows goes on
                log.debug("the sandbox's warm-up failed: %s", exc)

    # -- workers -------------------------------------------------------------------------

    async def _add_worker(self, reserved: bool = False) -> None:
        """Start a worker and make it idle. `reserved`: `_starting` already counts it."""
        if not reserved:
            self._starting += 1
        try:
            artifact = self.artifact
            worker = await WorkerProcess.start(
                artifact.compiled, memory_bytes(self.limits), artifact.strategy, self.resident_bytes
            )
        except BaseException:
            self._starting -= 1
            async with self._available:
                self._available.notify_all()  # a waiter may start a worker itself now
            raise
        self._starting -= 1
        self.last_worker_ready_ms = worker.ready_ms
        async with self._available:
            if self._closed or len(self._idle) + len(self._busy) >= self.size:
                await worker.kill()  # closed meanwhile, or surplus: never exceed `size`
                return
            self._idle.append(worker)
            self._available.notify_all()

    def _replace_later(self) -> None:
        if self._closed or not self._open:
            return
        self._starting += 1  # counted now, so no on-demand start races the replacement

        async def replace() -> None:
            try:
                await self._add_worker(reserved=True)
            except WorkerError as exc:
                log.warning("a replacement sandbox worker did not start: %s", exc)

        self._background.start_soon(replace, name="replace a worker")

    async def _acquire(self, who: str = "") -> WorkerProcess:
        """A worker for `who`'s execution. When all are busy, waiters are served in turn
        by who they are (one per caller in rotation, first come first served within
        one), so one caller's burst cannot starve the others."""
        idle = self._idle
        if idle and idle[0].alive and not self._line.waiting:
            # nobody waits and a worker is free: no turn to take, nobody to wake
            worker = idle.pop(0)
            self._busy.add(worker)
            return worker
        ticket = self._line.join(who)
        try:
            while True:
                async with self._available:
                    while not self._line.first(ticket):
                        await self._available.wait()
                    while self._idle:
                        # the longest-idle worker: it has surely finished preparing its next one
                        worker = self._idle.pop(0)
                        if worker.alive:
                            self._busy.add(worker)
                            self._line.served(ticket)
                            self._available.notify_all()  # the next in line may look now
                            return worker
                        await worker.kill()
                    total = len(self._busy) + self._starting
                    if total >= self.size:
                        await self._available.wait()
                        continue
                await self._add_worker()
        finally:
            self._line.leave(ticket)
            async with self._available:
                self._available.notify_all()

    def _give_back(self, worker: WorkerProcess) -> None:
        """A healthy worker goes back to the idle list at once; waiters are woken by a
        callback (notifying needs the condition's lock, which is taken there)."""
        self._busy.discard(worker)
        self._idle.append(worker)
        if self._line.waiting:
            task = asyncio.get_running_loop().create_task(self._notify())
            self._cleanups.add(task)  # held: the loop keeps only weak references
            task.add_done_callback(self._cleanups.discard)

    async def _notify(self) -> None:
        async with self._available:
            self._available.notify_all()

    async def _retire(self, worker: WorkerProcess) -> None:
        """Kill a worker that is not given back (its run did not end cleanly, it died,
        the pool is closing, or it runs a replaced artifact) and start its successor."""
        self._busy.discard(worker)
        self._replace_later()
        await worker.kill()
        async with self._available:
            self._available.notify_all()

    # -- executions ----------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def execution(
        self,
        tool_host: ToolHost | None = None,
        limits: Limits | None = None,
        context: CallContext | None = None,
        on_call_done: Callable[[int], None] | None = None,
    ) -> AsyncIterator[Execution]:
        """An execution with a worker of its own until the block ends; then the worker is
        given back (or, if the run did not end cleanly, killed and replaced). Waiting
        for a worker is the execution's queue time (`stats.queue_ms`), not its duration."""
        queued = time.monotonic()
        if queued - self._last_run > _pagecache.QUIET_S and self._artifact is not None:
            # what the kernel reclaimed of the cache meanwhile is read back in ranges
            _pagecache.settle_soon(self._artifact.compiled.parent / _pagecache.RECORD_NAME)
        worker = await self._acquire(context.identity or "" if context is not None else "")
        queue_ms = (time.monotonic() - queued) * 1000
        self._seq += 1
        execution = Execution(
            self._seq, worker, tool_host, limits or self.limits, context, on_call_done
        )
        execution.queue_ms = queue_ms
        try:
            yield execution
        finally:
            current = worker.compiled == self.artifact.compiled
            self._last_run = time.monotonic()
            self._runs += 1
            in_place = current and self.artifact.in_place  # the package's file: no record
            if self._runs in _pagecache.REMEMBER_AT and worker.alive and not in_place:
                # after the caller has its answer: the cache holds what the run touched
                record = worker.compiled.parent / _pagecache.RECORD_NAME
                files = [str(worker.compiled), library_path()]
                remember = (_pagecache.remember_soon, record, files, worker.proc.pid)
                asyncio.get_running_loop().call_soon(*remember)
            if execution.healthy and worker.alive and not self._closed and current:
                self._give_back(worker)  # no await: nothing for a cancel to interrupt
            else:
                # Shielded, in a task of the pool's: a cancelled caller (an MCP client's
                # cancel arrives as an anyio cancel scope, which cancels every later await
                # too) must still get its worker killed and replaced.
                cleanup = asyncio.ensure_future(self._retire(worker))
                self._cleanups.add(cleanup)
                cleanup.add_done_callback(self._cleanups.discard)
                await asyncio.shield(cleanup)

    async def execute(
        self,
        code: str,
        tool_host: ToolHost | None = None,
        limits: Limits | None = None,
        on_call_done: Callable[[int], None] | None = None,
        context: CallContext | None = None,
    ) -> ExecutionResult:
        """Run `code` in an execution of its own; never raises for anything the code does
        (see ExecutionResult). `on_call_done(n)` is called each time a tool call finishes,
        with the number finished so far (for progress reports); it must not block."""
        limits = limits or self.limits
        refused = too_large(code, limits)
        if refused is not None:
            return refused
        async with self.execution(tool_host, limits, context, on_call_done) as execution:
            started = time.monotonic()
            result = await execution.run(code)
        self._answered.set()
        result.stats.duration_ms = (time.monotonic() - started) * 1000
        result.stats.queue_ms = execution.queue_ms
        return result

    async def keep_instance(self) -> KeptInstance:
        """A sandbox instance of its own, kept between runs (for a session): a worker
        outside the pool's count, started now (~0.1 s from a warm cache)."""
        if self._artifact is None:
            await self.start()
        artifact = self.artifact
        worker = await WorkerProcess.start(
            artifact.compiled, memory_bytes(self.limits), artifact.strategy, self.resident_bytes
        )
        kept = KeptInstance(self, worker)
        self._kept.add(kept)
        return kept


class FairLine:
    """Who waits for a worker, in turns: a queue per caller, and the callers in rotation
    (the one served last goes to the back)."""

    def __init__(self) -> None:
        self._queues: dict[str, list[object]] = {}  # insertion order is the rotation
        self._who: dict[object, str] = {}

    @property
    def waiting(self) -> bool:
        return bool(self._who)

    def join(self, who: str) -> object:
        ticket = object()
        self._queues.setdefault(who, []).append(ticket)
        self._who[ticket] = who
        return ticket

    def first(self, ticket: object) -> bool:
        """Whether `ticket` is next: the first of the first caller in the rotation."""
        for queue in self._queues.values():
            return queue[0] is ticket
        return False

    def served(self, ticket: object) -> None:
        """`ticket` got its worker: its caller goes to the back of the rotation."""
        who = self._who.pop(ticket, None)
        if who is None:
            return
        queue = self._queues.pop(who)
        queue.remove(ticket)
        if queue:
            self._queues[who] = queue  # re-inserted: last in the rotation

    def leave(self, ticket: object) -> None:
        """`ticket` stops waiting (served already, or cancelled)."""
        who = self._who.pop(ticket, None)
        if who is None:
            return
        queue = self._queues[who]
        queue.remove(ticket)
        if not queue:
            del self._queues[who]


def too_large(code: str, limits: Limits) -> ExecutionResult | None:
    """The refusal of a program over max_code_bytes, or None."""
    code_size = len(code.encode("utf-8", "surrogatepass"))
    if code_size <= limits.max_code_bytes:
        return None
    return ExecutionResult(
        ok=False,
        error=ExecutionError(
            type="CodeTooLarge",
            message=f"the program is {code_size:,} bytes; the limit max_code_bytes is "
            f"{limits.max_code_bytes:,}. Send a shorter program.",
            limit="max_code_bytes",
            kind=ErrorKind.LIMIT_EXCEEDED,
        ),
    )


class KeptInstance:
    """One sandbox instance that runs program after program, keeping its module globals
    (a session's): it has a worker process of its own, so nothing else ever runs in it.
    A run that does not end cleanly (a trap, a kill at the hard deadline, a death) loses
    it for good: `alive` turns False and every later run is refused."""

    def __init__(self, pool: SandboxPool, worker: WorkerProcess) -> None:
        self._pool = pool
        self.worker = worker
        self._usable = True
        self.runs = 0
        self._lock = asyncio.Lock()  # one run at a time: the instance is single-threaded

    async def run(
        self,
        code: str,
        tool_host: ToolHost | None = None,
        limits: Limits | None = None,
        context: CallContext | None = None,
        on_call_done: Callable[[int], None] | None = None,
    ) -> ExecutionResult:
        limits = limits or self._pool.limits
        refused = too_large(code, limits)
        if refused is not None:
            return refused
        async with self._lock:
            if not self.alive:
                raise WorkerError("this kept instance was lost; open another")
            started = time.monotonic()
            self._pool._seq += 1
            execution = Execution(
                self._pool._seq, self.worker, tool_host, limits, context, on_call_done, keep=True
            )
            try:
                result = await execution.run(code)
            finally:
                self.runs += 1
                if not (execution.healthy and execution.kept and self.worker.alive):
                    self._usable = False
                    await asyncio.shield(self.close())
            result.stats.duration_ms = (time.monotonic() - started) * 1000
            return result

    @property
    def alive(self) -> bool:
        """Whether the next run continues this instance (its worker may also have died
        while idle: killed from outside, say)."""
        return self._usable and self.worker.alive

    async def close(self) -> None:
        self._usable = False
        self._pool._kept.discard(self)
        await self.worker.kill()
