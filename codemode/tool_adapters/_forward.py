"""What a downstream server says besides its results, passed on to whoever made the call.

A server may log, report a call's progress, and ask its client's user a question
(elicitation) while it works. Each reaches the caller of the call it belongs to, through
the caller context (`codemode.context`):

- Progress is tied to one call by the protocol (its progress token): it goes to that
  call's execution, as a line of its progress stream.
- A log message or a question (handshake era) carries no request id on the wire, so it is
  given to the calls in flight on that connection when it arrives: logs go to every
  execution with a call there (and always to stderr); a question goes to the one
  execution with calls there, and is refused (the downstream server sees the client
  could not ask) when there is none, or more than one and no way to tell which.
- In the 2026-07-28 era a question comes back as an input-required result of the call
  itself, so it is always the calling execution's (`Connection.call`).

While a person answers, the execution's clock and the call's own timeout both stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from mcp import types
from mcp.client.session import ClientSession
from mcp.shared.exceptions import MCPError
from mcp_types import UNSUPPORTED_PROTOCOL_VERSION

from ..context import CallContext, Question
from ..errors import ErrorKind, ToolCallError

log = logging.getLogger("codemode.downstream")

LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "notice": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
    "alert": logging.CRITICAL,
    "emergency": logging.CRITICAL,
}

FORWARD_LEVEL = logging.INFO
"""Downstream log messages below this level go to stderr only (debug output of a server
is not the user's business unless they ask codemode for debug logs)."""

URL_SCHEMA: dict[str, Any] = {"type": "object", "properties": {}}


@dataclass
class InFlight:
    """One call under way: whose it is, and the timer a question stops."""

    context: CallContext | None
    timer: Any = None  # an asyncio.Timeout, once the call is sent (Python 3.11+)
    _held_left: float | None = None
    _holds: int = 0

    def hold(self) -> None:
        """Stop the call's timeout (a person is being asked); nested holds count."""
        self._holds += 1
        timer = self.timer
        if self._holds == 1 and timer is not None and timer.when() is not None:
            loop = asyncio.get_running_loop()
            self._held_left = max(timer.when() - loop.time(), 0.0)
            timer.reschedule(None)

    def release(self) -> None:
        self._holds = max(self._holds - 1, 0)
        timer = self.timer
        if self._holds == 0 and timer is not None and self._held_left is not None:
            timer.reschedule(asyncio.get_running_loop().time() + self._held_left)
            self._held_left = None


@dataclass
class Calls:
    """The calls in flight on one connection."""

    server: str
    live: dict[int, InFlight] = field(default_factory=dict)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    @contextlib.contextmanager
    def track(self, context: CallContext | None) -> Iterator[InFlight]:
        key = next(self._ids)
        entry = self.live[key] = InFlight(context)
        try:
            yield entry
        finally:
            del self.live[key]

    def executions(self) -> list[tuple[CallContext, list[InFlight]]]:
        """The executions with calls in flight here, each with its calls."""
        found: dict[int, tuple[CallContext, list[InFlight]]] = {}
        for entry in self.live.values():
            if entry.context is not None:
                found.setdefault(id(entry.context), (entry.context, []))[1].append(entry)
        return list(found.values())

    # -- log messages ---------------------------------------------------------------------

    async def on_log(self, params: types.LoggingMessageNotificationParams) -> None:
        level = LEVELS.get(str(params.level), logging.INFO)
        logger = params.logger
        source = f"{self.server} ({logger})" if logger else self.server
        log.log(level, "server %s says: %s", source, params.data)
        if level < FORWARD_LEVEL:
            return
        targets = [c for c, _ in self.executions() if c.log is not None]
        for context in targets:  # looked up at once: a call that ends next still gets it
            assert context.log is not None
            try:
                await context.log(self.server, str(params.level), logger, params.data)
            except Exception as exc:  # noqa: BLE001 - a lost log line must not stop the call
                log.debug("a downstream log message was not passed on: %s", exc)

    # -- progress ------------------------------------------------------------------------

    def progress_of(self, context: CallContext | None, label: str) -> Any:
        """The progress callback for one call, or None when no one shows progress."""
        note = context.progress if context is not None else None
        if note is None:
            return None

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            done = f"{progress:g}/{total:g}" if total else f"{progress:g}"
            note(f"{label}: {done}" + (f" {message}" if message else ""))

        return on_progress

    # -- questions -----------------------------------------------------------------------

    async def on_elicit(self, ctx: Any, params: Any) -> types.ElicitResult | types.ErrorData:
        """A handshake-era server's `elicitation/create`: asked of the one execution with
        calls in flight here."""
        executions = self.executions()
        if len(executions) != 1:
            why = (
                "no codemode program is calling this server now"
                if not executions
                else f"{len(executions)} codemode programs are calling this server at once, "
                "and the request does not say for which"
            )
            log.info("server %r asked a question that was not passed on: %s", self.server, why)
            return types.ErrorData(code=types.INVALID_REQUEST, message=f"cannot ask: {why}")
        context, entries = executions[0]
        return await ask(self.server, params, context, entries)


async def ask(
    server: str, params: Any, context: CallContext, entries: list[InFlight]
) -> types.ElicitResult | types.ErrorData:
    """Put a downstream server's question to the calling execution's user; the answer, or
    the refusal a client without elicitation gives."""
    if context.ask is None:
        return types.ErrorData(
            code=types.INVALID_REQUEST,
            message="Elicitation not supported: the client running this codemode program "
            "cannot ask its user",
        )
    question = question_of(server, params)
    for entry in entries:
        entry.hold()
    try:
        answer = await context.ask_person(question)
    except TimeoutError:
        return types.ElicitResult(action="cancel")
    except Exception as exc:  # noqa: BLE001 - the client could not ask: the server is told
        log.info("could not pass on a question of server %r: %s", server, exc)
        return types.ErrorData(code=types.INTERNAL_ERROR, message=f"could not ask: {exc}")
    finally:
        for entry in entries:
            entry.release()
    content = answer.content if answer.action == "accept" else None
    if getattr(params, "mode", "form") == "url":
        content = None
    return types.ElicitResult(action=answer.action, content=content)  # type: ignore[arg-type]


def question_of(server: str, params: Any) -> Question:
    """The question as the client's user sees it: which server asks, and what. A URL-mode
    request becomes a form with no fields that names the address to open."""
    if getattr(params, "mode", "form") == "url":
        message = (
            f"MCP server {server!r} asks: {params.message}\nOpen this address to go on: "
            f"{params.url}\nAccept once done, or decline."
        )
        return Question(message, URL_SCHEMA)
    schema = getattr(params, "requested_schema", None) or URL_SCHEMA
    return Question(f"MCP server {server!r} asks: {params.message}", dict(schema))


async def answer_round(
    server: str, tool: str, result: types.InputRequiredResult, entry: InFlight
) -> dict[str, Any]:
    """The answers to one input-required round of a 2026-07-28 call: each question asked
    of the calling execution's user, all at once."""
    requests = result.input_requests or {}
    other = sorted({r.method for r in requests.values() if not isinstance(r, types.ElicitRequest)})
    if other:
        raise ToolCallError(
            f"{server}.{tool} asked for {', '.join(other)}, which codemode does not "
            "provide (it passes on elicitation only)",
            ErrorKind.TOOL_ERROR, server=server, tool=tool,
        )  # fmt: skip

    async def one(request: Any) -> types.ElicitResult:
        if entry.context is None:
            return types.ElicitResult(action="cancel")
        answer = await ask(server, request.params, entry.context, [entry])
        return (
            answer
            if isinstance(answer, types.ElicitResult)
            else types.ElicitResult(action="cancel")
        )

    keys = list(requests)
    answers = await asyncio.gather(*(one(requests[k]) for k in keys))
    return dict(zip(keys, answers))


async def negotiate(session: ClientSession, protocol: str) -> str:
    """Open the session in an era: "auto" tries the handshake first (what most servers
    speak, with server requests and tools/list_changed) and falls back to 2026-07-28 for
    a server that speaks only that; "legacy" and "2026-07-28" insist."""
    if protocol == "2026-07-28":
        await session.discover()
        return "modern"
    try:
        await session.initialize()
        return "legacy"
    except MCPError as exc:
        if protocol == "legacy" or exc.error.code != UNSUPPORTED_PROTOCOL_VERSION:
            raise
    await session.discover()
    return "modern"
