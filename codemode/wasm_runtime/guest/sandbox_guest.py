"""The guest side of the sandbox: runs inside CPython compiled to WebAssembly.

componentize-py runs this module's top level once, at build time, and snapshots the heap:
every module imported here is what user code can import (nothing else of the stdlib is
mounted at run time). Each execution starts from that snapshot in a fresh instance.

The parts: `_cm_bridge` (the asyncio loop whose selector is the host bridge),
`_cm_api` (tool functions, namespaces and the program's globals), `_cm_program`
(module semantics), `_cm_precheck` (certain mistakes, before anything runs), `_cm_hints`
and `_cm_outcome` (what comes back).
"""

import builtins
import importlib
import inspect
import json
import linecache
import os
import random
import sys
from typing import ClassVar

import _cm_stdlib

for _name in _cm_stdlib.OFFERED:  # the stdlib user code can import (see _cm_stdlib)
    importlib.import_module(_name)

import _cm_zones  # noqa: F401 - zoneinfo's data, loaded at build time
import wit_world
from _cm_api import CODE_FILENAME, Calls, Notes, Registry
from _cm_globals import build_globals, refresh_globals
from _cm_habits import _help, install_asdict_of_dicts, install_csv_of_text, install_file_notes
from _cm_habits import install_gather_of_a_list, install_task_notes
from _cm_imports import MissingModules, program_import
from _cm_bridge import Deadline, Deadlock, SandboxLoop, bridge, close_default_loop, install_loop
from _cm_bridge import MISSED, json_dumps, json_loads
from _cm_gather import Batches
from _cm_outcome import encode, error, unawaited_notes
from _cm_precheck import PreCheckFailed, precheck
from _cm_program import RESULT_NAME, ProgramReturn, compile_program
from _cm_rehearsal import rehearse

install_loop()
sys.meta_path.append(MissingModules)


def _lenient_loads(s, *args, **kwargs):
    """json.loads of a value that is already decoded (a tool result) gives it back: the
    intent is unambiguous, and refusing it costs the model a round trip."""
    if s is None or isinstance(s, (dict, list, int, float)):
        return s
    return json_loads(s, *args, **kwargs)


json.loads = _lenient_loads
builtins.help = _help
install_file_notes()
install_gather_of_a_list()
install_task_notes()
install_csv_of_text()
install_asdict_of_dicts()


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


def _check_failed(problems: list[tuple[int, str]]) -> dict:
    listed = "\n".join(f"line {line}: {text}" for line, text in problems)
    count = f"{len(problems)} problem{'s' * (len(problems) != 1)}"
    return {
        "type": "CheckError",
        "message": f"the program was not run (no tool was called): {count} found before "
        f"running it:\n{listed}",
        "traceback": "",
        "line": problems[0][0],
        "hint": "fix each line listed, then send the whole program again",
    }


def _run(code_obj, is_async: bool, env: dict):
    try:
        if not is_async:
            exec(code_obj, env)
        else:
            import asyncio

            with asyncio.Runner(loop_factory=SandboxLoop) as runner:
                runner.run(eval(code_obj, env))
    except ProgramReturn as done:
        return done.value
    except SystemExit as exiting:
        if exiting.code not in (0, None):
            raise
        return env.pop(RESULT_NAME, None)  # sys.exit(0) ends the program, cleanly
    except BaseExceptionGroup as group:  # noqa: F821 - a return inside except* or a TaskGroup
        returned, rest = group.split(ProgramReturn)
        if returned is not None and rest is None:
            return returned.exceptions[0].value
        raise
    return env.pop(RESULT_NAME, None)


class _Session:
    """The module globals of a session (options "session": the host keeps this instance
    for the next call of the same session, and nobody else's)."""

    env: dict | None = None


# What the runtime itself imports through, as the build left it: a session's program may
# change these (`sys.modules["asyncio"] = None`), and the next call of the session would
# fail before its code runs. They are put back before each later call; the program's own
# names, and the modules' attributes, stay as the program left them (as in a notebook).
_MODULES = dict(sys.modules)
_META_PATH = list(sys.meta_path)
_PATH = list(sys.path)


def _restore_import_system() -> None:
    for name, module in _MODULES.items():
        if sys.modules.get(name) is not module:
            sys.modules[name] = module
    sys.meta_path[:] = _META_PATH
    sys.path[:] = _PATH


class _Catalog:
    """The catalog this instance holds: its id, its decoded manifest, and the module
    globals made from it ahead of time (`prepare`) for the next program, which no
    program has seen (an instance of a fresh run serves one program)."""

    id = None
    manifest: ClassVar[dict] = {}
    prepared: ClassVar[tuple | None] = None  # (env, namespaces, functions) of Registry

    @classmethod
    def take(cls, options: dict, catalog: str) -> bool:
        """Take a new catalog, or check that this instance holds the one named."""
        if catalog:
            cls.id, cls.manifest = options.get("catalog_id"), json_loads(catalog)
            cls.prepared = None
        return options.get("catalog_id") == cls.id

    @classmethod
    def prepare(cls) -> None:
        build_globals(cls.manifest, json_dumps, ProgramReturn)
        cls.prepared = (Registry.env, Registry.namespaces, Registry.functions)
        Registry.reset()
        _Ahead.prepare()

    @classmethod
    def fresh_globals(cls) -> dict:
        if cls.prepared is not None:
            env, Registry.namespaces, Registry.functions = cls.prepared
            Registry.env, cls.prepared = env, None
            return env
        return build_globals(cls.manifest, json_dumps, ProgramReturn)


