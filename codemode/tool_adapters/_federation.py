"""Federation: every configured downstream server, as one ToolHost for the sandbox.

It connects all servers concurrently, names their tools (see `_schema`), validates each
call's arguments against the tool's inputSchema before anything is sent, runs the call,
and unwraps the result. A server that failed to start does not stop the others: calls to
it raise a ToolCallError carrying its start error.
"""

from __future__ import annotations

import asyncio
import builtins
import collections
import difflib
import fnmatch
import functools
import importlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import jsonschema

from ..config import Config
from ..errors import ServerStartError, ToolCallError
from ..wasm_runtime import FunctionSpec, NamespaceSpec, Param, sandbox_modules
from ._connection import Connection
from ._results import unwrap
from ._schema import (
    RESERVED,
    ToolInfo,
    assign_names,
    identifier,
    params_of,
    render_catalog,
    render_stubs,
    returns_of,
)
from ._shapes import ShapeStore, fingerprint, shapes_file, vague

log = logging.getLogger("codemode.federation")

CALL_TOOL_TARGET = "\x00call_tool"
SERVER_FALLBACK_TARGET = "\x00server:"  # + config key: any attribute of a namespace
_SEP = "\x1f"

NAMESPACE_RESERVED = frozenset({"ToolError", "tools", "call_tool", "codemode", *dir(builtins)})
"""Names a namespace may not take (it gets a trailing "_"): the tool API's own, and the
builtins, which a namespace would hide. A stdlib module's name is allowed: that namespace
is the module too (`time.monotonic()` and `await time.get_current_time()`)."""


@functools.lru_cache(maxsize=64)
def _module_attributes(name: str) -> frozenset[str]:
    """The public names of the stdlib module `name` (tools of a namespace of that name
    that would hide one are renamed)."""
    try:
        return frozenset(a for a in dir(importlib.import_module(name)) if not a.startswith("_"))
    except Exception:  # noqa: BLE001 - a module the host lacks hides nothing we can know
        return frozenset()


@dataclass
class _Entry:
    info: ToolInfo
    validator: Any  # a jsonschema validator, or None when the schema itself is invalid
    to_original: dict[str, str]
    fingerprint: str


