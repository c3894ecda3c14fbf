"""One sentence that names the fix, for the mistakes programs make against this sandbox.

`hint_for(exc, line)` looks at an uncaught exception and the source line it came from and
returns a hint, or None when the exception is the program's own logic (a plain
ZeroDivisionError needs no lecture). Each rule covers a family of mistakes, not one
string: values that are already decoded, raw MCP shapes, await mistakes, event-loop APIs,
host files, network and processes, names that do not exist. Hints an object knows best
(a tool result's missing key) ride on the exception as `_cm_hint`.
"""

import errno
import re
import socket

import _cm_stdlib
from _cm_zones import ABBREVIATIONS
from _cm_api import Calls, Namespace, Registry
from _cm_relevance import relevant_tools, tools_that_may_help
from _cm_bridge import RAW_MCP_FIELDS, UNWRAPPED
from _cm_precheck import name_hint

_ASYNC_SYNTAX = (
    "'await' outside async function",
    "'async with' outside async function",
    "'async for' outside async function",
    "asynchronous comprehension outside of an asynchronous function",
)
_LOOP_RUNNING = (
    "cannot be called from a running event loop",
    "This event loop is already running",
    "Cannot run the event loop while another loop is running",
)
_FILE_ERRNOS = frozenset(
    {errno.ENOENT, errno.EACCES, errno.EPERM, errno.ENOTDIR, errno.EISDIR, errno.EEXIST,
     getattr(errno, "ENOTCAPABLE", 76), errno.EBADF, errno.EROFS}
)  # fmt: skip
_FILE_ERRORS = (
    FileNotFoundError,
    PermissionError,
    IsADirectoryError,
    NotADirectoryError,
    FileExistsError,
)
_PROCESS_CALLS = re.compile(
    r"\b(subprocess|os\.(system|popen|fork|exec\w*|spawn\w*|kill)|threading|multiprocessing|"
    r"Thread\(|ThreadPool|ProcessPool)"
)
_NETWORK_CALLS = re.compile(r"\b(socket|urlopen|connect|getaddrinfo|http|request)", re.I)


def _coroutine_hint() -> str:
    pending = Calls.describe_pending()
    if pending:
        return (
            f"{pending} was called without `await`, so it is a coroutine, not its result: "
            "write `await` before the call (or gather several with `await asyncio.gather(...)`)"
        )
    return (
        "this value is a coroutine: a call of an async function (a tool, or your own "
        "`async def`) gives its result only when awaited; write `await` before the call"
    )


def _file_hint(line: str) -> str:
    if re.search(r"""['"][wax]|write|mkdir|makedirs|remove|unlink|rename|touch""", line):
        words = ("write", "create", "edit", "move")
    elif re.search(r"listdir|iterdir|scandir|walk|glob|exists|is_file|is_dir|stat", line):
        words = ("list", "directory", "search", "info")
    else:
        words = ("read_text", "read_file", "read")
    found = relevant_tools(*words) or relevant_tools("file", "directory")
    if found:
        return (
            f"{_cm_stdlib.NO_FILES}: call {' or '.join(f'`await {p}(...)`' for p in found[:3])} "
            "(files on the host are reachable only through such tools)"
        )
    return (
        f"{_cm_stdlib.NO_FILES}: no filesystem server is configured, so no host file can be "
        "read; add one to the codemode config to reach files"
    )


def _network_hint() -> str:
    extra = tools_that_may_help("fetch", "http", "url", "web", "browse", "download")
    return f"{_cm_stdlib.NO_NETWORK}{extra}"


def _process_hint() -> str:
    return f"{_cm_stdlib.NO_PROCESSES}{tools_that_may_help()}"


def _text_tools() -> str:
    """ " (ns.tool returns text, a str)" for the tools that gave a str in this run."""
    tools = list(Calls.texts)[:2]
    if not tools:
        return " (the tool returned text)"
    return f" ({' and '.join(tools)} return{'s' * (len(tools) == 1)} text, a str)"


