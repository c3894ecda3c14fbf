"""The pre-check refuses certain mistakes only: every valid program runs.

`precheck` (codemode/wasm_runtime/guest/_cm_program.py) reads a program before it runs and
refuses it (error type "CheckError", no tool called) for tool calls with unknown keywords,
missing required arguments or too many positional ones, attributes a namespace lacks, and
names bound nowhere. Each program of VALID runs without error under CPython's semantics, so
it must come back with its value: it binds names in every way Python can, reaches globals
and tools dynamically, catches the error it would raise, or holds the mistake in code that
never runs. Each program of MISTAKES is certain to fail, and is refused before any tool call
runs, even one written before the mistake.

The host is the tests' RecordingHost plus `demo.find(query, limit=None)`, whose first
parameter takes no dict: one dict passed to it alone is its keyword arguments.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import RecordingHost

from codemode.wasm_runtime import FunctionSpec, Param, SandboxPool


class KeywordsHost(RecordingHost):
    """RecordingHost with `demo.find(query, limit=None)`, which returns [query, limit]."""

    def functions(self) -> list[FunctionSpec]:
        find = FunctionSpec(
            "demo.find",
            "find",
            (Param("query", True, takes_dict=False), Param("limit")),
            "demo.find(query, limit=None)",
            "Find things; a dict alone is the keyword arguments.",
        )
        return [*super().functions(), find]

    async def call(self, target: str, args: dict[str, Any], context: Any = None) -> Any:
        if target == "find":
            return [args["query"], args.get("limit")]
        return await super().call(target, args)


@pytest.fixture
def run_on_keywords_host(pool: SandboxPool):
    async def _run(code: str):
        return await pool.execute(code, KeywordsHost())

    return _run


def program(name: str, expected: Any, code: str):
    return pytest.param(code, expected, id=name)


# Each: a name, the value the program returns, and the program.
VALID = [
    # -- names bound in branches, loops and blocks ----------------------------------------
    program(
        "name_bound_in_one_branch_only",
        "yes",
        """
if len("ab") == 2:
    found = "yes"
else:
    other = "no"
found
""",
    ),
    program(
        "names_bound_by_for_and_its_else",
        [2, True, 2],
        """
for i in range(3):
    last = i
else:
    done = True
[last, done, i]
""",
    ),
    program(
        "name_bound_before_break_in_while",
        3,
        """
n = 0
while True:
    n += 1
    if n == 3:
        stopped_at = n
        break
stopped_at
""",
    ),
    program(
        "name_bound_by_with_as",
        5,
        """
import contextlib
with contextlib.nullcontext(5) as v:
    pass
v
""",
    ),
    program(
        "name_bound_by_async_with_as",
        "in",
        """
import contextlib
@contextlib.asynccontextmanager
async def opened():
    yield await echo("in")
async with opened() as got:
    pass
got
""",
    ),
    program(
        "name_bound_by_except_as",
        "ZeroDivisionError",
        """
try:
    1 / 0
except ZeroDivisionError as exc:
    kind = type(exc).__name__
kind
""",
    ),
    program(
        "name_bound_in_finally",
        [1, 2],
        """
try:
    a = 1
finally:
    b = 2
[a, b]
""",
    ),
    program(
        "names_bound_by_star_unpacking",
        [1, [2, 3], 4],
        """
first, *middle, (last,) = [1, 2, 3, [4]]
[first, middle, last]
""",
    ),
    program(
        "walrus_in_if_binds_the_name",
        3,
        """
if (n := len("abc")) > 2:
    pass
n
""",
    ),
    program(
        "walrus_in_while_condition",
        [3, 2, 1],
        """
stack = [1, 2, 3]
popped = []
while stack and (top := stack.pop()):
    popped.append(top)
popped
""",
    ),
    program(
        "walrus_in_comprehension_binds_in_the_enclosing_scope",
        [[4, 9, 16], 16],
        """
squares = [s for v in range(5) if (s := v * v) > 3]
[squares, s]
""",
    ),
    program(
        "walrus_in_comprehension_inside_a_function",
        4,
        """
