"""The guest side of the sandbox: runs inside CPython compiled to WebAssembly.

componentize-py runs this module's top level once, at build time, and snapshots the heap:
every module imported here is what user code can import (nothing else of the stdlib is
mounted at run time). Each execution starts from that snapshot in a fresh instance.

User code runs on `SandboxLoop`, an asyncio loop whose selector is the host bridge: when
every task is blocked, all tool calls queued since the last crossing go to the host in one
`wait`, which blocks until some finish (or a timer is due). A task whose call
returns early moves on while slower calls are still running on the host.
"""

# The stdlib offered to user code. Each import here is deliberate and tested
# (tests/test_sandbox_stdlib.py); keep the two lists in step.
import abc  # noqa: F401
import array  # noqa: F401
import ast
import asyncio
import base64  # noqa: F401
import binascii  # noqa: F401
import bisect  # noqa: F401
import builtins
import calendar  # noqa: F401
import cmath  # noqa: F401
import codecs  # noqa: F401
import collections
import collections.abc  # noqa: F401
import colorsys  # noqa: F401
import contextlib  # noqa: F401
import copy  # noqa: F401
import csv  # noqa: F401
import dataclasses
import datetime
import decimal
import difflib
import encodings.ascii
import encodings.base64_codec
import encodings.cp1252
import encodings.hex_codec
import encodings.idna
import encodings.latin_1
import encodings.rot_13
import encodings.utf_16
import encodings.utf_32  # noqa: F401
import enum  # noqa: F401
import fnmatch  # noqa: F401
import fractions
import functools  # noqa: F401
import graphlib  # noqa: F401
import gzip  # noqa: F401
import hashlib  # noqa: F401
import heapq  # noqa: F401
import hmac  # noqa: F401
import html
import html.parser  # noqa: F401
import inspect
import io  # noqa: F401
import ipaddress  # noqa: F401
import json
import keyword  # noqa: F401
import linecache
import math  # noqa: F401
import numbers  # noqa: F401
import operator  # noqa: F401
import pathlib  # noqa: F401
import os
import pprint  # noqa: F401
import random
import re
import secrets  # noqa: F401
import shlex  # noqa: F401
import statistics  # noqa: F401
import string  # noqa: F401
import struct  # noqa: F401
import sys
import textwrap  # noqa: F401
import time  # noqa: F401
import traceback
import typing  # noqa: F401
import unicodedata  # noqa: F401
import urllib.parse  # noqa: F401
import uuid  # noqa: F401
import xml.dom.expatbuilder
import xml.dom.minidom
import xml.etree.ElementTree  # noqa: F401
import zlib  # noqa: F401

import wit_world
from wit_world.imports import host

CODE_FILENAME = "<code>"
MAIN_NAME = "__codemode_main__"

# The runtime's own references, taken before any user code runs: a program that replaces
# json.dumps or a builtin breaks only itself, not the reporting of its outcome.
_json_dumps, _json_loads = json.dumps, json.loads


class ToolError(Exception):
    """A tool call failed: the tool reported an error, the arguments were refused, or a
    limit or policy stopped it. `kind` says which; other details are attributes."""

    def __init__(self, message: str, kind: str = "ToolError", **details):
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.details = details
        for key, value in details.items():
            if key.isidentifier() and not hasattr(self, key):
                setattr(self, key, value)


ToolError.__module__ = "builtins"  # tracebacks say "ToolError", as user code spells it


class _Deadline(BaseException):
    """The host says the execution's deadline has passed: unwind without running
    user `except Exception` handlers."""


class _Deadlock(BaseException):
    """Every task waits and nothing (tool call or timer) can wake any of them."""


class AttrDict(dict):
    """A dict from a tool result: `d["k"]` and `d.k` both work; `to_dict()` copies it."""

    __slots__ = ()

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(
                f"result has no field {name!r}; fields: {', '.join(map(str, self)) or '(none)'}"
            ) from None

    def to_dict(self) -> dict:
        return _json_loads(_json_dumps(self))


def _load_json(text: str):
    return _json_loads(text, object_hook=AttrDict)


_SURROGATES = re.compile("[\ud800-\udfff]")