_SHAPE_ERRORS = (
    "not subscriptable", "not iterable", "indices must be", "unsupported operand",
    "can only concatenate", "not supported between", "is not callable", "has no len",
    "must be str, not", "expected str",
)  # fmt: skip
"""TypeErrors about what a value is: the tool that gave it, and its shape, may help."""

_DATE_ATTRS = frozenset(
    {"strftime", "year", "month", "day", "hour", "minute", "date", "time", "isoformat",
     "timestamp", "weekday", "isoweekday", "astimezone", "tzinfo", "replace"} - {"replace"}
)  # fmt: skip

_FUTURE_TYPES = ("_GatheringFuture", "Future", "Task")


def _future_hint() -> str:
    return (
        "this value is a future (from asyncio.gather(...) or create_task(...)) that was not "
        "awaited: write `await` before it, e.g. `results = await asyncio.gather(...)`"
    )


def _value_kind(value) -> str:
    if isinstance(value, str):
        return "a str (the tool returned text)"
    if isinstance(value, list):
        return f"a list of {len(value)} item(s)"
    return f"a {type(value).__name__}"


def _attribute_hint(exc: AttributeError, line: str) -> str | None:
    name, obj = getattr(exc, "name", None), getattr(exc, "obj", None)
    if type(obj).__name__ == "coroutine":
        return _coroutine_hint()
    if name is None:
        return None
    if type(obj).__name__ in _FUTURE_TYPES:
        return _future_hint()
    if isinstance(obj, str) and (name in RAW_MCP_FIELDS or name in ("get", "keys")):
        shape = _tool_result_hint(line)
        return (
            f"{UNWRAPPED}: it is a str{_text_tools()}; use it directly (json.loads(it) if it "
            "holds JSON)" + (f". {shape}" if shape else "")
        )
    if isinstance(obj, list) and (name in RAW_MCP_FIELDS or name in ("get", "keys")):
        return f"{UNWRAPPED}: it is {_value_kind(obj)}; loop over it or index it with a number"
    if (
        type(obj).__name__ == "module"
        and obj.__name__ == "datetime"
        and name in ("now", "utcnow", "today", "fromisoformat", "strptime", "fromtimestamp")
    ):
        return f"use datetime.datetime.{name}(...) (or `from datetime import datetime`)"
    if isinstance(obj, str) and name in _DATE_ATTRS:
        shown = obj if len(obj) <= 40 else obj[:37] + "..."
        return (
            f"{shown!r} is a str (tools return dates as ISO text): parse it first, "
            f"datetime.datetime.fromisoformat({shown!r}) (or datetime.date.fromisoformat)"
        )
    if name in ("localize", "normalize") and type(obj).__name__ == "ZoneInfo":
        return (
            f"{name}() is pytz's; with zoneinfo attach the zone directly: "
            "datetime(..., tzinfo=zone) or dt.replace(tzinfo=zone), and dt.astimezone(zone)"
        )
    having = [ns for ns, v in Registry.namespaces.items() if name in v._cm_functions]
    if having and not isinstance(obj, Namespace):
        return f"{name} is a tool of namespace {having[0]}: call `await {having[0]}.{name}(...)`"
    return None


