"""The MCP face of the engine: one tool, `execute_code`, over stdio or streamable HTTP.

Built on the SDK's low-level `Server` because the tool's description follows the
downstream tools (and changes with them), and its result carries both text and
`structuredContent`. Nothing here writes to stdout: on stdio that is the protocol channel
(the SDK points fd 1 at stderr while it serves, so even a stray print cannot corrupt it).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import signal
import socket
from typing import Any

import anyio
import mcp_types as types
from mcp.server.lowlevel import NotificationOptions, Server
from mcp.server.request_state import RequestStateBoundary, RequestStateSecurity
from mcp.server.session import ServerSession
from mcp.server.subscriptions import InMemorySubscriptionBus, ListenHandler, ToolsListChanged

from .. import __version__
from .._aio import Background
from ..context import CallContext
from ..errors import ErrorKind, ServeError
from ..wasm_runtime import ExecutionError, ExecutionResult
from . import _replica as replica
from . import _results
from ._approvals import Elicitor, PausedRun, PausedRuns, can_elicit, era_of
from ._channel import Channel, progress_of
from ._description import TOOL_NAME
from ._engine import Engine
from ._http import (
    HttpOptions,
    auth_of,
    drain,
    health_routes,
    identity_of,
    quiet_uvicorn,
    transport_security,
)

log = logging.getLogger("codemode.server")

SHUTDOWN_TIMEOUT_S = 5.0
"""How long shutdown waits for downstream servers and workers to stop."""

NOTIFY_TIMEOUT_S = 5.0
"""A client that takes longer than this to take a notification is dropped from the list."""

MAX_NOTIFIED_SESSIONS = 256
"""Client sessions remembered for `tools/list_changed` (HTTP may have many over time)."""

INPUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "code": {
            "type": "string",
            "description": "The Python program. Top-level await works; return a small result.",
        },
        "session": {
            "type": "string",
            "description": "Optional: a short name (letters, digits, '_', '-'). Calls with "
            "the same session keep the program's variables, functions and imports.",
        },
        "reset": {
            "type": "boolean",
            "description": "With `session`: start that session anew before running.",
        },
    },
    "required": ["code"],
    "additionalProperties": False,
}


class _Notifier:
    """Sends one client `tools/list_changed`: changes that come while a send is under way
    make one more send (never lost, never queued up); a send that takes more than
    NOTIFY_TIMEOUT_S, or fails, drops the client from the list."""

    def __init__(self, session: ServerSession, forget: Any) -> None:
        self.session = session
        self._forget = forget
        self._pending = False
        self._sending = False

    def poke(self, background: Background) -> None:
        self._pending = True
        if not self._sending:
            self._sending = True
            background.start_soon(self._send, name="notify a client")

    async def _send(self) -> None:
        try:
            while self._pending:
                self._pending = False
                with anyio.fail_after(NOTIFY_TIMEOUT_S):
                    await self.session.send_tool_list_changed()
        except Exception as exc:  # noqa: BLE001 - a gone or stuck client is dropped, not fatal
            log.debug("dropping a client session: %s", exc)
            self._forget(self.session)
        finally:
            self._sending = False


class CodeModeServer:
    """An `Engine` served over MCP."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.bus = InMemorySubscriptionBus()
        self.background = Background("codemode:server")
        self._notifiers: dict[int, _Notifier] = {}
        self.paused = PausedRuns()
        self.running = 0
        self.stateless = False
        """Serving stateless HTTP (replicas): sessions are found by their handles only."""
        """execute_code requests being served now (a drain waits for them)."""
        self.uvicorn: Any = None
        self._sessions: list[ServerSession] = []
        self.server: Server[Any] = Server(
            "codemode",
            version=__version__,
            title="codemode",
            description="Run one Python program that calls all your MCP tools, in a wasm sandbox.",
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
            on_subscriptions_listen=ListenHandler(self.bus),
        )
        # Seals the request state of input-required results (2026-07-28 approvals):
        # encrypted, bound to the call's arguments, expiring after the approval timeout.
        ttl = engine.config.codemode.approval_timeout_s + 60
        key = engine.config.codemode.http.state_key  # shared by replicas: any can unseal
        security = (
            RequestStateSecurity(keys=[key], ttl=ttl)
            if key
            else RequestStateSecurity.ephemeral(ttl=ttl)
        )
        self.server.middleware.append(RequestStateBoundary(security, default_audience="codemode"))
        self.server.add_notification_handler(
            "notifications/initialized", types.NotificationParams, self._initialized
        )
        engine.federation.on_tools_changed(self._tools_changed)

    def init_options(self) -> Any:
        return self.server.create_initialization_options(NotificationOptions(tools_changed=True))

    # -- handlers ----------------------------------------------------------------------

    async def _initialized(self, ctx: Any, params: Any) -> None:
        self._sessions.append(ctx.session)
        del self._sessions[:-MAX_NOTIFIED_SESSIONS]

    async def tool(self, identity: str | None = None) -> types.Tool:
        await self.engine.servers_ready()
        return types.Tool(
            name=TOOL_NAME,
            title="Run Python code that calls your tools",
            description=self.engine.description(identity),
            input_schema=INPUT_SCHEMA,
            output_schema=_results.OUTPUT_SCHEMA,
            annotations=types.ToolAnnotations(
                title="Run Python code that calls your tools",
                read_only_hint=False,
                destructive_hint=True,
                idempotent_hint=False,
                open_world_hint=True,
            ),
        )

    async def _list_tools(self, ctx: Any, params: Any) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[await self.tool(identity_of(ctx))])

    async def _call_tool(
        self, ctx: Any, params: types.CallToolRequestParams
    ) -> types.CallToolResult | types.InputRequiredResult:
        self.running += 1
        try:
            return await self._serve_call(ctx, params)
        finally:
            self.running -= 1

    async def _serve_call(
        self, ctx: Any, params: types.CallToolRequestParams
    ) -> types.CallToolResult | types.InputRequiredResult:
        if params.name != TOOL_NAME:
            return _refusal(
                f"unknown tool {params.name!r}: this server has one tool, {TOOL_NAME!r}."
            )
        if self.engine.draining and params.request_state is None:
            return _refusal(
                "this codemode server is shutting down and takes no new programs; send it "
                "again (another replica, or this one after its restart, will run it).",
                ErrorKind.SERVER_UNAVAILABLE,
                "ShuttingDown",
            )
        if params.request_state is not None:  # a retry bringing answers: resume its run
            return await self._resume(ctx, params)
        arguments = params.arguments or {}
        code = arguments.get("code")
        session = arguments.get("session")
        reset = arguments.get("reset", False)
        extra = sorted(set(arguments) - {"code", "session", "reset"})
        bad = (
            not isinstance(code, str)
            or extra
            or not isinstance(session, (str, type(None)))
            or not isinstance(reset, bool)
            or (reset and session is None)
        )
        if bad:
            got = ", ".join(f"{k} ({type(v).__name__})" for k, v in arguments.items()) or "nothing"
            return _refusal(
                f"{TOOL_NAME} takes `code` (the Python program, a string), and optionally "
                "`session` (a name, to keep the program's variables between calls) with "
                f"`reset` (true to start that session anew). Got: {got}."
            )
        channel = Channel()
        context = CallContext(
            client=ctx.session, identity=identity_of(ctx), log=channel.log, progress=channel.note
        )
        run = None
        if can_elicit(ctx):  # for approvals, and questions of downstream servers
            timeout_s = self.engine.config.codemode.approval_timeout_s
            if era_of(ctx) == "modern":
                run = PausedRun(timeout_s, channel)
                context.ask = run.ask
            elif ctx.session.can_send_request:
                context.ask = Elicitor(ctx.session, ctx.request_id, timeout_s)

        async def execute(on_call: Any) -> tuple[ExecutionResult, Any]:
            if session is None:
                return await self.engine.execute(code, on_call, context), None
            scope = None if self.stateless else _scope(ctx)
            return await self.engine.execute_in_session(
                code, session, reset, scope, on_call, context
            )

        if run is not None:
            run.task = asyncio.get_running_loop().create_task(execute(run.on_call_done))
            self.paused.add(run)
            return await self._attend(ctx, run)
        async with progress_of(ctx) as progress:
            channel.attach(ctx, progress)
            result, info = await execute(channel.on_call_done)
        return _finished(result, info)

    async def _attend(self, ctx: Any, run: PausedRun) -> Any:
        """Follow a run for one request of its client: until it ends (its result) or has
        questions (an input-required result; the run waits, paused, for the retry)."""
        assert run.task is not None
        try:
            async with progress_of(ctx) as progress:
                run.channel.attach(ctx, progress)
                questions = await run.next_round()
        except BaseException:  # the client cancelled the request: the run ends with it
            run.cancel()
            self.paused.drop(run)
            raise
        finally:
            run.channel.detach()
        if questions:
            return run.input_required(questions)
        self.paused.drop(run)
        result, info = run.task.result()
        return _finished(result, info)

    async def _resume(self, ctx: Any, params: types.CallToolRequestParams) -> Any:
        token = params.request_state or ""
        run = self.paused.get(token)
        if run is None and replica.where(token) == "elsewhere":
            return _refusal(
                f"this program is paused on another codemode replica (this is "
                f"{replica.NAME!r}): {replica.ROUTING}.",
                ErrorKind.SERVER_UNAVAILABLE,
                "WrongReplica",
            )
        if run is None or run.detached_at is None:
            why = (
                "it is being resumed by another request"
                if run is not None
                else "this codemode server restarted since it paused"
                if replica.where(token) == "restarted"
                else "it waited longer than codemode.approval_timeout_s "
                f"({self.engine.config.codemode.approval_timeout_s:g} s) for an answer and "
                "was stopped"
            )
            return _refusal(
                f"this program cannot be resumed: {why}. Nothing it would have done after "
                "the approval was done; run it again.",
                ErrorKind.APPROVAL_TIMEOUT,
                "ApprovalTimeout",
            )
        run.answer(params.input_responses)
        return await self._attend(ctx, run)

    async def _tools_changed(self) -> None:
        """Downstream tools changed: the description did too; tell every client, each by a
        notifier of its own, so a slow client holds up no one."""
        for session in list(self._sessions):
            notifier = self._notifiers.get(id(session))
            if notifier is None:
                notifier = self._notifiers[id(session)] = _Notifier(session, self._forget)
            notifier.poke(self.background)
        await self.bus.publish(ToolsListChanged())

    def _forget(self, session: ServerSession) -> None:
        with contextlib.suppress(ValueError):
            self._sessions.remove(session)
        self._notifiers.pop(id(session), None)

    # -- transports --------------------------------------------------------------------

    async def serve_stdio(self) -> None:
        from mcp.server.stdio import stdio_server

        async with stdio_server() as (read_stream, write_stream):
            # Entered inside the stdio claim: downstream servers and sandbox workers are
            # spawned while fd 1 points at stderr, so none of them can write to the channel.
            async with self.engine:
                await self.server.run(read_stream, write_stream, self.init_options())

    async def serve_http(self, host: str, port: int, options: HttpOptions) -> None:
        import uvicorn

        # Bound here, before anything starts or is announced: a taken port is an error at
        # once (uvicorn would log it and leave the process hanging).
        auth, verifier = await auth_of(host, port, options)
        sock = bind_tcp(host, port)
        self.stateless = options.config.stateless or options.stateless
        app = self.server.streamable_http_app(
            host=host,
            stateless_http=self.stateless,
            transport_security=transport_security(host, options),
            auth=auth,
            token_verifier=verifier,
            custom_starlette_routes=health_routes(self.engine),
        )
        config = uvicorn.Config(
            app, log_level="warning", lifespan="on",
            timeout_graceful_shutdown=int(options.config.drain_s) + 1,
        )  # fmt: skip
        self.uvicorn = server = quiet_uvicorn(config)
        bound = sock.getsockname()
        async with self.engine:
            who = "bearer tokens" if options.auth.tokens_file else options.auth.issuer or "no auth"
            log.info("codemode serving MCP on http://%s:%d/mcp (%s)", host, bound[1], who)
            try:
                await server.serve(sockets=[sock])
            finally:
                sock.close()

    async def drain(self, grace_s: float) -> None:
        """Stop taking requests (and say so on /readyz), let the executions under way
        finish for up to `grace_s`, then let the HTTP server go."""
        self.engine.draining = True
        if self.uvicorn is not None:
            await drain(self.uvicorn, lambda: self.running, grace_s)


