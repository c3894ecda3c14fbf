"""The engine behind every command: a config's downstream servers plus a sandbox pool.

`serve`, `run`, `tools`, `doctor` and `demo` all drive this one object, so code tried with
`codemode run` behaves exactly as it will under an agent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from ..config import Config
from ..tool_adapters import Federation
from ..wasm_runtime import ExecutionError, ExecutionResult, Limits, SandboxPool
from . import _description

log = logging.getLogger("codemode.server")


class Engine:
    """Connects the servers and starts the sandbox in the background; runs programs.

    `start()` returns at once; `servers_ready()` waits for every server's first connection
    attempt (bounded by its `connect_timeout_s`), and `execute()` also waits for the sandbox
    (built on first use, ~20 s once per machine).
    """

    def __init__(self, config: Config, no_config_hint: str | None = None) -> None:
        self.config = config
        self.no_config_hint = no_config_hint
        self.limits = Limits().replace(**config.codemode.limits.overrides())
        self.federation = Federation(config)
        self.pool = SandboxPool(size=config.codemode.workers, limits=self.limits)
        self._servers: asyncio.Task[dict[str, str | None]] | None = None
        self._sandbox: asyncio.Task[None] | None = None

    def start(self, workers: int | None = None) -> None:
        if self._servers is not None:
            return
        self._servers = asyncio.create_task(self.federation.start(), name="codemode:servers")
        self._sandbox = asyncio.create_task(
            self.pool.start(workers or self.pool.size), name="codemode:sandbox"
        )

    async def servers_ready(self) -> dict[str, str | None]:
        """Wait for the first connection attempts; server name -> None (ok) or its error."""
        if self._servers is None:
            self.start()
        assert self._servers is not None
        return await asyncio.shield(self._servers)

    async def sandbox_ready(self) -> None:
        if self._sandbox is None:
            self.start()
        assert self._sandbox is not None
        if self._sandbox.done() and self._sandbox.exception() is not None:
            # the last attempt failed (say, a build error since fixed): try again, not forever
            self._sandbox = asyncio.create_task(self.pool.start(1), name="codemode:sandbox")
        await asyncio.shield(self._sandbox)

    async def close(self) -> None:
        for task in (self._servers, self._sandbox):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
        await asyncio.gather(self.federation.close(), self.pool.close(), return_exceptions=True)

    def description(self) -> str:
        fed = self.federation
        status = fed.status()
        return _description.describe(
            self.limits,
            fed.tools,
            fed.namespaces,
            sorted(name for name, error in status.items() if error is not None),
            self.config.codemode.description_budget_bytes,
            self.no_config_hint,
        )

    async def execute(self, code: str, on_call_done: Any = None) -> ExecutionResult:
        """Run a program against the servers; failures come back in the result."""
        await self.servers_ready()
        try:
            await self.sandbox_ready()
        except Exception as exc:  # noqa: BLE001 - reported in the result, retried next time
            log.error("the sandbox could not start: %s", exc)
            message = f"codemode: the sandbox could not start: {exc}"
            return ExecutionResult(
                ok=False, error=ExecutionError(type=type(exc).__name__, message=message)
            )
        return await self.pool.execute(code, self.federation, self.limits, on_call_done)
