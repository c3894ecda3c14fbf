"""What a program sees: tool functions, namespaces, `tools`, and its module globals.

Built anew for every execution from the host's manifest (functions and namespaces). A
namespace named like a stdlib module (a server configured as `time`) is that module too:
`time.monotonic()` is the stdlib's, `await time.get_current_time()` the server's, and
`import time` in the program gives back the same object.
"""

import builtins
import dataclasses
import datetime
import difflib
import functools
import inspect
import re
import sys
import types
from typing import ClassVar

import _cm_stdlib
from _cm_bridge import UNWRAPPED, ToolError, bridge

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


def jsonable_arg(name: str, value, dumps):
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
    if fn.path not in Calls.seen or (type(value) is list and not value):
        _remember(fn.path, value, args)
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
        dumps = self._dumps
        return {name: jsonable_arg(name, value, dumps) for name, value in bound.items()}

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
    found = tools._find(name) if isinstance(tools, Tools) else []
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


class _Listing(list):
    """A list that `await` also gives (tools.search() is not a coroutine, but a model
    often awaits it: both spellings work)."""

    def __await__(self):
        return self
        yield  # makes this a generator: __await__ must return an iterator


class _Text(str):
    def __await__(self):
        return self
        yield


class Tools:
    """`tools.search(query)` / `tools.describe(name)` / `tools.list()`: find functions
    without reading the whole catalog. Each tool is listed once (a bare-global alias is
    the same tool)."""

    def __init__(self, functions: list[ToolFunction]):
        self._functions = {f.path: f for f in functions if not f.alias}

    def list(self) -> list[str]:
        return _Listing(sorted(self._functions))

    def search(self, query: str = "", limit: int = 10) -> list[str]:
        words = [w for w in "".join(c if c.isalnum() else " " for c in str(query).lower()).split()]
        scored = []
        for path, fn in self._functions.items():
            name = path.lower()
            text = f"{name} {fn.doc.lower()}"
            score = sum(3 if w in name else 1 for w in words if w in text)
            if score or not words:
                scored.append((-score, path))
        scored.sort()
        return _Listing(
            f"{self._functions[p].signature}  # {self._first_line(p)}" for _, p in scored[:limit]
        )

    def _first_line(self, path: str) -> str:
        doc = self._functions[path].doc.strip()
        return doc.splitlines()[0][:120] if doc else ""

    def _find(self, name: str):
        name = str(name)
        fn = self._functions.get(name)
        if fn is not None:
            return [fn]
        return [f for p, f in self._functions.items() if p.rsplit(".", 1)[-1] == name]

    def describe(self, name: str) -> str:
        found = self._find(name)
        if not found:
            raise KeyError(f"no function named {name!r}{_did_you_mean(name, self._functions)}")
        return _Text("\n\n".join(f.__doc__ for f in found))

    def __getitem__(self, name: str):
        # `tools["team.get_expenses"]`: the function of that name
        found = self._find(name)
        if len(found) == 1:
            return found[0]
        raise KeyError(
            f"no single function named {name!r}{_did_you_mean(name, self._functions)}; "
            "call tools directly: `await ns.tool(...)`"
        )

    def call(self, name: str, arguments: dict | None = None, **kwargs):
        """`await tools.call("team.get_expenses", {...})`: the same as calling it."""
        fn = _resolve_tool(str(name))
        if fn is None:
            raise KeyError(
                f"no single function named {name!r}{_did_you_mean(name, self._functions)}"
            )
        return fn(**{**(arguments or {}), **kwargs})

    def __getattr__(self, name: str):
        # `from tools import get_leads`: the tool of that name, when there is one.
        if name.startswith("_"):
            raise AttributeError(name)
        found = self._find(name)
        if len(found) == 1:
            return found[0]
        if found:
            raise AttributeError(
                f"several tools are named {name!r}: {', '.join(f.path for f in found)}; "
                "use the namespace (e.g. `from ns import name`, or `await ns.name()`)"
            )
        options = [*self._functions, "search", "describe", "list"]
        raise AttributeError(
            f"tools has no {name!r}{_did_you_mean(name, options)}; it offers tools.search(), "
            "tools.describe() and tools.list()"
        )

    def __repr__(self) -> str:
        return f"<tools: {len(self._functions)} functions; use tools.search(query)>"