def _type_hint(exc: TypeError, line: str) -> str | None:
    text = str(exc)
    if "should be called on dataclass instances" in text:
        return (
            f"{UNWRAPPED}: tool results are plain dicts already; use them (or dict(x)) as they are"
        )
    if "argument after ** must be a mapping" in text:
        called = re.search(r"\*\*(\w+)", line)
        spread = f"*{called.group(1)}" if called else "*args"
        fn = _tool_named(text)
        sig = f" (signature: {fn.signature.split(' -> ')[0]})" if fn else ""
        return f"`**` takes a dict of keyword arguments; a list goes with `{spread}`{sig}"
    if "unsupported format string passed to NoneType" in text:
        return (
            "a value in the f-string is None (a field a tool may leave empty, `T | None`): "
            "give a fallback, e.g. f\"{x or '-':>8}\""
        )
    if (
        "buffer API required" in text
        or "Strings must be encoded" in text
        or ("a bytes-like object is required" in text)
    ):
        return (
            "this needs bytes: text.encode() for a str, json.dumps(value, sort_keys=True)"
            ".encode() for a dict or list"
        )
    if "can't be awaited" in text or "can't be used in 'await' expression" in text:
        called = re.search(r"await\s+([\w.]+)\s*\(", line)
        name = called.group(1) if called else None
        if name and "." not in name:
            return f"{name}() is a plain function (def, not async def): call it without `await`"
        return (
            "this value is not awaitable: only tool calls and your own `async def` functions "
            "are awaited; remove the `await` before it (several calls: `await asyncio.gather("
            "...)`)"
        )
    if "An asyncio.Future, a coroutine or an awaitable is required" in text:
        return (
            "asyncio.gather(), wait_for() and create_task() take coroutines (tool calls), not "
            "plain values; `*d` on a dict passes its keys: use `*d.values()`"
        )
    if "Passing coroutines is forbidden" in text:
        return (
            "asyncio.wait() takes tasks, not coroutines: `await asyncio.gather(*coros)` is "
            "simpler (or wrap each one in asyncio.create_task())"
        )
    if "async_generator" in text:
        return (
            "this is an async generator: loop over it with `async for` (at the top level or in "
            "an `async def`), or collect it with `[x async for x in gen]`"
        )
    if "is not JSON serializable" in text:
        return (
            "json.dumps takes plain values: make sets lists (sorted(s)), datetimes str "
            "(.isoformat()), objects dicts; or return the value and let codemode convert it"
        )
    if "coroutine" in text:
        return _coroutine_hint()
    if any(f"'{kind}'" in text for kind in _FUTURE_TYPES):
        return _future_hint()
    if "string indices must be integers" in text:
        return (
            f"{UNWRAPPED}: this value is a str{_text_tools()}; use it as text (split its "
            "lines, search it with re), or json.loads(it) first if it holds JSON"
        )
    if "list indices must be integers" in text:
        return f"{UNWRAPPED}: this value is a list; loop over it or index it with a number"
    if "the JSON object must be str" in text:
        return f"{UNWRAPPED}: this value is already a Python value; use it without json.loads"
    return None


def _runtime_hint(exc: RuntimeError, line: str) -> str | None:
    text = str(exc)
    if any(marker in text for marker in _LOOP_RUNNING):
        return (
            "the program already runs in an event loop: write `await main()` instead of "
            "asyncio.run(main()) or loop.run_until_complete(main()); a plain `def` that "
            "needs it should become `async def` and be awaited"
        )
    if "Could not determine home directory" in text:
        return (
            _file_hint(line).replace(
                _cm_stdlib.NO_FILES,
                "the sandbox has no home directory and " + _cm_stdlib.NO_FILES[4:],
            )
            + " (fs.list_allowed_directories() names the folders a filesystem server may read)"
        )
    if "cannot reuse already awaited coroutine" in text:
        return (
            "a coroutine can be awaited only once: functools.cache/lru_cache on an `async "
            "def` caches the coroutine, not its result; keep results in a dict instead"
        )
    if "thread" in text.lower() or _PROCESS_CALLS.search(line):
        return _process_hint()
    return None


def _empty_hint(line: str) -> str:
    """For max()/min()/mean() of nothing: a tool that returned [] here, else the filter."""
    for path, args in Calls.empty.items():
        fn = next((f for f in Registry.functions if f.path == path), None)
        doc = fn.doc.strip().split("\n", 1)[0] if fn and fn.doc else ""
        shown = ", ".join(f"{k}={v!r}" for k, v in args.items())
        takes = f"; its doc: {doc}" if doc else ""
        return f"the sequence is empty: {path}({shown}) returned [] in this run{takes}"
    return (
        "the sequence is empty: the filter kept nothing; compare it with the values the tool "
        "really returns (print a few), or give a default: max(xs, default=None)"
    )