class Federation:
    """The downstream servers of a config, as a `ToolHost`."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.connections: dict[str, Connection] = {
            name: Connection(name, server, config.options(name), self._tools_changed)
            for name, server in config.enabled_servers.items()
        }
        self._entries: dict[str, _Entry] = {}
        self._functions: list[FunctionSpec] = []
        self._namespace_specs: list[NamespaceSpec] = []
        self._listeners: list[Callable[[], Awaitable[None]]] = []
        self._recent: dict[str, collections.deque[float]] = {}
        self._notifications: set[asyncio.Task[None]] = set()
        self.shapes = ShapeStore(shapes_file()) if config.codemode.learn_shapes else None
        self._namespaces = self._assign_namespaces()  # fixed by the config
        self._rebuild()

    async def __aenter__(self) -> Federation:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> dict[str, str | None]:
        """Connect every server at once; returns name -> None (ok) or its error."""
        results = await asyncio.gather(
            *(c.start() for c in self.connections.values()), return_exceptions=True
        )
        status: dict[str, str | None] = {}
        for name, outcome in zip(self.connections, results):
            if isinstance(outcome, ServerStartError):
                log.warning("%s", outcome)
                status[name] = self.connections[name].error
            elif isinstance(outcome, BaseException):
                raise outcome
            else:
                status[name] = None
        self._rebuild()
        return status

    async def close(self) -> None:
        for task in list(self._notifications):
            task.cancel()
        await asyncio.gather(
            *self._notifications,
            *(c.close() for c in self.connections.values()),
            return_exceptions=True,
        )

    def on_tools_changed(self, listener: Callable[[], Awaitable[None]]) -> None:
        self._listeners.append(listener)

    async def _tools_changed(self) -> None:
        self._rebuild()
        for listener in self._listeners:
            await listener()

    # -- the catalog -------------------------------------------------------------------

    def _assign_namespaces(self) -> dict[str, str]:
        taken: set[str] = set()
        result = {}
        for name in sorted(self.connections):
            ns = identifier(self.config.options(name).namespace or name, NAMESPACE_RESERVED)
            while ns in taken:
                ns += "_"
            taken.add(ns)
            result[name] = ns
        return result

    def _policy_block(self, server: str, tool: Any) -> str | None:
        """Why the config hides `tool` (an MCP Tool) of `server`, or None."""
        options = self.config.options(server)
        name = tool.name
        if options.allow is not None and not any(
            fnmatch.fnmatchcase(name, p) for p in options.allow
        ):
            return f"not in codemode.servers.{server}.allow ({', '.join(options.allow)})"
        for pattern in options.deny:
            if fnmatch.fnmatchcase(name, pattern):
                return f"matches {pattern!r} in codemode.servers.{server}.deny"
        read_only = options.read_only
        rule = f"codemode.servers.{server}.read_only"
        if read_only is None:
            read_only, rule = self.config.codemode.read_only, "codemode.read_only"
        annotations = tool.annotations
        if read_only and not (annotations and annotations.read_only_hint):
            return f"{rule} is on and the server does not mark {name!r} readOnlyHint"
        return None

    def _admit(self, server: str, tool: str) -> None:
        """Enforce the per-minute call caps (global, then per server) before a call."""
        now = time.monotonic()
        caps = [
            (
                "*",
                self.config.codemode.max_tool_calls_per_minute,
                "codemode.max_tool_calls_per_minute",
            ),
            (
                server,
                self.config.options(server).max_calls_per_minute,
                f"codemode.servers.{server}.max_calls_per_minute",
            ),
        ]
        for key, cap, rule in caps:
            if cap is None:
                continue
            window = self._recent.setdefault(key, collections.deque())
            while window and now - window[0] >= 60:
                window.popleft()
            if len(window) >= cap:
                wait = 60 - (now - window[0])
                raise ToolCallError(
                    f"{server}.{tool} is blocked by policy: {rule} is {cap} and {cap} calls "
                    f"were made in the last 60 s; retry in {wait:.0f} s or raise the limit",
                    "PolicyBlocked",
                    server=server,
                    tool=tool,
                    limit=rule,
                )
        for key, cap, _ in caps:
            if cap is not None:
                self._recent[key].append(now)

    def _rebuild(self) -> None:
        entries: dict[str, _Entry] = {}
        for server, ns in self._namespaces.items():
            tools = [
                t for t in self.connections[server].tools if self._policy_block(server, t) is None
            ]
            names = assign_names(ns, server, tools)
            if ns in sandbox_modules():
                names = _clear_of_module(names, _module_attributes(ns))
            for tool in tools:
                params = params_of(tool.input_schema)
                annotations = tool.annotations
                fp = fingerprint(tool.input_schema, tool.output_schema)
                returns, observed = returns_of(tool.output_schema), None
                learned = (
                    self.shapes.get(server, tool.name, fp)
                    if self.shapes is not None and vague(returns)
                    else None
                )
                if learned is not None:
                    returns, observed = learned
                info = ToolInfo(
                    server=server,
                    namespace=ns,
                    name=tool.name,
                    py_name=names[tool.name],
                    description=tool.description or "",
                    params=params,
                    returns=returns,
                    input_schema=tool.input_schema,
                    output_schema=tool.output_schema,
                    read_only=bool(annotations and annotations.read_only_hint),
                    observed=observed,
                )
                entries[server + _SEP + tool.name] = _Entry(
                    info,
                    _validator(tool.input_schema),
                    {p.name: p.original for p in params},
                    fp,
                )
        self._entries = entries
        self._functions = self._build_functions()
        self._namespace_specs = self._build_namespace_specs()

    def _build_namespace_specs(self) -> list[NamespaceSpec]:
        specs = []
        for server, ns in sorted(self._namespaces.items()):
            hidden = set()
            for tool in self.connections[server].tools:
                if self._policy_block(server, tool) is not None:
                    hidden |= {tool.name, identifier(tool.name, frozenset())}
            specs.append(NamespaceSpec(ns, server, tuple(sorted(hidden))))
        return specs

    def _build_functions(self) -> list[FunctionSpec]:
        infos = [e.info for e in self._entries.values()]
        # A bare alias never hides a namespace, a builtin, a stdlib module or the tool API.
        taken = {*self._namespaces.values(), *NAMESPACE_RESERVED, *RESERVED, *sandbox_modules()}
        counts: dict[str, int] = {}
        for info in infos:
            counts[info.py_name] = counts.get(info.py_name, 0) + 1
        specs = []
        for key, entry in sorted(self._entries.items(), key=lambda kv: kv[1].info.path):
            info = entry.info
            params = tuple(Param(p.name, p.required, p.takes_dict) for p in info.params)
            spec = FunctionSpec(info.path, key, params, info.signature(), info.doc())
            specs.append(spec)
            if counts[info.py_name] == 1 and info.py_name not in taken:
                specs.append(
                    FunctionSpec(
                        info.py_name, key, params, info.signature(), info.doc(), alias=True
                    )
                )
        for server, ns in sorted(self._namespaces.items()):
            # `ns.anything(...)` reaches the server even when its tools are not listed (it
            # failed to start): the call then says why, instead of a NameError in the code.
            specs.append(FunctionSpec(f"{ns}.*", SERVER_FALLBACK_TARGET + server))
        specs.append(
            FunctionSpec(
                "call_tool",
                CALL_TOOL_TARGET,
                (Param("server", True), Param("tool", True), Param("arguments")),
                "call_tool(server: str, tool: str, arguments: dict | None = None) -> Any",
                "Call a tool by its server and its original MCP name (e.g. a hyphenated one).",
            )
        )
        return specs

    @property
    def tools(self) -> list[ToolInfo]:
        return sorted((e.info for e in self._entries.values()), key=lambda t: t.path)

    @property
    def namespaces(self) -> dict[str, str]:
        """Server config key -> the namespace the code reaches its tools through."""
        return dict(self._namespaces)

    def catalog(self) -> str:
        return render_catalog(self.tools)

    def stubs(self) -> str:
        return render_stubs(self.tools)

    def status(self) -> dict[str, str | None]:
        return {
            name: (None if c.state == "ready" else c.error or c.state)
            for name, c in self.connections.items()
        }

    # -- ToolHost ----------------------------------------------------------------------

    def functions(self) -> list[FunctionSpec]:
        return list(self._functions)

    def namespace_specs(self) -> list[NamespaceSpec]:
        return list(self._namespace_specs)

    def label(self, target: str, args: dict[str, Any]) -> str:
        """A call's name for result listings: "namespace.tool" where it can be known."""
        entry = self._entries.get(target)
        if entry is not None:
            return entry.info.path
        if target == CALL_TOOL_TARGET:
            server, tool = args.get("server"), args.get("tool")
        elif target.startswith(SERVER_FALLBACK_TARGET):
            server, tool = target[len(SERVER_FALLBACK_TARGET) :], args.get("name")
        else:
            server, _, tool = target.partition(_SEP)
        key = self._resolve_server(server) if isinstance(server, str) else None
        namespace = self._namespaces.get(key, server) if key else server
        return f"{namespace}.{tool}"

    async def call(self, target: str, args: dict[str, Any]) -> Any:
        if target == CALL_TOOL_TARGET:
            return await self.call_tool(args.get("server"), args.get("tool"), args.get("arguments"))
        if target.startswith(SERVER_FALLBACK_TARGET):
            server = target[len(SERVER_FALLBACK_TARGET) :]
            return await self.call_tool(server, args.get("name"), args.get("args"))
        entry = self._entries.get(target)
        if entry is None:
            server, _, tool = target.partition(_SEP)
            return await self.call_tool(server, tool, args)
        arguments = {entry.to_original.get(k, k): v for k, v in args.items()}
        return await self._call_entry(entry, arguments)

    async def call_tool(self, server: Any, tool: Any, arguments: Any = None) -> Any:
        """Call by server (config key or namespace) and tool (MCP or Python name)."""
        if not isinstance(server, str) or not isinstance(tool, str):
            raise ToolCallError(
                "call_tool(server, tool, arguments): server and tool must be strings",
                "InvalidArguments",
            )
        if arguments is None:
            arguments = {}
        if not isinstance(arguments, dict):
            raise ToolCallError(
                f"call_tool(): arguments must be a dict, got {type(arguments).__name__}",
                "InvalidArguments",
                server=server,
                tool=tool,
            )
        key = self._resolve_server(server)
        if key is None:
            known = ", ".join(sorted(self.connections)) or "none configured"
            raise ToolCallError(
                f"no server named {server!r} (servers: {known})",
                "UnknownTool",
                server=server,
                tool=tool,
            )
        entry = self._entries.get(key + _SEP + tool) or next(
            (e for e in self._entries.values() if e.info.server == key and e.info.py_name == tool),
            None,
        )
        if entry is None:
            listed = next((t for t in self.connections[key].tools if t.name == tool), None)
            blocked = self._policy_block(key, listed) if listed is not None else None
            if blocked is not None:
                message = f"{key}.{tool} is blocked by policy: {blocked}"
                raise ToolCallError(message, "PolicyBlocked", server=key, tool=tool)
            connection = self.connections[key]
            if connection.state != "ready":
                # not listed because the server is down: the call reports why (and restarts it)
                return await self._send(key, tool, arguments)
            ns = self._namespaces[key]
            names = sorted(e.info.py_name for e in self._entries.values() if e.info.server == key)
            close = difflib.get_close_matches(tool, names, n=3)
            hint = f"; did you mean {', '.join(f'{ns}.{c}' for c in close)}?" if close else ""
            raise ToolCallError(
                f"{ns} (server {key!r}) has no tool {tool!r}{hint} Its tools: "
                f"{', '.join(names) or 'none'}",
                "UnknownTool",
                server=key,
                tool=tool,
            )
        return await self._call_entry(entry, arguments)

    def _resolve_server(self, server: str) -> str | None:
        if server in self.connections:
            return server
        for name, ns in self._namespaces.items():
            if ns == server:
                return name
        return None

    async def _call_entry(self, entry: _Entry, arguments: dict[str, Any]) -> Any:
        info = entry.info
        if entry.validator is not None:
            error = jsonschema.exceptions.best_match(entry.validator.iter_errors(arguments))
            if error is not None:
                raise ToolCallError(
                    _argument_error(info, error),
                    "InvalidArguments",
                    server=info.server,
                    tool=info.name,
                )
        value = await self._send(info.server, info.name, arguments, info.output_schema, info.path)
        if self.shapes is not None and (info.observed is not None or vague(info.returns)):
            if self.shapes.observe(info.server, info.name, entry.fingerprint, value):
                log.info("learned the result shape of %s: %s", info.path, info.returns)
                self._shape_learned()
        return value

    def _shape_learned(self) -> None:
        """A shape was learned or widened: rebuild the catalog and tell the listeners,
        without holding up the call that taught it."""
        self._rebuild()
        task = asyncio.get_running_loop().create_task(self._notify_listeners())
        self._notifications.add(task)
        task.add_done_callback(self._notifications.discard)

    async def _notify_listeners(self) -> None:
        for listener in self._listeners:
            try:
                await listener()
            except Exception as exc:  # noqa: BLE001 - a listener's failure is its own
                log.debug("a tools-changed listener failed: %s", exc)

    async def _send(
        self,
        server: str,
        tool: str,
        arguments: dict[str, Any],
        output_schema: Any = None,
        label: str | None = None,
    ) -> Any:
        """Every call downstream goes through here: rate caps, the call, unwrapping."""
        _check_text(server, tool, arguments)
        self._admit(server, tool)
        result = await self.connections[server].call(tool, arguments)
        name = label or f"{self._namespaces.get(server, server)}.{tool}"
        return unwrap(result, server, tool, output_schema, name)


