"""Abuse and escape attempts, end to end through `execute_code` on a live `codemode serve`.

Each case asserts containment (the attempt fails inside the code, or sees nothing of the
host) and that the next execution still works. At the end, the server process is the
same one, and its memory, threads and file descriptors have not grown without bound.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from serve_client import Serve, faulty, proc_stats, text_of

SECRET = "hunter2-codemode-secret"

Check = Callable[[dict[str, Any]], bool]


def fails(*types: str) -> Check:
    """Failed inside the code with one of `types` (any type if none given)."""

    def check(out: dict[str, Any]) -> bool:
        error = out["error"]
        return error is not None and (not types or error["type"] in types)

    return check


def returns(value: Any) -> Check:
    return lambda out: out["error"] is None and out["result"] == value


def contained(out: dict[str, Any]) -> bool:
    """Either it failed inside the code, or it returned nothing of the host's."""
    return SECRET not in json.dumps(out)


def limit(name: str) -> Check:
    return lambda out: out["error"] is not None and out["error"]["limit"] == name


NO_FILE = ("FileNotFoundError", "PermissionError", "OSError", "NotADirectoryError")
NO_NET = (
    "OSError",
    "ConnectionRefusedError",
    "PermissionError",
    "ModuleNotFoundError",
    "ImportError",
    "AttributeError",
    "URLError",
    "NotImplementedError",
    "gaierror",
    "TimeoutError",
    "RuntimeError",
)
NO_MODULE = ("ModuleNotFoundError", "ImportError")