def last_double(values):
    [d := v * 2 for v in values]
    return d
last_double([1, 2])
""",
    ),
    # -- match / case ------------------------------------------------------------------
    program(
        "match_class_pattern_keyword_captures",
        [1, 2],
        """
from dataclasses import dataclass
@dataclass
class Point:
    x: int
    y: int
match Point(1, 2):
    case Point(x=0, y=yy):
        out = ["axis", yy]
    case Point(x=px, y=py):
        out = [px, py]
out
""",
    ),
    program(
        "match_class_pattern_positional_captures",
        ["text", 3],
        """
def kind(v):
    match v:
        case str(s):
            return ["text", len(s)]
        case int(i) | float(i):
            return ["number", i]
kind("abc")
""",
    ),
    program(
        "match_mapping_rest",
        [1, {"b": 2}],
        """
match {"a": 1, "b": 2}:
    case {"a": a, **rest}:
        out = [a, rest]
out
""",
    ),
    program(
        "match_sequence_star_capture",
        [1, [2, 3], 4],
        """
match [1, 2, 3, 4]:
    case [head, *body, tail]:
        out = [head, body, tail]
out
""",
    ),
    program(
        "match_as_with_guard",
        7,
        """
match 7:
    case int() as n if n > 3:
        out = n
    case _:
        out = None
out
""",
    ),
    program(
        "match_value_pattern_of_an_enum",
        "red",
        """
import enum
class Color(enum.Enum):
    RED = 1
    BLUE = 2
match Color.RED:
    case Color.BLUE:
        out = "blue"
    case Color.RED:
        out = "red"
out
""",
    ),
    # -- scopes: global, nonlocal, del, closures -----------------------------------------
    program(
        "global_assigned_inside_a_function",
        10,
        """
def setup():
    global counter
    counter = 10
setup()
counter
""",
    ),
    program(
        "nonlocal_counter_in_a_closure",
        3,
        """
def make_counter():
    count = 0
    def bump():
        nonlocal count
        count += 1
        return count
    return bump
bump = make_counter()
bump()
bump()
bump()
""",
    ),
    program(
        "del_then_rebind",
        2,
        """
x = 1
del x
x = 2
x
""",
    ),
    program(
        "del_then_read_under_except_name_error",
        "gone",
        """
x = 1
del x
try:
    x
except NameError:
    state = "gone"
state
""",
    ),
    program(
        "function_reads_a_global_bound_after_it",
        4,
        """
def f():
    return LATER
LATER = 4
f()
""",
    ),
    program(
        "mutual_recursion",
        True,
        """
def is_even(n):
    return n == 0 or is_odd(n - 1)
def is_odd(n):
    return n != 0 and is_even(n - 1)
is_even(10)
""",
    ),
    program(
        "closure_over_a_loop_variable_with_a_default",
        [0, 1, 2],
        """
fns = [lambda i=i: i for i in range(3)]
[f() for f in fns]
""",
    ),
    program(
        "comprehension_variable_does_not_leak",
        "outer",
        """
x = "outer"
[x for x in range(2)]
x
""",
    ),
    program(
        "nested_comprehensions",
        [[], [0], [0, 2]],
        "[[i * j for j in range(i)] for i in range(3)]",
    ),
    program(
        "dict_and_set_comprehensions",
        [{"a": 1, "b": 2}, [1, 2]],
        """
d = {k: v for k, v in zip("ab", [1, 2])}
s = {v for v in d.values()}
[d, sorted(s)]
""",
    ),
    program(
        "class_mangled_name_bound_by_global_in_a_class_body",
        3,
        """
class Cfg:
    global __level
    __level = 3
_Cfg__level
""",
    ),
    # -- imports -------------------------------------------------------------------------
    program(
        "import_dotted_binds_the_top_package",
        "a/b",
        """
import os.path
os.path.join("a", "b")
""",
    ),
    program(
        "import_dotted_as",
        "y",
        """
import os.path as osp
osp.basename("/x/y")
""",
    ),
    program(
        "from_import_as_and_several_names",
        [["b", 1]],
        """