class Registry:
    """The namespaces and functions of the running execution (for imports and hints)."""

    namespaces: ClassVar[dict[str, "Namespace"]] = {}
    functions: ClassVar[list["ToolFunction"]] = []
    env: ClassVar[dict] = {}
    code = ""

    @classmethod
    def reset(cls) -> None:
        cls.namespaces, cls.functions, cls.env, cls.code = {}, [], {}, ""


_COMMON_WORDS = frozenset(
    "get set list all new add the and for with from into this that http https www com org "
    "net api json data result results response request value values item items return "
    "await async import def class true false none self print text str int float dict "
    "lambda yield else elif while try except finally raise assert pass break continue "
    "global nonlocal timeout status code".split()
)


def _words(text: str) -> set[str]:
    spaced = "".join(c if c.isalnum() else " " for c in text)
    out = set()
    for word in spaced.split():
        for part in _split_case(word):
            if len(part) >= 3 and not part.isdigit() and part not in _COMMON_WORDS:
                out.add(part)
    return out


def _split_case(word: str) -> list[str]:
    parts, current = [], ""
    for c in word:
        if c.isupper() and current and not current[-1].isupper():
            parts.append(current)
            current = ""
        current += c
    parts.append(current)
    return [p.lower() for p in parts] + [word.lower()]


def relevant_to_program(limit: int = 3) -> list[str]:
    """Tools whose names and first doc lines share words with the program (what it was
    trying to reach: `git log` -> git.git_log, a time API URL -> time.get_current_time)."""
    program = _words(Registry.code)
    if not program:
        return []
    scored = []
    for fn in Registry.functions:
        if fn.alias or "." not in fn.path:
            continue
        name = _words(fn.path.rsplit(".", 1)[-1]) | _words(fn.path.split(".", 1)[0])
        doc = _words(fn.doc.strip().split("\n", 1)[0]) - name
        score = 0
        for word in name:
            score += 2 if word in program else any(word in p for p in program if len(word) >= 4)
        score += sum(1 for word in doc if word in program)
        if score >= 2:
            scored.append((-score, fn.path))
    return [p for _, p in sorted(scored)[:limit]]


def relevant_tools(*words: str, limit: int = 4) -> list[str]:
    """Paths of tools whose names mention any of `words` (earlier words weigh more), best
    first; deprecated tools last."""
    scored = []
    for fn in Registry.functions:
        if fn.alias:
            continue
        name = fn.path.rsplit(".", 1)[-1].lower()
        score = sum(2 ** (len(words) - i) for i, w in enumerate(words) if w in name)
        if score:
            deprecated = "deprecated" in fn.doc.lower()
            scored.append((deprecated, -score, fn.path))
    return [p for *_, p in sorted(scored)[:limit]]


def tools_that_may_help(*words: str) -> str:
    """ " (tools that look relevant here: a, b)" from the program's words and `words`."""
    found = relevant_to_program()
    for path in relevant_tools(*words) if words else ():
        if path not in found and len(found) < 4:
            found.append(path)
    return f" (tools that look relevant here: {', '.join(found)})" if found else ""


def _missing_module_message(name: str) -> str:
    top = name.partition(".")[0]
    reason = _cm_stdlib.ABSENT.get(name) or _cm_stdlib.ABSENT.get(top)
    if reason is not None:
        if reason is _cm_stdlib.NO_NETWORK:
            extra = tools_that_may_help("fetch", "http", "url", "web", "browse", "download")
        elif reason is _cm_stdlib.NO_FILES:
            found = relevant_tools("write", "read", "file", "directory")
            extra = f" (tools that look relevant here: {', '.join(found)})" if found else ""
        elif reason is _cm_stdlib.NO_PROCESSES:
            extra = tools_that_may_help()
        else:
            extra = ""
        return f"No module named {name!r}: {reason}{extra}."
    close = _close(name, _cm_stdlib.OFFERED)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    return (
        f"No module named {name!r}: the sandbox has the Python standard library only (no pip "
        "packages, no network, no host files); the tools are the way out"
        f"{tools_that_may_help()}. Modules: "
        f"{', '.join(m for m in _cm_stdlib.OFFERED if '.' not in m)}.{hint}"
    )


class MissingModules:
    """Last on sys.meta_path: an import nothing else found fails with a message that says
    why it is absent and what to use instead."""

    @staticmethod
    def find_spec(name, path=None, target=None):
        raise ModuleNotFoundError(_missing_module_message(name), name=name)

    @staticmethod
    def invalidate_caches():
        pass


