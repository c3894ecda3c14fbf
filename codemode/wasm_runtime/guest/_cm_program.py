"""From the submitted text to a code object with script semantics, checked before it runs.

A program runs as a module: top-level names are module globals (so `leads = await
leads.get_leads()` rebinds the name, as in a script, and `global` works), top-level
`await` works (CPython's PyCF_ALLOW_TOP_LEVEL_AWAIT, as in its asyncio REPL), and
line numbers are the user's. Two things a module cannot do are added by rewriting the
tree: a top-level `return` ends the program with its value (it raises `ProgramReturn`,
which a prepended handler lets through every enclosing top-level `try`), and the last
expression statement is the result. In a program with top-level await, a top-level
`asyncio.run(x)` or `loop.run_until_complete(x)` becomes `await x` (the loop already runs).

Before anything runs, `precheck` reads the tree against the catalog and reports every
certain mistake at once: calls of tool functions with unknown keywords, missing required
arguments or too many positional ones, functions a namespace does not have, and names
that are used but bound nowhere. It never refuses a valid program: dynamic calls
(`*args`, `**kwargs`), programs that reach globals dynamically, names bound anywhere
(any scope, any branch), and code inside a `try` that catches the error are left alone.
"""

import ast
import builtins

import _cm_stdlib
from _cm_api import CODE_FILENAME, Namespace, ToolFunction, _close

RESULT_NAME = "__codemode_result__"
RETURN_NAME = "__codemode_return__"
_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)


class ProgramReturn(BaseException):
    """A top-level `return`: carries the program's value out of the module code."""

    def __init__(self, value=None):
        super().__init__()
        self.value = value


class PreCheckFailed(Exception):
    def __init__(self, problems: list[tuple[int, str]]):
        super().__init__(problems)
        self.problems = problems


def _loc(node, like):
    """Give a new node (and the new nodes under it) the location of `like`."""
    for sub in ast.walk(node):
        if "lineno" in sub._attributes and not hasattr(sub, "lineno"):
            sub.lineno, sub.col_offset = like.lineno, like.col_offset
            sub.end_lineno, sub.end_col_offset = like.end_lineno, like.end_col_offset
    return node


def _has_top_level_await(tree: ast.AST) -> bool:
    stack = list(ast.iter_child_nodes(tree))
    while stack:
        node = stack.pop()
        if isinstance(node, _SCOPES):
            continue
        if isinstance(node, (ast.Await, ast.AsyncFor, ast.AsyncWith)):
            return True
        if isinstance(node, ast.comprehension) and node.is_async:
            return True
        stack.extend(ast.iter_child_nodes(node))
    return False


def _lets_return_through(node: ast.Try) -> None:
    handler = ast.ExceptHandler(
        type=ast.Name(RETURN_NAME, ast.Load()), name=None, body=[ast.Raise(exc=None, cause=None)]
    )
    node.handlers.insert(0, _loc(handler, node))


def _rewrite_returns(body: list) -> bool:
    """Top-level `return x` -> `raise ProgramReturn(x)`, in place; True if there was one."""
    found = False
    for i, stmt in enumerate(body):
        if isinstance(stmt, ast.Return):
            value = stmt.value if stmt.value is not None else ast.Constant(None)
            call = ast.Call(func=ast.Name(RETURN_NAME, ast.Load()), args=[value], keywords=[])
            body[i] = _loc(ast.Raise(exc=call, cause=None), stmt)
            found = True
        elif isinstance(stmt, _SCOPES):
            continue
        elif isinstance(stmt, (ast.Try, ast.TryStar)):
            inner = _rewrite_returns(stmt.body)
            if inner and stmt.handlers and isinstance(stmt, ast.Try):
                _lets_return_through(stmt)
            for part in (stmt.orelse, stmt.finalbody, *[h.body for h in stmt.handlers]):
                inner = _rewrite_returns(part) or inner
            found = found or inner
        elif isinstance(stmt, ast.Match):
            for case in stmt.cases:
                found = _rewrite_returns(case.body) or found
        else:
            for field in ("body", "orelse"):
                part = getattr(stmt, field, None)
                if isinstance(part, list):
                    found = _rewrite_returns(part) or found
    return found


def _is_loop_run(node) -> bool:
    func = node.func if isinstance(node, ast.Call) else None
    if not isinstance(func, ast.Attribute) or len(node.args) != 1 or node.keywords:
        return False
    if func.attr == "run_until_complete":
        return True
    return func.attr == "run" and isinstance(func.value, ast.Name) and func.value.id == "asyncio"


