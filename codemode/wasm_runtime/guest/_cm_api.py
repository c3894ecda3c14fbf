"""What a program sees: tool functions, namespaces, `tools`, and its module globals.

Built anew for every execution from the host's manifest (functions and namespaces). A
namespace named like a stdlib module (a server configured as `time`) is that module too:
`time.monotonic()` is the stdlib's, `await time.get_current_time()` the server's, and
`import time` in the program gives back the same object.
"""

import dataclasses
import datetime
import difflib
import inspect
import re
import sys
import types
from typing import ClassVar

from _cm_bridge import ToolError, bridge

CODE_FILENAME = "<code>"


def _close(name, options, n=3) -> list[str]:
    """Options spelled like `name`, or containing it (`id` -> `member_id`)."""
    name, options = str(name), [str(o) for o in options]
    close = difflib.get_close_matches(name, options, n=n)
    lower = name.lower()
    if len(lower) >= 2:
        close += [o for o in options if o not in close and (lower in o.lower())]
    return close[:n]


def _did_you_mean(name, options) -> str:
    close = _close(name, options)
    return f"; did you mean {', '.join(close)}?" if close else ""


_PLAIN = frozenset({str, int, bool, type(None)})
"""Argument types that are always JSON as they are (a float may be NaN; containers may
hold anything): no encoding is needed to know it."""


def jsonable_arg(name: str, value, dumps):
    if type(value) in _PLAIN:
        return value
    try:
        dumps(value, allow_nan=False)
        return value
    except (TypeError, ValueError):
        pass
    if isinstance(value, (set, frozenset, tuple)):
        return [jsonable_arg(name, v, dumps) for v in value]
    if isinstance(value, (datetime.date, datetime.datetime, datetime.time)):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if type(value).__name__ == "coroutine":
        raise TypeError(
            f"argument {name!r} is a coroutine: put `await` before the call that made it"
        )
    raise TypeError(
        f"argument {name!r} is a {type(value).__name__}, which is not JSON; "
        "pass str, int, float, bool, None, list or dict"
    )


def _caller_source() -> str | None:
    """The source line of the submitted code that is running now."""
    import linecache

    line = caller_line()
    return linecache.getline(CODE_FILENAME, line) if line else None


def caller_line() -> int | None:
    """The line of the submitted code that is running now (the innermost frame of it)."""
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_code.co_filename == CODE_FILENAME:
            return frame.f_lineno
        frame = frame.f_back
    return None


class Calls:
    """Tool calls made but not yet started: a call that is never awaited never runs, and
    the program is told which one it was. Also which tools gave text (for hints)."""

    pending: ClassVar[dict[int, tuple]] = {}
    texts: ClassVar[dict[str, str]] = {}  # tool path -> the start of its first text result
    seen: ClassVar[dict[str, str]] = {}  # tool path -> what its first result looked like
    empty: ClassVar[dict[str, dict]] = {}  # tool path -> arguments of a call that gave []
    counter = 0
    TRACKED = 1000
    """Calls not yet started that are remembered (enough for the notes; a program that
    queues 100,000 calls must not spend its memory on this)."""

    @classmethod
    def reset(cls) -> None:
        cls.pending = {}
        cls.texts = {}
        cls.seen = {}
        cls.empty = {}

    @classmethod
    def unawaited(cls) -> list[tuple[str, int | None]]:
        """(path, line) of every call never awaited; closes them (no runtime warning)."""
        found = []
        for coro, path, line in cls.pending.values():  # a started call removed itself
            # never started and never handed to a task (a cancelled task closed its coroutine)
            if inspect.getcoroutinestate(coro) == inspect.CORO_CREATED:
                found.append((path, line))
            coro.close()
        cls.pending = {}
        return found

    @classmethod
    def describe_pending(cls) -> str:
        counts: dict[str, int] = {}
        for _, path, line in cls.pending.values():
            key = f"{path}() (line {line})"
            counts[key] = counts.get(key, 0) + 1
        shown = [k + (f" x{n}" if n > 1 else "") for k, n in list(counts.items())[:3]]
        return ", ".join(shown)