def _value_hint(exc: ValueError, line: str) -> str | None:
    text = str(exc)
    if type(exc).__name__ == "JSONDecodeError":
        doc = getattr(exc, "doc", "") or ""
        if doc.lstrip()[:2] in ("{'", "['"):
            return (
                "this is str() of a dict or list (Python's repr, single quotes), not JSON: "
                "use the value itself; tool results come back already parsed"
            )
        start = " \\n ".join(doc.strip().splitlines()[:3])[:120]
        return (
            "this text is not JSON: a tool that returns JSON comes back already parsed, and "
            f"a text tool gives a plain str; parse this one as text (it starts: {start})"
        )
    if "empty" in text and ("max()" in text or "min()" in text or "arg is an empty" in text):
        return _empty_hint(line)
    if "C' locale" in text or ("locale" in text.lower() and "not possible" in text):
        return "the sandbox has only the C locale: format numbers with f'{x:,.2f}'"
    if "values to unpack" in text:
        looped = re.search(r"for\s+\w+\s*,\s*\w+\s+in\s+(\w+)\s*:", line)
        if looped and looped.group(1) in _frame_names(exc):
            name = looped.group(1)
            if isinstance(_frame_names(exc)[name], dict):
                return f"looping over a dict gives its keys: write `for k, v in {name}.items():`"
    if "does not match format" in text or "unconverted data remains" in text:
        return (
            "for ISO 8601 text ('2024-07-01T12:00:00+00:00') use datetime.fromisoformat(text); "
            "strptime needs the format to match exactly, offset included (%z)"
        )
    return None


def _tool_named(text: str):
    """The tool function a message starts with ("team.get_expenses() ..."), or None."""
    return next(
        (f for f in Registry.functions if not f.alias and text.startswith(f"{f.path}(")), None
    )


def _frame_names(exc: BaseException) -> dict:
    """The names of the program's innermost frame when `exc` was raised."""
    tb, frame = exc.__traceback__, None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<code>":
            frame = tb.tb_frame
        tb = tb.tb_next
    return {**frame.f_globals, **frame.f_locals} if frame is not None else {}


def _tool_error_hint(exc) -> str | None:
    """For a tool's own error: the zone a time-zone abbreviation means, else the tool's
    signature and what its doc says about the arguments."""
    text = str(exc)
    if re.search(r"time ?zone", text, re.I):
        for word in re.findall(r"\b([A-Za-z]{2,5})\b", text):
            zone = ABBREVIATIONS.get(word.upper())
            if zone:
                return f"time zones are IANA names: {word} is e.g. {zone!r} (or 'UTC')"
    fn = next(
        (f for f in Registry.functions if not f.alias and text.startswith(f"{f.path} ")), None
    )
    if fn is None or getattr(exc, "kind", "") != "ToolError":
        return None
    doc = fn.doc.strip()
    return f"{fn.signature.split(' -> ')[0]}: {doc[:300]}" if doc else None


def _tool_result_hint(line: str) -> str | None:
    """For an error about a value's shape: what the tool on this line returns (or, when
    the line calls none, the one tool this run called, or the text tool it called), with
    what its result looked like in this run, so the fix can follow the real shape."""
    paths = []
    for ns_name, fn_name in re.findall(r"\b(\w+)\.(\w+)\s*\(", line):
        ns = Registry.namespaces.get(ns_name)
        if ns is not None and fn_name in ns._cm_functions:
            paths.append(f"{ns_name}.{fn_name}")
    if not paths:
        called = list(Calls.seen)
        paths = called if len(called) == 1 else list(Calls.texts)[-1:]
    if not paths:
        return None
    path = paths[0]
    fn = next((f for f in Registry.functions if f.path == path), None)
    returns = fn.signature.rsplit(" -> ", 1)[-1] if fn and " -> " in fn.signature else "Any"
    seen = Calls.texts.get(path)
    if seen is not None:
        start = " \\n ".join(line[:60] for line in seen.splitlines()[:4])
        looked = f"; here it returned text starting: {start} ..."
    elif path in Calls.seen:
        looked = f"; here it returned {Calls.seen[path]}"
    else:
        looked = ""
    return f"{path}() returns {returns}{looked}: follow that shape"


def _os_hint(exc: OSError, line: str) -> str | None:
    if isinstance(exc, TimeoutError):
        return None
    if isinstance(exc, (ConnectionError, socket.gaierror, socket.herror)):
        return _network_hint()
    if _PROCESS_CALLS.search(line) or "support processes" in str(exc):
        return _process_hint()
    if _NETWORK_CALLS.search(line) and "open(" not in line:
        return _network_hint()
    if isinstance(exc, _FILE_ERRORS) or exc.errno in _FILE_ERRNOS:
        return _file_hint(line)
    return None


