"""The `execute_code` tool's description: how to write for it, then what it can call.

The text is a pure function of the limits, the tools and the servers' states, so the same
downstream tools give the same bytes (prompt caches stay warm). It has a size budget
(`codemode.description_budget_bytes`): past it, the catalog shrinks to tool names per
server, then to server names, and the code looks the rest up with `tools.search()` and
`tools.describe()` inside the sandbox.
"""

from __future__ import annotations

from ..tool_adapters import ToolInfo, render_catalog
from ..wasm_runtime import Limits, sandbox_modules

TOOL_NAME = "execute_code"


def _size(limit: int) -> str:
    return f"{limit // 1024} KB" if limit % 1024 == 0 else f"{limit:,} bytes"


def guide(limits: Limits) -> str:
    """The part that teaches the model how to write programs for this tool."""
    return f"""\
Run a Python program that calls the tools listed below as async functions, in a sandbox \
(CPython 3.14 compiled to WebAssembly). Prefer one program over many separate tool calls: it \
can fetch, join, filter and aggregate, and only what it returns comes back to you.

How to write it:
- Top-level `await` works. Run calls in parallel with `await asyncio.gather(...)`; `asyncio` \
and `json` are already imported.
- End with `return <value>` (or a final expression): a small JSON-serializable summary, not \
raw records. What the program prints is returned too.
- Tool results arrive already parsed, as plain Python values (never MCP `content` blocks): \
use them directly, no `json.loads`. Dicts also allow attribute access (`offer.salary`); a \
tool that returns text gives a `str`. A failed call raises `ToolError` (catch it to carry on).
- Inside the program, `tools.search("words")` finds tools and `tools.describe("ns.tool")` \
gives a tool's signature and full documentation.
- The standard library is available (re, json, datetime, zoneinfo, collections, itertools, \
statistics, math, ...). There is no network, no host file system and no subprocess: the tools \
are the only way out. Each run starts fresh, unless it names a `session`.
- Pass `session: "name"` to keep the program's variables, functions and imports for the \
next call with the same session (look at data, then decide); `reset: true` starts it anew.
- Limits per run: {limits.timeout_s:g} s, {limits.memory_mb} MB of memory, \
{limits.max_tool_calls} tool calls, {_size(limits.max_result_bytes)} of result and \
{_size(limits.max_stdout_bytes)} of printed output."""


def describe(
    limits: Limits,
    tools: list[ToolInfo],
    namespaces: dict[str, str],
    unavailable: list[str] | dict[str, str | None],
    budget: int,
    no_config_hint: str | None = None,
    asks: list[str] | None = None,
    with_resources: list[str] | None = None,
) -> str:
    """The whole description. `namespaces` maps each server's config key to its namespace;
    `unavailable` names the servers that are not connected (with a reason to show, for
    one the user must act on: "needs login: run `codemode login x`"); `asks`, the tools (or `ns.*`)
    whose calls a person approves first; `with_resources`, the namespaces of servers that
    offer resources."""
    head = (
        guide(limits)
        + _names_note(namespaces)
        + _approvals_note(asks or [])
        + _resources_note(with_resources or [])
    )
    if not namespaces:
        hint = no_config_hint or "Add servers to the codemode config file."
        return (
            f"{head}\n\nNo downstream MCP servers are configured, so only plain Python runs. {hint}"
        )
    tail = ""
    if unavailable:
        why = unavailable if isinstance(unavailable, dict) else dict.fromkeys(unavailable)
        listed = ", ".join(
            (f"{namespaces[s]} ({s})" if namespaces[s] != s else s)
            + (f" [{why[s]}]" if why[s] else "")
            for s in sorted(why)
        )
        tail = (
            f"\n\nNot connected: {listed}. Calls to these servers raise ToolError with the "
            "reason (and retry the connection)."
        )
    full = (
        f"{head}\n\nFunctions (`await namespace.tool(...)`; a tool name that is unique across "
        f"servers can also be called without its namespace):\n{render_catalog(tools)}{tail}"
    )
    if _fits(full, budget):
        return full
    by_ns: dict[str, list[str]] = {}
    for tool in tools:
        by_ns.setdefault(tool.namespace, []).append(tool.py_name)
    names = "\n".join(f"{ns}: {', '.join(sorted(by_ns[ns]))}" for ns in sorted(by_ns))
    lookup = (
        'Use `tools.describe("namespace.tool")` in the program for signatures and docs, '
        '`tools.search("words")` to find tools.'
    )
    short = (
        f"{head}\n\nTools by namespace ({len(tools)} tools; the full catalog is over this "
        f"description's size budget). {lookup}\n{names}{tail}"
    )
    if _fits(short, budget):
        return short
    counts = ", ".join(f"{ns} ({len(by_ns[ns])} tools)" for ns in sorted(by_ns))
    return (
        f"{head}\n\nNamespaces ({len(tools)} tools; too many to list here). {lookup}\n"
        f"{counts}{tail}"
    )


def _names_note(namespaces: dict[str, str]) -> str:
    """One line on namespaces that share a stdlib module's name, or were renamed."""
    parts = []
    shared = sorted(ns for ns in namespaces.values() if ns in sandbox_modules())
    if shared:
        ns = shared[0]
        parts.append(
            f"{', '.join(f'`{n}`' for n in shared)} {'is' if len(shared) == 1 else 'are'} "
            "both a stdlib module and a server's namespace: the module's names work as usual "
            f"and the tools are its other attributes (`await {ns}.<tool>(...)`), also after "
            f"`import {ns}`"
        )
    renamed = sorted((s, ns) for s, ns in namespaces.items() if ns != s)
    if renamed:
        listed = ", ".join(f"server {s!r} is `{ns}`" for s, ns in renamed)
        parts.append(f"renamed namespaces: {listed}")
    return "".join(f"\n- {p[0].upper()}{p[1:]}." for p in parts)


MAX_LISTED_ASKS = 8


def _approvals_note(asks: list[str]) -> str:
    if not asks:
        return ""
    listed = (
        "; ".join(asks[:MAX_LISTED_ASKS])
        if any(" " in a for a in asks)
        else ", ".join(asks[:MAX_LISTED_ASKS])
    )
    if len(asks) > MAX_LISTED_ASKS:
        listed += f" and {len(asks) - MAX_LISTED_ASKS} more"
    return (
        f"\n- Calls of {listed} ask the user to approve them first (the program waits). A "
        'declined one raises ToolError with `e.kind == "Declined"` and was not sent: catch '
        "it to go on without it, and say so in the result."
    )


def _resources_note(namespaces: list[str]) -> str:
    if not namespaces:
        return ""
    listed = ", ".join(f"`{ns}`" for ns in namespaces)
    ns = namespaces[0]
    return (
        f"\n- {listed} also {'offers' if len(namespaces) == 1 else 'offer'} resources: "
        f"`await {ns}.resources()` lists them (dicts with `uri`), `await "
        f"{ns}.read_resource(uri)` reads one (its text, or a dict with base64 `blob`)."
    )


def _fits(text: str, budget: int) -> bool:
    return len(text.encode("utf-8")) <= budget
