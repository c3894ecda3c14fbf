"""Walking a program's tree, fast: every pass before a run (rewrites, the pre-check) walks
it in Python, in an interpreter that runs Python ~3x slower than native.

`ast.walk` and `ast.NodeVisitor` look at every field of every node through generators
and `getattr`, including those that never hold a node (`Name.id`, `Constant.value`) and
those that hold only leaves no pass reads (`ctx`, operators). Here each node type's
child fields are worked out once, from its declared field types.
"""

import ast
import typing

_LEAVES = (ast.expr_context, ast.operator, ast.unaryop, ast.boolop, ast.cmpop)
"""Node types with no fields: no pass looks at them (they are only what they are)."""

NONE, ONE, MANY, ANY = range(4)
"""What a field holds: no node, a node (or None), a list of nodes (or Nones: `Dict.keys`
holds one for each `**spread`, though it is declared `list[expr]`), or anything (a field
of unknown type, checked as it is read)."""


def _kind_of(annotation) -> int:
    """What a field declared as `annotation` holds (`expr`, `list[stmt]`, `expr | None`):
    NONE (no node any pass visits), ONE or MANY."""
    if isinstance(annotation, type):
        if issubclass(annotation, ast.AST) and not issubclass(annotation, _LEAVES):
            return ONE
        return NONE
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) is list:
        return NONE if args and _kind_of(args[0]) == NONE else MANY
    return ONE if any(_kind_of(arg) != NONE for arg in args) else NONE


_CHILD_FIELDS: dict[type, tuple[tuple[str, int], ...]] = {}


def child_fields(kind: type) -> tuple[tuple[str, int], ...]:
    """The fields of node type `kind` that can hold nodes, each with what it holds."""
    fields = _CHILD_FIELDS.get(kind)
    if fields is None:
        declared = getattr(kind, "_field_types", None)
        if declared is None:  # before Python 3.13: every field, checked as it is read
            fields = tuple((f, ANY) for f in kind._fields)
        else:
            kinds = ((f, _kind_of(declared[f]) if f in declared else ANY) for f in kind._fields)
            fields = tuple((f, k) for f, k in kinds if k != NONE)
        _CHILD_FIELDS[kind] = fields
    return fields


def children(node) -> list:
    """The child nodes of `node`, in field order (as `ast.iter_child_nodes`, less leaves)."""
    found = []
    kind = type(node)
    fields = _CHILD_FIELDS.get(kind)
    for field, holds in child_fields(kind) if fields is None else fields:
        value = getattr(node, field, None)
        if value is None:
            continue
        if holds == MANY:
            found += value if None not in value else [item for item in value if item is not None]
        elif holds == ONE:
            found.append(value)
        elif type(value) is list:  # ANY
            found += [item for item in value if isinstance(item, ast.AST)]
        elif isinstance(value, ast.AST):
            found.append(value)
    return found


def walk(tree):
    """Every node under `tree` (itself included), in no particular order: as `ast.walk`,
    iteratively (no recursion limit), less the leaves."""
    stack = [tree]
    pop, extend = stack.pop, stack.extend
    while stack:
        node = pop()
        yield node
        extend(children(node))


class FastVisitor(ast.NodeVisitor):
    """`ast.NodeVisitor` with its method looked up once per node type, and a
    `generic_visit` that reads only the fields that can hold nodes."""

    _methods: typing.ClassVar[dict] = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls._methods = {}  # node type -> this class's method for it

    def visit(self, node):
        kind = type(node)
        method = self._methods.get(kind)
        if method is None:
            cls = type(self)
            method = getattr(cls, "visit_" + kind.__name__, cls.generic_visit)
            self._methods[kind] = method
        return method(self, node)

    def generic_visit(self, node):
        for child in children(node):
            self.visit(child)
