"""The caller context: who and what a tool call is made for, from `execute_code` down.

Made once per execution by the server, carried through the sandbox pool (which knows
nothing of MCP: it passes it along untouched) to the tool host and the federation. Sessions,
approvals, forwarding of a downstream server's requests and per-identity policy read it.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

_ids = itertools.count(1)


@dataclass
class Clock:
    """An execution's time, which can stop while it waits on a person (an approval's wait
    is not the program's time)."""

    started: float = field(default_factory=time.monotonic)
    paused_s: float = 0.0
    _paused_at: float | None = None

    def pause(self) -> None:
        if self._paused_at is None:
            self._paused_at = time.monotonic()

    def resume(self) -> None:
        if self._paused_at is not None:
            self.paused_s += time.monotonic() - self._paused_at
            self._paused_at = None

    @property
    def elapsed_s(self) -> float:
        """Time the program has used: since it started, less the paused time."""
        now = self._paused_at if self._paused_at is not None else time.monotonic()
        return now - self.started - self.paused_s


@dataclass
class CallContext:
    """One execution's caller. Every field is optional: a call made outside any client
    (`codemode run`, a test) has none of them."""

    execution_id: int = field(default_factory=lambda: next(_ids))
    client: Any = None
    """The client connection (an MCP server session), when there is one."""
    identity: str | None = None
    """Who the client is, when the transport says (a token's name)."""
    ask: Callable[[str, dict[str, Any]], Awaitable[Any]] | None = None
    """Ask the client's user something (MCP elicitation): message, requested schema."""
    clock: Clock = field(default_factory=Clock)
