"""The guest sees no host files, environment, network, processes, threads or native code."""

from __future__ import annotations

import os
import socket
import threading

import pytest


def _contained(r, *acceptable: str) -> bool:
    """The attempt failed inside the code (an exception), or returned an empty/refused value."""
    if r.ok:
        return r.result in acceptable
    return r.error.type not in ("WorkerDied", "SandboxTrap")


@pytest.mark.parametrize(
    "code",
    [
        "open('/etc/passwd').read()",
        "open('/etc/hostname').read()",
        "import os\nos.listdir('/')",
        "import os\nos.listdir('.')",
        "open(os.path.expanduser('~/.bashrc')).read()",
        "import pathlib\npathlib.Path('/proc/self/environ').read_bytes()",
        "open('/tmp/codemode-escape', 'w').write('x')",
        "import os\nos.stat('/etc')",
    ],
)
async def test_no_host_files(run, code):
    r = await run("import os\n" + code)
    assert not r.ok, r.result
    assert r.error.type in ("FileNotFoundError", "PermissionError", "OSError", "NotADirectoryError")
    assert not os.path.exists("/tmp/codemode-escape")


async def test_no_environment_variables(run, monkeypatch):
    os.environ["CODEMODE_TEST_SECRET"] = "hunter2"
    try:
        r = await run(
            "import os\n[dict(os.environ), os.environ.get('CODEMODE_TEST_SECRET'), os.getenv('HOME')]"
        )
    finally:
        del os.environ["CODEMODE_TEST_SECRET"]
    assert r.ok and r.result == [{}, None, None]


async def test_no_network_and_no_connection_reaches_a_listener(run):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.2)
    port = listener.getsockname()[1]
    accepted = []

    def accept() -> None:
        try:
            accepted.append(listener.accept())
        except OSError:
            pass

    thread = threading.Thread(target=accept)
    thread.start()
    try:
        for code in [
            f"import socket\ns = socket.socket()\ns.connect(('127.0.0.1', {port}))",
            f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=1)",
            "import urllib.request\nurllib.request.urlopen('http://127.0.0.1:%d/')" % port,
            "import http.client\nhttp.client.HTTPConnection('127.0.0.1', %d).request('GET', '/')"
            % port,
            "import socket\nsocket.getaddrinfo('localhost', 80)",
        ]:
            r = await run(code, timeout_s=5)
            assert not r.ok, code
    finally:
        thread.join()
        listener.close()
    assert accepted == []


@pytest.mark.parametrize(
    "code",
    [
        "import subprocess\nsubprocess.run(['ls'])",
        "import os\nos.system('touch /tmp/codemode-escape')",
        "import os\nos.fork()",
        "import os\nos.execv('/bin/sh', ['sh'])",
        "import os\nos.popen('id').read()",
        "import os\nos.kill(1, 9)",
        "import threading\nt = threading.Thread(target=print)\nt.start()",
        "import _thread\n_thread.start_new_thread(print, ())",
        "import multiprocessing\nmultiprocessing.Process(target=print).start()",
        "import concurrent.futures\nconcurrent.futures.ThreadPoolExecutor().submit(print).result()",
        "import asyncio\nawait asyncio.to_thread(print)",
        "import asyncio\nawait asyncio.create_subprocess_exec('ls')",
    ],
)
async def test_no_processes_or_threads(run, code):
    r = await run(code, timeout_s=5)
    assert not r.ok
    assert not os.path.exists("/tmp/codemode-escape")
    assert (await run("'alive'")).result == "alive"


@pytest.mark.parametrize(
    "code",
    [
        "import ctypes",
        "import _ctypes",
        "import cffi",
        "import ssl",
        "import sqlite3",
        "import mmap\nmmap.mmap(-1, 4096)",
        "import importlib\nimportlib.import_module('ctypes')",
        "__import__('ctypes')",
        "import sys\nsys.modules['ctypes']",
        "import wasmtime",
    ],
)
async def test_no_native_escapes(run, code):
    r = await run(code)
    assert not r.ok
    assert r.error.type in (
        "ModuleNotFoundError",
        "ImportError",
        "KeyError",
        "OSError",
        "AttributeError",
    )


def test_component_imports_no_wasi_http_and_host_never_links_it(pool):
    from pathlib import Path

    from wasmtime import component as wc

    from codemode.wasm_runtime._engine import make_engine

    engine = make_engine(pool.artifact.strategy)
    component = wc.Component.deserialize_file(engine, str(pool.artifact.compiled))
    imports = set(component.type.imports(engine))
    assert "codemode:sandbox/host" in imports
    assert not [name for name in imports if name.startswith("wasi:http")]
    sources = Path(__file__).parents[1] / "codemode"
    linking = [p for p in sources.rglob("*.py") if "add_wasi_http(" in p.read_text()]
    assert linking == []


async def test_guest_writes_to_raw_fd_are_bounded_by_the_host(run):
    r = await run(
        "import os\nfor _ in range(50):\n    os.write(1, b'y' * 100_000)", max_stdout_bytes=1000
    )
    assert r.ok
    assert r.stdout.startswith("y" * 1000) and "stdout truncated" in r.stdout