def _valid_text(text: str) -> str:
    """`text` as valid Unicode: lone surrogates (which Python strings may hold, but which
    neither the component model nor the MCP client's JSON can carry) become U+FFFD."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return _SURROGATES.sub("\ufffd", text)


# ---------------------------------------------------------------------------
# Captured output


class _BoundedOutput:
    """sys.stdout / sys.stderr stand-in. Writes go straight to the host (WASI stdout), so
    output printed before a timeout survives it; past `limit` bytes they are only counted.
    The host bounds what it keeps too: this class is a courtesy, not the guard."""

    encoding = "utf-8"
    errors = "strict"

    def __init__(self, limit: int):
        self.limit = limit
        self.kept = 0
        self.dropped = 0

    def write(self, text) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        data = text.encode("utf-8", "surrogatepass")
        room = self.limit - self.kept
        if len(data) > room:
            self.dropped += len(data) - max(room, 0)
            data = data[: max(room, 0)]
        if data:
            self.kept += len(data)
            view = memoryview(data)
            while view:
                view = view[os.write(1, view) :]
        return len(text)

    def writelines(self, lines) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False


# ---------------------------------------------------------------------------
# The bridge and the event loop


class _Bridge:
    """Tool calls queued by tasks, and the futures of calls the host is running."""

    def __init__(self):
        self.queued: list[dict] = []
        self.running: dict[int, asyncio.Future] = {}
        self.next_id = 1

    def call(self, target: str, args: dict) -> asyncio.Future:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        call_id = self.next_id
        self.next_id += 1
        self.queued.append({"id": call_id, "target": target, "args": args})
        self.running[call_id] = future
        return future

    def _take_batch(self) -> str:
        if not self.queued:
            return ""
        batch, self.queued = self.queued, []
        try:
            # ASCII: a lone surrogate in an argument reaches the host escaped, where
            # raw it could not cross as a component-model string.
            return _json_dumps(batch, allow_nan=False)
        except (TypeError, ValueError) as exc:
            # Arguments were checked one by one when queued; this is a last guard.
            for call in batch:
                future = self.running.pop(call["id"], None)
                if future is not None and not future.done():
                    future.set_exception(
                        ToolError(f"arguments are not JSON: {exc}", "InvalidArguments")
                    )
            return ""

    def wait(self, timeout):
        """Send the queued calls, then block in the host until a call completes or
        `timeout` seconds pass."""
        batch = self._take_batch()
        if timeout is None and not self.running:
            raise _Deadlock()
        if timeout is None:
            ms = -1
        else:
            ms = max(0, min(int(timeout * 1000 + 0.999), 2**31 - 1))
        # One parse for the reply and every value in it (the host embeds each value's
        # JSON as is), so tool results arrive as AttrDicts without a second decode.
        reply = _load_json(host.wait(batch, ms))
        if reply.get("expired"):
            raise _Deadline()
        for done in reply.get("done", ()):
            future = self.running.pop(done.get("id"), None)
            if future is None or future.done():
                continue  # the awaiting task was cancelled; drop the late result
            if done.get("ok"):
                future.set_result(done.get("value"))
            else:
                error = done.get("error") or {}
                details = error.get("details") or {}
                future.set_exception(
                    ToolError(
                        str(error.get("message", "tool call failed")),
                        str(error.get("type", "ToolError")),
                        **details,
                    )
                )


_bridge = _Bridge()


class _BridgeSelector:
    """Stands in for the selector of BaseEventLoop: `select(timeout)` with a non-zero
    timeout is the moment every task is blocked, so that is when calls cross."""

    def select(self, timeout):
        if timeout == 0:  # some task is ready to run: calls wait until all are blocked
            return ()
        _bridge.wait(timeout)
        return ()

    def close(self):
        pass

    def get_map(self):
        return {}


class SandboxLoop(asyncio.BaseEventLoop):
    """asyncio on WASI without sockets: timers and tasks are stock; I/O is the bridge."""

    def __init__(self):
        super().__init__()
        self._selector = _BridgeSelector()

    def _process_events(self, event_list):
        pass

    def _write_to_self(self):
        pass

    def run_in_executor(self, executor, func, *args):
        raise RuntimeError("the sandbox has no threads: call the function directly")


def _install_loop() -> None:
    # asyncio.run() and asyncio.Runner() create their loop through events.new_event_loop.
    asyncio.events.new_event_loop = SandboxLoop
    asyncio.new_event_loop = SandboxLoop


_install_loop()


# ---------------------------------------------------------------------------
# Functions the host offers, built from the manifest


def _jsonable_arg(name: str, value):
    try:
        _json_dumps(value, allow_nan=False)
        return value
    except (TypeError, ValueError):
        pass
    if isinstance(value, (set, frozenset)):
        return [_jsonable_arg(name, v) for v in value]
    if isinstance(value, (datetime.date, datetime.datetime, datetime.time)):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, tuple):
        return [_jsonable_arg(name, v) for v in value]
    raise TypeError(
        f"argument {name!r} is a {type(value).__name__}, which is not JSON; "
        "pass str, int, float, bool, None, list or dict"
    )


class _Function:
    """One callable the host offers, with the parameters of its schema."""

    def __init__(self, spec: dict):
        self.path = spec["path"]
        self.target = spec["target"]
        self.params = [p["name"] for p in spec.get("params", ())]
        self.required = [p["name"] for p in spec.get("params", ()) if p.get("required")]
        self.signature = spec.get("signature") or f"{self.path}({', '.join(self.params)})"
        self.doc = spec.get("doc") or ""
        self.__name__ = self.path.rsplit(".", 1)[-1]
        self.__qualname__ = self.path
        self.__doc__ = f"{self.signature}\n\n{self.doc}".strip()

    def _bind(self, args, kwargs) -> dict:
        if len(args) > len(self.params):
            raise TypeError(
                f"{self.path}() takes {len(self.params)} positional argument(s) "
                f"({', '.join(self.params) or 'none'}) but {len(args)} were given"
            )
        bound = {}
        for name, value in zip(self.params, args):
            bound[name] = value
        for name, value in kwargs.items():
            if name in bound:
                raise TypeError(f"{self.path}() got multiple values for argument {name!r}")
            if name not in self.params:
                raise TypeError(
                    f"{self.path}() got an unexpected keyword argument {name!r}; "
                    f"parameters: {', '.join(self.params) or 'none'}"
                )
            bound[name] = value
        missing = [name for name in self.required if name not in bound]
        if missing:
            raise TypeError(
                f"{self.path}() missing required argument(s): {', '.join(map(repr, missing))}"
            )
        return {name: _jsonable_arg(name, value) for name, value in bound.items()}

    def __call__(self, *args, **kwargs):
        bound = self._bind(args, kwargs)
        return _await_call(self.target, bound)

    def __repr__(self) -> str:
        return f"<tool {self.signature}>"


async def _await_call(target: str, args: dict):
    return await _bridge.call(target, args)


class _Namespace:
    """The functions of one server: `await github.list_issues(...)`. A namespace with a
    fallback (spec path "name.*") turns any other attribute into a call of the fallback
    target with {"name": attribute, "args": keyword arguments}."""

    def __init__(self, name: str):
        self.__name__ = name
        self._functions: dict[str, object] = {}
        self._fallback: str | None = None

    def _add(self, name: str, value) -> None:
        self._functions[name] = value
        setattr(self, name, value)

    def __getattr__(self, name: str):
        if name.startswith("__") or self.__dict__.get("_fallback") is None:
            close = difflib.get_close_matches(name, list(self.__dict__.get("_functions", ())), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            known = ", ".join(sorted(self.__dict__.get("_functions", ()))) or "none"
            raise AttributeError(
                f"{self.__name__} has no function {name!r}{hint} (functions: {known})"
            )
        target = self._fallback

        async def fallback(**kwargs):
            return await _bridge.call(target, {"name": name, "args": kwargs})

        fallback.__name__ = name
        return fallback

    def __dir__(self):
        return sorted(self._functions)

    def __repr__(self) -> str:
        return f"<namespace {self.__name__}: {', '.join(sorted(self._functions))}>"


class _Tools:
    """`tools.search(query)` / `tools.describe(name)` / `tools.list()`: find functions
    without reading the whole catalog."""

    def __init__(self, functions: list[_Function]):
        self._functions = {f.path: f for f in functions}

    def list(self) -> list[str]:
        return sorted(self._functions)

    def search(self, query: str, limit: int = 10) -> list[str]:
        words = [w for w in re.split(r"\W+", str(query).lower()) if w]
        scored = []
        for path, fn in self._functions.items():
            name = path.lower()
            text = f"{name} {fn.doc.lower()}"
            score = sum(3 if w in name else 1 for w in words if w in text)
            if score or not words:
                scored.append((-score, path))
        scored.sort()
        return [
            f"{self._functions[p].signature}  # {self._first_line(p)}" for _, p in scored[:limit]
        ]

    def _first_line(self, path: str) -> str:
        doc = self._functions[path].doc.strip()
        return doc.splitlines()[0][:120] if doc else ""

    def describe(self, name: str) -> str:
        fn = self._functions.get(name) or next(
            (f for p, f in self._functions.items() if p.rsplit(".", 1)[-1] == name), None
        )
        if fn is None:
            close = difflib.get_close_matches(str(name), list(self._functions), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise KeyError(f"no function named {name!r}{hint}")
        return fn.__doc__

    def __repr__(self) -> str:
        return f"<tools: {len(self._functions)} functions; use tools.search(query)>"


def _build_globals(functions_spec: list[dict]) -> dict:
    env: dict = {
        "__name__": "__main__",
        "__builtins__": __builtins__,
        "asyncio": asyncio,
        "json": json,
        "ToolError": ToolError,
    }
    functions = []
    for spec in functions_spec:
        fn = _Function(spec)
        functions.append(fn)
        *parents, leaf = fn.path.split(".")
        if leaf == "*":
            functions.pop()
        if not parents:
            env[leaf] = fn
            continue
        holder = env.get(parents[0])
        if not isinstance(holder, _Namespace):
            holder = _Namespace(parents[0])
            env[parents[0]] = holder
        for part in parents[1:]:
            child = holder._functions.get(part)
            if not isinstance(child, _Namespace):
                child = _Namespace(f"{holder.__name__}.{part}")
                holder._add(part, child)
            holder = child
        if leaf == "*":
            holder._fallback = fn.target
        else:
            holder._add(leaf, fn)
    env["tools"] = _Tools(functions)
    return env


# ---------------------------------------------------------------------------
# Compiling user code


def _has_top_level_await(tree: ast.AST) -> bool:
    scopes = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)
    stack = list(ast.iter_child_nodes(tree))
    while stack:
        node = stack.pop()
        if isinstance(node, scopes):
            continue
        if isinstance(node, (ast.Await, ast.AsyncFor, ast.AsyncWith)):
            return True
        if isinstance(node, ast.comprehension) and node.is_async:
            return True
        stack.extend(ast.iter_child_nodes(node))
    return False


def _compile(code: str):
    """Wrap the program in a function so top-level `return` and `await` work; the last
    expression statement becomes the return value. Line numbers are the user's."""
    tree = ast.parse(code, CODE_FILENAME, "exec")
    body = tree.body
    if body and isinstance(body[-1], ast.Expr):
        last = body[-1]
        body[-1] = ast.copy_location(ast.Return(value=last.value), last)
    if not body:
        body = [ast.Pass(lineno=1, col_offset=0, end_lineno=1, end_col_offset=0)]
    # Every form of top-level await spells `await` or `async`: most programs without
    # either skip the tree walk.
    is_async = ("await" in code or "async" in code) and _has_top_level_await(tree)
    kind = ast.AsyncFunctionDef if is_async else ast.FunctionDef
    # The wrapper's location is set here, not by ast.fix_missing_locations: that walks
    # the whole tree and costs more than compiling it.
    fn = kind(
        name=MAIN_NAME,
        args=ast.arguments(posonlyargs=[], args=[], kwonlyargs=[], kw_defaults=[], defaults=[]),
        body=body,
        decorator_list=[],
        returns=None,
        type_params=[],
        lineno=1,
        col_offset=0,
        end_lineno=max(1, getattr(body[-1], "end_lineno", None) or 1),
        end_col_offset=0,
    )
    module = ast.Module(body=[fn], type_ignores=[])
    return compile(module, CODE_FILENAME, "exec", dont_inherit=True), is_async


