"""What an execution tells its client while it runs: progress, and log messages of the
downstream servers it calls.

An execution reports to the request now attached to it (`Channel`). That is the one
`execute_code` request for most runs; a 2026-07-28 run paused for an approval is attached
to each retry of its client in turn, and while none is attached (the client is deciding)
what it would say is dropped: the protocol has no way to send it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import warnings
from collections.abc import AsyncIterator
from typing import Any

import anyio
from mcp.shared.exceptions import MCPDeprecationWarning

log = logging.getLogger("codemode.server")

PROGRESS_INTERVAL_S = 0.2
"""At most one progress notification per execution this often (1,000 calls are not
1,000 notifications)."""

SEND_TIMEOUT_S = 5.0
"""A log message the client does not take within this is dropped."""

# The SDK marks server log messages deprecated (the 2026-07-28 era asks for them per
# request); they are still how both eras carry a downstream server's log to the client.
warnings.filterwarnings("ignore", message="The logging capability", category=MCPDeprecationWarning)


class Progress:
    """Sends `notifications/progress` while one request of an execution is attached: tool
    calls done so far, and the latest progress line of a downstream call."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self.done = 0
        self.line = ""
        self.sent = -1.0
        self.changed = asyncio.Event()

    def update(self, done: int) -> None:
        self.done = done
        self.changed.set()

    def note(self, line: str) -> None:
        self.line = line
        self.changed.set()

    async def run(self) -> None:
        while True:
            await self.changed.wait()
            if not await self.flush():
                return
            await asyncio.sleep(PROGRESS_INTERVAL_S)

    async def flush(self) -> bool:
        """Report what changed since the last report; False if sending failed. The value
        only ever grows (the spec's rule), so a downstream line adds a little to it."""
        if not self.changed.is_set():
            return True
        self.changed.clear()
        value = max(float(self.done), self.sent + 0.001)
        calls = "call" if self.done == 1 else "calls"
        message = f"{self.done} tool {calls} done" + (f"; {self.line}" if self.line else "")
        try:
            await self.session.report_progress(value, None, message)
        except Exception as exc:  # noqa: BLE001 - a lost notification must not stop the code
            log.debug("progress notification not sent: %s", exc)
            return False
        self.sent = value
        return True


@contextlib.asynccontextmanager
async def progress_of(ctx: Any) -> AsyncIterator[Progress | None]:
    """Progress notifications for this request while the block runs, if the client asked
    for them (a progress token): yields the reporter, or None."""
    meta = ctx.meta
    if not meta or meta.get("progress_token") is None:
        yield None
        return
    progress = Progress(ctx.session)
    ticker = asyncio.create_task(progress.run())
    try:
        yield progress
    finally:
        ticker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ticker
    await progress.flush()


class Channel:
    """The request an execution reports to now, if any."""

    def __init__(self) -> None:
        self.ctx: Any = None
        self.progress: Progress | None = None

    def attach(self, ctx: Any, progress: Progress | None) -> None:
        self.ctx, self.progress = ctx, progress

    def detach(self) -> None:
        self.ctx = self.progress = None

    def on_call_done(self, done: int) -> None:
        if self.progress is not None:
            self.progress.update(done)

    def note(self, line: str) -> None:
        if self.progress is not None:
            self.progress.note(line)

    async def log(self, server: str, level: str, logger: str | None, data: Any) -> None:
        """A downstream server's log message, as a log notification of this request whose
        logger names the server (`memory`, or `memory.worker` for its own logger)."""
        ctx = self.ctx
        if ctx is None:
            return
        name = f"{server}.{logger}" if logger else server
        with anyio.move_on_after(SEND_TIMEOUT_S):
            await ctx.session.send_log_message(
                level, data, logger=name, related_request_id=ctx.request_id
            )
