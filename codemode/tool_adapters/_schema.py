"""From MCP tool definitions to Python: names, parameters, annotations, catalog and stubs.

Everything here is a pure function of the tool definitions, so the text the model sees is
the same on every run for the same downstream tools (prompt caches stay warm).

Naming rules (documented in the README):
- A server's namespace is its config key (or its `namespace` option) made an identifier:
  characters other than letters, digits and "_" become "_", a leading digit gets a "_",
  and a Python keyword or a name the sandbox already uses gets a trailing "_".
- A tool name that is already an identifier is kept as it is (`getUser` stays); any other
  becomes snake_case (`get-sum` -> `get_sum`, `List Files` -> `list_files`).
- Two tools of one server that map to the same name: the one whose MCP name *is* that name
  keeps it, else the first in sorted order; the others get `_2`, `_3`, ... in sorted order.
- Parameters that are not identifiers are renamed the same way; the call sends the
  original names. Positional arguments follow the signature's order: the schema's order,
  with required parameters moved before optional ones where the schema lists them after.
"""

from __future__ import annotations

import ast
import keyword
import re
from dataclasses import dataclass
from typing import Any

RESERVED = frozenset({"asyncio", "json", "ToolError", "tools", "call_tool", "print"})
MAX_DEPTH = 4
DOC_LINE_CHARS = 100


def identifier(name: str, reserved: frozenset[str] = RESERVED) -> str:
    """`name` as a Python identifier, by the rules in the module docstring."""
    if name.isidentifier() and not keyword.iskeyword(name) and name not in reserved:
        return name
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name) if not name.isidentifier() else name
    text = re.sub(r"\W+", "_", text).strip("_")
    if not name.isidentifier():
        text = text.lower()
    # \w also matches characters no identifier may hold (e.g. "¼"): replace those too
    text = "".join(c if ("_" + c).isidentifier() else "_" for c in text) or "_"
    if not text[0].isidentifier():
        text = "_" + text
    if keyword.iskeyword(text) or text in reserved or keyword.issoftkeyword(text):
        text += "_"
    return text


@dataclass(frozen=True)
class ParamInfo:
    name: str  # the Python name
    original: str  # the name in the schema
    required: bool
    annotation: str
    default: Any = None
    has_default: bool = False
    description: str = ""
    takes_dict: bool = True
    """Whether the schema admits an object (untyped admits anything)."""


@dataclass(frozen=True)
class ToolInfo:
    """One downstream tool as the code sees it."""

    server: str  # config key
    namespace: str  # Python namespace
    name: str  # MCP name
    py_name: str
    description: str
    params: tuple[ParamInfo, ...]
    returns: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any] | None
    observed: str | None = None
    """Set when `returns` was learned from real calls (the tool has no outputSchema):
    "" for a structure, else a sample of the text's format."""

    @property
    def path(self) -> str:
        return f"{self.namespace}.{self.py_name}"

    def signature(self, qualified: bool = True, python: bool = False) -> str:
        """`ns.name(param: type = default, ...) -> type`. `python`: valid Python, with
        annotations that are not expressions (TypedDict-style text) made strings."""
        ann = _expression if python else (lambda text: text)
        parts = []
        for p in self.params:
            kind = p.annotation
            if not p.required and not p.has_default and not _admits_none(kind):
                kind = f"{kind} | None"  # the parameter may be left out: None is its default
            text = f"{p.name}: {ann(kind)}"
            if not p.required:
                text += f" = {_literal(p.default) if p.has_default else 'None'}"
            parts.append(text)
        name = self.path if qualified else self.py_name
        return f"{name}({', '.join(parts)}) -> {ann(self.returns)}"

    def first_line(self) -> str:
        line = self.description.strip().splitlines()[0] if self.description.strip() else ""
        return line if len(line) <= DOC_LINE_CHARS else line[: DOC_LINE_CHARS - 1] + "…"

    def catalog_comment(self) -> str:
        """The first doc line, after what was observed of the results (if learned)."""
        doc = self.first_line()
        if self.observed is None:
            return doc
        seen = f"observed: {self.observed}" if self.observed else "observed"
        return f"{seen}; {doc}" if doc else seen

    def doc(self) -> str:
        lines = [self.description.strip()] if self.description.strip() else []
        described = [p for p in self.params if p.description]
        if described:
            lines += ["", "Args:"]
            lines += [f"    {p.name}: {' '.join(p.description.split())}" for p in described]
        if self.observed is not None:
            sample = f", text like {self.observed}" if self.observed else ""
            lines += ["", f"Returns {self.returns} (observed in real calls{sample})"]
        if self.name != self.py_name:
            lines += ["", f"MCP name: {self.name!r} (server {self.server!r})"]
        return "\n".join(lines)