def bind_tcp(host: str, port: int) -> socket.socket:
    """A listening socket on host:port, or ServeError naming the address and the fix."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ServeError(f"cannot serve on {host!r}: {exc.strerror}. Pass --host.") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        taken = exc.errno == errno.EADDRINUSE
        why = "is already in use" if taken else f"cannot be bound ({exc.strerror})"
        raise ServeError(
            f"port {port} on {host} {why}: stop what holds it, or pass --port with another "
            "number (--port 0 picks a free one)."
        ) from None
    sock.setblocking(False)
    return sock


def _scope(ctx: Any) -> str | None:
    """Whose sessions a call may reach: the one client of a stdio server; over HTTP, the
    caller's identity (with auth), else one client by its MCP session id; None where the
    transport says nothing (stateless HTTP with no auth), and then sessions are found by
    their unguessable handles only."""
    request = getattr(ctx, "request", None)
    if request is None:
        return "stdio"
    identity = identity_of(ctx)
    if identity is not None:
        return f"identity:{identity}"
    headers = getattr(request, "headers", None) or {}
    session_id = headers.get("mcp-session-id")
    return f"http:{session_id}" if session_id else None


def _finished(result: ExecutionResult, info: Any) -> types.CallToolResult:
    if not result.ok:
        log.info(
            "execution failed: %s: %s",
            result.error.type if result.error else "?",
            result.error.message if result.error else "",
        )
    return _to_call_result(result, info)


def _to_call_result(result: ExecutionResult, session: Any = None) -> types.CallToolResult:
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=_results.text(result, session))],
        structured_content=_results.structured(result, session),
        is_error=not result.ok,
    )


def _refusal(
    message: str,
    kind: ErrorKind = ErrorKind.INVALID_ARGUMENTS,
    type_: str = "InvalidArguments",
) -> types.CallToolResult:
    return _to_call_result(
        ExecutionResult(ok=False, error=ExecutionError(type=type_, message=message, kind=kind))
    )


async def serve(
    engine: Engine,
    transport: str = "stdio",
    host: str = "127.0.0.1",
    port: int = 8000,
    http: HttpOptions | None = None,
) -> None:
    """Serve until the client goes away (stdio EOF) or SIGTERM/SIGINT; then clean up:
    downstream servers and sandbox workers are stopped either way. Over HTTP a signal
    drains first: no new requests, running executions finish (codemode.http.drain_s)."""
    http = http or HttpOptions()
    server = CodeModeServer(engine)
    await server.background.open()
    server.background.start_soon(server.paused.reaper, name="stop unanswered programs")
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    if transport == "stdio":
        runner = asyncio.create_task(server.serve_stdio())
    else:
        runner = asyncio.create_task(server.serve_http(host, port, http))
    stopper = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({runner, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
        if not runner.done():
            log.info("codemode: stopping on a signal")
            if transport != "stdio":
                await server.drain(http.config.drain_s)
                with contextlib.suppress(asyncio.TimeoutError, Exception):
                    await asyncio.wait_for(asyncio.shield(runner), SHUTDOWN_TIMEOUT_S)
        server.paused.close()
        try:
            await asyncio.wait_for(engine.close(), SHUTDOWN_TIMEOUT_S)
        except asyncio.TimeoutError:
            log.warning("codemode: cleanup took over %g s", SHUTDOWN_TIMEOUT_S)
        await server.background.close()
    if runner.done():
        runner.result()  # the client went away; re-raise if the transport failed
        return
    runner.cancel()
    done, _ = await asyncio.wait({runner}, timeout=1.0)
    if not done:
        # The SDK reads stdin in a thread that only EOF ends; everything of ours is
        # already closed, so leave without waiting for the client to close the pipe.
        logging.shutdown()
        os._exit(0)
