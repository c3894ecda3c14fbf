"""The wiring: the federation's catalog as the sandbox's functions, and the sandbox's calls
as the federation's.

`ToolBridge` is the `ToolHost` the sandbox pool runs programs with. From the catalog it
makes one function per tool (`team.get_expenses`), a bare alias for a tool name unique
across servers (unless that name is a builtin, a stdlib module, a namespace or the tool
API's), a fallback per namespace (`ns.anything(...)` reaches the server even when its tools
are not listed, so the call can say why), and `call_tool(server, tool, arguments)`. Each
function's target is a key of this module's own route table, never parsed: the pool hands
it back as it got it.

It maps the federation's errors to the sandbox's (`ToolCallError` -> `CallFailed`, kind
and details kept) and names the sandbox's facts the catalog must respect (`sandbox_naming`).
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from typing import Any

from ..context import CallContext
from ..errors import CallFailed, ErrorKind, ToolCallError
from ..tool_adapters import NAMESPACE_RESERVED, Federation, Naming
from ..wasm_runtime import FunctionSpec, NamespaceSpec, Param, sandbox_modules

API_NAMES = frozenset({"asyncio", "json", "ToolError", "tools", "call_tool", "print", "codemode"})
"""Names the sandbox gives every program: no bare alias may take one."""


def sandbox_naming() -> Naming:
    """The catalog's naming rules for programs run in this sandbox."""
    return Naming(reserved=NAMESPACE_RESERVED, modules=frozenset(sandbox_modules()))


@dataclass(frozen=True)
class _Route:
    """Where a target leads: a tool (`server`, `tool`), a namespace's fallback (`server`),
    a server's resources (`server`), or `call_tool`."""

    kind: str  # "tool" | "fallback" | "resources" | "read_resource" | "call_tool"
    server: str = ""
    tool: str = ""


CALL_TOOL = _Route("call_tool")


class ToolBridge:
    """A federation, as the sandbox's `ToolHost`."""

    def __init__(self, federation: Federation) -> None:
        self.federation = federation
        self._routes: dict[str, _Route] = {"call_tool": CALL_TOOL}
        self._built_for = -1
        self._functions: tuple[FunctionSpec, ...] = ()
        self._namespaces: tuple[NamespaceSpec, ...] = ()

    def _route(self, route: _Route) -> str:
        key = f"{route.kind}:{route.server}:{route.tool}"
        self._routes[key] = route  # kept: a running program may hold an older catalog's
        return key

    def _build(self) -> None:
        catalog = self.federation.catalog
        if self._built_for == catalog.version:
            return
        infos = catalog.tools
        namespaces = catalog.namespaces
        taken = {*namespaces.values(), *API_NAMES, *dir(builtins), *sandbox_modules()}
        counts: dict[str, int] = {}
        for info in infos:
            counts[info.py_name] = counts.get(info.py_name, 0) + 1
        specs = []
        for info in infos:
            target = self._route(_Route("tool", info.server, info.name))
            params = tuple(Param(p.name, p.required, p.takes_dict) for p in info.params)
            specs.append(FunctionSpec(info.path, target, params, info.signature(), info.doc()))
            if counts[info.py_name] == 1 and info.py_name not in taken:
                specs.append(
                    FunctionSpec(
                        info.py_name, target, params, info.signature(), info.doc(), alias=True
                    )
                )
        for server, ns in sorted(namespaces.items()):
            specs.append(FunctionSpec(f"{ns}.*", self._route(_Route("fallback", server))))
            if server in catalog.with_resources:
                specs.extend(self._resource_functions(server, ns))
        specs.append(
            FunctionSpec(
                "call_tool",
                "call_tool",
                (Param("server", True), Param("tool", True), Param("arguments")),
                "call_tool(server: str, tool: str, arguments: dict | None = None) -> Any",
                "Call a tool by its server and its original MCP name (e.g. a hyphenated one).",
            )
        )
        self._functions = tuple(specs)
        self._namespaces = tuple(
            NamespaceSpec(ns, server, tuple(sorted(catalog.hidden.get(server, {}))))
            for server, ns in sorted(namespaces.items())
        )
        self._built_for = catalog.version

    def _resource_functions(self, server: str, ns: str) -> list[FunctionSpec]:
        return [
            FunctionSpec(
                f"{ns}.resources", self._route(_Route("resources", server)), (),
                f"{ns}.resources() -> list[dict]",
                f"The resources and resource templates of server {server!r}: each a dict "
                "with uri, name and, when known, title, description, mime_type, size; a "
                "template's uri is its RFC 6570 template and it has template=True.",
            ),
            FunctionSpec(
                f"{ns}.read_resource", self._route(_Route("read_resource", server)),
                (Param("uri", True),), f"{ns}.read_resource(uri: str) -> str | dict",
                "A resource's contents: the text of a text resource; for binary content a "
                "dict with uri, mime_type, size (bytes) and blob (base64); a list when "
                "there are several.",
            ),
        ]  # fmt: skip

    # -- ToolHost ----------------------------------------------------------------------

    def functions(self) -> tuple[FunctionSpec, ...]:
        """The same tuple until the catalog changes (the pool encodes it once)."""
        self._build()
        return self._functions

    def namespace_specs(self) -> tuple[NamespaceSpec, ...]:
        self._build()
        return self._namespaces

    def label(self, target: str, args: dict[str, Any]) -> str:
        """A call's name for result listings: "namespace.tool" where it can be known."""
        route = self._routes.get(target)
        catalog = self.federation.catalog
        if route is None:
            return target
        if route.kind in ("resources", "read_resource"):
            return f"{catalog.namespaces.get(route.server, route.server)}.{route.kind}"
        if route.kind == "tool":
            entry = catalog.find(route.server, route.tool)
            if entry is not None:
                return entry.info.path
            server, tool = route.server, route.tool
        elif route.kind == "fallback":
            server, tool = route.server, args.get("name")
        else:
            server, tool = args.get("server"), args.get("tool")
        key = catalog.server_of(server) if isinstance(server, str) else None
        return f"{catalog.namespaces.get(key, server) if key else server}.{tool}"

    async def call(self, target: str, args: dict[str, Any], context: CallContext | None = None):
        route = self._routes.get(target)
        fed = self.federation
        try:
            if route is None:
                raise CallFailed(f"no function for target {target!r}", ErrorKind.UNKNOWN_TOOL)
            if route.kind == "call_tool":
                return await fed.call_tool(
                    args.get("server"), args.get("tool"), args.get("arguments"), context
                )
            if route.kind == "fallback":
                return await fed.call_tool(
                    route.server, args.get("name"), args.get("args"), context
                )
            if route.kind == "resources":
                return await fed.list_resources(route.server, context)
            if route.kind == "read_resource":
                return await fed.read_resource(route.server, args.get("uri"), context)
            entry = fed.catalog.find(route.server, route.tool)
            if entry is None:  # the catalog changed since the program started
                return await fed.call_tool(route.server, route.tool, args, context)
            arguments = {entry.to_original.get(k, k): v for k, v in args.items()}
            return await fed.call_entry(entry, arguments, context)
        except ToolCallError as exc:
            raise CallFailed(exc.message, exc.kind, **exc.details) from None