async def _tool_call(key: int, fn, args: dict, positional: int):
    # Kept small: 100,000 of these may be pending at once, each with its frame.
    Calls.pending.pop(key, None)
    try:
        value = await bridge.call(fn.target, args)
    except ToolError as exc:
        if positional:
            _bound_hint(exc, fn, args, positional)
        raise
    if fn.path not in Calls.seen or (type(value) is list and not value):  # _remember's own
        _remember(fn.path, value, args)  # conditions, checked here first: most calls skip it
    return value


def _bound_hint(exc: ToolError, fn, args: dict, positional: int) -> None:
    bound = ", ".join(f"{n}={args[n]!r}" for n in fn.params[:positional] if n in args)
    exc._cm_hint = (
        f"the positional arguments went to {bound} ({fn.signature.split(' -> ')[0]}); "
        "if that is not what you meant, pass them by keyword"
    )


def _remember(path: str, value, args: dict) -> None:
    """What a tool's first result looked like (and a call that returned []), for hints."""
    if path not in Calls.seen:
        Calls.seen[path] = _looks(value)
        text = value if type(value) is str else _only_text(value)
        if text is not None:
            Calls.texts[path] = text[:160]
    if isinstance(value, list) and not value and path not in Calls.empty:
        Calls.empty[path] = args


def _only_text(value) -> str | None:
    """The text of a result that is a dict holding one str (`{content: str}`)."""
    if isinstance(value, dict):
        texts = [v for v in value.values() if isinstance(v, str)]
        if len(texts) == 1 and len(value) <= 2:
            return texts[0]
    return None


def _looks(value, plural: bool = False) -> str:
    """A few words on a tool result's shape, for hints."""
    if isinstance(value, dict):
        keys = list(value)[:8]
        listed = ", ".join(map(str, keys)) + (", ..." if len(value) > 8 else "")
        return f"{'dicts' if plural else 'a dict'} with keys {listed}"
    if isinstance(value, list):
        return f"a list of {len(value)}" + (f" {_looks(value[0], True)}" if value else "")
    if isinstance(value, str):
        return "texts (str)" if plural else "text (a str)"
    return f"{type(value).__name__} values" if plural else f"a {type(value).__name__}"


class Notes:
    """Things worth telling the model although the program did not fail."""

    taken_notes: ClassVar[dict[str, None]] = {}

    @classmethod
    def reset(cls) -> None:
        cls.taken_notes = {}

    @classmethod
    def add(cls, note: str) -> None:
        if len(cls.taken_notes) < 5:
            cls.taken_notes[note] = None

    @classmethod
    def taken(cls) -> list[str]:
        notes, cls.taken_notes = list(cls.taken_notes), {}
        return notes


