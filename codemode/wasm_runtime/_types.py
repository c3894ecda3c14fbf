"""The sandbox's public data types: limits, what the code can call, and what comes back.

Nothing here knows of MCP: a `ToolHost` is any object that lists functions and runs calls.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..errors import ErrorKind


@dataclass(frozen=True)
class Limits:
    """Per-execution limits. Each one that is hit yields an error naming it and its value."""

    timeout_s: float = 30.0
    """Wall-clock limit. The caller always gets an answer within timeout_s + 1 s."""
    memory_mb: int = 256
    """Guest linear memory cap; allocation past it raises MemoryError in the code."""
    max_tool_calls: int = 1000
    """Calls the code may make in one execution; further calls raise ToolError."""
    max_concurrent_calls: int = 128
    """Calls running on the host at once; the rest wait their turn."""
    max_stdout_bytes: int = 64 * 1024
    """Printed output kept; the rest is counted and dropped with a visible marker."""
    max_result_bytes: int = 64 * 1024
    """Size of the JSON result kept; past it the result is cut with a visible marker."""
    max_code_bytes: int = 256 * 1024
    """Largest program accepted."""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"limit {f.name} must be a positive number, got {value!r}")

    def replace(self, **changes: Any) -> Limits:
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            known = ", ".join(f.name for f in dataclasses.fields(self))
            raise ValueError(f"unknown limit(s) {', '.join(sorted(unknown))}; known: {known}")
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class Param:
    name: str
    required: bool = False
    takes_dict: bool = True
    """Whether a dict is a valid value. When the first parameter takes none, one dict
    passed positionally is read as the keyword arguments (`f({"a": 1})` means `f(a=1)`)."""


@dataclass(frozen=True)
class FunctionSpec:
    """One function the code can call.

    `path` is its Python name: "get_team_members" (a global) or "github.list_issues"
    (a namespace member). `target` is opaque to the sandbox and handed back to
    `ToolHost.call`. `params` lists keyword names in order (positional arguments map onto
    them). `signature` and `doc` are what `tools.describe()` shows."""

    path: str
    target: str
    params: tuple[Param, ...] = ()
    signature: str = ""
    doc: str = ""
    alias: bool = False
    """A second name for a function listed under another path (a bare global for a
    namespaced tool): callable, but `tools.search()` lists the function once."""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "path": self.path,
            "target": self.target,
            "params": [
                {"name": p.name, "required": p.required, "takes_dict": p.takes_dict}
                for p in self.params
            ],
            "signature": self.signature,
            "doc": self.doc,
        }
        if self.alias:
            out["alias"] = True
        return out


@dataclass(frozen=True)
class NamespaceSpec:
    """One namespace of functions. Named like a stdlib module of the sandbox, it is that
    module too (its attributes after the functions'). `hidden` names functions the host
    refuses with a reason of its own (a policy): calls of them reach the host anyway."""

    name: str
    server: str = ""
    hidden: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "server": self.server or self.name, "hidden": list(self.hidden)}


class ToolHost(Protocol):
    """What the sandbox needs from whoever provides the tools."""

    def functions(self) -> Sequence[FunctionSpec]:
        """The functions to expose to the next execution."""
        ...

    # Optional: `namespace_specs() -> Sequence[NamespaceSpec]`, the namespaces the functions'
    # paths name (a namespace not listed is a plain one).

    async def call(self, target: str, args: dict[str, Any], context: Any = None) -> Any:
        """Run one call; return a JSON-serializable value or raise `CallFailed`.
        `context` is the execution's `CallContext`, passed through untouched."""
        ...

    # Optional: `label(target, args) -> str`, the name a call is listed under in
    # `ExecutionResult.calls` (a target is opaque and may not be readable).


@dataclass
class ExecutionError:
    type: str
    message: str
    traceback: str = ""
    line: int | None = None
    limit: str | None = None
    """The name of the limit that stopped the execution, when one did."""
    details: dict[str, Any] = field(default_factory=dict)
    hint: str | None = None
    """One sentence naming the fix, when the error is a known mistake."""
    kind: ErrorKind | None = None
    """What went wrong, in codemode's one vocabulary (`errors.ErrorKind`)."""


@dataclass
class CallRecord:
    tool: str
    """The host's name for the call (`ToolHost.label`), else its target."""
    ms: float
    ok: bool
    approved: bool = False
    """A person approved the call before it was sent."""


@dataclass
class ExecutionStats:
    tool_calls: int = 0
    crossings: int = 0
    bytes_from_tools: int = 0
    bytes_returned: int = 0
    duration_ms: float = 0.0
    approvals_asked: int = 0
    approvals_granted: int = 0
    approvals_declined: int = 0
    waited_ms: float = 0.0
    """Time spent waiting on a person (part of duration_ms, not of the program's time)."""
    queue_ms: float = 0.0
    """Time spent waiting for a sandbox worker before the run started (not in duration_ms)."""


@dataclass
class ExecutionResult:
    ok: bool
    result: Any = None
    result_json: str = "null"
    stdout: str = ""
    error: ExecutionError | None = None
    stats: ExecutionStats = field(default_factory=ExecutionStats)
    calls: list[CallRecord] = field(default_factory=list)
    calls_dropped: int = 0
    """Calls made beyond the bounded `calls` list."""
    notes: list[str] = field(default_factory=list)
    """Things the program did that are likely mistakes, though it did not fail (a tool
    call never awaited)."""
