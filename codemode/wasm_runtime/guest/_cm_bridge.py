"""The guest's half of the tool bridge, and the asyncio loop whose selector it is.

When every task is blocked, all tool calls queued since the last crossing go to the host
in one `wait`, which blocks until some finish (or a timer is due). A task whose call
returns early moves on while slower calls are still running on the host.
"""

import asyncio
import difflib
import json

from wit_world.imports import host

# The runtime's own references, taken before any user code runs: a program that replaces
# json.dumps or a builtin breaks only itself, not the reporting of its outcome.
json_dumps, json_loads = json.dumps, json.loads

RAW_MCP_FIELDS = frozenset(
    {"content", "structuredContent", "structured_content", "isError", "is_error", "text",
     "json", "body", "data", "result", "output", "response"}
)  # fmt: skip
"""Names a model reaches for when it expects an MCP response or an HTTP reply instead of
the tool's own value."""

UNWRAPPED = (
    "tool results come back already unwrapped and parsed: this value is the tool's own "
    "data, not an MCP response"
)
NO_IS_ERROR = (
    "a failed tool call raises ToolError (catch it with `try: ... except ToolError as e:`); "
    "a result that arrives is never an error, so there is no isError flag"
)
_ERROR_FLAGS = frozenset({"isError", "is_error", "error"})


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


class Deadline(BaseException):
    """The host says the execution's deadline has passed: unwind without running
    user `except Exception` handlers."""


class Deadlock(BaseException):
    """Every task waits and nothing (tool call or timer) can wake any of them."""


def _keys(d: dict) -> str:
    keys = [str(k) for k in list(d)[:20]]
    return ", ".join(keys) + (", ..." if len(d) > 20 else "") if keys else "(none)"


def _close(name, options) -> str:
    close = difflib.get_close_matches(str(name), [str(o) for o in options], n=3)
    return f"; did you mean {', '.join(close)}?" if close else ""


class _Missed:
    """The first key a program looked up in a tool result that lacks it: if the program
    caught the KeyError and went on, a note still says which keys there were."""

    def __init__(self):
        self.first: str | None = None

    def append(self, key, d) -> None:
        if self.first is None:
            self.first = f"{key!r}{_close(key, d)}; its keys: {_keys(d)}"

    def take(self) -> str | None:
        first, self.first = self.first, None
        return first


MISSED = _Missed()


class AttrDict(dict):
    """A dict from a tool result: `d["k"]` and `d.k` both work; `to_dict()` copies it.
    A missing key or field says which keys there are."""

    __slots__ = ()

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            error = AttributeError(
                f"result has no field {name!r}{_close(name, self)}; fields: {_keys(self)}"
            )
            texts = [k for k, v in self.items() if isinstance(v, str)]
            if name in _ERROR_FLAGS:
                error._cm_hint = NO_IS_ERROR
            elif name in RAW_MCP_FIELDS:
                error._cm_hint = f"{UNWRAPPED}. Use its fields directly ({_keys(self)})."
            elif len(texts) == 1 and hasattr(str, name):
                field = texts[0]
                error._cm_hint = (
                    f"this result is a dict whose text is in its {field!r} field: use "
                    f"`.{field}.{name}(...)` (e.g. res.{field}.{name}())"
                )
            raise error from None

    def __missing__(self, key):
        error = KeyError(key)
        MISSED.append(key, self)
        if key in _ERROR_FLAGS:
            error._cm_hint = NO_IS_ERROR
        elif isinstance(key, int):
            error._cm_hint = (
                f"this tool result is a dict (one record), not a list: index it by key "
                f"(its keys: {_keys(self)})"
            )
        elif key in RAW_MCP_FIELDS:
            error._cm_hint = f"{UNWRAPPED}. Index its own keys directly ({_keys(self)})."
        else:
            error._cm_hint = (
                f"this tool result has no key {key!r}{_close(key, self)}; its keys: "
                f"{_keys(self)}. Use `.get({key!r})` for a key that may be absent."
            )
        raise error

    def to_dict(self) -> dict:
        return json_loads(json_dumps(self))


# Made once, at build time. `json.loads(text, object_hook=...)` and `json.dumps(obj,
# allow_nan=...)` build a decoder or an encoder on every call, which costs about as much
# again as the work; per tool call, these two are most of what the guest spends on JSON.
_scan_reply = json.JSONDecoder(object_hook=AttrDict).scan_once
"""The host's reply to `wait`: one JSON object, as the host wrote it (no blanks around)."""
_encode_batch = json.encoder.c_make_encoder(
    None,  # markers: none kept (see below)
    json.JSONEncoder().default,  # raises TypeError, as json.dumps does
    json.encoder.encode_basestring_ascii,
    None,  # indent
    ": ",
    ", ",
    False,  # sort_keys
    False,  # skipkeys
    False,  # allow_nan
)
"""A batch of calls as JSON: ASCII, no NaN. No check for circular values (each argument
was encoded on its own when its call was made, which refuses them); one that came
through anyway ends in RecursionError, refused like any other."""