class _LoopRunsToAwait(ast.NodeTransformer):
    """`asyncio.run(x)` at the top level of an async program -> `await x`."""

    def visit_FunctionDef(self, node):
        return node

    visit_AsyncFunctionDef = visit_ClassDef = visit_Lambda = visit_FunctionDef

    def visit_Call(self, node):
        self.generic_visit(node)
        if _is_loop_run(node):
            return ast.copy_location(ast.Await(value=node.args[0]), node)
        return node


def compile_program(code: str):
    """(tree, code object, is_async). Raises SyntaxError with the user's line."""
    tree = ast.parse(code, CODE_FILENAME, "exec")
    body = tree.body
    if _has_top_level_await(tree):
        tree = _LoopRunsToAwait().visit(tree)
        body = tree.body
    _rewrite_returns(body)
    if body and isinstance(body[-1], ast.Expr):
        last = body[-1]
        target = ast.Name(RESULT_NAME, ast.Store())
        body[-1] = _loc(ast.Assign(targets=[target], value=last.value), last)
    flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
    code_obj = compile(tree, CODE_FILENAME, "exec", flags=flags, dont_inherit=True)
    return tree, code_obj, bool(code_obj.co_flags & 0x80)  # CO_COROUTINE


# ---------------------------------------------------------------------------
# The pre-check

_DYNAMIC = frozenset(
    {"globals", "locals", "vars", "exec", "eval", "__import__", "setattr", "__builtins__",
     "compile"}
)  # fmt: skip
_CATCH_NAME = frozenset({"NameError", "Exception", "BaseException", "*"})
_CATCH_CALL = frozenset(
    {"TypeError", "AttributeError", "Exception", "BaseException", "*", "ToolError"}
)


def _caught(handlers) -> frozenset:
    names = set()
    for h in handlers:
        kinds = h.type.elts if isinstance(h.type, ast.Tuple) else [h.type]
        for kind in kinds:
            if kind is None:
                names.add("*")
            elif isinstance(kind, ast.Name):
                names.add(kind.id)
            elif isinstance(kind, ast.Attribute):
                names.add(kind.attr)
            else:
                names.add("*")  # a computed class: it may catch anything
    return frozenset(names)


class _Reader(ast.NodeVisitor):
    """One walk: every name bound anywhere, every name read, tool calls and attributes."""

    def __init__(self):
        self.bound: set[str] = set()
        self.dynamic = False
        self.loads: list[tuple[ast.Name, frozenset]] = []
        self.calls: list[tuple[ast.Call, frozenset]] = []
        self.attrs: list[tuple[ast.Attribute, frozenset]] = []
        self.probed: set[str] = set()  # namespaces passed to hasattr/getattr/dir
        self.guard: frozenset = frozenset()

    def visit_Name(self, node):
        if isinstance(node.ctx, ast.Load):
            if node.id in _DYNAMIC:
                self.dynamic = True
            self.loads.append((node, self.guard))
        else:
            self.bound.add(node.id)

    def _args(self, args: ast.arguments):
        for a in (*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg):
            if a is not None:
                self.bound.add(a.arg)
        for default in (*args.defaults, *args.kw_defaults):
            if default is not None:
                self.visit(default)

    def visit_FunctionDef(self, node):
        self.bound.add(node.name)
        for deco in node.decorator_list:
            self.visit(deco)
        self._args(node.args)
        for p in getattr(node, "type_params", ()):
            self.bound.add(p.name)
        for stmt in node.body:
            self.visit(stmt)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Lambda(self, node):
        self._args(node.args)
        self.visit(node.body)

    def visit_ClassDef(self, node):
        self.bound.add(node.name)
        for part in (*node.decorator_list, *node.bases, *node.keywords):
            self.visit(part)
        for p in getattr(node, "type_params", ()):
            self.bound.add(p.name)
        for stmt in node.body:
            self.visit(stmt)

    def visit_arg(self, node):
        self.bound.add(node.arg)  # annotations are evaluated lazily (PEP 649): not read

    def visit_AnnAssign(self, node):
        self.visit(node.target)
        if node.value is not None:
            self.visit(node.value)

    def visit_TypeAlias(self, node):
        self.visit(node.name)

    def visit_Import(self, node):
        for alias in node.names:
            self.bound.add(alias.asname or alias.name.partition(".")[0])
            if alias.name == "builtins":
                self.dynamic = True

    def visit_ImportFrom(self, node):
        for alias in node.names:
            if alias.name == "*":
                self.dynamic = True
            self.bound.add(alias.asname or alias.name)

    def visit_Global(self, node):
        self.bound.update(node.names)

    visit_Nonlocal = visit_Global

    def visit_ExceptHandler(self, node):
        if node.name:
            self.bound.add(node.name)
        self.generic_visit(node)

    def visit_MatchAs(self, node):
        if node.name:
            self.bound.add(node.name)
        self.generic_visit(node)

    def visit_MatchStar(self, node):
        if node.name:
            self.bound.add(node.name)

    def visit_MatchMapping(self, node):
        if node.rest:
            self.bound.add(node.rest)
        self.generic_visit(node)

    def _try(self, node):
        outer = self.guard
        self.guard = outer | _caught(node.handlers)
        for stmt in node.body:
            self.visit(stmt)
        self.guard = outer
        for part in (*node.handlers, *node.orelse, *node.finalbody):
            self.visit(part)

    visit_Try = visit_TryStar = _try

    def visit_Call(self, node):
        func = node.func
        if isinstance(func, ast.Name) and func.id in ("hasattr", "getattr", "dir") and node.args:
            first = node.args[0]
            if isinstance(first, ast.Name):
                self.probed.add(first.id)
        self.calls.append((node, self.guard))
        self.generic_visit(node)

    def visit_Attribute(self, node):
        if isinstance(node.value, ast.Name) and isinstance(node.ctx, ast.Load):
            self.attrs.append((node, self.guard))
        self.generic_visit(node)