from collections import OrderedDict as OD, defaultdict
d = defaultdict(int)
d["b"] += 1
list(OD(d).items())
""",
    ),
    program(
        "from_import_star_then_a_name_from_it",
        [2, True],
        """
from math import *
[floor(2.5), pi > 3]
""",
    ),
    program(
        "import_inside_a_function",
        "3",
        """
def dumped():
    import json as j
    return j.dumps(3)
dumped()
""",
    ),
    program(
        "import_in_try_with_fallback",
        True,
        """
try:
    import tomllib as toml
except ImportError:
    toml = None
toml is not None
""",
    ),
    program(
        "import_only_for_type_checking",
        5,
        """
import typing
if typing.TYPE_CHECKING:
    from nowhere import Thing
def f(x: Thing) -> Thing:
    return x
f(5)
""",
    ),
    program(
        "future_annotations_import",
        1,
        """
from __future__ import annotations
def f(x: NotDefinedAnywhere) -> AlsoNot:
    return x
f(1)
""",
    ),
    # -- classes, decorators, defaults, lambdas, generators ------------------------------
    program(
        "class_body_and_method_refer_to_module_and_class_names",
        15,
        """
SCALE = 3
class K:
    factor = SCALE * 2
    def get(self):
        return self.factor + SCALE + K.factor
K().get()
""",
    ),
    program(
        "dunder_class_and_super_in_methods",
        ["B", "base"],
        """
class A:
    def who(self):
        return "base"
class B(A):
    def who(self):
        return [__class__.__name__, super().who()]
B().who()
""",
    ),
    program(
        "class_decorator_and_metaclass_keyword",
        ["Tagged", True],
        """
def tag(cls):
    cls.tagged = True
    return cls
class Meta(type):
    pass
@tag
class Tagged(metaclass=Meta):
    pass
[Tagged.__name__, Tagged.tagged]
""",
    ),
    program(
        "metaclass_prepare_supplies_a_class_body_name",
        43,
        """
class Env(type):
    @classmethod
    def __prepare__(mcs, name, bases):
        return {"magic": 42}
class C(metaclass=Env):
    value = magic + 1
C.value
""",
    ),
    program(
        "function_decorator_with_wraps",
        6,
        """
import functools
def twice(fn):
    @functools.wraps(fn)
    def inner(*args, **kwargs):
        return fn(*args, **kwargs) * 2
    return inner
@twice
def three():
    return 3
three()
""",
    ),
    program(
        "default_argument_refers_to_an_earlier_name",
        11,
        """
base = 10
def f(x, y=base):
    return x + y
f(1)
""",
    ),
    program(
        "lambda_with_default_and_keyword_only",
        [3, 5],
        """
add = lambda a, b=2, *, c=0: a + b + c
[add(1), add(1, c=2)]
""",
    ),
    program(
        "generator_and_yield_from",
        [0, 1, 4, 9, 100],
        """
def squares(n):
    for i in range(n):
        yield i * i
def more():
    yield from squares(4)
    yield 100
list(more())
""",
    ),
    program(
        "generator_send",
        [1, 11],
        """
def acc():
    total = 0
    while True:
        got = yield total
        total += got
g = acc()
next(g)
[g.send(1), g.send(10)]
""",
    ),
    program(
        "async_generator_with_tool_calls",
        [0, 1, 2],
        """
async def agen():
    for i in range(3):
        yield await echo(i)
[v async for v in agen()]
""",
    ),
    program(
        "async_for_over_an_async_generator",
        6,
        """
async def agen():
    for i in (1, 2, 3):
        yield i
total = 0
async for v in agen():
    total += v
total
""",
    ),
    program(
        "asyncio_run_of_a_main_function",
        3,
        """
import asyncio
async def main():
    return await demo.add(1, 2)
asyncio.run(main())
""",
    ),
    # -- type parameters and annotations (lazy in 3.14) ----------------------------------
    program(
        "pep695_generic_function",
        7,
        """
def first[T](items: list[T]) -> T:
    return items[0]
first([7, 8])
""",
    ),
    program(
        "pep695_generic_class_with_bound_and_variadics",
        3,
        """
