"""The caller context: who and what a tool call is made for, from `execute_code` down.

Made once per execution by the server, carried through the sandbox pool (which knows
nothing of MCP: it passes it along untouched) to the tool host and the federation. Sessions,
approvals, forwarding of a downstream server's requests and per-identity policy read it.

A downstream server's log messages, progress and questions reach the client through
`log`, `progress` and `ask`.

Approvals use three things here: `ask` (the client's way to put a question to its user,
set by the server only when the client can be asked), the `Clock` (stopped while a person
is asked, so the wait is not the program's time), and `ApprovalStats` with the current
call's `CallMark` (what the result reports).
"""

from __future__ import annotations

import contextvars
import itertools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

_ids = itertools.count(1)


@dataclass
class Clock:
    """An execution's time, which stops while it waits on a person (an approval's wait is
    not the program's time). Waits nest: several approvals may be asked at once, and the
    clock runs again when the last is answered. `on_change(paused)` is told each time it
    stops or starts (the execution tells its worker)."""

    started: float = field(default_factory=time.monotonic)
    paused_s: float = 0.0
    _paused_at: float | None = None
    _holds: int = 0
    on_change: Callable[[bool], None] | None = None

    def pause(self) -> None:
        self._holds += 1
        if self._holds == 1:
            self._paused_at = time.monotonic()
            if self.on_change is not None:
                self.on_change(True)

    def resume(self) -> None:
        if self._holds == 0:
            return
        self._holds -= 1
        if self._holds == 0 and self._paused_at is not None:
            self.paused_s += time.monotonic() - self._paused_at
            self._paused_at = None
            if self.on_change is not None:
                self.on_change(False)

    @property
    def paused(self) -> bool:
        return self._holds > 0

    @property
    def elapsed_s(self) -> float:
        """Time the program has used: since it started, less the paused time."""
        now = self._paused_at if self._paused_at is not None else time.monotonic()
        return now - self.started - self.paused_s

    @property
    def waited_s(self) -> float:
        """Time spent paused so far (a pause under way included)."""
        now = time.monotonic()
        return self.paused_s + (now - self._paused_at if self._paused_at is not None else 0.0)


@dataclass(frozen=True)
class Question:
    """What to ask the client's user: a message and a form (an MCP elicitation's
    requested schema), with `meta` for clients that show more (the full arguments)."""

    message: str
    schema: dict[str, Any]
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Answer:
    action: str  # "accept" | "decline" | "cancel"
    content: dict[str, Any] = field(default_factory=dict)


Ask = Callable[[Question], Awaitable[Answer]]
Log = Callable[[str, str, "str | None", Any], Awaitable[None]]
"""Passes a downstream server's log message to the client: (server, level, logger, data)."""
Note = Callable[[str], None]
"""Passes a line of a downstream call's progress to the client's progress stream."""
"""Puts a question to the client's user and returns the answer; raises TimeoutError when
none came in time, or another exception when the client could not ask."""


@dataclass
class ApprovalStats:
    asked: int = 0
    granted: int = 0
    declined: int = 0
    rest_of_run: set[tuple[str, str]] = field(default_factory=set)
    """(server, tool) pairs the person approved for the rest of this run."""


@dataclass
class CallMark:
    """What happened to one tool call on its way (read back by the execution)."""

    approved: bool = False


CURRENT_CALL: contextvars.ContextVar[CallMark | None] = contextvars.ContextVar(
    "codemode_current_call", default=None
)
"""The mark of the tool call the current task is making (each call is a task of its own)."""


@dataclass
class CallContext:
    """One execution's caller. Every field is optional: a call made outside any client
    (`codemode run`, a test) has none of them."""

    execution_id: int = field(default_factory=lambda: next(_ids))
    client: Any = None
    """The client connection (an MCP server session), when there is one."""
    identity: str | None = None
    """Who the client is, when the transport says (a token's name)."""
    ask: Ask | None = None
    """Ask the client's user something (MCP elicitation); None when the client cannot."""
    log: Log | None = None
    """Tell the client a downstream server's log message; None when there is no client."""
    progress: Note | None = None
    """Show a downstream call's progress in this execution's progress stream."""
    clock: Clock = field(default_factory=Clock)
    approvals: ApprovalStats = field(default_factory=ApprovalStats)

    async def ask_person(self, question: Question) -> Answer:
        """Put `question` to the client's user with the clock stopped (a person's wait is
        not the program's time). Only when `ask` is set; raises what `ask` raises."""
        assert self.ask is not None
        self.clock.pause()
        try:
            return await self.ask(question)
        finally:
            self.clock.resume()