@pytest.mark.skipif(not os.path.exists("/proc/self/environ"), reason="reads /proc")
async def test_a_worker_process_holds_none_of_the_servers_environment(pool, monkeypatch):
    # The guest never sees the environment (WASI gets none); the worker process that
    # hosts it does not hold the server's either (its tokens, say).
    from codemode.wasm_runtime._process import WorkerProcess

    monkeypatch.setenv("CODEMODE_TEST_SECRET", "s3cr3t-token")
    worker = await WorkerProcess.start(pool.artifact.compiled, 64 << 20, pool.artifact.strategy)
    try:
        with open(f"/proc/{worker.proc.pid}/environ", "rb") as f:
            environ = f.read()
        assert b"s3cr3t-token" not in environ and b"PATH=" not in environ
        assert os.environ["CODEMODE_TEST_SECRET"] == "s3cr3t-token"
    finally:
        await worker.kill()


def _worker_module():
    """The worker's own module, imported here as the worker imports it (by path)."""
    import importlib
    import sys

    from codemode.wasm_runtime import _process

    folder = str(_process.WORKER_SCRIPT.parent)
    sys.path.insert(0, folder)
    try:
        module = importlib.import_module("_worker")
    finally:
        sys.path.remove(folder)
    module.C.load(_process.library_path())  # as the worker's main() does
    return module


class _KeptFrames:
    """A worker's channel that keeps what the worker sends, and never answers."""

    def __init__(self) -> None:
        self.sent: list[tuple[int, bytes]] = []

    def send(self, kind: int, payload: bytes) -> None:
        self.sent.append((kind, payload))

    def recv(self, timeout, spin_s: float = 0.0):
        return None


def test_a_host_function_that_raises_ends_the_run_as_a_trap_and_the_worker_lives(pool):
    """The guest's calls into the host cross wasmtime's C API through our own trampoline
    (`_capi`): an exception there must end that run as a trap, with its message, and
    never unwind into wasmtime; the worker's next instance runs as if nothing happened."""
    import json

    worker_module = _worker_module()

    class BrokenHost(worker_module.Worker):
        def _wait(self, context, batch, timeout_ms):
            raise RuntimeError("the host broke")

    from codemode.wasm_runtime import _protocol as P
    from codemode.wasm_runtime._outcome import classify_trap
    from codemode.wasm_runtime._process import worker_settings

    frames = _KeptFrames()
    settings = worker_module.Settings(*worker_settings(pool.artifact.strategy))
    worker = BrokenHost(frames, str(pool.artifact.compiled), settings)
    catalog = {"functions": [{"path": "tool", "target": "tool", "params": []}], "namespaces": []}
    memory = 256 << 20
    worker.ready = worker.instantiate(memory)
    sent_catalog = [json.dumps(catalog)]

    def execute(code: str) -> tuple[dict, dict]:
        options = {"catalog_id": "c1", "limits": {"max_stdout_bytes": 100}}
        worker.execute(
            P.execute_payload(
                1,
                code,
                json.dumps(options),
                timeout_s=10,
                memory_bytes=memory,
                max_stdout_bytes=100,
                keep=False,
                catalog_id="c1",
                catalog=sent_catalog.pop() if sent_catalog else None,
            )
        )
        kind, payload = frames.sent.pop()
        assert kind == worker_module.P.RESULT
        _, _, _, trap, message, _, outcome = P.parse_result(payload)
        header = {"trap": None if trap == P.TRAP_NONE else {"kind": trap, "message": message}}
        return header, json.loads(outcome) if outcome else {}

    header, _ = execute("await tool()")
    assert header["trap"]["kind"] == P.TRAP_WASM
    assert classify_trap(header["trap"]["message"])["type"] == "SandboxTrap"
    assert "the host broke" in header["trap"]["message"]
    header, outcome = execute("'é' * 2 + '🦀'")
    assert header["trap"] is None and outcome["ok"]
    assert json.loads(outcome["result_json"]) == "éé🦀"


def test_the_crossings_have_the_signatures_the_worker_converts(pool):
    """`_capi` converts `wait(string, s32) -> string` and `run(string, string,
    string) -> string` without asking wasmtime for their types: the component must
    declare exactly those."""
    from wasmtime import component as wc

    from codemode.wasm_runtime._engine import make_engine
    from codemode.wasm_runtime._protocol import HOST_INTERFACE

    engine = make_engine(pool.artifact.strategy)
    component = wc.Component.deserialize_file(engine, str(pool.artifact.compiled))
    host = component.type.imports(engine)[HOST_INTERFACE].ty
    wait = host.exports(engine)["wait"].ty
    run = component.type.exports(engine)["run"].ty
    assert [type(t) for _, t in wait.params] == [wc.String, wc.S32]
    assert isinstance(wait.result, wc.String)
    assert [type(t) for _, t in run.params] == [wc.String] * 3
    assert isinstance(run.result, wc.String)
    assert set(host.exports(engine)) == {"wait"}  # nothing else for the worker to define
