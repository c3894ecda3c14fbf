"""From what a worker reports to an `ExecutionResult`: the one place where the guest's
outcome, the worker's traps and the pool's own failures get their `ErrorKind`."""

from __future__ import annotations

import json
import re
from typing import Any

from ..errors import ErrorKind
from . import _protocol as P
from ._types import ExecutionError, ExecutionResult, ExecutionStats, Limits

_GUEST_KINDS = {
    "SyntaxError": ErrorKind.SYNTAX_ERROR,
    "CheckError": ErrorKind.CHECK_FAILED,
    "DeadlockError": ErrorKind.DEADLOCK,
    "ResultError": ErrorKind.RESULT_ERROR,
}
"""Guest error types that are not the program's own exception."""


class Outcomes:
    """Builds the results of one execution (its stats and call records are shared)."""

    def __init__(self, limits: Limits, stats: ExecutionStats, records: list, dropped) -> None:
        self.limits = limits
        self.stats = stats
        self.records = records
        self._dropped = dropped  # () -> calls made beyond the listed ones
        self.kept = False  # the worker kept the instance for a next run

    def base(self) -> ExecutionResult:
        return ExecutionResult(
            ok=False, stats=self.stats, calls=self.records, calls_dropped=self._dropped()
        )

    def failed(
        self, type_: str, kind: ErrorKind, message: str, limit: str | None = None
    ) -> ExecutionResult:
        result = self.base()
        result.error = ExecutionError(type=type_, message=message, limit=limit, kind=kind)
        return result

    def timed_out(self) -> ExecutionResult:
        return self.failed(
            "TimeoutError",
            ErrorKind.TIMEOUT,
            f"the code ran longer than the timeout_s limit of {self.limits.timeout_s:g} s and "
            "was stopped. Do less per execution or raise the limit.",
            "timeout_s",
        )

    def died(self, exit_code: int | None) -> ExecutionResult:
        return self.failed(
            "WorkerDied",
            ErrorKind.SANDBOX_FAILURE,
            f"the sandbox process ended unexpectedly (exit code {exit_code}); it has been "
            "replaced. Run the code again; if it recurs, report it with the code.",
        )

    def finished(self, payload: bytes) -> ExecutionResult:
        """The worker's RESULT frame (`_protocol.parse_result`)."""
        crossings, dropped, self.kept, kind, message, stdout, body = P.parse_result(payload)
        self.stats.crossings = crossings
        trap = None
        if kind == P.TRAP_WASM:
            trap = classify_trap(message)
        elif kind != P.TRAP_NONE:
            trap = {"type": "SandboxError", "message": message}
        outcome = json.loads(body) if trap is None else {}
        result = self.trapped(trap) if trap is not None else self.base()
        limits = self.limits
        result.stdout = stdout
        dropped += outcome.get("stdout_dropped_bytes", 0)
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
            result.error = self.guest_error(error)
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

    def guest_error(self, error: dict[str, Any]) -> ExecutionError:
        type_ = str(error.get("type", "Error"))
        message = str(error.get("message", ""))
        if type_ == "DeadlineExpired":
            return self.timed_out().error  # type: ignore[return-value]
        details = error.get("details") or {}
        limit = (
            str(details["limit"]) if isinstance(details, dict) and details.get("limit") else None
        )
        kind = _GUEST_KINDS.get(type_, ErrorKind.PROGRAM_ERROR)
        if type_ == "ToolError":
            kind = ErrorKind.of(error.get("kind"))
        elif type_ == "MemoryError":
            limit, kind = "memory_mb", ErrorKind.LIMIT_EXCEEDED
            message = (message + " " if message else "") + (
                f"(the memory_mb limit is {self.limits.memory_mb} MB)"
            )
        return ExecutionError(
            type=type_,
            message=message,
            traceback=str(error.get("traceback") or ""),
            line=error.get("line"),
            limit=limit,
            details={k: v for k, v in error.items() if k in ("kind", "details", "column")},
            hint=str(error["hint"]) if error.get("hint") else None,
            kind=kind,
        )

    def trapped(self, trap: dict[str, str]) -> ExecutionResult:
        type_ = trap.get("type", "SandboxTrap")
        if type_ == "TimeoutError":
            return self.timed_out()
        if type_ == "MemoryError":
            floor = trap.get("floor_mb")
            if floor:  # the instance could not be made within the limit: no code ran
                message = (
                    f"the memory_mb limit of {self.limits.memory_mb} MB is below what the "
                    f"sandbox needs before any code runs ({floor} MB); the code did not run. "
                    f"Raise memory_mb (the default is {Limits().memory_mb} MB)."
                )
            else:
                message = (
                    f"the code needed more than the memory_mb limit of {self.limits.memory_mb} MB"
                )
            return self.failed("MemoryError", ErrorKind.LIMIT_EXCEEDED, message, "memory_mb")
        if type_ == "RecursionError":
            return self.failed(
                "RecursionError",
                ErrorKind.PROGRAM_ERROR,
                "recursion too deep: the sandbox's stack is exhausted",
            )
        return self.failed(
            type_,
            ErrorKind.SANDBOX_FAILURE,
            f"the sandbox stopped the code: {trap.get('message', '').strip()} (a program that "
            "breaks the sandbox's own runtime ends this way; nothing outside it was affected, "
            "and the next execution starts fresh)",
        )


_FLOOR = re.compile(r"minimum size of (\d+) pages exceeds memory limits")


def memory_floor_mb(message: str) -> int | None:
    """The memory the sandbox needs before any code runs, if wasmtime's `message` says
    the limit is below it (the guest's heap snapshot is that big)."""
    found = _FLOOR.search(message)
    return -(-int(found.group(1)) * 65536 // (1 << 20)) if found else None


def classify_trap(message: str) -> dict:
    """What wasmtime's error `message` (a trap, or a failed instantiation) means for the
    program: {"type", "message"} (and "floor_mb" for a limit below the sandbox's floor)."""
    floor = memory_floor_mb(message)
    if floor is not None:
        return {"type": "MemoryError", "message": message.strip(), "floor_mb": floor}
    # wasmtime's message opens with "error while executing at wasm backtrace:" and the
    # frames; what happened is the first line after "Caused by:"
    _, caused, cause = message.partition("Caused by:")
    lines = [line.strip() for line in (cause if caused else message).splitlines() if line.strip()]
    first = lines[0] if lines else message
    if "interrupt" in message:
        return {"type": "TimeoutError", "message": "the code ran past its deadline"}
    if "call stack exhausted" in message or "stack overflow" in message:
        return {"type": "RecursionError", "message": "the WebAssembly stack is exhausted"}
    if "memory" in message and ("limit" in message or "grow" in message):
        return {"type": "MemoryError", "message": first}
    return {"type": "SandboxTrap", "message": first}
