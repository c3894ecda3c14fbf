"""From the submitted text to a code object with script semantics, checked before it runs.

A program runs as a module: top-level names are module globals (so `leads = await
leads.get_leads()` rebinds the name, as in a script, and `global` works), top-level
`await` works (CPython's PyCF_ALLOW_TOP_LEVEL_AWAIT, as in its asyncio REPL), and
line numbers are the user's. Two things a module cannot do are added by rewriting the
tree: a top-level `return` ends the program with its value (it raises `ProgramReturn`,
which a prepended handler lets through every enclosing top-level `try`), and the last
expression statement is the result. In a program with top-level await, a top-level
`asyncio.run(x)` or `loop.run_until_complete(x)` statement becomes `await x` (the loop
already runs).

Before anything runs, `_cm_precheck` reads the tree against the catalog.
"""

import ast
import re

from _cm_api import CODE_FILENAME
from _cm_ast import children, walk

RESULT_NAME = "__codemode_result__"
RETURN_NAME = "__codemode_return__"
_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)


class ProgramReturn(BaseException):
    """A top-level `return`: carries the program's value out of the module code."""

    def __init__(self, value=None):
        super().__init__()
        self.value = value


def _loc(node, like):
    """Give a new node (and the new nodes under it) the location of `like`. A node that
    has a location is the user's, as is everything under it: the walk stops there."""
    stack = [node]
    while stack:
        sub = stack.pop()
        if "lineno" in sub._attributes:
            if hasattr(sub, "lineno"):
                continue
            sub.lineno, sub.col_offset = like.lineno, like.col_offset
            sub.end_lineno, sub.end_col_offset = like.end_lineno, like.end_col_offset
        stack.extend(children(sub))
    return node


def _has_top_level_await(tree: ast.AST) -> bool:
    stack = children(tree)
    while stack:
        node = stack.pop()
        if isinstance(node, _SCOPES):
            continue
        if isinstance(node, (ast.Await, ast.AsyncFor, ast.AsyncWith)):
            return True
        if isinstance(node, ast.comprehension) and node.is_async:
            return True
        stack.extend(children(node))
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


def _statement_lists(body: list):
    """`body` and every statement list nested in it, outside functions and classes."""
    yield body
    for stmt in body:
        if isinstance(stmt, _SCOPES):
            continue
        for field in ("body", "orelse", "finalbody"):
            part = getattr(stmt, field, None)
            if isinstance(part, list):
                yield from _statement_lists(part)
        for inner in (*getattr(stmt, "handlers", ()), *getattr(stmt, "cases", ())):
            yield from _statement_lists(inner.body)


def _rewrite_loop_runs(body: list) -> None:
    """`asyncio.run(x)` / `loop.run_until_complete(x)` as a top-level statement or the
    value it assigns or returns -> `await x` (the program's loop is already running)."""
    for statements in _statement_lists(body):
        for stmt in statements:
            value = getattr(stmt, "value", None)
            if isinstance(stmt, (ast.Expr, ast.Assign, ast.AnnAssign, ast.Return)) and (
                _is_loop_run(value)
            ):
                stmt.value = ast.copy_location(ast.Await(value=value.args[0]), value)


GATHER_NAME = "__codemode_gather__"

_AWAIT_OF_A_LIST = re.compile(r"\bawait(?:[\s\\]|#[^\n]*)*[\[(]")
"""Text that may hold `await [...]` or `await (...)`: blanks, line continuations and
comments may stand between the two. Where it matches nothing, no such node exists."""


def _await_of_lists(tree: ast.AST) -> None:
    """`await [a, b]` / `await [f(x) for x in xs]` (a list is never awaitable) ->
    `await asyncio.gather(*...)`, which is the only thing it can mean."""
    for node in walk(tree):
        if isinstance(node, ast.Await) and isinstance(
            node.value, (ast.List, ast.ListComp, ast.Tuple)
        ):
            inner = node.value
            star = ast.Starred(value=inner, ctx=ast.Load())
            call = ast.Call(func=ast.Name(GATHER_NAME, ast.Load()), args=[star], keywords=[])
            node.value = _loc(call, inner)


def compile_program(code: str):
    """(tree, code object, is_async). Raises SyntaxError with the user's line."""
    tree = ast.parse(code, CODE_FILENAME, "exec")
    body = tree.body
    # Each pass walks the tree in Python; one whose keyword is not in the text has
    # nothing to find (a keyword cannot appear in the tree without appearing in the text).
    if _AWAIT_OF_A_LIST.search(code):
        _await_of_lists(tree)
    if "run" in code and _has_top_level_await(tree):
        _rewrite_loop_runs(body)
    if "return" in code:
        _rewrite_returns(body)
    if body and isinstance(body[-1], ast.Expr):
        last = body[-1]
        target = ast.Name(RESULT_NAME, ast.Store())
        body[-1] = _loc(ast.Assign(targets=[target], value=last.value), last)
    flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
    code_obj = compile(tree, CODE_FILENAME, "exec", flags=flags, dont_inherit=True)
    return tree, code_obj, bool(code_obj.co_flags & 0x80)  # CO_COROUTINE
