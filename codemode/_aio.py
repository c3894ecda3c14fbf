"""asyncio helpers shared by the sandbox pool, the tool adapters and the server."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio
import anyio.abc

T = TypeVar("T")


async def within(awaitable: Awaitable[T], seconds: float) -> T:
    """`await awaitable`, raising asyncio.TimeoutError after `seconds`.

    On Python 3.11+ it runs in the caller's task (`asyncio.timeout`): `wait_for` wraps it
    in a task of its own there, an extra trip through the event loop that showed as ~0.1 ms
    on every tool call. Python 3.10 has no `asyncio.timeout`, so it uses `wait_for`."""
    if sys.version_info >= (3, 11):
        async with asyncio.timeout(seconds):
            return await awaitable
    return await asyncio.wait_for(awaitable, seconds)


class Background:
    """A task group in a task of its own: the owner of background work for an object that
    may be opened in one task and closed in another (a test fixture, a server's lifespan),
    which an anyio task group entered in the caller's task would not allow. Every task
    started here ends, cancelled, by `close()`; a task's own exception is logged, not
    lost, and does not stop the others."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._group: anyio.abc.TaskGroup | None = None
        self._owner: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    async def open(self) -> None:
        ready = asyncio.Event()

        async def own() -> None:
            async with anyio.create_task_group() as group:
                self._group = group
                ready.set()
                await self._stop.wait()
                group.cancel_scope.cancel()

        self._owner = asyncio.get_running_loop().create_task(own(), name=self.name)
        await ready.wait()

    def start_soon(self, func: Callable[..., Awaitable[Any]], *args: Any, name: str = "") -> None:
        if self._group is None:
            raise RuntimeError(f"{self.name} is not open")

        async def guarded() -> None:
            try:
                await func(*args)
            except Exception:
                logging.getLogger("codemode").exception("%s: %s failed", self.name, name or func)

        self._group.start_soon(guarded, name=name or getattr(func, "__name__", None))

    async def close(self) -> None:
        owner, self._owner = self._owner, None
        self._stop.set()
        if owner is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(owner)
        self._group = None
