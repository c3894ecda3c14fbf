"""SandboxPool: worker processes that run code, and the host half of the tool bridge.

Each execution runs in one worker (a fresh instance there); concurrent executions run in
different workers, up to `size` at once, the rest queue. Tool calls the guest submits are
validated here and run concurrently as tasks owned by the execution: when it ends, any
still running are cancelled. A worker that overruns the hard deadline, dies, or whose
execution is cancelled is killed and replaced in the background; the caller always gets
an answer within timeout + 1 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .._aio import within
from ..errors import ToolCallError, WorkerError
from . import _protocol as P
from ._build import Artifact, Progress, ensure_built
from ._types import (
    CallRecord,
    ExecutionError,
    ExecutionResult,
    ExecutionStats,
    FunctionSpec,
    Limits,
    NamespaceSpec,
    ToolHost,
)

log = logging.getLogger("codemode.sandbox")

WORKER_SCRIPT = Path(__file__).with_name("_worker.py")

HARD_DEADLINE_GRACE_S = 0.5
"""After timeout_s, the worker gets this long to report its own timeout before it is
killed. Kept under 1 s so the caller always hears back within timeout + 1 s."""

WORKER_START_TIMEOUT_S = 60.0
"""A worker that has not said it is ready by then is killed (a cold page cache and a
loaded machine take seconds; a healthy start takes ~0.3 s)."""

MAX_CALL_RECORDS = 50
"""Calls listed one by one in a result (in the order they ended); the rest are only
counted, so a program of 1,000 calls does not flood the client."""


class _WorkerProcess:
    """One worker: the process and the parent's end of its socketpair."""

    def __init__(
        self,
        proc: asyncio.subprocess.Process,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.proc = proc
        self.reader = reader
        self.writer = writer
        self.ready_ms = 0.0

    @classmethod
    async def start(cls, compiled: Path, memory_bytes: int) -> _WorkerProcess:
        started = time.monotonic()
        parent_sock, child_sock = socket.socketpair()
        try:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-E",
                "-s",
                str(WORKER_SCRIPT),
                str(child_sock.fileno()),
                str(compiled),
                str(memory_bytes),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,  # stdout may be the MCP channel: never share it
                stderr=None,
                pass_fds=(child_sock.fileno(),),
            )
        finally:
            child_sock.close()
        reader, writer = await asyncio.open_connection(sock=parent_sock, limit=1 << 20)
        worker = cls(proc, reader, writer)
        try:
            kind, payload = await asyncio.wait_for(worker.recv(), WORKER_START_TIMEOUT_S)
        except (asyncio.TimeoutError, asyncio.IncompleteReadError, ConnectionError) as exc:
            await worker.kill()
            raise WorkerError(f"a sandbox worker did not start: {exc!r}") from None
        except BaseException:  # cancelled while starting: leave no process behind
            await asyncio.shield(worker.kill())
            raise
        if kind != P.READY:
            await worker.kill()
            raise WorkerError(
                f"a sandbox worker failed to start: {payload.decode(errors='replace')}"
            )
        worker.ready_ms = (time.monotonic() - started) * 1000
        return worker

    async def recv(self) -> tuple[int, bytes]:
        header = await self.reader.readexactly(P.HEADER.size)
        size, kind = P.HEADER.unpack(header)
        return kind, await self.reader.readexactly(size)

    def send(self, kind: int, payload: bytes) -> None:
        self.writer.write(P.frame(kind, payload))

    @property
    def alive(self) -> bool:
        return self.proc.returncode is None

    async def kill(self) -> None:
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.proc.wait()