CASES: list[tuple[str, str, Check]] = [
    # -- host files
    ("config file", "open({config!r}).read()", fails(*NO_FILE)),
    ("/etc/passwd", "open('/etc/passwd').read()", fails(*NO_FILE)),
    ("home dir", "import os\nos.listdir(os.path.expanduser('~'))", fails(*NO_FILE)),
    ("root listing", "import os\nos.listdir('/')", fails(*NO_FILE)),
    ("proc environ", "open('/proc/self/environ', 'rb').read()", fails(*NO_FILE)),
    ("write a file", "open('/tmp/codemode-abuse-escape', 'w').write('x')", fails(*NO_FILE)),
    (
        "os.open create",
        "import os\nos.open('/tmp/codemode-abuse-escape', os.O_CREAT | os.O_WRONLY)",
        fails(*NO_FILE),
    ),
    ("relative path", "open('../../etc/passwd').read()", fails(*NO_FILE)),
    # -- environment of the server process
    ("env var", "import os\nos.environ.get('CODEMODE_ABUSE_SECRET')", returns(None)),
    ("whole env", "import os\ndict(os.environ)", returns({})),
    ("getenv", "import os\n[os.getenv('HOME'), os.getenv('PATH')]", returns([None, None])),
    # -- network: a listener the test opened on 127.0.0.1
    (
        "socket connect",
        "import socket\nsocket.create_connection(('127.0.0.1', {port}), 1)",
        fails(*NO_NET),
    ),
    (
        "raw socket",
        "import socket\ns = socket.socket()\ns.connect(('127.0.0.1', {port}))",
        fails(*NO_NET),
    ),
    (
        "urllib",
        "import urllib.request\nurllib.request.urlopen('http://127.0.0.1:{port}/')",
        fails(*NO_NET),
    ),
    (
        "http.client",
        "import http.client\nc = http.client.HTTPConnection('127.0.0.1', {port})\n"
        "c.request('GET', '/')",
        fails(*NO_NET),
    ),
    ("asyncio connect", "await asyncio.open_connection('127.0.0.1', {port})", fails(*NO_NET)),
    ("dns", "import socket\nsocket.getaddrinfo('localhost', 80)", fails(*NO_NET)),
    # -- processes and threads
    ("subprocess", "import subprocess\nsubprocess.run(['id'])", fails()),
    ("os.system", "import os\nos.system('touch /tmp/codemode-abuse-escape')", fails()),
    ("fork", "import os\nos.fork()", fails()),
    ("execv", "import os\nos.execv('/bin/sh', ['sh'])", fails()),
    ("thread", "import threading\nt = threading.Thread(target=print)\nt.start()", fails()),
    (
        "multiprocessing",
        "import multiprocessing\nmultiprocessing.Process(target=print).start()",
        fails(),
    ),
    ("kill parent", "import os\nos.kill(os.getppid(), 9)", fails()),
    # -- native code
    ("ctypes", "import ctypes\nctypes.CDLL(None)", fails(*NO_MODULE)),
    ("_ctypes", "import _ctypes", fails(*NO_MODULE)),
    ("ssl", "import ssl", fails(*NO_MODULE)),
    ("sqlite3", "import sqlite3", fails(*NO_MODULE)),
    # -- import machinery
    ("__import__ os.system", "__import__('os').system('id')", fails()),
    (
        "importlib subprocess",
        "import importlib\nimportlib.import_module('subprocess').run(['id'])",
        fails(),
    ),
    (
        "poison sys.modules",
        "import sys\nsys.modules['json'] = None\nsys.modules['asyncio'] = None\n'poisoned'",
        returns("poisoned"),
    ),
    (
        "poison builtins",
        "import builtins\nbuiltins.len = None\nbuiltins.leak = 'x'\n'poisoned'",
        returns("poisoned"),
    ),
    (
        "after poisoning",
        "import builtins, json\n[len('ab'), hasattr(builtins, 'leak'), json.dumps(1)]",
        returns([2, False, "1"]),
    ),
    # -- introspection
    (
        "frames",
        "import sys\nf = sys._getframe()\nn = 0\nwhile f:\n    n += 1\n    f = f.f_back\nn < 50",
        contained,
    ),
    (
        "gc objects",
        "import gc\n[str(o)[:200] for o in gc.get_objects() if isinstance(o, str) "
        "and 'hunter2' in o]",
        contained,
    ),
    ("inspect stack", "import inspect\n[f.filename for f in inspect.stack()]", contained),
    ("globals", "sorted(k for k in globals() if not k.startswith('__'))", contained),
    # -- the bridge
    (
        "malformed host calls",
        "from wit_world.imports import host\n"
        "[host.wait(b, 0) for b in ['not json', '[{{\"id\": 1}}]', '[' * 50000, '[]']]",
        lambda out: out["error"] is None and len(out["result"]) == 4,
    ),
    ("unknown tool", "await call_tool('f', 'no_such_tool')", fails("ToolError")),
    ("unknown server", "await call_tool('nowhere', 'x')", fails("ToolError")),
    ("unknown function", "await f.no_such_tool()", fails("CheckError")),
    (
        "unknown function, dynamic",
        "name = 'no_such_tool'\nawait getattr(f, name)()",
        fails("ToolError", "AttributeError"),
    ),
    (
        "100k calls",
        "await asyncio.gather(*[f.echo(value='x') for _ in range(100_000)],"
        " return_exceptions=True)\n'done'",
        lambda out: out["stats"]["tool_calls"] >= 1000,
    ),
    (
        "lone surrogate argument",
        "p = await f.pid()\ntry:\n    await f.echo(value='\\ud800')\n"
        "except ToolError as e:\n    m = e.message\n[m, p == await f.pid()]",
        lambda out: (
            out["error"] is None
            and "lone surrogate" in out["result"][0]
            and out["result"][1] is True
        ),
    ),
    ("lone surrogate result", "'\\udfff' + 'ok'", returns("\ufffdok")),
    (
        "50 MB argument",
        "r = await f.echo(value='x' * 50_000_000)\nlen(r)",
        lambda out: out["error"] is None or out["error"]["type"] in ("ToolError", "MemoryError"),
    ),
    # -- resources
    ("cpu loop", "while True:\n    pass", limit("timeout_s")),
    ("sleep forever", "import time\ntime.sleep(10**6)", limit("timeout_s")),
    ("memory bomb", "x = []\nwhile True:\n    x.append(bytearray(10**7))", limit("memory_mb")),
    ("deep recursion", "def f(n):\n    return f(n + 1)\nf(0)", fails("RecursionError")),
    (
        "print flood",
        "chunk = 'x' * 1_000_000\nfor _ in range(200):\n    print(chunk)",
        lambda out: "stdout truncated" in out["stdout"] or out["error"] is not None,
    ),
    (
        "100k pending tasks",
        "ts = [asyncio.create_task(asyncio.sleep(1000)) for _ in range(100_000)]\nlen(ts)",
        lambda out: out["result"] == 100_000 or out["error"] is not None,
    ),
    ("huge result", "'x' * 10_000_000", lambda out: "result truncated" in str(out["result"])),
    ("sys.exit", "import sys\nsys.exit(3)", fails()),
    ("os._exit", "import os\nos._exit(1)", fails()),
]


@pytest.fixture(scope="module")
def listener():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.settimeout(0.2)
    accepted: list[Any] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                accepted.append(sock.accept())
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield sock.getsockname()[1], accepted
    stop.set()
    thread.join()
    sock.close()


