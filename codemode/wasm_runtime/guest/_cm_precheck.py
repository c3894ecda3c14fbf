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

_DYNAMIC_NAMES = frozenset(
    {"globals", "locals", "vars", "exec", "eval", "__import__", "setattr", "delattr",
     "__builtins__", "compile"}
)  # fmt: skip
_DYNAMIC_ATTRS = frozenset(
    {"__globals__", "f_globals", "f_locals", "f_builtins", "_getframe", "currentframe",
     "__dict__", "__builtins__", "modules"}
)  # fmt: skip
_ANY = "*"
_BROAD = frozenset({"Exception", "BaseException", _ANY})
NAME_ERRORS = _BROAD | {"NameError"}
CALL_ERRORS = _BROAD | {"TypeError"}
ATTR_ERRORS = _BROAD | {"AttributeError"}
AWAIT_ERRORS = _BROAD | {"TypeError"}
_PROBES = frozenset({"hasattr", "getattr", "callable", "dir", "vars"})
_LOOKS = frozenset({"id", "type", "repr", "isinstance", "print", "str"})
"""Calls that look at a function without calling it."""
_SWALLOWING = frozenset({"create_task", "ensure_future", "wait", "run_coroutine_threadsafe"})
_BUILTIN_NAMES = frozenset(dir(builtins))


class PreCheckFailed(Exception):
    def __init__(self, problems: list[tuple[int, str]]):
        super().__init__(problems)
        self.problems = problems


def _all_bound(tree: ast.AST) -> set[str]:
    """Every name the program binds, in any scope (an iterative walk: no recursion limit)."""
    bound: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            bound.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                bound.add(alias.asname or alias.name.partition(".")[0])
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            bound.update(node.names)
        elif isinstance(node, (ast.ExceptHandler, ast.MatchAs, ast.MatchStar)):
            if node.name:
                bound.add(node.name)
        elif isinstance(node, ast.MatchMapping) and node.rest:
            bound.add(node.rest)
        elif type(node).__name__ in ("TypeVar", "ParamSpec", "TypeVarTuple"):
            bound.add(node.name)
    return bound


def _is_false(test: ast.AST) -> bool:
    if isinstance(test, ast.Constant):
        return not test.value
    name = test.id if isinstance(test, ast.Name) else getattr(test, "attr", None)
    return name == "TYPE_CHECKING"


def _probes(test: ast.AST) -> bool:
    """Whether an `if` test asks if a function exists (`hasattr(ns, "f")`, `"ns.f" in
    tools.list()`, ...): its body is written for either answer."""
    for node in ast.walk(test):
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id in _PROBES:
                return True
            if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
                if func.value.id == "tools":
                    return True
        if isinstance(node, ast.Compare) and any(
            isinstance(op, (ast.In, ast.NotIn)) for op in node.ops
        ):
            return True
    return False


def _ends_flow(stmt: ast.stmt) -> bool:
    return isinstance(stmt, (ast.Return, ast.Raise, ast.Break, ast.Continue))


def _finally_swallows(node) -> bool:
    for stmt in node.finalbody:
        for sub in ast.walk(stmt):
            if isinstance(sub, (ast.Return, ast.Break, ast.Continue)):
                return True
    return False