class Box[T: (int, str), *Ts, **P]:
    def __init__(self, item: T):
        self.item = item
Box(3).item
""",
    ),
    program(
        "pep695_type_alias",
        [True, "K"],
        """
type IntList = list[int]
type Pair[K] = tuple[K, K]
[IntList.__value__ == list[int], Pair.__type_params__[0].__name__]
""",
    ),
    program(
        "type_alias_of_an_undefined_name_is_lazy",
        "Later",
        """
type Later = NotDefinedYet
Later.__name__
""",
    ),
    program(
        "pep696_type_parameter_default",
        1,
        """
def f[T = NotDefinedEither]() -> T:
    return 1
f()
""",
    ),
    program(
        "parameter_annotations_naming_undefined_names",
        5,
        """
def f(x: Undefined, *args: AlsoUndefined, **kw: Nope) -> Missing:
    return x
f(5)
""",
    ),
    program(
        "module_variable_annotation_naming_an_undefined_name",
        3,
        """
value: NotDefinedAnywhere = 3
value
""",
    ),
    program(
        "attribute_target_annotation_naming_an_undefined_name",
        1,
        """
import types
ns = types.SimpleNamespace()
ns.x: Undefined = 1
ns.x
""",
    ),
    program(
        "class_field_annotation_naming_an_undefined_name",
        1,
        """
class C:
    field: Missing = 1
C.field
""",
    ),
    program(
        "string_annotations",
        "ok",
        """
def f(x: "Foo") -> "Bar":
    return x
f("ok")
""",
    ),
    program(
        "annotations_read_as_forward_references",
        ["Undefined"],
        """
import annotationlib
def f(x: Undefined):
    pass
got = annotationlib.get_annotations(f, format=annotationlib.Format.FORWARDREF)
[got["x"].__forward_arg__]
""",
    ),
    # -- dunders and dynamic globals ----------------------------------------------------
    program("dunder_name_is_main", "__main__", "__name__"),
    program(
        "dunder_file_probed_under_except_name_error",
        True,
        """
try:
    where = __file__
except NameError:
    where = None
where is None or isinstance(where, str)
""",
    ),
    program(
        "dunder_builtins_dict_or_module",
        2,
        """
b = __builtins__
len_fn = b["len"] if isinstance(b, dict) else b.len
len_fn([1, 2])
""",
    ),
    program(
        "name_planted_through_dunder_builtins",
        9,
        """
b = __builtins__
(b if isinstance(b, dict) else b.__dict__)["planted"] = 9
planted
""",
    ),
    program(
        "name_planted_through_globals",
        1,
        """
globals()["x"] = 1
x
""",
    ),
    program(
        "name_planted_through_exec",
        2,
        """
exec("y = 2")
y
""",
    ),
    program(
        "name_planted_through_vars",
        3,
        """
vars()["w"] = 3
w
""",
    ),
    program(
        "name_planted_through_a_function_dunder_globals",
        4,
        """
def f():
    pass
f.__globals__["planted"] = 4
planted
""",
    ),
    program(
        "name_planted_through_the_frame_globals",
        5,
        """
import sys
sys._getframe().f_globals["planted"] = 5
planted
""",
    ),
    program(
        "name_planted_through_inspect_currentframe",
        6,
        """
import inspect
inspect.currentframe().f_globals.update(planted=6)
planted
""",
    ),
    program(
        "name_planted_through_exec_imported_under_another_name",
        7,
        """
from builtins import exec as run_code
run_code("planted = 7")
planted
""",
    ),
    program(
        "builtins_module_attribute",
        3,
        """
import builtins
builtins.len("abc")
""",
    ),
    program(
        "shadowing_builtins",
        [3, 0],
        """
list = [1, 2]
total = sum(list)
def len(x):
    return 0
[total, len("abc")]
""",
    ),
    # -- tools reached dynamically ------------------------------------------------------
    program(
        "getattr_of_a_namespace_with_a_computed_name",
        3,
        """
name = "ad" + "d"
await getattr(demo, name)(1, 2)
""",
    ),
    program(
        "hasattr_probe_guards_a_missing_function",
        0,
        """
