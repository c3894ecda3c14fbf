"""The sandbox: Python code in CPython compiled to WebAssembly, run under wasmtime.

Knows nothing of MCP (importing it loads no MCP code). `SandboxPool.execute(code,
tool_host)` runs a program; a `ToolHost` supplies the functions the program can call and
raises `errors.CallFailed` for a call that fails.

- `_build`: guest sources -> component -> native code, cached; `_engine`: its flags.
- `_pool`: the worker processes; `_process`: one of them, as the pool sees it.
- `_execution`: one run (its worker, clock, calls, state); `_outcome`: its result.
- `worker.c`: the worker process itself (built by `_native`); `_worker`: its Python twin,
  where no C compiler is, with `_capi`, its binding to wasmtime's C API; `_protocol`:
  the frames between a worker and the pool.
- `guest/`: what runs inside the sandbox.
"""

from ._build import Artifact, build_ahead, ensure_built, ensure_built_async, sandbox_modules
from ._execution import MAX_CALL_RECORDS, Execution, State
from ._pool import KeptInstance, SandboxPool
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
    "Execution",
    "ExecutionError",
    "ExecutionResult",
    "ExecutionStats",
    "FunctionSpec",
    "KeptInstance",
    "Limits",
    "NamespaceSpec",
    "Param",
    "SandboxPool",
    "State",
    "ToolHost",
    "build_ahead",
    "ensure_built",
    "ensure_built_async",
    "sandbox_modules",
]