class SandboxPool:
    """Runs Python code in WebAssembly sandboxes, held by a pool of worker processes.

    Use as `async with SandboxPool() as pool: result = await pool.execute(code, host)`.
    """

    def __init__(
        self,
        size: int | None = None,
        limits: Limits | None = None,
        progress: Progress | None = None,
    ) -> None:
        self.size = max(1, size or min(4, os.cpu_count() or 2))
        self.limits = limits or Limits()
        self._progress = progress
        self._artifact: Artifact | None = None
        self._idle: list[_WorkerProcess] = []
        self._busy: set[_WorkerProcess] = set()
        self._starting = 0
        self._available = asyncio.Condition()
        self._background: set[asyncio.Task[None]] = set()
        self._cleanups: set[asyncio.Future[None]] = set()
        self._seq = 0
        self._closed = False
        self.last_worker_ready_ms = 0.0

    async def __aenter__(self) -> SandboxPool:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def artifact(self) -> Artifact:
        if self._artifact is None:
            raise WorkerError("the pool is not started: use `async with SandboxPool()` or start()")
        return self._artifact

    async def start(self, workers: int = 1) -> None:
        """Build (if needed) and start `workers` workers now; more start on demand."""
        if self._artifact is None:
            self._artifact = await asyncio.to_thread(ensure_built, self._progress)
            try:
                await self._add_worker()
            except WorkerError as exc:
                # The cached file passed its checksum but this wasmtime cannot load it
                # (copied from another machine, say): build it anew, once.
                log.warning("rebuilding the sandbox: a worker could not load it (%s)", exc)
                self._artifact = await asyncio.to_thread(ensure_built, self._progress, force=True)
                await self._add_worker()
            workers -= 1
        await asyncio.gather(*(self._add_worker() for _ in range(min(workers, self.size - 1))))

    async def close(self) -> None:
        self._closed = True
        await asyncio.gather(*self._cleanups, return_exceptions=True)
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        workers = [*self._idle, *self._busy]
        self._idle.clear()
        self._busy.clear()
        await asyncio.gather(*(w.kill() for w in workers), return_exceptions=True)

    @property
    def worker_pids(self) -> list[int]:
        return [w.proc.pid for w in [*self._idle, *self._busy]]

    async def _add_worker(self, reserved: bool = False) -> None:
        """Start a worker and make it idle. `reserved`: `_starting` already counts it."""
        if not reserved:
            self._starting += 1
        try:
            worker = await _WorkerProcess.start(
                self.artifact.compiled, self._memory_bytes(self.limits)
            )
        except BaseException:
            self._starting -= 1
            async with self._available:
                self._available.notify()  # a waiter may start a worker itself now
            raise
        self._starting -= 1
        self.last_worker_ready_ms = worker.ready_ms
        async with self._available:
            if self._closed or len(self._idle) + len(self._busy) >= self.size:
                await worker.kill()  # closed meanwhile, or surplus: never exceed `size`
                return
            self._idle.append(worker)
            self._available.notify()

    def _replace_later(self) -> None:
        if self._closed:
            return
        self._starting += 1  # counted now, so no on-demand start races the replacement
        task = asyncio.get_running_loop().create_task(self._add_worker(reserved=True))
        self._background.add(task)
        task.add_done_callback(self._replaced)

    def _replaced(self, task: asyncio.Task[None]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("a replacement sandbox worker did not start: %s", task.exception())

    async def _acquire(self) -> _WorkerProcess:
        while True:
            async with self._available:
                while self._idle:
                    # the longest-idle worker: it has surely finished preparing its next instance
                    worker = self._idle.pop(0)
                    if worker.alive:
                        self._busy.add(worker)
                        return worker
                    await worker.kill()
                total = len(self._busy) + self._starting
                if total >= self.size:
                    await self._available.wait()
                    continue
            await self._add_worker()

    async def _release(self, worker: _WorkerProcess, healthy: bool) -> None:
        self._busy.discard(worker)
        if healthy and worker.alive and not self._closed:
            async with self._available:
                self._idle.append(worker)
                self._available.notify()
            return
        self._replace_later()
        await worker.kill()
        async with self._available:
            self._available.notify()

    async def _after_run(self, run: _Execution, worker: _WorkerProcess, healthy: bool) -> None:
        await run.stop_calls()
        await self._release(worker, healthy)

    @staticmethod
    def _memory_bytes(limits: Limits) -> int:
        return int(limits.memory_mb * 1024 * 1024)

    async def execute(
        self,
        code: str,
        tool_host: ToolHost | None = None,
        limits: Limits | None = None,
        on_call_done: Callable[[int], None] | None = None,
    ) -> ExecutionResult:
        """Run `code`; never raises for anything the code does (see ExecutionResult).

        `on_call_done(n)` is called each time a tool call finishes, with the number
        finished so far (for progress reports); it must not block."""
        limits = limits or self.limits
        started = time.monotonic()
        code_size = len(code.encode("utf-8", "surrogatepass"))
        if code_size > limits.max_code_bytes:
            return _limit_result(
                "CodeTooLarge",
                f"the program is {code_size:,} bytes; the limit max_code_bytes is "
                f"{limits.max_code_bytes:,}. Send a shorter program.",
                "max_code_bytes",
            )
        functions = list(tool_host.functions()) if tool_host is not None else []
        list_namespaces = getattr(tool_host, "namespace_specs", None)
        namespaces = list(list_namespaces()) if list_namespaces is not None else []
        worker = await self._acquire()
        run = _Execution(self, worker, code, tool_host, functions, namespaces, limits, on_call_done)
        healthy = False
        try:
            result, healthy = await run.go()
        finally:
            # Shielded: a cancelled caller (an MCP client's cancel arrives as an anyio
            # cancel scope, which cancels every later await too) must still get its worker
            # killed and replaced, and its calls stopped.
            cleanup = asyncio.ensure_future(self._after_run(run, worker, healthy))
            self._cleanups.add(cleanup)
            cleanup.add_done_callback(self._cleanups.discard)
            await asyncio.shield(cleanup)
        result.stats.duration_ms = (time.monotonic() - started) * 1000
        return result


def _limit_result(kind: str, message: str, limit: str) -> ExecutionResult:
    return ExecutionResult(ok=False, error=ExecutionError(type=kind, message=message, limit=limit))


class _Execution:
    """One execution on one worker: sends the code, serves its tool calls, reads the outcome."""

    def __init__(
        self,
        pool: SandboxPool,
        worker: _WorkerProcess,
        code: str,
        tool_host: ToolHost | None,
        functions: Sequence[FunctionSpec],
        namespaces: Sequence[NamespaceSpec],
        limits: Limits,
        on_call_done: Callable[[int], None] | None,
    ) -> None:
        pool._seq += 1
        self.seq = pool._seq
        self.worker = worker
        self.code = code
        self.tool_host = tool_host
        self.functions = functions
        self.namespaces = namespaces
        self.limits = limits
        self.calls: set[asyncio.Task[None]] = set()
        self.semaphore = asyncio.Semaphore(limits.max_concurrent_calls)
        self.stats = ExecutionStats()
        self.records: list[CallRecord] = []
        self.records_dropped = 0
        self.seen_ids: set[int] = set()
        self.on_call_done = on_call_done
        self.calls_done = 0
        label = getattr(tool_host, "label", None)
        self.label: Callable[[str, dict[str, Any]], str] = label or (lambda target, _: target)

    async def go(self) -> tuple[ExecutionResult, bool]:
        options = {
            "functions": [f.to_json() for f in self.functions],
            "namespaces": [n.to_json() for n in self.namespaces],
            "limits": {
                "max_stdout_bytes": self.limits.max_stdout_bytes,
                "max_result_bytes": self.limits.max_result_bytes,
            },
        }
        request = {
            "seq": self.seq,
            "code": self.code,
            "options": json.dumps(options),
            "timeout_s": self.limits.timeout_s,
            "memory_bytes": SandboxPool._memory_bytes(self.limits),
            "max_stdout_bytes": self.limits.max_stdout_bytes,
        }
        self.worker.send(P.EXECUTE, json.dumps(request).encode())
        hard_deadline = time.monotonic() + self.limits.timeout_s + HARD_DEADLINE_GRACE_S
        try:
            while True:
                remaining = hard_deadline - time.monotonic()
                kind, payload = await within(self.worker.recv(), max(remaining, 0.001))
                if kind == P.CALLS:
                    self._start_calls(payload)
                elif kind == P.RESULT:
                    return self._finish(payload), True
        except asyncio.TimeoutError:
            return self._timed_out(), False
        except (asyncio.IncompleteReadError, ConnectionError):
            await self.worker.kill()
            code = self.worker.proc.returncode
            return self._failed(
                "WorkerDied",
                f"the sandbox process ended unexpectedly (exit code {code}); it has been "
                "replaced. Run the code again; if it recurs, report it with the code.",
            ), False

    # -- tool calls --------------------------------------------------------------------

    def _start_calls(self, payload: bytes) -> None:
        if P.SEQ.unpack_from(payload)[0] != self.seq:
            return
        try:
            batch = json.loads(payload[P.SEQ.size :])
            if not isinstance(batch, list):
                raise ValueError("a batch must be a JSON list")
        except (ValueError, RecursionError) as exc:
            # Only code that bypasses the guest runtime sends these; nobody awaits them.
            log.debug("refused a malformed call batch from the guest: %s", exc)
            return
        for call in batch:
            call_id = call.get("id") if isinstance(call, dict) else None
            if (
                not isinstance(call_id, int)
                or isinstance(call_id, bool)
                or call_id in self.seen_ids
            ):
                continue  # without a fresh id nobody waits for the answer
            self.seen_ids.add(call_id)
            target, args = call.get("target"), call.get("args")
            if not isinstance(target, str) or not isinstance(args, dict):
                self._complete(call_id, error=("BridgeError", "a call needs a target and args", {}))
                continue
            self.stats.tool_calls += 1
            if self.stats.tool_calls > self.limits.max_tool_calls:
                self._complete(
                    call_id,
                    error=(
                        "LimitExceeded",
                        f"tool call limit reached: max_tool_calls is {self.limits.max_tool_calls} "
                        "per execution. Make fewer calls (batch, filter first) or raise the limit.",
                        {"limit": "max_tool_calls"},
                    ),
                )
                continue
            task = asyncio.get_running_loop().create_task(self._call(call_id, target, args))
            self.calls.add(task)
            task.add_done_callback(self.calls.discard)

    async def _call(self, call_id: int, target: str, args: dict[str, Any]) -> None:
        started = time.monotonic()
        ok = False
        try:
            async with self.semaphore:
                if self.tool_host is None:
                    raise ToolCallError(f"no function {target!r} is available", "UnknownTool")
                value = await self.tool_host.call(target, args)
            text = json.dumps(value, ensure_ascii=False, default=str)
            try:
                self.stats.bytes_from_tools += len(text.encode("utf-8"))
            except UnicodeEncodeError:
                # A lone surrogate cannot cross as a component-model string: send it escaped.
                self.stats.bytes_from_tools += len(text.encode("utf-8", "surrogatepass"))
                text = json.dumps(value, default=str)
            self._complete(call_id, value_json=text)
            ok = True
        except ToolCallError as exc:
            self._complete(call_id, error=(exc.kind, exc.message, dict(exc.details)))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("tool call %s failed inside codemode", target)
            self._complete(call_id, error=("InternalError", f"{type(exc).__name__}: {exc}", {}))
        finally:
            if len(self.records) < MAX_CALL_RECORDS:
                ms = (time.monotonic() - started) * 1000
                self.records.append(CallRecord(self.label(target, args), ms, ok))
            else:
                self.records_dropped += 1
            self.calls_done += 1
            if self.on_call_done is not None:
                self.on_call_done(self.calls_done)

    def _complete(
        self,
        call_id: int,
        value_json: str | None = None,
        error: tuple[str, str, dict[str, Any]] | None = None,
    ) -> None:
        if error is None:
            body = '{"id": %d, "ok": true, "value": %s}' % (call_id, value_json)
        else:
            kind, message, details = error
            body = json.dumps(
                {
                    "id": call_id,
                    "ok": False,
                    "error": {"type": kind, "message": message, "details": details},
                },
                default=str,
            )
        if self.worker.alive and not self.worker.writer.is_closing():
            self.worker.send(
                P.COMPLETION, P.SEQ.pack(self.seq) + body.encode("utf-8", "surrogatepass")
            )

    async def stop_calls(self) -> None:
        for task in list(self.calls):
            task.cancel()
        if self.calls:
            await asyncio.gather(*self.calls, return_exceptions=True)

    # -- outcomes ----------------------------------------------------------------------

    def _base(self) -> ExecutionResult:
        return ExecutionResult(
            ok=False, stats=self.stats, calls=self.records, calls_dropped=self.records_dropped
        )

    def _failed(self, kind: str, message: str, limit: str | None = None) -> ExecutionResult:
        result = self._base()
        result.error = ExecutionError(type=kind, message=message, limit=limit)
        return result

    def _timed_out(self) -> ExecutionResult:
        return self._failed(
            "TimeoutError",
            f"the code ran longer than the timeout_s limit of {self.limits.timeout_s:g} s and "
            "was stopped. Do less per execution or raise the limit.",
            "timeout_s",
        )

    def _finish(self, payload: bytes) -> ExecutionResult:
        head, _, body = payload.partition(b"\n")
        header = json.loads(head)
        self.stats.crossings = header["crossings"]
        trap = header.get("trap")
        outcome = json.loads(body) if trap is None else {}
        result = self._trapped(trap) if trap is not None else self._base()
        limits = self.limits
        result.stdout = header.get("stdout", "")
        dropped = header.get("stdout_dropped", 0) + outcome.get("stdout_dropped_bytes", 0)
        if dropped:
            result.stdout += (
                f"\n…[stdout truncated: {dropped:,} more bytes dropped; the limit "
                f"max_stdout_bytes is {limits.max_stdout_bytes:,}]"
            )
        if trap is not None:
            return result
        result.ok = bool(outcome.get("ok"))
        result.notes = [str(n) for n in outcome.get("notes") or ()]
        error = outcome.get("error")
        if error:
            result.error = self._guest_error(error)
        truncated = outcome.get("result_truncated")
        if truncated is not None:
            size = outcome.get("result_bytes", 0)
            result.result = (
                f"{truncated}\n…[result truncated: {size:,} bytes of JSON; the limit "
                f"max_result_bytes is {limits.max_result_bytes:,}. Return a smaller value.]"
            )
            result.result_json = json.dumps(result.result)
        else:
            result.result_json = outcome.get("result_json", "null")
            result.result = json.loads(result.result_json)
        result.stats.bytes_returned = len(result.result_json.encode("utf-8", "surrogatepass"))
        return result

    def _guest_error(self, error: dict[str, Any]) -> ExecutionError:
        kind = str(error.get("type", "Error"))
        message = str(error.get("message", ""))
        limit = None
        if kind == "DeadlineExpired":
            return self._timed_out().error  # type: ignore[return-value]
        if kind == "MemoryError":
            limit = "memory_mb"
            message = (message + " " if message else "") + (
                f"(the memory_mb limit is {self.limits.memory_mb} MB)"
            )
        details = error.get("details") or {}
        if isinstance(details, dict) and details.get("limit"):
            limit = str(details["limit"])
        return ExecutionError(
            type=kind,
            message=message,
            traceback=str(error.get("traceback") or ""),
            line=error.get("line"),
            limit=limit,
            details={k: v for k, v in error.items() if k in ("kind", "details", "column")},
            hint=str(error["hint"]) if error.get("hint") else None,
        )

    def _trapped(self, trap: dict[str, str]) -> ExecutionResult:
        kind = trap.get("type", "SandboxTrap")
        if kind == "TimeoutError":
            return self._timed_out()
        if kind == "MemoryError":
            return self._failed(
                "MemoryError",
                f"the code needed more than the memory_mb limit of {self.limits.memory_mb} MB",
                "memory_mb",
            )
        if kind == "RecursionError":
            return self._failed(
                "RecursionError", "recursion too deep: the sandbox's stack is exhausted"
            )
        return self._failed(
            kind,
            f"the sandbox stopped the code: {trap.get('message', '').strip()} (a program that "
            "breaks the sandbox's own runtime ends this way; nothing outside it was affected, "
            "and the next execution starts fresh)",
        )