_real_import = builtins.__import__


class _FromTools:
    """`from default_api import get_leads`: a made-up module whose names are all tools."""

    def __init__(self, found: dict):
        self.__dict__.update(found)


def program_import(name, globals=None, locals=None, fromlist=(), level=0):
    """`__import__` while a program runs: in the program's own code (its globals are the
    program's), namespaces and the tool API import as themselves; everywhere else (the
    stdlib's own imports) it is the stock import."""
    if level == 0 and globals is Registry.env and globals:
        ns = Registry.namespaces.get(name)
        if ns is not None:
            return ns
        if name == "tools":
            return Registry.env.get("tools")
        if name == "codemode":
            return Registry.env.get("__codemode_module__")
    try:
        return _real_import(name, globals, locals, fromlist, level)
    except ModuleNotFoundError:
        if level != 0 or not fromlist or "." in name:
            raise
        tools = Registry.env.get("tools")
        found = {}
        for wanted in fromlist:
            match = tools._find(wanted) if tools is not None else []
            if len(match) != 1:
                raise
            found[wanted] = match[0]
        return _FromTools(found)


def _noting(label: str, fn, words: tuple[str, ...], lazy: bool = False):
    """`fn`, which looks at host paths; when a program's call of it finds nothing (there
    are no host files here), a note says why and which tools reach files."""

    def wrapper(*args, **kwargs):
        result = fn(*args, **kwargs)
        if lazy:
            result = list(result)
        if not result and sys._getframe(1).f_code.co_filename == CODE_FILENAME:
            found = relevant_tools(*words)
            use = f": use {' or '.join(f'{p}(...)' for p in found[:2])}" if found else ""
            Notes.add(
                f"{label}() found nothing because the sandbox has no host file system (host "
                f"paths never exist here){use}"
            )
        return iter(result) if lazy else result

    return functools.wraps(fn)(wrapper)


def install_file_notes() -> None:
    import glob
    import os
    import pathlib

    listing = ("search", "list", "directory", "tree")
    checking = ("info", "list", "directory", "read")
    glob.glob = _noting("glob.glob", glob.glob, listing)
    glob.iglob = _noting("glob.iglob", glob.iglob, listing, lazy=True)
    os.walk = _noting("os.walk", os.walk, listing, lazy=True)
    for name in ("exists", "isfile", "isdir", "lexists"):
        setattr(os.path, name, _noting(f"os.path.{name}", getattr(os.path, name), checking))
    for name in ("exists", "is_file", "is_dir"):
        method = getattr(pathlib.Path, name)
        setattr(pathlib.Path, name, _noting(f"Path.{name}", method, checking))
    for name in ("glob", "rglob"):
        method = getattr(pathlib.Path, name)
        setattr(pathlib.Path, name, _noting(f"Path.{name}", method, listing, lazy=True))


def install_task_notes() -> None:
    """Tasks still running when a program's loop closes are cancelled (as asyncio.run
    does); a note says how many, since the program likely meant to await them."""
    import asyncio.runners

    stock = asyncio.runners._cancel_all_tasks

    def cancel_all(loop):
        pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
        if pending:
            Notes.add(
                f"{len(pending)} task(s) were still running when the program ended, and were "
                "cancelled: await them before returning, e.g. `await asyncio.gather(*tasks)`"
            )
        return stock(loop)

    asyncio.runners._cancel_all_tasks = cancel_all


def install_csv_of_text() -> None:
    """`csv.reader(text)` reads the text's lines (iterating a str gives characters, which is
    never what is meant); `csv.reader(result_dict)` says where the text is."""
    import csv

    def taking_text(stock):
        @functools.wraps(stock)
        def reader(source, *args, **kwargs):
            if isinstance(source, str):
                source = source.splitlines()
            elif isinstance(source, dict):
                texts = [k for k, v in source.items() if isinstance(v, str)]
                where = f"; this tool result's text is in its {texts[0]!r} field" if texts else ""
                raise TypeError(
                    f"csv.{stock.__name__}() needs text or lines, not a dict{where}: "
                    f"csv.{stock.__name__}(result[{(texts or ['key'])[0]!r}])"
                )
            return stock(source, *args, **kwargs)

        return reader

    csv.reader = taking_text(csv.reader)  # DictReader reads through the module's `reader`


