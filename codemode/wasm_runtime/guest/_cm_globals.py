"""The module globals a program starts with: its namespaces and tool functions, `tools`
(search, describe, list), `call_tool`, `ToolError` and a `codemode` module of them all."""

import builtins
import sys

import _cm_stdlib
from _cm_api import CallTool, Namespace, Registry, ToolFunction, _did_you_mean, _resolve_tool
from _cm_bridge import ToolError


class _Listing(list):
    """A list that `await` also gives (tools.search() is not a coroutine, but a model
    often awaits it: both spellings work)."""

    def __await__(self):
        return self
        yield  # makes this a generator: __await__ must return an iterator


class _Text(str):
    def __await__(self):
        return self
        yield


class Tools:
    """`tools.search(query)` / `tools.describe(name)` / `tools.list()`: find functions
    without reading the whole catalog. Each tool is listed once (a bare-global alias is
    the same tool)."""

    def __init__(self, functions: list[ToolFunction]):
        self._functions = {f.path: f for f in functions if not f.alias}

    def list(self) -> list[str]:
        return _Listing(sorted(self._functions))

    def search(self, query: str = "", limit: int = 10) -> list[str]:
        words = [w for w in "".join(c if c.isalnum() else " " for c in str(query).lower()).split()]
        scored = []
        for path, fn in self._functions.items():
            name = path.lower()
            text = f"{name} {fn.doc.lower()}"
            score = sum(3 if w in name else 1 for w in words if w in text)
            if score or not words:
                scored.append((-score, path))
        scored.sort()
        return _Listing(
            f"{self._functions[p].signature}  # {self._first_line(p)}" for _, p in scored[:limit]
        )

    def _first_line(self, path: str) -> str:
        doc = self._functions[path].doc.strip()
        return doc.splitlines()[0][:120] if doc else ""

    def _find(self, name: str):
        name = str(name)
        fn = self._functions.get(name)
        if fn is not None:
            return [fn]
        return [f for p, f in self._functions.items() if p.rsplit(".", 1)[-1] == name]

    def describe(self, name: str) -> str:
        found = self._find(name)
        if not found:
            raise KeyError(f"no function named {name!r}{_did_you_mean(name, self._functions)}")
        return _Text("\n\n".join(f.__doc__ for f in found))

    def __getitem__(self, name: str):
        # `tools["team.get_expenses"]`: the function of that name
        found = self._find(name)
        if len(found) == 1:
            return found[0]
        raise KeyError(
            f"no single function named {name!r}{_did_you_mean(name, self._functions)}; "
            "call tools directly: `await ns.tool(...)`"
        )

    def call(self, name: str, arguments: dict | None = None, **kwargs):
        """`await tools.call("team.get_expenses", {...})`: the same as calling it."""
        fn = _resolve_tool(str(name))
        if fn is None:
            raise KeyError(
                f"no single function named {name!r}{_did_you_mean(name, self._functions)}"
            )
        return fn(**{**(arguments or {}), **kwargs})

    def __getattr__(self, name: str):
        # `from tools import get_leads`: the tool of that name, when there is one.
        if name.startswith("_"):
            raise AttributeError(name)
        found = self._find(name)
        if len(found) == 1:
            return found[0]
        if found:
            raise AttributeError(
                f"several tools are named {name!r}: {', '.join(f.path for f in found)}; "
                "use the namespace (e.g. `from ns import name`, or `await ns.name()`)"
            )
        options = [*self._functions, "search", "describe", "list"]
        raise AttributeError(
            f"tools has no {name!r}{_did_you_mean(name, options)}; it offers tools.search(), "
            "tools.describe() and tools.list()"
        )

    def __repr__(self) -> str:
        return f"<tools: {len(self._functions)} functions; use tools.search(query)>"


def _ours(value) -> bool:
    """Whether a global is one the sandbox put there (not the program's own)."""
    import asyncio
    import json

    return isinstance(value, (Namespace, ToolFunction, Tools)) or value is asyncio or value is json


def refresh_globals(kept: dict, fresh: dict) -> dict:
    """A session's globals for its next call: the tool API of `fresh` (tools may have
    changed) wherever the program did not bind the name itself; everything else kept."""
    for name in [n for n, v in kept.items() if _ours(v) and n not in fresh]:
        del kept[name]  # a tool or server that is gone
    for name, value in fresh.items():
        if name not in kept or _ours(kept[name]) or name.startswith("__codemode"):
            kept[name] = value
    Registry.env = kept
    return kept


def build_globals(manifest: dict, dumps, return_signal) -> dict:
    """The module globals a program starts with: the tool API and the builtins."""
    import asyncio
    import json

    env: dict = {
        "__name__": "__main__",
        "__builtins__": builtins,
        "asyncio": asyncio,
        "json": json,
        "ToolError": ToolError,
        "__codemode_return__": return_signal,
        "__codemode_gather__": asyncio.gather,
    }
    namespaces: dict[str, Namespace] = {}
    for info in manifest.get("namespaces", ()):
        name = info["name"]
        module = sys.modules.get(name) if name in _cm_stdlib.OFFERED else None
        namespaces[name] = Namespace(name, module, info.get("server"), info.get("hidden", ()))
    functions = []
    for spec in manifest.get("functions", ()):
        fn = (CallTool if spec["path"] == "call_tool" else ToolFunction)(spec, dumps)
        *parents, leaf = fn.path.split(".")
        if not parents:
            env[leaf] = fn
            functions.append(fn)
            continue
        holder = namespaces.get(parents[0])
        if holder is None:
            holder = namespaces[parents[0]] = Namespace(parents[0])
        if leaf == "*":
            holder._cm_fallback = fn.target
            continue
        functions.append(fn)
        holder._cm_add(leaf, fn)
    env.update(namespaces)
    tools = Tools(functions)
    env["tools"] = tools
    product = Namespace("codemode")
    for key in ("ToolError", "tools", "call_tool"):
        if key in env:
            setattr(product, key, env[key])
    for name, value in [*namespaces.items(), *((f.path, f) for f in functions if f.alias)]:
        setattr(product, name, value)
    env["__codemode_module__"] = product
    Registry.namespaces, Registry.functions, Registry.env = namespaces, functions, env
    return env
