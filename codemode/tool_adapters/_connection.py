"""One downstream MCP server: its process or HTTP session, its tools, its calls.

The SDK's transports are context managers that must be entered and left in one task, so
each connection is owned by a runner task that opens the session, reports ready, and holds
it until `close()` (or until the server dies). A dead server is restarted on the next call
to it, no sooner than its back-off allows; shutdown leaves no child process behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import IO, Any

import anyio
import httpx2
from mcp import types
from mcp.client.session import ClientSession
from mcp.client.sse import sse_client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp_types import CONNECTION_CLOSED

from .. import telemetry
from .._aio import within
from .._chain import CHAIN_ENV, chain_for
from ..config import ServerConfig, ServerOptions
from ..context import CallContext
from ..errors import ErrorKind, ServerStartError, ToolCallError
from . import _oauth as oauth
from . import _resources as resources
from ._forward import Calls, InFlight, answer_round, negotiate

log = logging.getLogger("codemode.downstream")

STDERR_TAIL_BYTES = 2000
"""How much of a failed server's stderr its error shows."""

HTTP_TIMEOUT = httpx2.Timeout(30.0, read=300.0)
"""Connect, write and pool limits for HTTP servers; reads wait longer (a response stream
may stay open while a tool works)."""

MAX_INPUT_ROUNDS = 10
"""Input-required rounds (2026-07-28 questions) one call may take before it is failed."""

RESTART_BACKOFF_S = (0.5, 30.0)
"""Smallest and largest wait between restarts of a server that keeps dying (doubling).
The first restart after a server that was working dies is immediate."""