if hasattr(demo, "subtract"):
    out = await demo.subtract(3, 1)
else:
    out = 0
out
""",
    ),
    program("getattr_with_a_default", True, 'getattr(demo, "nope", None) is None'),
    program(
        "dir_probe_guards_a_missing_function",
        "none",
        """
if "subtract" in dir(demo):
    out = await demo.subtract(3, 1)
else:
    out = "none"
out
""",
    ),
    program("tool_call_with_double_star_kwargs", 3, 'await demo.add(**{"a": 1, "b": 2})'),
    program(
        "tool_call_with_star_args",
        [3, "hi", "t"],
        """
args = [1, 2]
[await demo.add(*args), await echo(*["hi"]), await sleep_ms(*[1], **{"tag": "t"})]
""",
    ),
    program("tool_call_with_star_args_after_a_positional", 3, "await demo.add(1, *[2])"),
    program("tool_call_all_keywords", 5, "await demo.add(b=3, a=2)"),
    program(
        "tool_stored_in_a_variable",
        [5, 5],
        "f = demo.add\ng = echo\n[await f(2, 3), await g(value=5)]",
    ),
    program(
        "tools_stored_in_a_dict",
        [2, "x"],
        """
ops = {"add": demo.add, "echo": echo}
[await ops["add"](1, 1), await ops["echo"]("x")]
""",
    ),
    program(
        "tool_passed_to_another_function",
        9,
        """
async def apply(fn, *a):
    return await fn(*a)
await apply(demo.add, 4, 5)
""",
    ),
    program(
        "tool_calls_gathered",
        [1, 2, 3],
        "list(await asyncio.gather(echo(1), demo.add(1, 1), sleep_ms(1, tag=3)))",
    ),
    program(
        "namespace_imported_under_another_name",
        [6, 4],
        """
import demo as calc
from demo import add
[await calc.add(3, 3), await add(2, 2)]
""",
    ),
    program("namespace_dunder_attribute", "demo", "demo.__name__"),
    program(
        "tools_search_finds_the_function", True, 'any("add" in s for s in tools.search("add"))'
    ),
    program(
        "lone_dict_is_the_keyword_arguments",
        ["q", 2],
        'await demo.find({"query": "q", "limit": 2})',
    ),
    program(
        "lone_dict_built_by_dict_call",
        ["q", None],
        'await demo.find(dict(query="q"))',
    ),
    program(
        "lone_dict_literal_with_a_repeated_key",
        ["second", None],
        'await demo.find({"query": "first", "query": "second"})',
    ),
    # -- tool and namespace names rebound -----------------------------------------------
    program("tool_name_rebound_to_a_lambda", [1, 2, 3], "echo = lambda *a: list(a)\necho(1, 2, 3)"),
    program(
        "namespace_rebound_to_another_object",
        [7, 6],
        """
import types
demo = types.SimpleNamespace(add=lambda: 7, mul=lambda a, b, c: a * b * c)
[demo.add(), demo.mul(1, 2, 3)]
""",
    ),
    program(
        "tool_name_rebound_by_a_for_loop",
        5,
        """
for echo in [max]:
    pass
echo(1, 5, 3)
""",
    ),
    program(
        "tool_name_rebound_by_import_as",
        5,
        """
from operator import add as echo
echo(2, 3)
""",
    ),
    program(
        "tool_name_is_a_parameter",
        2,
        """
def f(echo):
    return echo(1, 2)
f(max)
""",
    ),
    program(
        "namespace_name_is_a_local_variable",
        [{"k": 1}, 3],
        """
def local():
    demo = {"k": 1}
    return demo
[local(), await demo.add(1, 2)]
""",
    ),
    program(
        "tool_name_rebound_through_globals",
        6,
        """
globals()["echo"] = lambda *a: sum(a)
echo(1, 2, 3)
""",
    ),
    program(
        "tool_name_rebound_through_exec",
        [1, 2],
        """
exec("def echo(*a): return list(a)")
echo(1, 2)
""",
    ),
    program(
        "tool_name_rebound_by_a_star_import",
        3,
        """
