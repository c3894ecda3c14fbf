"""Downstream MCP federation: connect, list, name, validate, call, unwrap results.

Knows nothing of WebAssembly: `Federation` is a `ToolHost` the sandbox can call.
"""

from ._connection import Connection
from ._federation import CALL_TOOL_TARGET, Federation
from ._results import unwrap
from ._schema import ToolInfo, annotation, identifier, params_of, render_catalog, render_stubs

__all__ = [
    "CALL_TOOL_TARGET",
    "Connection",
    "Federation",
    "ToolInfo",
    "annotation",
    "identifier",
    "params_of",
    "render_catalog",
    "render_stubs",
    "unwrap",
]
