"""The sandbox: Python code in CPython compiled to WebAssembly, run under wasmtime.

Knows nothing of MCP. `SandboxPool.execute(code, tool_host, limits)` runs a program; a
`ToolHost` supplies the functions the program can call.
"""

from ._build import Artifact, ensure_built, sandbox_modules
from ._pool import MAX_CALL_RECORDS, SandboxPool
from ._types import (
    CallRecord,
    ExecutionError,
    ExecutionResult,
    ExecutionStats,
    FunctionSpec,
    Limits,
    NamespaceSpec,
    Param,
    ToolHost,
)

__all__ = [
    "MAX_CALL_RECORDS",
    "Artifact",
    "CallRecord",
    "ExecutionError",
    "ExecutionResult",
    "ExecutionStats",
    "FunctionSpec",
    "Limits",
    "NamespaceSpec",
    "Param",
    "SandboxPool",
    "ToolHost",
    "ensure_built",
    "sandbox_modules",
]