class _Reader(ast.NodeVisitor):
    """One walk that records what to check, each with the errors caught around it, the
    functions it sits in, and whether it may never run."""

    def __init__(self, bound: set[str]):
        self.bound = bound
        self.dynamic = False
        self.items: list[tuple[str, ast.AST, frozenset, tuple]] = []  # kind, node, guard, funcs
        self.sites: list[tuple[str, frozenset, tuple]] = []  # callee name, guard, funcs
        self.referenced: set[str] = set()
        self.refs: dict[str, int] = {}  # name -> times read
        self.probe_refs: dict[str, int] = {}  # name -> times only passed to a probe
        self.mutated: set[str] = set()  # namespaces with an attribute assigned
        self.probed: set[str] = set()
        self.guard: frozenset = frozenset()
        self.funcs: tuple = ()
        self.skip = 0

    # -- regions ------------------------------------------------------------------------

    def _guarded(self, extra, nodes) -> None:
        outer = self.guard
        self.guard = outer | extra
        for node in nodes:
            self.visit(node)
        self.guard = outer

    def _maybe(self, nodes) -> None:
        """Visit code that may never run: bindings count, nothing is checked."""
        self.skip += 1
        for node in nodes:
            if node is not None:
                self.visit(node)
        self.skip -= 1

    def _record(self, kind: str, node) -> None:
        if not self.skip:
            self.items.append((kind, node, self.guard, self.funcs))

    def _block(self, body) -> None:
        for i, stmt in enumerate(body):
            self.visit(stmt)
            if _ends_flow(stmt):
                self._maybe(body[i + 1 :])
                return

    def _caught(self, handlers) -> frozenset:
        names = set()
        for h in handlers:
            kinds = h.type.elts if isinstance(h.type, ast.Tuple) else [h.type]
            for kind in kinds:
                if isinstance(kind, ast.Name) and kind.id in _BUILTIN_NAMES | {"ToolError"}:
                    names.add(kind.id)
                elif isinstance(kind, ast.Attribute) and kind.attr in _BUILTIN_NAMES:
                    names.add(kind.attr)
                else:
                    names.add(_ANY)  # bare, or a name the program bound: it may be anything
        return frozenset(names)

    # -- statements ---------------------------------------------------------------------

    def visit_Module(self, node):
        self._block(node.body)

    def _function(self, node, body) -> None:
        for deco in node.decorator_list:
            self.visit(deco)
        args = node.args
        for default in (*args.defaults, *args.kw_defaults):
            if default is not None:
                self.visit(default)
        outer_funcs, outer_guard = self.funcs, self.guard
        self.funcs = (*outer_funcs, node.name)
        self.guard = frozenset()  # the body runs when called: guarded by its callers
        if node.decorator_list or node.name.startswith("__"):
            self.referenced.add(node.name)  # registered or called implicitly
        self._block(body)
        self.funcs, self.guard = outer_funcs, outer_guard

    def visit_FunctionDef(self, node):
        self._function(node, node.body)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Lambda(self, node, name: str = "<lambda>"):
        args = node.args
        for default in (*args.defaults, *args.kw_defaults):
            if default is not None:
                self.visit(default)
        outer = self.funcs
        self.funcs = (*outer, name)
        self.referenced.add("<lambda>")  # an anonymous lambda is called where it is passed
        self.visit(node.body)
        self.funcs = outer

    def visit_Assign(self, node):
        # `f = lambda: ...`: its body runs when `f` is called, if ever
        targets = node.targets
        if isinstance(node.value, ast.Lambda) and len(targets) == 1:
            if isinstance(targets[0], ast.Name):
                self.visit(targets[0])
                self.visit_Lambda(node.value, targets[0].id)
                return
        self.generic_visit(node)

    def visit_ClassDef(self, node):
        for part in (*node.decorator_list, *node.bases, *node.keywords):
            self.visit(part)
        if any(k.arg == "metaclass" for k in node.keywords):
            self._maybe(node.body)  # its namespace may come from the metaclass
        else:
            self._block(node.body)

    def visit_arg(self, node):
        pass  # annotations are evaluated lazily (PEP 649): never read here

    def visit_AnnAssign(self, node):
        self.visit(node.target)
        if node.value is not None:
            self.visit(node.value)

    def visit_TypeAlias(self, node):
        pass  # lazily evaluated

    def visit_ImportFrom(self, node):
        if node.module == "builtins" or any(a.name == "*" for a in node.names):
            self.dynamic = True

    def visit_Import(self, node):
        if any(a.name == "builtins" for a in node.names):
            self.dynamic = True

    def visit_If(self, node):
        self.visit(node.test)
        if _probes(node.test):
            self._maybe([*node.body, *node.orelse])
        elif _is_false(node.test):
            self._maybe(node.body)
            self._block(node.orelse)
        elif isinstance(node.test, ast.Constant):
            self._block(node.body)
            self._maybe(node.orelse)
        else:
            self._block(node.body)
            self._block(node.orelse)

    def visit_While(self, node):
        self.visit(node.test)
        if _is_false(node.test):
            self._maybe(node.body)
        else:
            self._block(node.body)
        self._block(node.orelse)

    def visit_For(self, node):
        self.visit(node.iter)
        self.visit(node.target)
        self._block(node.body)
        self._block(node.orelse)

    visit_AsyncFor = visit_For

    def _try(self, node):
        caught = self._caught(node.handlers)
        if _finally_swallows(node):
            caught |= {_ANY}
        self._guarded(caught, [ast.Module(body=node.body, type_ignores=[])])
        for handler in node.handlers:
            self._maybe([handler.type])
            outer = self.guard
            self.guard = outer | ({_ANY} if _finally_swallows(node) else frozenset())
            self._block(handler.body)
            self.guard = outer
        self._block(node.orelse)
        self._block(node.finalbody)

    visit_Try = visit_TryStar = _try

    def visit_With(self, node):
        caught = set()
        for item in node.items:
            self.visit(item.context_expr)
            if item.optional_vars is not None:
                self.visit(item.optional_vars)
            call = item.context_expr
            func = call.func if isinstance(call, ast.Call) else call
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            if name == "suppress" and isinstance(call, ast.Call):
                handler = ast.ExceptHandler(type=ast.Tuple(elts=call.args), name=None, body=[])
                caught |= self._caught([handler])
            else:
                root = func
                while isinstance(root, (ast.Attribute, ast.Call)):
                    root = root.value if isinstance(root, ast.Attribute) else root.func
                if isinstance(root, ast.Name) and root.id in self.bound:
                    caught.add(_ANY)  # a context manager of the program's: it may suppress
        self._guarded(frozenset(caught), [ast.Module(body=node.body, type_ignores=[])])

    visit_AsyncWith = visit_With

    def visit_Assert(self, node):
        self.visit(node.test)
        self._maybe([node.msg])

    # -- expressions ----------------------------------------------------------------------

    def visit_BoolOp(self, node):
        self.visit(node.values[0])
        self._maybe(node.values[1:])

    def visit_IfExp(self, node):
        self.visit(node.test)
        self._maybe([node.body, node.orelse])

    def visit_comprehension(self, node):
        self.visit(node.iter)
        self.visit(node.target)
        for cond in node.ifs:
            self.visit(cond)

    def _comprehension(self, node, parts):
        for gen in node.generators:
            self.visit(gen)
        empty = any(
            isinstance(g.iter, (ast.List, ast.Tuple, ast.Set, ast.Dict))
            and not getattr(g.iter, "elts", getattr(g.iter, "keys", None))
            for g in node.generators
        )
        (self._maybe if empty else lambda nodes: [self.visit(n) for n in nodes])(parts)

    def visit_ListComp(self, node):
        self._comprehension(node, [node.elt])

    visit_SetComp = visit_GeneratorExp = visit_ListComp

    def visit_DictComp(self, node):
        self._comprehension(node, [node.key, node.value])

    def visit_Name(self, node):
        if isinstance(node.ctx, ast.Load):
            self.refs[node.id] = self.refs.get(node.id, 0) + 1
            if node.id in _DYNAMIC_NAMES:
                self.dynamic = True
            self._record("name", node)

    def visit_Attribute(self, node):
        self.referenced.add(node.attr)
        if node.attr in _DYNAMIC_ATTRS:
            self.dynamic = True
        if isinstance(node.value, ast.Name):
            if isinstance(node.ctx, ast.Load):
                self._record("attr", node)
            else:
                self.mutated.add(node.value.id)
        self.generic_visit(node)

    def visit_Await(self, node):
        if isinstance(node.value, (ast.Name, ast.Attribute)):
            self._record("await", node)
        self.generic_visit(node)

    def visit_Call(self, node):
        func = node.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
        if isinstance(func, ast.Name) and func.id in _PROBES | _LOOKS and node.args:
            first = node.args[0]
            if isinstance(first, ast.Name):
                self.probe_refs[first.id] = self.probe_refs.get(first.id, 0) + 1
                if func.id in _PROBES:
                    self.probed.add(first.id)
        if name is not None:
            self.sites.append((name, self.guard, self.funcs))
        self._record("call", node)
        swallowed = name in _SWALLOWING or (
            name == "gather"
            and any(
                k.arg == "return_exceptions"
                and not (isinstance(k.value, ast.Constant) and not k.value.value)
                for k in node.keywords
            )
        )
        self.visit(func)
        self._guarded(frozenset({_ANY}) if swallowed else frozenset(), [*node.args])
        for keyword in node.keywords:
            self.visit(keyword.value)


def _caller_guards(reader: _Reader) -> dict[str, frozenset]:
    """For each function name, the errors caught around every place it is called from
    (through callers of callers)."""
    guards: dict[str, frozenset] = {}
    changed = True
    while changed:
        changed = False
        for callee, guard, funcs in reader.sites:
            inherited = guard.union(*(guards.get(f, frozenset()) for f in funcs))
            if not inherited <= guards.get(callee, frozenset()):
                guards[callee] = guards.get(callee, frozenset()) | inherited
                changed = True
    return guards


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


def precheck(tree: ast.AST, env: dict) -> list[tuple[int, str]]:
    """Every certain mistake in `tree`, as (line, message), in line order."""
    try:
        reader = _Reader(_all_bound(tree))
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