def _check_text(server: str, tool: str, arguments: dict[str, Any]) -> None:
    """Refuse arguments that JSON text cannot carry: a lone surrogate (a Python str may hold
    one) would make the SDK fail to write the request and drop the server's connection."""
    try:
        json.dumps(arguments, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = exc.object[exc.start : exc.end]
        raise ToolCallError(
            f"{server}.{tool}(): an argument holds {bad!r}, a lone surrogate that JSON text "
            "cannot carry; pass valid Unicode text (base64-encode binary data)",
            "InvalidArguments",
            server=server,
            tool=tool,
        ) from None
    except (TypeError, ValueError) as exc:
        raise ToolCallError(
            f"{server}.{tool}(): the arguments are not JSON: {exc}",
            "InvalidArguments",
            server=server,
            tool=tool,
        ) from None


def _clear_of_module(names: dict[str, str], taken: frozenset[str]) -> dict[str, str]:
    """Python names of a namespace that is also a stdlib module: a tool whose name would
    hide one of the module's gets a trailing "_" (the module's name stays correct)."""
    used = set(names.values())
    out = {}
    for mcp_name, py in sorted(names.items()):
        if py in taken:
            new = py + "_"
            while new in used or new in taken:
                new += "_"
            used.add(new)
            py = new
        out[mcp_name] = py
    return out


def _validator(schema: Any) -> Any:
    if not isinstance(schema, dict):
        return None
    try:
        cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
        cls.check_schema(schema)
        return cls(schema)
    except Exception as exc:  # noqa: BLE001 - a broken schema disables validation, not the tool
        log.warning("a tool's inputSchema is invalid, arguments will not be checked: %s", exc)
        return None


_PY_TYPES = {"object": "a dict", "array": "a list", "string": "a str", "integer": "an int",
             "number": "a float or int", "boolean": "a bool", "null": "None"}  # fmt: skip


def _python_type(kind: Any) -> str:
    """A JSON Schema type as Python names: "object" -> "a dict"."""
    kinds = kind if isinstance(kind, list) else [kind]
    return " or ".join(_PY_TYPES.get(k, str(k)) for k in kinds)


def _argument_error(info: ToolInfo, error: jsonschema.ValidationError) -> str:
    to_py = {p.original: p.name for p in info.params}
    where = list(error.absolute_path)
    head = f"{info.path}()"
    if error.validator == "required" and not where:
        missing = [p for p in error.validator_value if p not in (error.instance or {})]
        names = ", ".join(repr(to_py.get(m, m)) for m in missing)
        return f"{head}: missing required parameter {names}"
    if error.validator == "additionalProperties" and not where:
        extra = sorted(set(error.instance or {}) - set(to_py))
        known = ", ".join(to_py.values())
        return f"{head}: unexpected parameter(s) {', '.join(map(repr, extra))}; parameters: {known}"
    if where:
        param = to_py.get(str(where[0]), str(where[0]))
        inner = "".join(f"[{p!r}]" for p in where[1:])
        given = repr(error.instance)
        given = given if len(given) <= 60 else given[:57] + "..."
        if error.validator == "type":
            expected = _python_type(error.validator_value)
            return (
                f"{head}: parameter {param!r}{inner} expected {expected}, "
                f"got {given} ({type(error.instance).__name__})"
            )
        kind = next((p.annotation for p in info.params if p.name == param), None)
        takes = f" ({param} takes {kind})" if kind and inner else ""
        return f"{head}: parameter {param!r}{inner}: {error.message}{takes}"
    return f"{head}: {error.message}"