# ---------------------------------------------------------------------------
# Results and errors


def _jsonable_result(value):
    if isinstance(value, (set, frozenset)):
        try:
            return sorted(value)
        except TypeError:
            return list(value)
    if isinstance(value, (datetime.date, datetime.datetime, datetime.time)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray)):
        return value.decode("utf-8", "backslashreplace")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, (decimal.Decimal, fractions.Fraction)):
        return float(value)
    if hasattr(value, "to_dict") and callable(value.to_dict):
        return value.to_dict()
    return repr(value)


def _user_frames(tb) -> traceback.StackSummary:
    frames = [f for f in traceback.extract_tb(tb) if f.filename == CODE_FILENAME]
    for f in frames:
        if f.name == MAIN_NAME:
            f.name = "<module>"
    return traceback.StackSummary.from_list(frames)


def _error(exc: BaseException, kind: str | None = None) -> dict:
    name = kind or type(exc).__name__
    if isinstance(exc, SyntaxError):
        where = f"line {exc.lineno}" + (f", column {exc.offset}" if exc.offset else "")
        text = "".join(traceback.format_exception_only(type(exc), exc))
        return {
            "type": name,
            "message": f"{exc.msg} ({where})",
            "traceback": text,
            "line": exc.lineno,
            "column": exc.offset,
        }
    frames = _user_frames(exc.__traceback__)
    lines = ["Traceback (most recent call last):\n", *frames.format()] if frames else []
    lines += traceback.format_exception_only(type(exc), exc)
    message = str(exc) if not isinstance(exc, KeyError) else repr(exc.args[0]) if exc.args else ""
    if isinstance(exc, ToolError):
        name = "ToolError"
    return {
        "type": name,
        "message": message,
        "traceback": "".join(lines),
        "line": frames[-1].lineno if frames else None,
        **({"kind": exc.kind, "details": exc.details} if isinstance(exc, ToolError) else {}),
    }