def name_hint(name: str, attr: str | None, env: dict, extra=()) -> str:
    """What to say about an undefined `name` (read as `name.attr`, when `attr`)."""
    namespaces = {k: v for k, v in env.items() if isinstance(v, Namespace) and k[:2] != "__"}
    if attr:
        having = [ns for ns, v in namespaces.items() if attr in v._cm_functions]
        if name in _cm_stdlib.TOOL_API_MODULES:
            call = f"{having[0]}.{attr}" if having else "namespace.tool"
            return f"; the tools are not a module of their own: call `await {call}(...)`"
        if having:
            return f"; did you mean {' or '.join(having)}? ({having[0]}.{attr} is a tool)"
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


def _check_call(node: ast.Call, fn: ToolFunction, problems: list) -> None:
    if any(isinstance(a, ast.Starred) for a in node.args) or any(
        k.arg is None for k in node.keywords
    ):
        return  # *args or **kwargs: not knowable before it runs
    positional = len(node.args)
    keywords = [k.arg for k in node.keywords]
    if positional == 1 and not keywords and fn.dict_as_kwargs:
        arg = node.args[0]
        if (
            isinstance(arg, ast.Dict)
            and arg.keys
            and all(isinstance(k, ast.Constant) and k.value in fn.param_set for k in arg.keys)
        ):
            positional, keywords = 0, [k.value for k in arg.keys]

    def problem(text: str) -> None:
        problems.append((node.lineno, text))

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


def precheck(tree: ast.AST, env: dict) -> list[tuple[int, str]]:
    """Every certain mistake in `tree`, as (line, message), in line order."""
    reader = _Reader()
    reader.visit(tree)
    bound = reader.bound
    problems: list[tuple[int, str]] = []
    parents = {id(a.value): a.attr for a, _ in reader.attrs}
    if not reader.dynamic:
        known = set(env) | set(dir(builtins)) | bound
        for node, guard in reader.loads:
            name = node.id
            if name in known or name.startswith("__") or guard & _CATCH_NAME:
                continue
            hint = name_hint(name, parents.get(id(node)), env, bound)
            problems.append((node.lineno, f"name {name!r} is not defined{hint}"))
            known.add(name)  # once per name
    for node, guard in reader.attrs:
        ns = env.get(node.value.id)
        if (
            not isinstance(ns, Namespace)
            or node.value.id in bound
            or node.value.id in reader.probed
            or guard & _CATCH_CALL
            or not ns._cm_functions
            or node.attr in ns._cm_functions
            or node.attr in ns._cm_hidden
            or node.attr.startswith("__")
            or (ns._cm_module is not None and hasattr(ns._cm_module, node.attr))
        ):
            continue
        problems.append((node.lineno, ns._cm_missing(node.attr)))
    for node, guard in reader.calls:
        if guard & _CATCH_CALL:
            continue
        func = node.func
        fn = None
        if isinstance(func, ast.Name) and func.id not in bound:
            fn = env.get(func.id)
        elif (
            isinstance(func, ast.Attribute)
            and isinstance(func.value, ast.Name)
            and func.value.id not in bound
            and isinstance(env.get(func.value.id), Namespace)
        ):
            fn = env[func.value.id]._cm_functions.get(func.attr)
        if isinstance(fn, ToolFunction):
            _check_call(node, fn, problems)
    seen = set()
    unique = []
    for line, text in sorted(problems, key=lambda p: p[0]):
        if (line, text) not in seen:
            seen.add((line, text))
            unique.append((line, text))
    return unique