def _syntax_hint(exc: SyntaxError, code: str) -> str | None:
    text = exc.msg or ""
    lines = code.splitlines()
    source = exc.text or (lines[exc.lineno - 1] if exc.lineno and exc.lineno <= len(lines) else "")
    if code.lstrip().startswith("```"):
        return "send the Python code alone, without the ``` Markdown fence around it"
    if any(marker in text for marker in _ASYNC_SYNTAX):
        if "lambda" in source:
            return (
                "a lambda cannot await: fetch the values first (`values = await "
                "asyncio.gather(...)`), then sort or filter with a plain lambda over them"
            )
        return (
            "`await` works at the top level and inside `async def` only: make the enclosing "
            "function `async def`, and `await` it where it is called"
        )
    if "'yield' outside function" in text:
        return "a program is not a generator: collect the values in a list and return it"
    return None


def hint_for(exc: BaseException, line: str, code: str = "") -> str | None:
    """The fix for `exc`, raised at source `line` of the program, or None."""
    own = getattr(exc, "_cm_hint", None)
    if own:
        return own
    if type(exc).__name__ == "ToolError":
        return _tool_error_hint(exc)
    try:
        if isinstance(exc, SyntaxError):
            return _syntax_hint(exc, code)
        if isinstance(exc, NameError):
            name = getattr(exc, "name", None)
            if not name:
                return None
            if name in ("__file__", "__path__"):
                return _file_hint(line).replace(
                    _cm_stdlib.NO_FILES,
                    f"the program is not a file (there is no {name}), and "
                    + _cm_stdlib.NO_FILES[4:],
                )
            match = re.search(rf"\b{re.escape(name)}\.(\w+)\s*(\(\s*[\"'](\w+))?", line)
            attr = match.group(1) if match else None
            called = match.group(3) if match else None
            text = name_hint(name, attr, Registry.env, called=called)
            return text.lstrip("; ").strip() or None
        if isinstance(exc, AttributeError):
            return _attribute_hint(exc, line) or _tool_result_hint(line)
        if isinstance(exc, ImportError) and not isinstance(exc, ModuleNotFoundError):
            module = Registry.namespaces.get(getattr(exc, "name", None) or "")
            wanted = re.search(r"cannot import name '(\w+)'", str(exc))
            if module is not None and wanted:
                return module._cm_missing(wanted.group(1))
            return None
        if isinstance(exc, TypeError):
            shaped = any(marker in str(exc) for marker in _SHAPE_ERRORS)
            return _type_hint(exc, line) or (_tool_result_hint(line) if shaped else None)
        if isinstance(exc, RuntimeError):
            return _runtime_hint(exc, line)
        if isinstance(exc, OSError):
            return _os_hint(exc, line)
        if isinstance(exc, KeyError) and re.search(r"\b(environ|getenv)\b", line):
            return (
                "the sandbox sees no environment variables (by design): write the value in "
                "the program, or get it through a tool"
            )
        if isinstance(exc, EOFError):
            return (
                "there is no stdin here, so input() reads nothing (no one is there to type): "
                "write the value in the program"
            )
        if isinstance(exc, IndexError) and "argv" in line:
            return (
                "sys.argv holds no arguments here (a program takes no command line): write "
                "the values in the program"
            )
        if type(exc).__name__ == "InvalidStateError":
            return (
                "a task's result is ready only once it is done: `await` the task (or read "
                "t.result() after the `async with asyncio.TaskGroup()` block)"
            )
        if type(exc).__name__ == "StatisticsError":
            return _empty_hint(line)
        if isinstance(exc, ValueError):
            return _value_hint(exc, line) or _tool_result_hint(line)
        if isinstance(exc, (KeyError, IndexError)):
            return _tool_result_hint(line)
    except Exception:  # noqa: BLE001 - a hint is a courtesy: never let it hide the error
        return None
    return None