class ToolFunction:
    """One callable the host offers, with the parameters of its schema."""

    def __init__(self, spec: dict, dumps):
        self.path = spec["path"]
        self.target = spec["target"]
        params = spec.get("params", ())
        self.params = [p["name"] for p in params]
        self.param_set = frozenset(self.params)
        self.required = [p["name"] for p in params if p.get("required")]
        self.required_set = frozenset(self.required)
        # how many leading positional arguments cover every required parameter
        self.covering = max((i + 1 for i, p in enumerate(params) if p.get("required")), default=0)
        # A lone dict given where the first parameter cannot take one: keyword arguments.
        self.dict_as_kwargs = bool(params) and not params[0].get("takes_dict", True)
        self.signature = spec.get("signature") or f"{self.path}({', '.join(self.params)})"
        self.doc = spec.get("doc") or ""
        self.alias = bool(spec.get("alias"))
        self._dumps = dumps
        self.__name__ = self.path.rsplit(".", 1)[-1]
        self.__qualname__ = self.path
        self.__module__ = "builtins"  # Python's messages then say "team.get_expenses()"
        self.__doc__ = f"{self.signature}\n\n{self.doc}".strip()

    def _bind(self, args, kwargs) -> dict:
        if not (len(args) == 1 and isinstance(args[0], dict)) and len(args) <= len(self.params):
            # The usual calls, nothing to report: positional arguments that cover every
            # required parameter, or keyword arguments that name only parameters.
            if not kwargs and len(args) >= self.covering:
                return self._jsonable(zip(self.params, args))
            if not args and kwargs.keys() <= self.param_set and self.required_set <= kwargs.keys():
                return self._jsonable(kwargs.items())
        if len(args) == 1 and not kwargs and isinstance(args[0], dict) and args[0]:
            given = args[0]
            request = given.get("arguments") if set(given) <= {"name", "arguments"} else None
            if isinstance(request, dict) and not ({"name", "arguments"} & self.param_set):
                args, kwargs = (), request  # an MCP tools/call request's params
            elif self.dict_as_kwargs and all(k in self.param_set for k in given):
                args, kwargs = (), given
        if len(args) > len(self.params):
            raise TypeError(
                f"{self.path}() takes {len(self.params)} positional argument(s) "
                f"({', '.join(self.params) or 'none'}) but {len(args)} were given; "
                f"signature: {self.signature}"
            )
        bound = dict(zip(self.params, args))
        for name, value in kwargs.items():
            if name in bound:
                raise TypeError(f"{self.path}() got multiple values for argument {name!r}")
            if name not in self.param_set:
                raise TypeError(
                    f"{self.path}() got an unexpected keyword argument {name!r}"
                    f"{_did_you_mean(name, self.params)}; parameters: "
                    f"{', '.join(self.params) or 'none'} (signature: {self.signature})"
                )
            bound[name] = value
        missing = [name for name in self.required if name not in bound]
        if missing:
            raise TypeError(
                f"{self.path}() missing required argument(s): "
                f"{', '.join(map(repr, missing))}; signature: {self.signature}"
            )
        return self._jsonable(bound.items())

    def _jsonable(self, pairs) -> dict:
        """The arguments, each as JSON will carry it (plain values as they are, at once)."""
        dumps = self._dumps
        return {
            name: value if type(value) in _PLAIN else jsonable_arg(name, value, dumps)
            for name, value in pairs
        }

    def __call__(self, *args, **kwargs):
        if 2 <= len(args) <= len(self.params) and list(args) == self.params[: len(args)]:
            spread = re.search(r"\*(\w+)\s*\)", _caller_source() or "")
            name = spread.group(1) if spread else "d"
            raise TypeError(
                f"{self.path}() got its own parameter names as values "
                f"({', '.join(map(repr, args))}): `*{name}` on a dict passes its keys; pass "
                f"`**{name}` (signature: {self.signature})"
            )
        bound = self._bind(args, kwargs)
        key = Calls.counter = Calls.counter + 1
        positional = len(args) if not (len(args) == 1 and isinstance(args[0], dict)) else 0
        coro = _tool_call(key, self, bound, positional)
        if len(Calls.pending) < Calls.TRACKED:
            Calls.pending[key] = (coro, self.path, caller_line())
        return coro

    def __await__(self):
        # `await team.get_team_members` (no parentheses): the intent is the call.
        if self.required:
            raise TypeError(
                f"{self.path} is a function: call it with its arguments, "
                f"`await {self.signature.split(' -> ')[0]}`"
            )
        return self().__await__()

    def __repr__(self) -> str:
        return f"<tool {self.signature}>"

    @property
    def __signature__(self):
        import inspect

        kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
        return inspect.Signature(
            [
                inspect.Parameter(p, kind, default=inspect.Parameter.empty)
                if p in self.required
                else inspect.Parameter(p, kind, default=None)
                for p in self.params
            ]
        )


class CallTool(ToolFunction):
    """`call_tool(server, tool, arguments)`, also spelled as models spell it:
    `call_tool("ns.tool", {...})`, `call_tool("tool", {...})` and `call_tool("tool", a=1)`
    for a tool name that is unique across servers."""

    def __call__(self, *args, **kwargs):
        if args and isinstance(args[0], str) and (len(args) < 2 or not isinstance(args[1], str)):
            fn = _resolve_tool(args[0])
            if fn is not None and "server" not in kwargs and "tool" not in kwargs:
                rest = args[1] if len(args) > 1 else kwargs.pop("arguments", None)
                arguments = {**(rest if isinstance(rest, dict) else {}), **kwargs}
                return fn(**arguments)
        return super().__call__(*args, **kwargs)