class _Ahead:
    """What the next run would do first, done while the worker is idle (`prepare`): the
    builtins it restores afterwards, as they are now, and the seed of `random`. The first
    run in an instance takes them; a session's later runs do both on their own path."""

    builtins: ClassVar[dict | None] = None
    """Set by `prepare` (and the seed with it), until a run takes it."""

    @classmethod
    def prepare(cls) -> None:
        cls.builtins = dict(builtins.__dict__)
        _seed()

    @classmethod
    def take(cls) -> dict:
        """The builtins to restore after this run, with `random` seeded for it."""
        saved, cls.builtins = cls.builtins, None
        if saved is not None:
            return saved
        _seed()
        return dict(builtins.__dict__)


def _seed() -> None:
    # The build-time snapshot would otherwise fix every execution's sequence. 256 bits
    # from the OS: `random.seed()` reads 2,496 bytes for its state, ~2.5x the time.
    random.seed(int.from_bytes(os.urandom(32)))


def _globals_for(options: dict) -> dict:
    fresh = _Catalog.fresh_globals()
    if not options.get("session"):
        _Session.env = None
        return fresh
    if _Session.env is None:
        _Session.env = fresh
        return fresh
    # tools may have changed since the last call: bind the new ones, keep the program's own
    return refresh_globals(_Session.env, fresh)


def _execute(code: str, options: dict) -> dict:
    if options.get("session") and _Session.env is not None:
        _restore_import_system()
    saved_builtins = _Ahead.take()
    builtins.__import__ = program_import  # namespaces import as modules (see _cm_api)
    try:
        return _execute_program(code, options)
    finally:
        builtins.__dict__.clear()
        builtins.__dict__.update(saved_builtins)
        close_default_loop()
        bridge.reset()
        Batches.reset()
        Registry.reset()


def _execute_program(code: str, options: dict) -> dict:
    limits = options.get("limits", {})
    out = _BoundedOutput(int(limits.get("max_stdout_bytes", 65536)))
    sys.stdout = sys.stderr = out
    linecache.cache[CODE_FILENAME] = (len(code), None, code.splitlines(True), CODE_FILENAME)
    Calls.reset()
    Notes.reset()
    Registry.code = code
    sys.argv = [CODE_FILENAME]  # as for `python -c`: a name, no arguments
    outcome: dict = {"ok": True, "result": None, "error": None}  # result: encoded later
    try:
        tree, code_obj, is_async = compile_program(code)
        env = _globals_for(options)
        problems = precheck(tree, env)
        if problems:
            raise PreCheckFailed(problems)
        del tree
        value = _run(code_obj, is_async, env)
        if inspect.iscoroutine(value):
            value.close()
            raise TypeError(
                "the program's result is a coroutine: put `await` before the call that made it"
            )
        outcome["result"] = value
    except Deadline:
        outcome.update(ok=False, error={"type": "DeadlineExpired", "message": "deadline passed"})
    except Deadlock:
        outcome.update(
            ok=False,
            error={
                "type": "DeadlockError",
                "message": "every task is waiting and no tool call or timer can wake one "
                "(an awaited Future or Event is never set)",
                "traceback": "",
                "hint": "await only tool calls, sleeps, and tasks or events that some other "
                "task completes",
            },
        )
    except PreCheckFailed as failed:
        outcome.update(ok=False, error=_check_failed(failed.problems))
    except BaseException as exc:  # noqa: BLE001 - user code may raise anything, SystemExit too
        outcome.update(ok=False, error=error(exc, code))
    finally:
        sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
    missed = MISSED.take()
    if missed and outcome["ok"]:
        Notes.add(f"the program looked up a key a tool result does not have, and went on: {missed}")
    notes = unawaited_notes() + Notes.taken()
    if notes:
        outcome["notes"] = notes
    outcome["stdout_dropped_bytes"] = out.dropped
    return outcome


class WitWorld(wit_world.WitWorld):
    def run(self, code: str, options: str, catalog: str) -> str:
        opts = json_loads(options)
        if not _Catalog.take(opts, catalog):
            message = "the host named a catalog this sandbox instance was never given"
            failed = {"type": "SandboxError", "message": message}
            outcome = {"ok": False, "result": None, "error": failed}
            return encode(outcome, 65536)
        outcome = _execute(code, opts)
        reply = encode(outcome, int(opts.get("limits", {}).get("max_result_bytes", 65536)))
        if opts.get("prepare"):  # the worker's warm-up: the next program's globals, now
            _Catalog.prepare()
        return reply


def _forget_rehearsal() -> None:
    _Catalog.id, _Catalog.manifest, _Catalog.prepared = None, {}, None
    _Ahead.builtins = None
    _Session.env = None
    bridge.reset()
    bridge.next_id = 1


rehearse(WitWorld().run, _forget_rehearsal)  # at build time: see _cm_rehearsal
