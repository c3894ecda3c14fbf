"""One execution: the object that owns a run of a program, from its code to its result.

It holds its worker (lent by the pool) for as long as it lives, its limits and its clock
(whose deadline stops while the execution waits on a person), the tool calls it serves, and
its state: CREATED -> RUNNING -> (WAITING -> RUNNING)* -> FINISHED. The tool calls are tasks
the execution owns: when the run ends, any still running are cancelled, and the run does not
end before they have. Today a run is one program on a fresh instance;
the object is the seam that lets an instance be kept between calls (sessions) or a program
be paused while a person answers (approvals), without changing the pool.
"""

from __future__ import annotations

import asyncio
import contextvars
import enum
import functools
import hashlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from .._aio import within
from ..context import CURRENT_CALL, CallContext, CallMark, Clock
from ..errors import CallFailed, ErrorKind
from . import _protocol as P
from ._outcome import Outcomes
from ._process import WorkerProcess
from ._types import (
    CallRecord,
    ExecutionResult,
    ExecutionStats,
    FunctionSpec,
    Limits,
    NamespaceSpec,
    ToolHost,
)

log = logging.getLogger("codemode.sandbox")

_encode_value = json.JSONEncoder(ensure_ascii=False, default=str).encode
"""A tool's value as JSON for the guest; made once (json.dumps with arguments builds an
encoder per call)."""

HARD_DEADLINE_GRACE_S = 0.5
"""After timeout_s, the worker gets this long to report its own timeout before it is
killed. Kept under 1 s so the caller always hears back within timeout + 1 s."""

MAX_CALL_RECORDS = 50
"""Calls listed one by one in a result (in the order they ended); the rest are only
counted, so a program of 1,000 calls does not flood the client."""


class Catalogs:
    """The catalog as the guest reads it (JSON text) and its id, made once per catalog:
    a host that hands back the same sequences (`ToolBridge` does, until its catalog
    changes) is recognised by identity; any other by the specs' equality."""

    def __init__(self) -> None:
        self._last: tuple[Any, Any, tuple[str, str]] | None = None
        self._by_value: dict[tuple[tuple[FunctionSpec, ...], tuple[NamespaceSpec, ...]], Any] = {}

    def encode(
        self, functions: Sequence[FunctionSpec], namespaces: Sequence[NamespaceSpec]
    ) -> tuple[str, str]:
        """(id, JSON text) of a catalog."""
        last = self._last
        if last is not None and last[0] is functions and last[1] is namespaces:
            return last[2]  # the same tuples as last time (tuples: nobody changed them)
        key = (tuple(functions), tuple(namespaces))
        encoded = self._by_value.get(key)
        if encoded is None:
            text = json.dumps(
                {
                    "functions": [f.to_json() for f in functions],
                    "namespaces": [n.to_json() for n in namespaces],
                }
            )
            encoded = (hashlib.sha256(text.encode()).hexdigest()[:32], text)
            if len(self._by_value) >= 64:  # a host per identity, say: never unbounded
                self._by_value.clear()
            self._by_value[key] = encoded
        if isinstance(functions, tuple) and isinstance(namespaces, tuple):
            self._last = (functions, namespaces, encoded)
        return encoded


CATALOGS = Catalogs()


@functools.lru_cache(maxsize=64)
def _options(session: bool, catalog_id: str, max_stdout_bytes: int, max_result_bytes: int) -> str:
    """A run's options as the guest reads them (JSON), made once per combination: they
    are the same for every run of a pool's limits and catalog."""
    limits = {"max_stdout_bytes": max_stdout_bytes, "max_result_bytes": max_result_bytes}
    return json.dumps({"session": session, "catalog_id": catalog_id, "limits": limits})


class State(enum.Enum):
    CREATED = "created"
    RUNNING = "running"
    WAITING = "waiting"  # on a person: the clock is stopped
    FINISHED = "finished"


def memory_bytes(limits: Limits) -> int:
    return int(limits.memory_mb * 1024 * 1024)