import sys, types
helpers = types.ModuleType("helpers")
helpers.echo = lambda *a: len(a)
sys.modules["helpers"] = helpers
from helpers import *
echo(1, 2, 3)
""",
    ),
    program(
        "namespace_function_replaced_by_attribute_assignment",
        10,
        """
demo.add = lambda x: x * 2
demo.add(5)
""",
    ),
    program(
        "namespace_function_replaced_by_setattr",
        10,
        """
setattr(demo, "add", lambda x: x * 2)
demo.add(5)
""",
    ),
    program(
        "namespace_rebound_through_globals",
        6,
        """
import types
globals()["demo"] = types.SimpleNamespace(mul=lambda a, b: a * b)
demo.mul(2, 3)
""",
    ),
    program(
        "namespace_attribute_assigned_then_read",
        5,
        """
demo.extra = 5
demo.extra
""",
    ),
    program(
        "namespace_attribute_set_by_setattr_then_read",
        3,
        """
setattr(demo, "subtract", lambda a, b: a - b)
demo.subtract(5, 2)
""",
    ),
    program(
        "namespace_attribute_set_through_its_dict",
        1,
        """
demo.__dict__["flag"] = 1
demo.flag
""",
    ),
    # -- errors caught --------------------------------------------------------------------
    program(
        "undefined_name_under_except_name_error",
        "caught",
        """
try:
    undefined_thing
except NameError:
    r = "caught"
r
""",
    ),
    program(
        "undefined_call_under_except_exception",
        "NameError",
        """
try:
    undefined_thing()
except Exception as e:
    r = type(e).__name__
r
""",
    ),
    program(
        "undefined_name_under_bare_except_and_tuple",
        [1, 2],
        """
try:
    nope_one
except:
    a = 1
try:
    nope_two
except (KeyError, NameError):
    b = 2
[a, b]
""",
    ),
    program(
        "undefined_name_under_except_star",
        1,
        """
try:
    missing
except* NameError:
    r = 1
r
""",
    ),
    program(
        "missing_namespace_function_under_except_attribute_error",
        "no",
        """
try:
    await demo.subtract(3, 1)
except AttributeError:
    r = "no"
r
""",
    ),
    program(
        "bad_tool_call_under_except_type_error",
        "bad",
        """
try:
    await demo.add(1)
except TypeError:
    r = "bad"
r
""",
    ),
    program(
        "undefined_name_in_a_function_called_under_except_name_error",
        "caught",
        """
def risky():
    return not_defined_anywhere
try:
    risky()
except NameError:
    r = "caught"
r
""",
    ),
    program(
        "bad_tool_call_in_a_function_called_under_except_type_error",
        "bad",
        """
async def risky():
    return await demo.add(1)
try:
    await risky()
except TypeError:
    r = "bad"
r
""",
    ),
    program(
        "missing_function_in_a_function_called_under_except_attribute_error",
        "none",
        """
async def risky():
    return await demo.subtract(3, 1)
try:
    await risky()
except AttributeError:
    r = "none"
r
""",
    ),
    program(
        "undefined_name_under_contextlib_suppress",
        "after",
        """
import contextlib
with contextlib.suppress(NameError):
    undefined_thing
"after"
""",
    ),
    program(
        "bad_tool_call_under_contextlib_suppress",
        "after",
        """
from contextlib import suppress
with suppress(TypeError):
    await demo.add(1)
"after"
""",
    ),
    program(
        "missing_function_under_contextlib_suppress",
        "after",
        """
from contextlib import suppress
with suppress(AttributeError):
    await demo.subtract(1, 2)
"after"
""",
    ),
    program(
        "undefined_name_under_an_aliased_exception_class",
        1,
        """
Missing = NameError
try:
    nope
except Missing:
    r = 1
r
""",
    ),
    program(
        "undefined_name_under_a_tuple_of_exceptions_in_a_variable",
        1,
        """
errors = (KeyError, NameError)
try:
    nope
except errors:
    r = 1
r
""",
    ),
    program(
        "undefined_name_under_a_suppressing_context_manager",
        "quiet",
        """
