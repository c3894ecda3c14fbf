"""The sandbox: Python code in CPython compiled to WebAssembly, run under wasmtime.

Knows nothing of MCP. `SandboxPool.execute(code, tool_host, limits)` runs a program; a
`ToolHost` supplies the functions the program can call.
"""

from ._build import Artifact, cache_root, ensure_built
from ._pool import MAX_CALL_RECORDS, SandboxPool
from ._types import (
    CallRecord,
    ExecutionError,
    ExecutionResult,
    ExecutionStats,
    FunctionSpec,
    Limits,
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
    "Param",
    "SandboxPool",
    "ToolHost",
    "cache_root",
    "ensure_built",
]