def load_json(text: str):
    """The reply of a `wait`, its objects AttrDicts."""
    try:
        return _scan_reply(text, 0)[0]
    except StopIteration:
        raise ValueError(f"the host's reply is not JSON: {text[:80]!r}") from None


BATCH_MAX = 1024
"""Calls sent in one crossing; the rest go in the next ones. The host runs at most
`max_concurrent_calls` at once anyway, and a program that queues 100,000 calls must not
need one 6 MB string (and its copy) to say so."""


class Bridge:
    """Tool calls queued by tasks, and the futures of calls the host is running."""

    def __init__(self):
        self.queued: list[dict] = []
        self.running: dict[int, asyncio.Future] = {}
        """What each call's outcome settles: a future, or a gather's slot (_cm_gather)."""
        self.next_id = 1
        self.expired = False
        """The host said the run's deadline has passed (`Deadline` was raised)."""

    def reset(self) -> None:
        self.queued.clear()
        self.running.clear()
        self.expired = False

    def call(self, target: str, args: dict) -> asyncio.Future:
        future = asyncio.get_running_loop().create_future()
        self.queue(target, args, future)
        return future

    def queue(self, target: str, args: dict, waiter) -> None:
        """Queue a call whose outcome settles `waiter` (a future, or anything with its
        `done`, `set_result` and `set_exception`)."""
        call_id = self.next_id
        self.next_id += 1
        self.queued.append({"id": call_id, "target": target, "args": args})
        self.running[call_id] = waiter

    def _take_batch(self) -> str:
        if not self.queued:
            return ""
        batch, self.queued = self.queued[:BATCH_MAX], self.queued[BATCH_MAX:]
        try:
            # ASCII: a lone surrogate in an argument reaches the host escaped, where
            # raw it could not cross as a component-model string.
            return "".join(_encode_batch(batch, 0))
        except (TypeError, ValueError, RecursionError) as exc:
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
            raise Deadlock()
        if timeout is None:
            ms = -1
        else:
            ms = max(0, min(int(timeout * 1000 + 0.999), 2**31 - 1))
        # One parse for the reply and every value in it (the host embeds each value's
        # JSON as is), so tool results arrive as AttrDicts without a second decode.
        reply = load_json(host.wait(batch, ms))
        if reply.get("expired"):
            self.expired = True
            raise Deadline()
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


bridge = Bridge()


class _BridgeSelector:
    """Stands in for the selector of BaseEventLoop: `select(timeout)` with a non-zero
    timeout is the moment every task is blocked, so that is when calls cross."""

    def select(self, timeout):
        if timeout == 0:  # some task is ready to run: calls wait until all are blocked
            return ()
        bridge.wait(timeout)
        return ()

    def close(self):
        pass

    def get_map(self):
        return {}


RUN_FOREVER = (
    "loop.run_forever() would never return here: a program ends when its code ends, and "
    "nothing runs in the background. Await the work instead: `await main()` or "
    "`await asyncio.gather(...)`"
)


class SandboxLoop(asyncio.BaseEventLoop):
    """asyncio on WASI without sockets: timers and tasks are stock; I/O is the bridge."""

    def __init__(self):
        super().__init__()
        self._selector = _BridgeSelector()
        self._cm_until_complete = False

    def _process_events(self, event_list):
        pass

    def _write_to_self(self):
        pass

    def run_until_complete(self, future):
        self._cm_until_complete = True
        try:
            return super().run_until_complete(future)
        finally:
            self._cm_until_complete = False

    def run_forever(self):
        if not self._cm_until_complete:
            raise RuntimeError(RUN_FOREVER)
        return super().run_forever()

    def run_in_executor(self, executor, func, *args):
        raise RuntimeError(
            "the sandbox has no threads: call the function directly, or await tool calls "
            "concurrently with asyncio.gather(...)"
        )


class _LoopState:
    """The loop `asyncio.get_event_loop()` hands a program that has none running."""

    default: SandboxLoop | None = None


def _get_event_loop():
    running = asyncio._get_running_loop()
    if running is not None:
        return running
    if _LoopState.default is None or _LoopState.default.is_closed():
        _LoopState.default = SandboxLoop()
    return _LoopState.default


def _set_event_loop(loop):
    _LoopState.default = loop


def close_default_loop() -> None:
    loop, _LoopState.default = _LoopState.default, None
    if loop is not None and not loop.is_closed() and not loop.is_running():
        loop.close()


def install_loop() -> None:
    """asyncio.run(), asyncio.Runner() and get_event_loop() all give a SandboxLoop."""
    asyncio.events.new_event_loop = SandboxLoop
    asyncio.new_event_loop = SandboxLoop
    asyncio.events.get_event_loop = _get_event_loop
    asyncio.get_event_loop = _get_event_loop
    asyncio.events.set_event_loop = _set_event_loop
    asyncio.set_event_loop = _set_event_loop