class Quiet:
    def __enter__(self):
        return self
    def __exit__(self, *exc):
        return True
with Quiet():
    nope
"quiet"
""",
    ),
    program(
        "errors_gathered_with_return_exceptions",
        ["NameError", "TypeError", "AttributeError"],
        """
async def a():
    return undefined_thing
async def b():
    return await demo.add(1)
async def c():
    return await demo.subtract(1, 2)
got = await asyncio.gather(a(), b(), c(), return_exceptions=True)
[type(e).__name__ for e in got]
""",
    ),
    program(
        "return_in_finally_swallows_the_error",
        1,
        """
def f():
    try:
        undefined_thing
    finally:
        return 1
f()
""",
    ),
    # -- code that never runs -----------------------------------------------------------
    program("name_after_a_top_level_return", 1, "return 1\nundefined_thing()"),
    program(
        "name_in_an_if_false_body",
        1,
        """
if False:
    undefined_thing()
1
""",
    ),
    program(
        "name_in_a_function_never_called",
        "defined",
        """
def later():
    print(undefined_thing)
"defined"
""",
    ),
    program(
        "name_in_a_short_circuited_operand",
        [False, 1],
        "[False and undefined_thing, 1 if True else undefined_other]",
    ),
    program(
        "exception_class_of_a_handler_that_never_runs",
        5,
        """
try:
    value = int("5")
except NotARealError:
    value = 0
value
""",
    ),
    program(
        "bad_tool_call_in_an_if_false_body",
        0,
        """
if False:
    await demo.add(1)
0
""",
    ),
    program(
        "missing_function_behind_a_vars_probe",
        "none",
        """
if "subtract" in vars(demo):
    out = await demo.subtract(3, 1)
else:
    out = "none"
out
""",
    ),
    program("name_in_a_lambda_never_called", True, "f = lambda: undefined_thing\ncallable(f)"),
    program("name_in_a_comprehension_over_nothing", [], "[undefined_thing for _ in []]"),
    program(
        "missing_function_behind_a_tools_list_probe",
        None,
        """
if "demo.subtract" in tools.list():
    out = await demo.subtract(3, 1)
else:
    out = None
out
""",
    ),
    program(
        "conditional_definition",
        "new",
        """
import sys
if sys.version_info >= (3, 0):
    def helper():
        return "new"
else:
    def helper():
        return "old"
