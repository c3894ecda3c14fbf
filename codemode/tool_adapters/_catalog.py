"""The catalog: every downstream tool as the program sees it, built from the servers'
tool lists, the policy, the naming rules and the learned shapes.

A `ToolInfo` per exposed tool (names, parameters, annotations; see `_schema`), with a
jsonschema validator of its inputSchema and the map back to the schema's parameter names.
It is rebuilt whenever a server's tools change or a shape is learned; `version` counts the
rebuilds, so whoever renders from it (the sandbox's function list, the description) knows
when to render again.
"""

from __future__ import annotations

import builtins
import functools
import importlib
import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import jsonschema

from ..config import Config
from ..errors import ErrorKind, ToolCallError
from ._policy import ApprovalRule, Policy
from ._resources import NAMES as RESOURCE_FUNCTIONS
from ._schema import ToolInfo, assign_names, identifier, params_of, returns_of
from ._shapes import ShapeStore, fingerprint, vague

log = logging.getLogger("codemode.catalog")

NAMESPACE_RESERVED = frozenset({"ToolError", "tools", "call_tool", "codemode", *dir(builtins)})
"""Names a namespace may not take (it gets a trailing "_"): the tool API's own, and the
builtins, which a namespace would hide."""


@functools.lru_cache(maxsize=64)
def _module_attributes(name: str) -> frozenset[str]:
    """The public names of the stdlib module `name` (tools of a namespace of that name
    that would hide one are renamed)."""
    try:
        return frozenset(a for a in dir(importlib.import_module(name)) if not a.startswith("_"))
    except Exception:  # noqa: BLE001 - a module the host lacks hides nothing we can know
        return frozenset()


@dataclass(frozen=True)
class Naming:
    """What the program's world already names, given by whoever runs the programs (the
    sandbox): namespaces never take a reserved name; a namespace named like one of
    `modules` is that module too, so a tool whose name would hide one of its attributes
    gets a trailing "_"."""

    reserved: frozenset[str] = NAMESPACE_RESERVED
    modules: frozenset[str] = frozenset()
    attributes: Callable[[str], frozenset[str]] = _module_attributes


@dataclass
class Entry:
    info: ToolInfo
    validator: Any  # a jsonschema validator, or None when the schema itself is invalid
    to_original: dict[str, str]
    fingerprint: str
    approval: ApprovalRule | None = None
    """Why a person approves each call of this tool first (None: calls go straight on)."""


@dataclass
class Catalog:
    config: Config
    policy: Policy
    naming: Naming = field(default_factory=Naming)
    shapes: ShapeStore | None = None
    namespaces: dict[str, str] = field(default_factory=dict)
    """Server config key -> namespace; fixed by the config (`assign_namespaces`)."""
    entries: dict[tuple[str, str], Entry] = field(default_factory=dict)
    hidden: dict[str, dict[str, str]] = field(default_factory=dict)
    """server -> {tool name (MCP and Python): why the policy hides it}."""
    with_resources: set[str] = field(default_factory=set)
    """Servers that offer resources (their namespaces have `resources`, `read_resource`)."""
    version: int = 0

    def assign_namespaces(self, servers: Iterable[str]) -> None:
        taken: set[str] = set()
        for name in sorted(servers):
            ns = identifier(self.config.options(name).namespace or name, self.naming.reserved)
            while ns in taken:
                ns += "_"
            taken.add(ns)
            self.namespaces[name] = ns

    def rebuild(
        self,
        tools_of: Callable[[str], list[Any]],
        has_resources: Callable[[str], bool] = lambda server: False,
    ) -> None:
        """Rebuild from each server's MCP tool list (`tools_of(server)`); a namespace of a
        server with resources also has `resources` and `read_resource`."""
        self.with_resources = {s for s in self.namespaces if has_resources(s)}
        entries: dict[tuple[str, str], Entry] = {}
        hidden: dict[str, dict[str, str]] = {}
        for server, ns in self.namespaces.items():
            listed = tools_of(server)
            blocked = {t.name: self.policy.blocked(server, t) for t in listed}
            hidden[server] = {}
            for name, reason in blocked.items():
                if reason is not None:
                    hidden[server][name] = hidden[server][identifier(name, frozenset())] = reason
            tools = [t for t in listed if blocked[t.name] is None]
            names = assign_names(ns, server, tools)
            if ns in self.naming.modules:
                names = _clear_of_module(names, self.naming.attributes(ns))
            if server in self.with_resources:
                names = _clear_of_module(names, RESOURCE_FUNCTIONS)
            for tool in tools:
                entries[(server, tool.name)] = self._entry(server, ns, names[tool.name], tool)
        self.entries, self.hidden = entries, hidden
        self.version += 1

    def _entry(self, server: str, ns: str, py_name: str, tool: Any) -> Entry:
        params = params_of(tool.input_schema)
        fp = fingerprint(tool.input_schema, tool.output_schema)
        returns, observed = returns_of(tool.output_schema), None
        if self.shapes is not None and vague(returns):
            learned = self.shapes.get(server, tool.name, fp)
            if learned is not None:
                returns, observed = learned
        info = ToolInfo(
            server=server,
            namespace=ns,
            name=tool.name,
            py_name=py_name,
            description=tool.description or "",
            params=params,
            returns=returns,
            input_schema=tool.input_schema,
            output_schema=tool.output_schema,
            observed=observed,
        )
        approval = self.policy.approval_rule(server, tool.name, tool)
        to_original = {p.name: p.original for p in params}
        return Entry(info, _validator(tool.input_schema), to_original, fp, approval)

    @property
    def tools(self) -> list[ToolInfo]:
        return sorted((e.info for e in self.entries.values()), key=lambda t: t.path)

    def find(self, server: str, tool: str) -> Entry | None:
        """The entry of `server`'s tool by its MCP name or its Python name."""
        entry = self.entries.get((server, tool))
        if entry is not None:
            return entry
        return next(
            (e for (s, _), e in self.entries.items() if s == server and e.info.py_name == tool),
            None,
        )

    def server_of(self, name: str) -> str | None:
        """The config key of a server named by its key or its namespace."""
        if name in self.namespaces:
            return name
        return next((s for s, ns in self.namespaces.items() if ns == name), None)

    def validate(self, entry: Entry, arguments: dict[str, Any]) -> None:
        """Raise ToolCallError (InvalidArguments) naming the parameter, before sending."""
        info = entry.info
        if entry.validator is not None:
            error = jsonschema.exceptions.best_match(entry.validator.iter_errors(arguments))
            if error is not None:
                raise ToolCallError(
                    _argument_error(info, error),
                    ErrorKind.INVALID_ARGUMENTS,
                    server=info.server,
                    tool=info.name,
                )
        check_text(info.server, info.name, arguments)


def check_text(server: str, tool: str, arguments: dict[str, Any]) -> None:
    """Refuse arguments that JSON text cannot carry: a lone surrogate (a Python str may hold
    one) would make the SDK fail to write the request and drop the server's connection."""
    try:
        json.dumps(arguments, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = exc.object[exc.start : exc.end]
        raise ToolCallError(
            f"{server}.{tool}(): an argument holds {bad!r}, a lone surrogate that JSON text "
            "cannot carry; pass valid Unicode text (base64-encode binary data)",
            ErrorKind.INVALID_ARGUMENTS,
            server=server,
            tool=tool,
        ) from None
    except (TypeError, ValueError) as exc:
        raise ToolCallError(
            f"{server}.{tool}(): the arguments are not JSON: {exc}",
            ErrorKind.INVALID_ARGUMENTS,
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
