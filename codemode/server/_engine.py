"""The engine behind every command: a config's downstream servers plus a sandbox pool.

`serve`, `run`, `tools`, `doctor` and `demo` all drive this one object, so code tried with
`codemode run` behaves exactly as it will under an agent. It is an async context manager:
entering it connects the servers and starts the sandbox in the background (tasks of its
own); leaving it stops both, leaving no process behind. Its limits are fixed when it is
made.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from .. import telemetry
from .._aio import Background
from ..config import Config
from ..context import CallContext
from ..errors import ErrorKind
from ..tool_adapters import Federation, ToolInfo
from ..wasm_runtime import ExecutionError, ExecutionResult, Limits, SandboxPool
from . import _description
from . import _replica as replica
from ._host import ToolBridge, sandbox_naming
from ._sessions import SessionInfo, Sessions

log = logging.getLogger("codemode.server")


class Engine:
    """`async with Engine(config) as engine`: servers connect and (unless `sandbox=False`,
    for commands that run no code) the sandbox starts in the background. `servers_ready()`
    waits for every server's first connection attempt (bounded by its
    `connect_timeout_s`), and `execute()` also waits for the sandbox (built on first use,
    ~20 s once per machine)."""

    def __init__(
        self,
        config: Config,
        no_config_hint: str | None = None,
        *,
        limits: Limits | None = None,
        workers: int | None = None,
        sandbox: bool = True,
        sign_in: bool = False,
    ) -> None:
        self.config = config
        self.no_config_hint = no_config_hint
        self.limits = limits or Limits().replace(**config.codemode.limits.overrides())
        self.federation = Federation(config, sandbox_naming(), sign_in=sign_in)
        self.tools_host = ToolBridge(self.federation)
        self.pool = SandboxPool(
            size=config.codemode.workers,
            limits=self.limits,
            resident_mb=config.codemode.resident_mb,
        )
        self.sessions = Sessions(self.pool, config.codemode.sessions)
        self._warm_workers = workers or self.pool.size
        self._background = Background("codemode:engine")
        self._servers_done = asyncio.Event()
        self._servers_status: dict[str, str | None] = {}
        self._sandbox: asyncio.Future[None] | None = None
        self._wants_sandbox = sandbox
        self._open = False
        self.draining = False
        """Set on SIGTERM over HTTP: /readyz says 503 so no new work is routed here."""

    async def __aenter__(self) -> Engine:
        await self.federation.open()
        await self.pool.open()
        await self.sessions.open()
        await self._background.open()
        self._open = True
        self._background.start_soon(self._connect, name="connect the servers")
        telemetry.record_content = self.config.codemode.telemetry.record_content
        telemetry.observe(lambda: (self.pool.workers_busy, self.server_states()))
        if self._wants_sandbox:
            self._start_sandbox()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if not self._open:
            return
        self._open = False
        await self._background.close()
        await self.sessions.close()
        await asyncio.gather(self.federation.close(), self.pool.close(), return_exceptions=True)

    async def _connect(self) -> None:
        try:
            self._servers_status = await self.federation.start()
        finally:
            self._servers_done.set()

    def _start_sandbox(self) -> None:
        loop = asyncio.get_running_loop()
        self._sandbox = loop.create_future()
        sandbox = self._sandbox

        async def start() -> None:
            try:
                await self.pool.start(self._warm_workers)
            except Exception as exc:  # noqa: BLE001 - the next execution reports (and retries) it
                if not sandbox.done():
                    sandbox.set_exception(exc)
                return
            if not sandbox.done():
                sandbox.set_result(None)

        self._background.start_soon(start, name="start the sandbox")

    async def servers_ready(self) -> dict[str, str | None]:
        """Wait for the first connection attempts; server name -> None (ok) or its error."""
        await self._servers_done.wait()
        return dict(self._servers_status)

    async def sandbox_ready(self) -> None:
        if self._sandbox is None:
            self._start_sandbox()  # an engine made without one, asked to run code
        assert self._sandbox is not None
        if self._sandbox.done() and self._sandbox.exception() is not None:
            # the last attempt failed (say, a build error since fixed): try again, not forever
            self._start_sandbox()
        await asyncio.shield(self._sandbox)

    def server_states(self) -> dict[str, str]:
        """Each server's state in one word: ready, connecting, needs_login, failed, closed."""
        return {
            name: "needs_login" if c.needs_login else c.state
            for name, c in self.federation.connections.items()
        }

    def readiness(self) -> dict[str, Any]:
        """What /readyz says: ready once the sandbox is built with its workers up and every
        server's first connection attempt is done (a server that is down is reported, not
        a reason to be unready: the others serve), and not while draining."""
        sandbox = self._sandbox
        if sandbox is None or not sandbox.done():
            built = "building"
        elif sandbox.exception() is not None:
            built = f"failed: {sandbox.exception()}"
        else:
            built = "built"
        servers = {
            name: "ready" if error is None else error.split("\n", 1)[0]
            for name, error in self.status().items()
        }
        if not self._servers_done.is_set():
            servers = {name: "connecting" for name in servers}
        workers = self.pool.workers_up
        ready = (
            built == "built" and workers > 0 and self._servers_done.is_set() and not self.draining
        )
        return {
            "ready": ready, "draining": self.draining, "sandbox": built, "workers": workers,
            "servers": servers, "replica": replica.NAME,
        }  # fmt: skip

    # -- what the commands read ----------------------------------------------------------

    @property
    def asks_approvals(self) -> bool:
        """Whether any call may need a person's approval (an `approve` setting anywhere)."""
        settings = [self.config.codemode.approve]
        settings += [o.approve for o in self.config.codemode.servers.values()]
        return any(s is not None and s != () for s in settings)

    @property
    def tools(self) -> list[ToolInfo]:
        return self.federation.tools

    def status(self) -> dict[str, str | None]:
        return self.federation.status()

    def stubs(self) -> str:
        return self.federation.stubs()

    def description(self, identity: str | None = None) -> str:
        """The tool description; for a caller with `codemode.identities` rules, only the
        tools those rules let it call."""
        fed = self.federation
        status = fed.status()
        tools = fed.tools
        if fed.policy.identity_rule(identity) is not None:
            tools = [
                t for t in tools if fed.policy.identity_blocks(identity, t.server, t.name) is None
            ]
        return _description.describe(
            self.limits,
            tools,
            fed.namespaces,
            {name: _shown(name, error) for name, error in status.items() if error is not None},
            self.config.codemode.description_budget_bytes,
            self.no_config_hint,
            self._asks(),
            sorted(fed.namespaces[s] for s in fed.catalog.with_resources),
        )

    def _asks(self) -> list[str]:
        """The tools whose calls a person approves first: `ns.*` for a whole server."""
        if not self.asks_approvals:
            return []
        catalog = self.federation.catalog
        asked: dict[str, list[str]] = {}
        free: dict[str, list[str]] = {}
        for (server, _), entry in sorted(catalog.entries.items()):
            side = asked if entry.approval is not None else free
            side.setdefault(server, []).append(entry.info.py_name)
        asks = []
        for server, names in sorted(asked.items()):
            ns, others = catalog.namespaces[server], sorted(free.get(server, []))
            if len(others) < len(names) and len(others) <= 3:
                but = f" except {', '.join(f'{ns}.{n}' for n in others)}" if others else ""
                asks.append(f"{ns}.*{but}")
            else:
                asks += [f"{ns}.{n}" for n in sorted(names)]
        return asks

    def _unavailable(self, exc: Exception) -> ExecutionResult:
        log.error("the sandbox could not start: %s", exc)
        message = f"codemode: the sandbox could not start: {exc}"
        return ExecutionResult(
            ok=False,
            error=ExecutionError(
                type=type(exc).__name__, message=message, kind=ErrorKind.SANDBOX_UNAVAILABLE
            ),
        )

    async def execute(
        self, code: str, on_call_done: Any = None, context: CallContext | None = None
    ) -> ExecutionResult:
        """Run a program against the servers; failures come back in the result."""
        await self.servers_ready()
        try:
            await self.sandbox_ready()
        except Exception as exc:  # noqa: BLE001 - reported in the result, retried next time
            return self._unavailable(exc)
        identity = context.identity if context is not None else None
        with telemetry.execution_span(code, None, identity) as span:
            result = await self.pool.execute(
                code, self.tools_host, self.limits, on_call_done, context
            )
            telemetry.finish_execution(span, result)
        return result

    async def execute_in_session(
        self,
        code: str,
        session: str,
        reset: bool = False,
        scope: str | None = "local",
        on_call_done: Any = None,
        context: CallContext | None = None,
    ) -> tuple[ExecutionResult, SessionInfo | None]:
        """Run a program in a session (its globals kept for the next call); see
        `_sessions`. `scope`: whose sessions these are (None: found by handle only)."""
        await self.servers_ready()
        try:
            await self.sandbox_ready()
        except Exception as exc:  # noqa: BLE001 - reported in the result, retried next time
            return self._unavailable(exc), None
        identity = context.identity if context is not None else None
        with telemetry.execution_span(code, session, identity) as span:
            result, info = await self.sessions.run(
                session, reset, scope, code, tool_host=self.tools_host, limits=self.limits,
                context=context, on_call_done=on_call_done,
            )  # fmt: skip
            telemetry.finish_execution(span, result)
        return result, info


def _shown(name: str, error: str) -> str | None:
    """What the description says of a server that is down: only what the user must do
    (a sign-in); other reasons come with the calls' errors."""
    if error.startswith("needs login"):
        return f"needs login: the user runs `codemode login {name}`"
    return None