def _help(obj=None):
    """help(x): x's signature and documentation (a tool's, a namespace's functions)."""
    import inspect

    if obj is None:
        print("help(x) prints x's documentation; tools.search('words') finds tools.")
        return
    if isinstance(obj, ToolFunction):
        print(obj.__doc__)
        return
    if isinstance(obj, Namespace):
        print(repr(obj))
        for fn in obj._cm_functions.values():
            print(f"  {fn.signature}")
        return
    try:
        head = f"{getattr(obj, '__name__', type(obj).__name__)}{inspect.signature(obj)}"
    except (TypeError, ValueError):
        head = repr(obj)
    print(head)
    print(inspect.getdoc(obj) or "")


def install_asdict_of_dicts() -> None:
    """`dataclasses.asdict(result)` of a tool result (a dict already) gives a copy of it."""
    stock = dataclasses.asdict

    @functools.wraps(stock)
    def asdict(obj, *, dict_factory=dict):
        if isinstance(obj, dict):
            return dict_factory(obj.items())
        return stock(obj, dict_factory=dict_factory)

    dataclasses.asdict = asdict


def install_gather_of_a_list() -> None:
    """`asyncio.gather([a, b])` (a list, not `*list`) means `gather(a, b)`: it can mean
    nothing else, so the program's gather takes it."""
    import asyncio

    stock = asyncio.gather

    def gather(*aws, return_exceptions=False, **named):
        if len(aws) == 1 and isinstance(aws[0], (list, tuple, types.GeneratorType)):
            aws = tuple(aws[0])
        if named and not aws:  # gather(a=..., b=...): their results by name
            return _gather_named(stock, named, return_exceptions)
        if named:
            raise TypeError(
                "asyncio.gather() takes awaitables positionally (or only by name, to get a "
                f"dict back); got both, and {', '.join(named)} by name"
            )
        return stock(*aws, return_exceptions=return_exceptions)

    gather.__doc__ = stock.__doc__
    gather.__qualname__ = gather.__name__ = "gather"
    gather.__module__ = "asyncio"
    asyncio.gather = gather


async def _gather_named(stock, named: dict, return_exceptions: bool) -> dict:
    values = await stock(*named.values(), return_exceptions=return_exceptions)
    return dict(zip(named, values))


def build_globals(manifest: dict, dumps, return_signal) -> dict:
    """The module globals a program starts with: the tool API and the builtins."""
    import asyncio
    import json

    env: dict = {
        "__name__": "__main__",
        "__builtins__": builtins,
        "asyncio": asyncio,
        "json": json,
        "ToolError": ToolError,
        "__codemode_return__": return_signal,
        "__codemode_gather__": asyncio.gather,
    }
    namespaces: dict[str, Namespace] = {}
    for info in manifest.get("namespaces", ()):
        name = info["name"]
        module = sys.modules.get(name) if name in _cm_stdlib.OFFERED else None
        namespaces[name] = Namespace(name, module, info.get("server"), info.get("hidden", ()))
    functions = []
    for spec in manifest.get("functions", ()):
        fn = (CallTool if spec["path"] == "call_tool" else ToolFunction)(spec, dumps)
        *parents, leaf = fn.path.split(".")
        if not parents:
            env[leaf] = fn
            functions.append(fn)
            continue
        holder = namespaces.get(parents[0])
        if holder is None:
            holder = namespaces[parents[0]] = Namespace(parents[0])
        if leaf == "*":
            holder._cm_fallback = fn.target
            continue
        functions.append(fn)
        holder._cm_add(leaf, fn)
    env.update(namespaces)
    tools = Tools(functions)
    env["tools"] = tools
    product = Namespace("codemode")
    for key in ("ToolError", "tools", "call_tool"):
        if key in env:
            setattr(product, key, env[key])
    for name, value in [*namespaces.items(), *((f.path, f) for f in functions if f.alias)]:
        setattr(product, name, value)
    env["__codemode_module__"] = product
    Registry.namespaces, Registry.functions, Registry.env = namespaces, functions, env
    return env


__all__ = [
    "CODE_FILENAME",
    "UNWRAPPED",
    "Calls",
    "MissingModules",
    "Namespace",
    "Notes",
    "Registry",
    "ToolFunction",
    "Tools",
    "build_globals",
    "install_file_notes",
    "install_gather_of_a_list",
    "relevant_to_program",
    "relevant_tools",
    "tools_that_may_help",
]