def _admits_none(annotation_text: str) -> bool:
    return annotation_text == "Any" or "None" in annotation_text.split(" | ")


def _literal(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, (int, float, str)):
        return repr(value)
    return repr(value) if len(repr(value)) < 40 else "..."


def _resolve(ref: str, root: Any) -> Any:
    """The schema a local `$ref` ("#/$defs/Name") points at in `root`, or None."""
    if not ref.startswith("#/"):
        return None
    node = root
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        node = node.get(part) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else None


def annotation(
    schema: Any,
    root: dict[str, Any] | None = None,
    depth: int = 0,
    seen: frozenset[str] = frozenset(),
) -> str:
    """A Python-style annotation for a JSON Schema (TypedDict-style text for objects).
    Local `$ref`s are written out where they are used (a recursive one by its name)."""
    if not isinstance(schema, dict):
        return "Any"
    root = root if root is not None else schema
    if depth > MAX_DEPTH:
        return "Any"
    ref = schema.get("$ref")
    if isinstance(ref, str):
        target = _resolve(ref, root) if ref not in seen else None
        if target is not None:
            return annotation(target, root, depth + 1, seen | {ref})
        name = ref.rsplit("/", 1)[-1]
        return name if name.isidentifier() else "dict"
    if "const" in schema:
        return f"Literal[{_literal(schema['const'])}]"
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        shown = ", ".join(_literal(v) for v in enum[:12])
        return f"Literal[{shown}{', ...' if len(enum) > 12 else ''}]"
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            return _union([annotation(o, root, depth + 1, seen) for o in options])
    all_of = schema.get("allOf")
    if isinstance(all_of, list) and len(all_of) == 1:
        return annotation(all_of[0], root, depth + 1, seen)
    kind = schema.get("type")
    if isinstance(kind, list):
        return _union([annotation({**schema, "type": k}, root, depth + 1, seen) for k in kind])
    if kind == "string":
        return "str"
    if kind == "integer":
        return "int"
    if kind == "number":
        return "float"
    if kind == "boolean":
        return "bool"
    if kind == "null":
        return "None"
    if kind == "array":
        items = schema.get("items")
        return (
            f"list[{annotation(items, root, depth + 1, seen)}]"
            if isinstance(items, dict)
            else "list"
        )
    if kind == "object" or "properties" in schema:
        props = schema.get("properties")
        if isinstance(props, dict) and props and depth < MAX_DEPTH:
            required = _names(schema.get("required"))
            fields = [
                f"{name}{'' if name in required else '?'}: {annotation(sub, root, depth + 1, seen)}"
                for name, sub in list(props.items())[:12]
            ]
            more = ", ..." if len(props) > 12 else ""
            return "{" + ", ".join(fields) + more + "}"
        return "dict"
    return "Any"


def _names(value: Any) -> set[str]:
    """A schema's `required` list as a set of names (ignoring anything malformed)."""
    return {v for v in value if isinstance(v, str)} if isinstance(value, list) else set()


def _union(parts: list[str]) -> str:
    seen: list[str] = []
    for part in parts:
        if part not in seen:
            seen.append(part)
    return " | ".join(seen) if seen else "Any"


def params_of(schema: Any) -> tuple[ParamInfo, ...]:
    if not isinstance(schema, dict):
        return ()
    props = schema.get("properties")
    if not isinstance(props, dict):
        return ()
    required = _names(schema.get("required"))
    taken: set[str] = set()
    params = []
    for original, sub in props.items():
        if not isinstance(original, str):
            continue
        name = identifier(original, frozenset())
        while name in taken:
            name += "_"
        taken.add(name)
        sub = sub if isinstance(sub, dict) else {}
        params.append(
            ParamInfo(
                name=name,
                original=original,
                required=original in required,
                annotation=annotation(sub, schema),
                default=sub.get("default"),
                has_default="default" in sub,
                description=str(sub.get("description") or ""),
                takes_dict=_admits_object(sub, schema),
            )
        )
    # Python needs required parameters first; the sort is stable, so schema order stays.
    return tuple(sorted(params, key=lambda p: not p.required))


