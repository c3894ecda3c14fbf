"""The pre-check's reading of a program: one walk over the tree that records what to
check (names read, tool calls, namespace attributes, awaits), each with the errors
caught around it, the functions it sits in, and whether it may never run; and every name
the program binds anywhere. `_cm_precheck` decides from that what is certainly wrong."""

import ast
import builtins

from _cm_ast import FastVisitor, walk

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


def _bound_by_import(node) -> list[str]:
    return [alias.asname or alias.name.partition(".")[0] for alias in node.names]


_BINDERS = {
    **dict.fromkeys((ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef), lambda n: [n.name]),
    ast.arg: lambda n: [n.arg],
    ast.Import: _bound_by_import,
    ast.ImportFrom: _bound_by_import,
    **dict.fromkeys((ast.Global, ast.Nonlocal), lambda n: n.names),
    **dict.fromkeys((ast.ExceptHandler, ast.MatchAs, ast.MatchStar), lambda n: [n.name or ""]),
    ast.MatchMapping: lambda n: [n.rest or ""],
    **{
        getattr(ast, kind): lambda n: [n.name]
        for kind in ("TypeVar", "ParamSpec", "TypeVarTuple")
        if hasattr(ast, kind)
    },
}
"""The nodes that bind names other than `Name` stores, by type (a dict lookup per node:
this walk runs before every program)."""


def _bound_and_read(tree: ast.AST) -> tuple[set[str], set[str]]:
    """Every name the program binds, in any scope, and every name it reads (an iterative
    walk: no recursion limit)."""
    bound: set[str] = set()
    read: set[str] = set()
    name, load, binders = ast.Name, ast.Load, _BINDERS
    for node in walk(tree):
        kind = type(node)
        if kind is name:
            (read if type(node.ctx) is load else bound).add(node.id)
        elif kind in binders:
            bound.update(binders[kind](node))
    bound.discard("")
    return bound, read


def _is_false(test: ast.AST) -> bool:
    if isinstance(test, ast.Constant):
        return not test.value
    name = test.id if isinstance(test, ast.Name) else getattr(test, "attr", None)
    return name == "TYPE_CHECKING"


def _probes(test: ast.AST) -> bool:
    """Whether an `if` test asks if a function exists (`hasattr(ns, "f")`, `"ns.f" in
    tools.list()`, ...): its body is written for either answer."""
    for node in walk(test):
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
        for sub in walk(stmt):
            if isinstance(sub, (ast.Return, ast.Break, ast.Continue)):
                return True
    return False


class _Reader(FastVisitor):
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
