"""The MCP server: one tool, `execute_code`, that runs Python against the downstream tools.

Wires `wasm_runtime` (run this code) to `tool_adapters` (call this tool): `Engine` is the
pair, `CodeModeServer` serves it over MCP.
"""

from ._description import TOOL_NAME
from ._engine import Engine
from ._host import ToolBridge, sandbox_naming
from ._http import HttpOptions
from ._mcp import CodeModeServer, serve
from ._results import OUTPUT_SCHEMA, error_text, notes, structured

__all__ = [
    "OUTPUT_SCHEMA",
    "TOOL_NAME",
    "CodeModeServer",
    "Engine",
    "HttpOptions",
    "ToolBridge",
    "error_text",
    "notes",
    "sandbox_naming",
    "serve",
    "structured",
]