def _run_program(code_obj, is_async: bool, env: dict):
    exec(code_obj, env)
    main = env.pop(MAIN_NAME)
    if not is_async:
        return main()
    with asyncio.Runner(loop_factory=SandboxLoop) as runner:
        return runner.run(main())


def _execute(code: str, options: dict) -> dict:
    saved_builtins = dict(builtins.__dict__)
    try:
        return _execute_program(code, options)
    finally:
        builtins.__dict__.clear()
        builtins.__dict__.update(saved_builtins)


def _execute_program(code: str, options: dict) -> dict:
    limits = options.get("limits", {})
    out = _BoundedOutput(int(limits.get("max_stdout_bytes", 65536)))
    sys.stdout = sys.stderr = out
    random.seed()  # the build-time snapshot would otherwise fix every execution's sequence
    linecache.cache[CODE_FILENAME] = (len(code), None, code.splitlines(True), CODE_FILENAME)
    outcome: dict = {"ok": True, "result": None, "error": None}  # result: encoded later
    try:
        code_obj, is_async = _compile(code)
        env = _build_globals(options.get("functions", []))
        value = _run_program(code_obj, is_async, env)
        if inspect.iscoroutine(value):
            value.close()
            raise TypeError("the program returned a coroutine: put `await` before the call")
        outcome["result"] = value
    except _Deadline:
        outcome.update(ok=False, error={"type": "DeadlineExpired", "message": "deadline passed"})
    except _Deadlock:
        outcome.update(
            ok=False,
            error={
                "type": "DeadlockError",
                "message": "every task is waiting and no tool call or timer can wake one "
                "(an awaited Future or Event is never set)",
                "traceback": "",
            },
        )
    except SyntaxError as exc:
        outcome.update(ok=False, error=_error(exc))
    except BaseException as exc:  # noqa: BLE001 - user code may raise anything, SystemExit too
        outcome.update(ok=False, error=_error(exc))
    finally:
        sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
    outcome["stdout_dropped_bytes"] = out.dropped
    return outcome


def _encode_outcome(outcome: dict, max_result_bytes: int) -> str:
    try:
        result_text = _json_dumps(outcome["result"], ensure_ascii=False, default=_jsonable_result)
    except (ValueError, TypeError, RecursionError) as exc:
        outcome["ok"] = False
        outcome["error"] = {
            "type": "ResultError",
            "message": f"the result could not be converted to JSON: {exc}",
            "traceback": "",
        }
        result_text = "null"
    result_text = _valid_text(result_text)
    outcome["result"] = None
    size = len(result_text.encode("utf-8", "surrogatepass"))
    outcome["result_bytes"] = size
    if size > max_result_bytes:
        outcome["result_truncated"] = result_text.encode("utf-8", "surrogatepass")[
            :max_result_bytes
        ].decode("utf-8", "ignore")
        result_text = "null"
    outcome["result_json"] = result_text
    return _valid_text(_json_dumps(outcome, ensure_ascii=False, default=repr))


class WitWorld(wit_world.WitWorld):
    def run(self, code: str, options: str) -> str:
        opts = _json_loads(options)
        outcome = _execute(code, opts)
        return _encode_outcome(outcome, int(opts.get("limits", {}).get("max_result_bytes", 65536)))