class Connection:
    """A connection to one downstream server. States: idle, connecting, ready, failed, closed."""

    def __init__(
        self,
        name: str,
        config: ServerConfig,
        options: ServerOptions,
        on_tools_changed: Callable[[], Awaitable[None]] | None = None,
        sign_in: bool = False,
        browser: oauth.Browser | None = None,
    ) -> None:
        self.name = name
        self.browser = browser
        """The sign-in's browser side to use (`codemode login`); else one made per start."""
        self.sign_in = sign_in or browser is not None
        """Whether a server that wants an OAuth sign-in may get one here (in the browser)."""
        self.config = config
        self.options = options
        self.on_tools_changed = on_tools_changed
        self.state = "idle"
        self.error: str | None = None
        self.tools: list[types.Tool] = []
        self.session: ClientSession | None = None
        self.era = "legacy"
        """The protocol era the session speaks: "legacy" (handshake) or "modern"."""
        self.calls = Calls(name)
        self.resources = 0
        self.needs_login = False
        """The server asked for a sign-in (OAuth) that only `codemode login` may start."""
        self._login_stamp: float | None = None
        """How many resources and templates the server listed when it connected."""
        self.restarts = 0
        self._runner: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._start_lock = asyncio.Lock()
        self._errlog: IO[str] | None = None
        self._next_start = 0.0
        self._backoff = RESTART_BACKOFF_S[0]
        self._wake = asyncio.Event()  # stop, or refresh the tools
        self._refresh_wanted = False

    # -- lifetime ----------------------------------------------------------------------

    async def start(self) -> None:
        """Connect, initialize and list tools; raise ServerStartError with the reason."""
        async with self._start_lock:
            if self.state == "ready":
                return
            await self._stop_runner()
            self.state = "connecting"
            self._stop = asyncio.Event()
            self._wake = asyncio.Event()
            ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._runner = asyncio.create_task(self._run(ready), name=f"mcp:{self.name}")
            timeout = self.options.connect_timeout_s
            if self.sign_in and self.config.transport != "stdio":  # a person may sign in
                timeout += self.browser.timeout_s if self.browser else oauth.LOGIN_TIMEOUT_S
            try:
                await asyncio.wait_for(asyncio.shield(ready), timeout)
            except asyncio.TimeoutError:
                await self._stop_runner()
                self._fail(f"did not finish MCP initialization within {timeout:g} s")
            except Exception as exc:  # noqa: BLE001 - reported as the server's start error
                await self._stop_runner()
                login = oauth.needs_login(exc)
                if login is not None:
                    self._mark_needs_login(login)
                    raise ServerStartError(f"server {self.name!r} {self.error}") from None
                reason = _describe(exc)
                if _closed(exc):
                    reason = (
                        "the server exited (or closed stdout) before completing MCP initialization"
                    )
                self._fail(reason)
            self._backoff = 0.0  # the first restart after a good run is immediate

    def _fail(self, reason: str) -> None:
        self._mark_failed(reason)
        raise ServerStartError(f"server {self.name!r} failed to start: {self.error}")

    def _mark_needs_login(self, exc: BaseException) -> None:
        """The server wants a sign-in: no restart until new tokens appear."""
        self.state = "failed"
        self.needs_login = True
        self.error = f"needs login: {exc}; {oauth.login_hint(self.name)}"
        self._login_stamp = oauth.token_file(self.name, self.config).stamp()

    def _signed_in_since(self) -> bool:
        """Whether the tokens changed since the server asked for a sign-in."""
        return oauth.token_file(self.name, self.config).stamp() != self._login_stamp

    def _mark_failed(self, reason: str) -> None:
        """Record why the server is down (with its stderr tail) and when it may restart."""
        tail = self.stderr_tail()
        self.state = "failed"
        self.error = reason + (f"\n--- stderr (last lines) ---\n{tail}" if tail else "")
        self._next_start = time.monotonic() + self._backoff
        self._backoff = min(max(self._backoff * 2, RESTART_BACKOFF_S[0]), RESTART_BACKOFF_S[1])

    async def _run(self, ready: asyncio.Future[None]) -> None:
        try:
            async with contextlib.AsyncExitStack() as stack:
                read, write = await self._open(stack)
                session = await stack.enter_async_context(
                    ClientSession(
                        read, write,
                        elicitation_callback=self.calls.on_elicit,
                        logging_callback=self.calls.on_log,
                        message_handler=self._on_message,
                        log_level="info",  # 2026-07-28 servers log only when asked to
                    )
                )  # fmt: skip
                self.era = await negotiate(session, self.options.protocol)
                self.tools = await _list_all_tools(session)
                self.resources = await resources.count(session)
                self.session = session
                self.state = "ready"
                self.error = None
                ready.set_result(None)
                await self._serve_refreshes(session)
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(
                    exc if isinstance(exc, Exception) else ServerStartError(repr(exc))
                )
            elif self.state == "ready":
                self.state = "failed"
                self.error = f"the server stopped: {_describe(exc)}"
                log.warning("server %r stopped: %s", self.name, self.error)
            if isinstance(exc, asyncio.CancelledError):
                raise
        finally:
            self.session = None
            if self.state == "ready":  # the session ended without an error: the server exited
                self.state = "failed"
                self.error = "the server closed the connection"

    async def _open(self, stack: contextlib.AsyncExitStack) -> Any:
        """The transport's streams, entered on `stack`: the child process (stdio), or the
        HTTP client with its OAuth (the stored tokens; a sign-in in the browser only
        when `sign_in`)."""
        if self.config.transport == "stdio":
            if self._errlog is None:  # kept across restarts; closed by close()
                self._errlog = tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace")
            params = StdioServerParameters(
                command=self.config.command or "",
                args=list(self.config.args),
                # over the SDK's safe default environment; the marker lets a
                # codemode started here know it would start a chain of itself
                env={**self.config.env, CHAIN_ENV: chain_for(self.name)},
                cwd=self.config.cwd,
            )
            return await stack.enter_async_context(stdio_client(params, errlog=self._errlog))
        browser = self.browser
        if browser is None and self.sign_in:  # `codemode run --sign-in`: a sign-in may start
            browser = oauth.Browser(self.options.oauth.redirect_port)
        if browser is not None:
            await stack.enter_async_context(browser.listening())
        auth = await oauth.auth_for(self.name, self.config, self.options.oauth, browser)
        if self.config.transport == "sse":
            return await stack.enter_async_context(
                sse_client(self.config.url or "", headers=dict(self.config.headers), auth=auth)
            )
        client = await stack.enter_async_context(
            httpx2.AsyncClient(
                headers=dict(self.config.headers), timeout=HTTP_TIMEOUT, auth=auth,
                event_hooks={"request": [_trace_context]},
            )
        )  # fmt: skip
        return await stack.enter_async_context(
            streamable_http_client(self.config.url or "", http_client=client)
        )

    async def _stop_runner(self) -> None:
        runner, self._runner = self._runner, None
        if runner is None:
            return
        self._stop.set()
        self._wake.set()
        try:
            await asyncio.wait_for(asyncio.shield(runner), 5)
        except (asyncio.TimeoutError, Exception):  # noqa: BLE001
            runner.cancel()
            with contextlib.suppress(BaseException):
                await runner

    async def close(self) -> None:
        await self._stop_runner()
        self.state = "closed"
        if self._errlog is not None:
            self._errlog.close()

    def stderr_tail(self) -> str:
        f = self._errlog
        if f is None or f.closed:
            return ""
        try:
            f.flush()
            size = f.seek(0, 2)
            f.seek(max(0, size - STDERR_TAIL_BYTES))
            text = f.read()
            f.seek(0, 2)
        except (OSError, ValueError):
            return ""
        return text.strip()

    # -- tools -------------------------------------------------------------------------

    async def _on_message(self, message: Any) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            self._refresh_wanted = True  # seen by the runner; one during a refresh is kept
            self._wake.set()

    async def _serve_refreshes(self, session: ClientSession) -> None:
        """The runner's life once ready: refresh the tools each time the server says they
        changed (coalesced: any number of notices during a refresh make one more), until
        stopped. The refresh is the runner's own work, so it ends with the connection."""
        while not self._stop.is_set():
            await self._wake.wait()
            self._wake.clear()
            while self._refresh_wanted and not self._stop.is_set():
                self._refresh_wanted = False
                try:
                    self.tools = await _list_all_tools(session)
                except Exception as exc:  # noqa: BLE001 - a failed refresh keeps the old tools
                    log.warning("server %r: could not refresh its tools: %s", self.name, exc)
                    continue
                if self.on_tools_changed is not None:
                    await self.on_tools_changed()

    async def call(
        self, tool: str, arguments: dict[str, Any], context: CallContext | None = None
    ) -> types.CallToolResult:
        """Call `tool` for `context`'s execution; restart the server first if it died.
        Raises ToolCallError. While a person answers a question of the server's, the
        call's timeout is stopped."""

        async def send(session: ClientSession, entry: InFlight) -> Any:
            return await self._call(session, tool, arguments, entry)

        result = await self.request(tool, send, context)
        if not isinstance(result, types.CallToolResult):
            raise ToolCallError(
                f"{self.name}.{tool} returned {type(result).__name__}, not a tool result",
                ErrorKind.TOOL_ERROR,
                server=self.name,
                tool=tool,
            )
        return result

    async def request(
        self,
        what: str,
        send: Callable[[ClientSession, InFlight], Awaitable[Any]],
        context: CallContext | None = None,
    ) -> Any:
        """`await send(session, entry)` under the server's call timeout, as a call named
        `what` (a tool, or `resources/read`): the server restarted first if it died, every
        failure a ToolCallError with the kind and the fix."""
        session = await self._session_for(what)
        timeout = self.options.call_timeout_s
        try:
            with self.calls.track(context) as entry:
                if sys.version_info >= (3, 11):
                    async with asyncio.timeout(timeout) as timer:
                        entry.timer = timer
                        return await send(session, entry)
                else:  # no pausable timeout before 3.11: a question's wait counts
                    return await within(send(session, entry), timeout)
        except asyncio.TimeoutError:
            raise ToolCallError(
                f"{self.name}.{what} did not answer within the call_timeout_s limit of "
                f"{timeout:g} s (server {self.name!r}); raise codemode.servers."
                f"{self.name}.call_timeout_s if it is just slow",
                ErrorKind.TIMEOUT,
                server=self.name,
                tool=what,
                limit="call_timeout_s",
            ) from None
        except ToolCallError:
            raise
        except Exception as exc:  # noqa: BLE001 - mapped at the boundary, never leaked raw
            login = oauth.needs_login(exc)
            if login is not None:
                await self._stop_runner()
                self._mark_needs_login(login)
                log.warning("server %r %s", self.name, self.error)
                if self.on_tools_changed is not None:  # the description says so now
                    await self.on_tools_changed()
                raise ToolCallError(
                    f"{self.name}.{what} failed: server {self.name!r} {self.error}",
                    ErrorKind.SERVER_UNAVAILABLE, server=self.name, tool=what,
                ) from None  # fmt: skip
            closed = isinstance(exc, MCPError) and exc.error.code == CONNECTION_CLOSED
            if closed or self.session is None or self.state != "ready":
                await self._stop_runner()
                self._mark_failed("the server closed the connection")
                message = f"server {self.name!r} stopped during {self.name}.{what}: {self.error}"
                raise ToolCallError(
                    message, ErrorKind.SERVER_UNAVAILABLE, server=self.name, tool=what
                ) from None
            raise ToolCallError(
                f"{self.name}.{what} failed: {_describe(exc)}",
                ErrorKind.TOOL_ERROR,
                server=self.name,
                tool=what,
            ) from None

    async def _session_for(self, what: str) -> ClientSession:
        """The live session, (re)starting the server if it is down and its back-off allows."""
        signed_in = False
        if self.state != "ready":
            wait = self._next_start - time.monotonic()
            if self.needs_login:
                if not self._signed_in_since():
                    raise ToolCallError(
                        f"server {self.name!r} {self.error}",
                        ErrorKind.SERVER_UNAVAILABLE, server=self.name, tool=what,
                    )  # fmt: skip
                self.needs_login, wait, signed_in = False, 0.0, True
            if self.state == "failed" and wait > 0:
                raise ToolCallError(
                    f"server {self.name!r} is unavailable ({self.error}); "
                    f"next restart attempt in {wait:.1f} s",
                    ErrorKind.SERVER_UNAVAILABLE,
                    server=self.name,
                    tool=what,
                )
            before = self.tools
            try:
                if self.state == "failed":
                    self.restarts += 1
                    log.info("restarting server %r (restart %d)", self.name, self.restarts)
                await self.start()
            except ServerStartError as exc:
                raise ToolCallError(
                    str(exc), ErrorKind.SERVER_UNAVAILABLE, server=self.name, tool=what
                ) from None
            changed = signed_in or self.tools != before  # e.g. first listed after a login
            if changed and self.on_tools_changed is not None:
                await self.on_tools_changed()
        session = self.session
        if session is None:
            raise ToolCallError(
                f"server {self.name!r} is unavailable ({self.error})",
                ErrorKind.SERVER_UNAVAILABLE,
                server=self.name,
                tool=what,
            )
        return session

    async def _call(
        self, session: ClientSession, tool: str, arguments: dict[str, Any], entry: InFlight
    ) -> Any:
        """One call, with its progress passed on; in the 2026-07-28 era, the rounds of
        questions it comes back with are asked and answered until it has a result."""
        progress = self.calls.progress_of(entry.context, f"{self.name}.{tool}")
        if self.era != "modern":
            return await session.call_tool(tool, arguments, progress_callback=progress)
        result = await session.call_tool(
            tool, arguments, progress_callback=progress, allow_input_required=True
        )
        for _ in range(MAX_INPUT_ROUNDS):
            if not isinstance(result, types.InputRequiredResult):
                return result
            responses = await answer_round(self.name, tool, result, entry)
            result = await session.call_tool(
                tool, arguments, progress_callback=progress, input_responses=responses,
                request_state=result.request_state, allow_input_required=True,
            )  # fmt: skip
        if isinstance(result, types.InputRequiredResult):
            raise ToolCallError(
                f"{self.name}.{tool} asked more than {MAX_INPUT_ROUNDS} rounds of questions",
                ErrorKind.TOOL_ERROR, server=self.name, tool=tool,
            )  # fmt: skip
        return result