def _admits_object(schema: dict[str, Any], root: Any, depth: int = 0) -> bool:
    """Whether a value of `schema` may be a JSON object (True when unsure)."""
    if depth > MAX_DEPTH:
        return True
    ref = schema.get("$ref")
    if isinstance(ref, str):
        target = _resolve(ref, root)
        return True if target is None else _admits_object(target, root, depth + 1)
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            return any(_admits_object(o, root, depth + 1) for o in options if isinstance(o, dict))
    kind = schema.get("type")
    if isinstance(kind, str):
        return kind == "object"
    if isinstance(kind, list):
        return "object" in kind
    if "enum" in schema or "const" in schema:
        return False
    return True


def returns_of(output_schema: Any) -> str:
    if not isinstance(output_schema, dict):
        return "Any"
    wrapped = wrapped_result_schema(output_schema)
    return annotation(wrapped if wrapped is not None else output_schema, output_schema)


def wrapped_result_schema(output_schema: Any) -> Any:
    """The MCP SDK wraps non-object returns as {"result": value}: the schema of that value,
    when `output_schema` is such a wrapper, else None."""
    if not isinstance(output_schema, dict):
        return None
    props = output_schema.get("properties")
    if (
        isinstance(props, dict)
        and list(props) == ["result"]
        and output_schema.get("required") == ["result"]
    ):
        return props["result"]
    return None


def assign_names(namespace: str, server: str, tools: list[Any]) -> dict[str, str]:
    """MCP name -> Python name for one server's tools, collision-free (see module doc)."""
    wanted: dict[str, list[str]] = {}
    for name in sorted(t.name for t in tools):
        wanted.setdefault(identifier(name, frozenset()), []).append(name)
    result: dict[str, str] = {}
    taken = set(wanted)
    for py, names in sorted(wanted.items()):
        names.sort(key=lambda n: (n != py, n))
        result[names[0]] = py
        suffix = 2
        for other in names[1:]:
            while f"{py}_{suffix}" in taken:
                suffix += 1
            result[other] = f"{py}_{suffix}"
            taken.add(result[other])
            suffix += 1
    return result


def render_catalog(tools: list[ToolInfo]) -> str:
    """One line per tool, grouped by namespace: what the model reads in the description."""
    lines = []
    for tool in sorted(tools, key=lambda t: (t.namespace, t.py_name)):
        doc = tool.catalog_comment()
        lines.append(f"await {tool.signature()}" + (f"  # {doc}" if doc else ""))
    return "\n".join(lines)


def render_stubs(tools: list[ToolInfo]) -> str:
    """A .pyi-style text per namespace, with full docstrings."""
    out = ["from typing import Any, Literal", ""]
    by_ns: dict[str, list[ToolInfo]] = {}
    for tool in tools:
        by_ns.setdefault(tool.namespace, []).append(tool)
    for namespace in sorted(by_ns):
        server = by_ns[namespace][0].server
        out.append(f"class {namespace}:  # server {server!r}")
        for tool in sorted(by_ns[namespace], key=lambda t: t.py_name):
            out.append(f"    async def {tool.signature(qualified=False, python=True)}:")
            doc = _docstring_safe(tool.doc())
            if doc:
                body = "\n".join(f"        {line}" if line else "" for line in doc.splitlines())
                out.append(f'        """\n{body}\n        """')
            else:
                out.append("        ...")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def _docstring_safe(doc: str) -> str:
    """Text that stays one valid docstring: no closing quotes, escapes or NUL inside."""
    return doc.replace("\\", "\\\\").replace('"""', "'''").replace("\0", "\\x00")


def _expression(text: str) -> str:
    try:
        ast.parse(text, mode="eval")
    except SyntaxError:
        return repr(text)
    return text
