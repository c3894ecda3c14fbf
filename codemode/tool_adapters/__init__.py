"""Downstream MCP federation: connect, list, name, validate, call, unwrap results.

Knows nothing of WebAssembly (importing it loads no sandbox code): `Federation` connects
the servers of a config, keeps their catalog of `ToolInfo`s and runs calls; the server
package turns that catalog into the sandbox's functions (`server._host`).

- `_connection`: one server's process or HTTP session, its tools, its calls, restarts.
- `_catalog`: the tools as the program sees them (names, schemas, validators, shapes).
- `_policy`: which tools the config exposes, and the per-minute caps.
- `_schema`: from JSON Schema to Python signatures, the catalog text and stubs.
- `_results`: from a CallToolResult to a plain value.
- `_shapes`: the learned shapes of results.
"""

from ._catalog import NAMESPACE_RESERVED, Naming
from ._connection import Connection
from ._federation import Federation
from ._results import unwrap
from ._schema import ToolInfo, annotation, identifier, params_of, render_catalog, render_stubs

__all__ = [
    "NAMESPACE_RESERVED",
    "Connection",
    "Federation",
    "Naming",
    "ToolInfo",
    "annotation",
    "identifier",
    "params_of",
    "render_catalog",
    "render_stubs",
    "unwrap",
]