async def _trace_context(request: httpx2.Request) -> None:
    telemetry.inject_headers(request.headers)  # the caller's trace goes on downstream


async def _list_all_tools(session: ClientSession) -> list[types.Tool]:
    tools: list[types.Tool] = []
    cursor = None
    for _ in range(1000):  # a server that pages forever must not hang start-up
        params = types.PaginatedRequestParams(cursor=cursor) if cursor else None
        page = await session.list_tools(params=params)
        tools.extend(page.tools)
        cursor = page.next_cursor
        if not cursor:
            break
    return tools


def _closed(exc: BaseException) -> bool:
    """Whether `exc` (or an exception in its group) says the server's stream ended: the
    SDK's CONNECTION_CLOSED error, or anyio's closed or broken stream."""
    group = getattr(exc, "exceptions", None)
    if isinstance(group, (list, tuple)):
        return any(_closed(e) for e in group)
    if isinstance(exc, MCPError):
        return exc.error.code == CONNECTION_CLOSED
    return isinstance(
        exc, (anyio.ClosedResourceError, anyio.BrokenResourceError, anyio.EndOfStream)
    )


def _describe(exc: BaseException) -> str:
    group = getattr(exc, "exceptions", None)  # an ExceptionGroup from a task group
    if isinstance(group, (list, tuple)):
        inner = [e for e in group if not isinstance(e, asyncio.CancelledError)]
        if inner:
            return _describe(inner[0])
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
