"""The pre-check: certain mistakes, all reported at once, before anything runs.

`precheck(tree, env)` reads a program against the catalog and returns every certain
mistake: a tool function called with an unknown keyword, without a required argument or
with too many positional ones; `await` of a tool function that needs arguments; a function
a namespace does not have; a name bound nowhere. The program then does not run at all, so
a mistake on line 9 costs no side effect of the call on line 1.

Certain means: it fails whenever that code runs, and nothing can stop the failure. So
nothing is reported for
- calls with `*args` / `**kwargs`, and names and namespaces the program may change at run
  time (any binding in any scope or branch; `globals()`, `exec`, `setattr`, frame or
  `__dict__` access, `import *` turn the whole check off; an attribute assigned on a
  namespace turns off that namespace's checks);
- code whose error something catches: inside a `try` whose handlers catch it (or a name
  the program bound, which may be any class), a `finally` that returns, `with suppress()`
  or a context manager of the program's own, and functions called from such places
  (followed through the call graph); coroutines handed to `create_task`, `asyncio.wait`
  or `gather(..., return_exceptions=True)`;
- code that may never run: after a `return` or `raise`, under `if False`/`TYPE_CHECKING`,
  under an `if` that probes for a tool (`hasattr`, `getattr`, `tools.list()`, ...), the
  later operands of `and`/`or`, the branches of `x if c else y`, exception classes of
  handlers, `assert` messages, functions nothing refers to.
"""

import ast
import builtins

import _cm_stdlib
from _cm_api import CallTool, Namespace, ToolFunction, _close, _resolve_tool
from _cm_reader import (
    ATTR_ERRORS,
    AWAIT_ERRORS,
    CALL_ERRORS,
    NAME_ERRORS,
    _bound_and_read,
    _caller_guards,
    _Reader,
)

_BUILTIN_NAMES = frozenset(dir(builtins))


class PreCheckFailed(Exception):
    def __init__(self, problems: list[tuple[int, str]]):
        super().__init__(problems)
        self.problems = problems


def name_hint(name: str, attr: str | None, env: dict, extra=(), called: str | None = None) -> str:
    """What to say about an undefined `name` (read as `name.attr`, when `attr`; called
    with a first string argument `called`, as in `session.call_tool("get_leads", ...)`)."""
    namespaces = {k: v for k, v in env.items() if isinstance(v, Namespace) and k[:2] != "__"}
    if name in ("__file__", "__path__", "__loader__", "__spec__"):
        return (
            f"; the program is not a file on the host (there is no {name}): reach host "
            "files through a filesystem tool"
        )
    if attr:
        having = [ns for ns, v in namespaces.items() if attr in v._cm_functions]
        resolved = (_resolve_tool(called) if called else None) or _resolve_tool(attr)
        if name in _cm_stdlib.TOOL_API_MODULES or (resolved is not None and not having):
            call = f"{having[0]}.{attr}" if having else resolved.path if resolved else None
            what = f"`await {call}(...)`" if call else "the tools directly (`await ns.tool(...)`)"
            return (
                f"; there is no {name!r} here: the tools are already async functions, call "
                f"{what}; results come back parsed"
            )
        if having:
            return f"; did you mean {' or '.join(having)}? ({having[0]}.{attr} is a tool)"
    resolved = _resolve_tool(name) if "_" in name else None
    if resolved is not None:
        return f"; did you mean {resolved.path}? (call `await {resolved.path}(...)`)"
    for ns, v in namespaces.items():
        if name == v._cm_server and ns != name:
            return f"; server {name!r} is reached as `{ns}`"
    if name in _cm_stdlib.OFFERED:
        return f"; add `import {name}` first"
    options = [*env, *dir(builtins), *extra]
    close = _close(name, [o for o in options if not o.startswith("__")])
    if close:
        return f"; did you mean {', '.join(close)}?"
    if namespaces:
        return f" (namespaces: {', '.join(sorted(namespaces))})"
    return ""


def _check_call(node: ast.Call, fn: ToolFunction, problem) -> None:
    if any(isinstance(a, ast.Starred) for a in node.args) or any(
        k.arg is None for k in node.keywords
    ):
        return  # *args or **kwargs: not knowable before it runs
    positional = len(node.args)
    keywords = [k.arg for k in node.keywords]
    if positional == 1 and not keywords:
        arg = node.args[0]
        literal = (
            isinstance(arg, ast.Dict)
            and bool(arg.keys)
            and all(isinstance(k, ast.Constant) and isinstance(k.value, str) for k in arg.keys)
        )
        keys = list(dict.fromkeys(k.value for k in arg.keys)) if literal else []
        maybe_dict = not isinstance(
            arg, (ast.Constant, ast.List, ast.Tuple, ast.Set, ast.JoinedStr, ast.ListComp)
        )
        if (maybe_dict and not literal) or (literal and set(keys) <= {"name", "arguments"}):
            return  # a value that may be the keyword arguments or an MCP request: at run time
        if literal and fn.dict_as_kwargs and set(keys) <= fn.param_set:
            positional, keywords = 0, keys
    if positional > len(fn.params):
        problem(
            f"{fn.path}() takes {len(fn.params)} positional argument(s) but {positional} "
            f"were given; signature: {fn.signature}"
        )
        return
    given = set(fn.params[:positional])
    for name in keywords:
        if name not in fn.param_set:
            close = _close(name, fn.params)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            problem(f"{fn.path}() has no parameter {name!r}{hint} (signature: {fn.signature})")
        elif name in given:
            problem(f"{fn.path}() got two values for {name!r}")
        given.add(name)
    missing = [p for p in fn.required if p not in given]
    if missing:
        problem(
            f"{fn.path}() is missing required argument(s) {', '.join(map(repr, missing))}; "
            f"signature: {fn.signature}"
        )