helper()
""",
    ),
    # -- size -------------------------------------------------------------------------------
    # CPython compiles and runs this; the pre-check walks the tree recursively.
    program("sum_of_500_terms", 500, "total = " + " + ".join(["1"] * 500) + "\ntotal"),
]


@pytest.mark.parametrize(("code", "expected"), VALID)
async def test_valid_program_is_not_refused(run_on_keywords_host, code, expected):
    r = await run_on_keywords_host(code)
    assert r.error is None or r.error.type != "CheckError", r.error.message
    assert r.ok, r.error
    assert r.result == expected


# Each: a name, a fragment of the CheckError message, and the program. A tool call comes
# before the mistake in most: the pre-check refuses the whole program before it runs.
MISTAKES = [
    program("unknown_keyword", "no parameter 'c'", "await echo(1)\nawait demo.add(1, c=2)"),
    program(
        "namespace_lacks_the_function", "no function 'ad'", "await echo(1)\nawait demo.ad(1, 2)"
    ),
    program("name_bound_nowhere_is_called", "name 'foo' is not defined", "await echo(1)\nfoo()"),
    program(
        "missing_required_argument",
        "missing required argument(s) 'b'",
        "await echo(1)\nawait demo.add(1)",
    ),
    program(
        "too_many_positional_arguments",
        "takes 2 positional",
        "await echo(1)\nawait demo.add(1, 2, 3)",
    ),
    program(
        "bare_tool_without_arguments",
        "missing required argument(s) 'value'",
        "await sleep_ms(1)\nawait echo()",
    ),
    program(
        "bare_tool_with_an_unknown_keyword",
        "no parameter 'valeu'",
        "await echo(1)\nawait echo(valeu=1)",
    ),
    program(
        "keyword_repeats_a_positional",
        "two values for 'a'",
        "await echo(1)\nawait demo.add(1, a=2)",
    ),
    program(
        "undefined_name_in_a_function_that_is_called",
        "name 'undefined_x' is not defined",
        "await echo(1)\ndef f():\n    return undefined_x\nf()",
    ),
    program(
        "bad_call_in_a_gathered_coroutine",
        "missing required argument(s) 'b'",
        "async def one():\n    return await demo.add(a=1)\nawait asyncio.gather(echo(1), one())",
    ),
    program(
        "misspelled_result_name", "name 'reslt' is not defined", "result = await echo(1)\nreslt"
    ),
    program(
        "bad_call_under_an_unrelated_except",
        "missing required argument(s) 'b'",
        "await echo(1)\ntry:\n    await demo.add(1)\nexcept ValueError:\n    pass",
    ),
    program(
        "undefined_name_under_an_unrelated_except",
        "name 'nope' is not defined",
        "await echo(1)\ntry:\n    nope\nexcept KeyError:\n    pass",
    ),
    program(
        "lone_dict_missing_a_required_key",
        "missing required argument(s) 'query'",
        'await echo(1)\nawait demo.find({"limit": 1})',
    ),
    program(
        "mistake_inside_a_lambda_that_is_called",
        "takes 1 positional",
        "await echo(1)\nf = lambda: echo(1, 2)\nawait f()",
    ),
    # no tool or namespace is read in these: the reading walk is skipped only when every
    # name is known, so undefined names are still all found
    program(
        "undefined_names_in_a_program_without_tools",
        "2 problems",
        "x = 1\nprint(y)\nz = [w for _ in range(x)]",
    ),
    program("misspelled_builtin_without_tools", "name 'lenn' is not defined", "lenn([1, 2])"),
    program(
        "several_mistakes_reported_together",
        "3 problems",
        "await echo(1)\nawait demo.ad(1, 2)\nawait echo(1, 2)\nfoo",
    ),
]


@pytest.mark.parametrize(("code", "fragment"), MISTAKES)
async def test_certain_mistakes_are_refused(run_on_keywords_host, code, fragment):
    r = await run_on_keywords_host(code)
    assert not r.ok and r.error is not None
    assert r.error.type == "CheckError", r.error
    assert fragment in r.error.message
    assert r.stats.tool_calls == 0


# The guest's own tree walk (`guest/_cm_ast.py`), which every pass before a run uses in
# place of `ast.walk` and `ast.NodeVisitor`: it reads only the fields that can hold nodes,
# as the guest's CPython declares them. Over real code (codemode's own sources, every
# construct they use), it must reach the nodes `ast` reaches, leaves aside, and give each
# node's children in field order.
WALK_CHECK = """
import ast, sys
walker = sys.modules["_cm_ast"]
leaves = walker._LEAVES
nodes, wrong = 0, []
for name, text in SOURCES.items():
    tree = ast.parse(text)
    theirs = [n for n in ast.walk(tree) if not isinstance(n, leaves)]
    nodes += len(theirs)
    if sorted(map(id, walker.walk(tree))) != sorted(map(id, theirs)):
        wrong.append(name)
    for node in theirs:
        if walker.children(node) != [
            c for c in ast.iter_child_nodes(node) if not isinstance(c, leaves)
        ]:
            wrong.append(f"{name}: {type(node).__name__}")
            break
{"nodes": nodes, "wrong": wrong}
"""


async def test_the_guest_walk_reaches_every_node_ast_does(pool: SandboxPool):
    root = Path(__file__).resolve().parents[1] / "codemode"
    sources = {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*.py"))}
    code = f"SOURCES = {sources!r}\n{WALK_CHECK}"
    limits = pool.limits.replace(timeout_s=120, max_code_bytes=len(code.encode()) + 1)
    r = await pool.execute(code, None, limits)
    assert r.ok, r.error
    assert r.result["wrong"] == []
    assert r.result["nodes"] > 50_000  # the corpus is real code, not a handful of lines