def _resolve_tool(name: str):
    """The tool function a string names ("ns.tool", a unique "tool", or "ns_tool")."""
    tools = Registry.env.get("tools")
    find = getattr(tools, "_find", None)
    found = find(name) if find is not None else []
    if len(found) == 1:
        return found[0]
    for ns_name, ns in Registry.namespaces.items():
        if name.startswith(ns_name + "_") and name[len(ns_name) + 1 :] in ns._cm_functions:
            return ns._cm_functions[name[len(ns_name) + 1 :]]
    return None


class Namespace(types.ModuleType):
    """The functions of one server: `await github.list_issues(...)`.

    `module`: the stdlib module of the same name, whose attributes come after the tools'.
    A namespace with a fallback (the server's tools are not listed: it failed to start)
    turns any other attribute into a call the host answers with the reason."""

    def __init__(self, name: str, module=None, server: str | None = None, hidden=()):
        super().__init__(name)
        self._cm_functions: dict = {}
        self._cm_fallback: str | None = None
        self._cm_module = module
        self._cm_server = server or name
        self._cm_hidden = frozenset(hidden)  # tools the config hides: the host says why

    def _cm_add(self, name: str, value) -> None:
        self._cm_functions[name] = value
        setattr(self, name, value)

    def __getattr__(self, name: str):
        state = self.__dict__
        module = state.get("_cm_module")
        if module is not None:
            try:
                return getattr(module, name)
            except AttributeError:
                pass
        functions = state.get("_cm_functions", {})
        target = state.get("_cm_fallback")
        if name.startswith("__") or target is None:
            raise AttributeError(self._cm_missing(name)) from None
        if functions and name not in state.get("_cm_hidden", ()):
            raise AttributeError(self._cm_missing(name)) from None

        async def fallback(**kwargs):
            return await bridge.call(target, {"name": name, "args": kwargs})

        fallback.__name__ = name
        return fallback

    def _cm_missing(self, name: str) -> str:
        functions = self.__dict__.get("_cm_functions", {})
        module = self.__dict__.get("_cm_module")
        options = list(functions) + (dir(module) if module is not None else [])
        others = {
            f"{ns.__name__}.{fn}": fn
            for ns in Registry.namespaces.values()
            if ns is not self
            for fn in ns._cm_functions
        }
        elsewhere = [path for path, fn in others.items() if fn == name]
        if not elsewhere and not _close(name, options):
            wanted = set(_close(name, set(others.values()), n=2))
            elsewhere = [path for path, fn in others.items() if fn in wanted]
        where = f"; did you mean {' or '.join(elsewhere)}?" if elsewhere else ""
        known = ", ".join(sorted(functions)) or "none"
        kind = f"the {self.__name__} module nor the server" if module is not None else "it"
        return (
            f"{self.__name__} has no function {name!r}{where}{_did_you_mean(name, options)} "
            f"(functions of {kind}: {known})"
        )

    def __dir__(self):
        module = self.__dict__.get("_cm_module")
        return sorted(set(self._cm_functions) | set(dir(module) if module is not None else ()))

    def __getitem__(self, name: str):
        # `team["get_expenses"]`: the function of that name
        try:
            return getattr(self, name)
        except AttributeError as exc:
            raise KeyError(str(exc)) from None

    def __repr__(self) -> str:
        shown = ", ".join(sorted(self._cm_functions))
        if self._cm_module is not None:
            return (
                f"<module {self.__name__!r} and the tools of server {self._cm_server!r}: {shown}>"
            )
        return f"<namespace {self.__name__}: {shown}>"


class Registry:
    """The namespaces and functions of the running execution (for imports and hints)."""

    namespaces: ClassVar[dict[str, "Namespace"]] = {}
    functions: ClassVar[list["ToolFunction"]] = []
    env: ClassVar[dict] = {}
    code = ""

    @classmethod
    def reset(cls) -> None:
        cls.namespaces, cls.functions, cls.env, cls.code = {}, [], {}, ""