def _tool_of(node, env: dict, reader: _Reader):
    """The tool function `node` (a Name or `ns.attr`) certainly is, else None."""
    if isinstance(node, ast.Name):
        fn = env.get(node.id) if node.id not in reader.bound else None
        return fn if isinstance(fn, ToolFunction) and not isinstance(fn, CallTool) else None
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        ns_name = node.value.id
        ns = env.get(ns_name)
        if isinstance(ns, Namespace) and ns_name not in reader.bound | reader.mutated:
            fn = ns._cm_functions.get(node.attr)
            return fn if isinstance(fn, ToolFunction) else None
    return None


def _may_fail(name: str, env: dict) -> bool:
    """Whether reading `name` (bound nowhere in the program) can be a certain mistake:
    it is not defined, or it is a tool function or a namespace (whose calls and
    attributes are checked). Every check starts at such a name; a program that reads
    none has nothing to find, and the reading walk is skipped."""
    if name in env:
        return isinstance(env[name], (ToolFunction, Namespace))
    return name not in _BUILTIN_NAMES


def precheck(tree: ast.AST, env: dict) -> list[tuple[int, str]]:
    """Every certain mistake in `tree`, as (line, message), in line order."""
    try:
        bound, read = _bound_and_read(tree)
        if not any(_may_fail(name, env) for name in read - bound):
            return []  # every name is known, and none is a tool or a namespace
        reader = _Reader(bound)
        reader.visit(tree)
    except RecursionError:
        return []  # a program too deep to read here: it is compiled and run as it is
    if reader.dynamic:
        return []
    reader.referenced |= {
        n for n, count in reader.refs.items() if count > reader.probe_refs.get(n, 0)
    }
    bound = reader.bound
    callers = _caller_guards(reader)
    problems: list[tuple[int, str]] = []
    known = set(env) | _BUILTIN_NAMES | bound
    parents = {id(n.value): n.attr for kind, n, _, _ in reader.items if kind == "attr"}
    called = {
        id(n.func.value): n.args[0].value
        for kind, n, _, _ in reader.items
        if kind == "call"
        and isinstance(n.func, ast.Attribute)
        and n.args
        and isinstance(n.args[0], ast.Constant)
        and isinstance(n.args[0].value, str)
    }
    for kind, node, guard, funcs in reader.items:
        if any(f not in reader.referenced for f in funcs):
            continue  # in a function nothing calls
        guard = guard.union(*(callers.get(f, frozenset()) for f in funcs))

        def problem(text: str, node=node) -> None:
            problems.append((node.lineno, text))

        if kind == "name":
            name = node.id
            mangled = name.startswith("_") and "__" in name[1:]
            if name in known or name.startswith("__") or mangled or guard & NAME_ERRORS:
                continue
            hint = name_hint(name, parents.get(id(node)), env, bound, called.get(id(node)))
            problem(f"name {name!r} is not defined{hint}")
            known.add(name)  # once per name
        elif kind == "attr":
            ns_name = node.value.id
            ns = env.get(ns_name)
            if (
                not isinstance(ns, Namespace)
                or ns_name in bound | reader.mutated | reader.probed
                or guard & ATTR_ERRORS
                or not ns._cm_functions
                or node.attr in ns._cm_functions
                or node.attr in ns._cm_hidden
                or node.attr.startswith("_")
                or (ns._cm_module is not None and hasattr(ns._cm_module, node.attr))
            ):
                continue
            problem(ns._cm_missing(node.attr))
        elif kind == "call" and not guard & CALL_ERRORS:
            fn = _tool_of(node.func, env, reader)
            if fn is not None:
                _check_call(node, fn, problem)
        elif kind == "await" and not guard & AWAIT_ERRORS:
            fn = _tool_of(node.value, env, reader)
            if fn is not None and fn.required:
                problem(
                    f"{fn.path} is awaited without being called: write "
                    f"`await {fn.signature.split(' -> ')[0]}`"
                )
    unique = dict.fromkeys(sorted(problems, key=lambda p: p[0]))
    return list(unique)