@pytest.fixture(scope="module")
async def serve(tmp_path_factory, pool):
    # `pool`: the optimized sandbox is built first. On an empty cache (CI's first module)
    # a server would answer on baseline code while the optimized compile takes both
    # cores, and the cases that count what a program did within its 4 s (100k calls)
    # would measure that instead of containment.
    tmp = tmp_path_factory.mktemp("abuse")
    config = {
        "mcpServers": {"f": faulty()},
        "codemode": {
            "limits": {"timeout_s": 4, "memory_mb": 128},
            "workers": 2,
            "sessions": {"max": 2},
        },
    }
    async with Serve(config, tmp / "serve", env={"CODEMODE_ABUSE_SECRET": SECRET}) as s:
        await s.run("return 1")
        s.baseline = proc_stats(s.pid)  # type: ignore[attr-defined]
        s.first_pid = s.pid  # type: ignore[attr-defined]
        yield s


def test_there_are_at_least_40_cases():
    assert len(CASES) >= 40


@pytest.mark.parametrize("in_session", [False, True], ids=["fresh", "session"])
@pytest.mark.parametrize("name,code,check", CASES, ids=[c[0] for c in CASES])
async def test_abuse_is_contained_and_the_next_execution_works(
    serve, listener, name, code, check, in_session
):
    """Each case in a fresh run, and in a session (a kept instance: then the next call of
    that session must work too, fresh if the attempt cost the session its state)."""
    port, _ = listener
    source = code.format(config=str(serve.config_path), port=port)
    extra = {"session": f"abuse-{CASES.index((name, code, check))}"} if in_session else {}
    started = time.monotonic()
    result = await serve.session.call_tool("execute_code", {"code": source, **extra})
    assert time.monotonic() - started < 4 + 5, "the answer took longer than timeout + 5 s"
    out = result.structured_content
    assert out is not None, text_of(result)
    assert check(out), json.dumps(out)[:2000]
    assert contained(out)
    assert result.is_error == (out["error"] is not None)
    after = await serve.session.call_tool("execute_code", {"code": "return 'alive'", **extra})
    assert (after.structured_content or {}).get("result") == "alive", text_of(after)


def test_no_connection_reached_the_listener_and_no_file_was_written(listener):
    _, accepted = listener
    assert accepted == []
    assert not Path("/tmp/codemode-abuse-escape").exists()


async def test_two_executions_at_once_cannot_see_each_other(serve):
    import asyncio

    holder = "marker = 'private-to-A-' + str(41 + 1)\nawait asyncio.sleep(1.5)\nmarker"
    snoop = """
import gc, sys
found = [o for o in gc.get_objects() if isinstance(o, str) and 'private-to-A' in o
         and 'private-to-A-' + "' + str" not in o]
[found, 'marker' in globals()]
"""
    a = asyncio.create_task(serve.run(holder))
    await asyncio.sleep(0.5)
    b = await serve.run(snoop)
    assert (await a).structured_content["result"] == "private-to-A-42"
    found, has_marker = b.structured_content["result"]
    assert not has_marker
    assert all("private-to-A-42" not in s for s in found), found


async def test_one_session_cannot_reach_another_sessions_objects(serve):
    """While session A holds a secret (and is between calls), session B's program, in
    its own instance, searches every object it can reach, the frames and the modules."""
    await serve.session.call_tool(
        "execute_code",
        {"code": "held = ['private-to-A-' + str(41 + 1)]\nglobal_ref = held", "session": "A"},
    )
    snoop = """
import gc, sys
found = [o for o in gc.get_objects() if isinstance(o, str) and 'private-to-A' in o
         and 'private-to-A-' + "' + str" not in o]
mods = [m for m in sys.modules.values() if 'held' in getattr(m, '__dict__', {})]
[found, 'held' in globals(), len(mods)]
"""
    b = await serve.session.call_tool("execute_code", {"code": snoop, "session": "B"})
    found, has_held, mods = b.structured_content["result"]
    assert not has_held and mods == 0
    assert all("private-to-A-42" not in s for s in found), found
    a = await serve.session.call_tool("execute_code", {"code": "held[0]", "session": "A"})
    assert a.structured_content["result"] == "private-to-A-42"


async def test_the_server_survived_everything_without_growing(serve):
    assert serve.pid == serve.first_pid
    after = proc_stats(serve.pid)
    before = serve.baseline
    assert after["rss_kb"] - before["rss_kb"] < 150 * 1024, (before, after)
    sessions = 2  # live sessions at most, each with a worker (and its socket) of its own
    assert after["fds"] - before["fds"] <= 4 + 2 * sessions, (before, after)
    assert after["threads"] - before["threads"] <= 4, (before, after)
    assert len(serve.workers()) <= 2 + sessions