class Execution:
    """One program's run on one worker: sends the code, serves its tool calls, reads the
    outcome. Made by `SandboxPool.execution()`, which gives the worker back afterwards."""

    def __init__(
        self,
        seq: int,
        worker: WorkerProcess,
        tool_host: ToolHost | None,
        limits: Limits,
        context: CallContext | None = None,
        on_call_done: Callable[[int], None] | None = None,
        keep: bool = False,
    ) -> None:
        self.seq = seq
        self.queue_ms = 0.0
        """How long the execution waited for its worker."""
        self.keep = keep
        """Run in the worker's kept instance, and keep it (a session's next call continues
        it); `kept` says afterwards whether the instance survived the run."""
        self.kept = False
        self.worker = worker
        self.tool_host = tool_host
        self.limits = limits
        self.context = context or CallContext()
        self.clock: Clock = self.context.clock
        self.state = State.CREATED
        self.healthy = False
        """Whether the worker may run another execution (it reported a result in time)."""
        self.stats = ExecutionStats()
        self.records: list[CallRecord] = []
        self.records_dropped = 0
        self.outcomes = Outcomes(limits, self.stats, self.records, lambda: self.records_dropped)
        self._semaphore = asyncio.Semaphore(limits.max_concurrent_calls)
        self._seen_ids: set[int] = set()
        self._calls: set[asyncio.Task[None]] = set()
        """The tool calls running now: tasks the execution owns (plain asyncio tasks, which
        start in the same loop turn; the batch of a gather then finishes together)."""
        self._on_call_done = on_call_done
        self._calls_done = 0
        self._context = contextvars.Context()
        self._outbox: list[bytes] = []
        """Completion frames not yet written (see `_flush`)."""
        label = getattr(tool_host, "label", None)
        self._label: Callable[[str, dict[str, Any]], str] = label or (lambda target, _: target)

        self.clock.on_change = self._clock_changed

    def _clock_changed(self, paused: bool) -> None:
        """A person is being asked (or the last one answered): the program's time stops
        (or runs again), here and in the worker, which credits the time its guest spends
        waiting meanwhile (never its CPU time)."""
        if self.state is State.FINISHED:
            return
        self.state = State.WAITING if paused else State.RUNNING
        if self.worker.writable:
            self.worker.send(P.CLOCK, P.SEQ.pack(self.seq) + (b"P" if paused else b"R"))

    async def run(self, code: str) -> ExecutionResult:
        """Run `code`; the answer always comes within timeout_s + 1 s of program time."""
        host = self.tool_host
        functions = host.functions() if host is not None else ()
        list_namespaces = getattr(host, "namespace_specs", None)
        namespaces = list_namespaces() if list_namespaces is not None else ()
        catalog_id, catalog = CATALOGS.encode(functions, namespaces)
        limits = self.limits
        options = _options(self.keep, catalog_id, limits.max_stdout_bytes, limits.max_result_bytes)
        catalog_new = self.worker.catalog_id != catalog_id  # a worker keeps the last one
        request = P.execute_payload(
            self.seq,
            code,
            options,
            timeout_s=self.limits.timeout_s,
            memory_bytes=memory_bytes(self.limits),
            max_stdout_bytes=self.limits.max_stdout_bytes,
            keep=self.keep,
            catalog_id=catalog_id,
            catalog=catalog if catalog_new else None,
        )
        self.worker.catalog_id = catalog_id
        self.state = State.RUNNING
        # Calls start from the frame reader's callback, which runs in the loop's context,
        # not this task's: each call gets a copy of this one (the caller's trace, say).
        self._context = contextvars.copy_context()
        self.worker.listen(self._take_calls)
        self.worker.send(P.EXECUTE, request)
        try:
            return await self._receive()
        finally:
            self.worker.listen(None)
            self.state = State.FINISHED
            await self._stop_calls()
            asked = self.context.approvals
            self.stats.approvals_asked = asked.asked
            self.stats.approvals_granted = asked.granted
            self.stats.approvals_declined = asked.declined
            self.stats.waited_ms = self.clock.waited_s * 1000

    async def _stop_calls(self) -> None:
        """Calls still running end with the run (cancelled, then awaited: none outlives
        it). Shielded, since a cancelled run must still stop its calls."""
        calls = list(self._calls)
        for task in calls:
            task.cancel()
        if calls:
            await asyncio.shield(asyncio.gather(*calls, return_exceptions=True))

    async def _receive(self) -> ExecutionResult:
        allowed = self.limits.timeout_s + HARD_DEADLINE_GRACE_S
        try:
            while True:
                remaining = allowed - self.clock.elapsed_s
                try:  # the clock may stop meanwhile: then the deadline is further off
                    kind, payload = await within(self.worker.recv(), max(remaining, 0.05))
                except asyncio.TimeoutError:
                    if self.clock.paused or self.clock.elapsed_s < allowed:
                        continue
                    raise
                if kind == P.RESULT:
                    self.healthy = True
                    result = self.outcomes.finished(payload)
                    self.kept = self.outcomes.kept
                    return result
        except asyncio.TimeoutError:
            return self.outcomes.timed_out()
        except ConnectionError:
            await self.worker.kill()
            return self.outcomes.died(self.worker.proc.returncode)

    # -- tool calls --------------------------------------------------------------------

    def _take_calls(self, kind: int, payload: bytes) -> bool:
        """The worker's frames as they arrive: a batch of calls starts now (in the loop
        turn that read it); anything else is for `_receive`."""
        if kind != P.CALLS:
            return False
        self._start_calls(payload)
        return True

    def _start_calls(self, payload: bytes) -> None:
        if P.SEQ.unpack_from(payload)[0] != self.seq or self.state is State.FINISHED:
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
                or call_id in self._seen_ids
            ):
                continue  # without a fresh id nobody waits for the answer
            self._seen_ids.add(call_id)
            target, args = call.get("target"), call.get("args")
            if not isinstance(target, str) or not isinstance(args, dict):
                self._complete(call_id, error=CallFailed("a call needs a target and args"))
                continue
            self.stats.tool_calls += 1
            if self.stats.tool_calls > self.limits.max_tool_calls:
                self._complete(
                    call_id,
                    error=CallFailed(
                        f"tool call limit reached: max_tool_calls is {self.limits.max_tool_calls} "
                        "per execution. Make fewer calls (batch, filter first) or raise the limit.",
                        ErrorKind.LIMIT_EXCEEDED,
                        limit="max_tool_calls",
                    ),
                )
                continue
            task = asyncio.get_running_loop().create_task(
                self._call(call_id, target, args), context=self._context.copy()
            )
            self._calls.add(task)  # until its own `finally` (a done callback costs a loop turn)

    async def _call(self, call_id: int, target: str, args: dict[str, Any]) -> None:
        started = time.monotonic()
        ok = False
        mark = CallMark()
        CURRENT_CALL.set(mark)  # this task's own: the call's approval is marked on it
        try:
            async with self._semaphore:
                if self.tool_host is None:
                    raise CallFailed(f"no function {target!r} is available", ErrorKind.UNKNOWN_TOOL)
                value = await self.tool_host.call(target, args, self.context)
            text = _encode_value(value)
            try:
                self.stats.bytes_from_tools += len(text.encode("utf-8"))
            except UnicodeEncodeError:
                # A lone surrogate cannot cross as a component-model string: send it escaped.
                self.stats.bytes_from_tools += len(text.encode("utf-8", "surrogatepass"))
                text = json.dumps(value, default=str)
            self._complete(call_id, value_json=text)
            ok = True
        except CallFailed as exc:
            self._complete(call_id, error=exc)
        except Exception as exc:
            log.exception("tool call %s failed inside codemode", target)
            failure = CallFailed(f"{type(exc).__name__}: {exc}", ErrorKind.INTERNAL_ERROR)
            self._complete(call_id, error=failure)
        finally:
            if len(self.records) < MAX_CALL_RECORDS:
                ms = (time.monotonic() - started) * 1000
                self.records.append(CallRecord(self._label(target, args), ms, ok, mark.approved))
            else:
                self.records_dropped += 1
            self._calls_done += 1
            if self._on_call_done is not None:
                self._on_call_done(self._calls_done)
            self._calls.discard(asyncio.current_task())  # type: ignore[arg-type]

    def _complete(
        self, call_id: int, value_json: str | None = None, error: CallFailed | None = None
    ) -> None:
        if error is None:
            body = '{"id": %d, "ok": true, "value": %s}' % (call_id, value_json)
        else:
            failure = {"type": str(error.kind), "message": error.message, "details": error.details}
            body = json.dumps({"id": call_id, "ok": False, "error": failure}, default=str)
        payload = P.SEQ.pack(self.seq) + body.encode("utf-8", "surrogatepass")
        self._outbox.append(P.frame(P.COMPLETION, payload))
        if len(self._calls) <= 1:
            self._flush()  # the only call in flight: nothing to wait for
        elif len(self._outbox) == 1:
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        """Send the completions made so far in one write: calls that end in the same
        loop turn (a gather's, on a timer) reach the guest in one crossing."""
        frames, self._outbox = self._outbox, []
        if frames and self.worker.writable:
            self.worker.send_frames(b"".join(frames))
