"""Federation: every configured downstream server, their catalog, and the call path.

It connects all servers concurrently, keeps the catalog (see `_catalog`) current, and runs
calls: find the tool, validate the arguments against its inputSchema before anything is
sent, have a person approve it where the config says so (`_approval`), admit the call
under the policy's caps, call, unwrap the result (and learn its shape). A server that
failed to start does not stop the others: calls to it raise a ToolCallError carrying its
start error.

Changes of the catalog (a server's tools changed, a shape was learned) are coalesced: a
flag is set, and one task, owned by the federation, rebuilds the catalog and tells the
listeners; a change that arrives during a rebuild makes it run again, never lost.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import anyio

from .. import telemetry
from .._aio import Background
from ..config import Config
from ..context import CallContext
from ..errors import ErrorKind, ServerStartError, ToolCallError
from . import _resources as resources
from ._approval import approve
from ._catalog import Catalog, Entry, Naming, check_text
from ._connection import Connection
from ._policy import ApprovalRule, Policy
from ._results import unwrap
from ._schema import ToolInfo, render_stubs
from ._shapes import ShapeStore, shapes_file, vague

log = logging.getLogger("codemode.federation")

LISTENER_TIMEOUT_S = 5.0
"""How long one tools-changed listener may take before the next is told."""


class Federation:
    """The downstream servers of a config. `async with Federation(config) as fed` opens it
    and connects them all; `open()` then `start()` do the same in two steps."""

    def __init__(self, config: Config, naming: Naming | None = None, sign_in: bool = False) -> None:
        """`sign_in`: a server that wants an OAuth sign-in gets one in the browser (for a
        person at a terminal: `codemode run --sign-in`); otherwise it needs a login."""
        self.config = config
        self.connections: dict[str, Connection] = {
            name: Connection(
                name, server, config.options(name), self._tools_changed, sign_in=sign_in
            )
            for name, server in config.enabled_servers.items()
        }
        self.policy = Policy(config)
        self.shapes = ShapeStore(shapes_file()) if config.codemode.learn_shapes else None
        self.catalog = Catalog(config, self.policy, naming or Naming(), self.shapes)
        self.catalog.assign_namespaces(self.connections)
        self.catalog.rebuild(self._tools_of, self._has_resources)
        self._listeners: list[Callable[[], Awaitable[None]]] = []
        self._changed = anyio.Event()
        self._open = False
        self._background = Background("codemode:federation")

    async def __aenter__(self) -> Federation:
        await self.open()
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def open(self) -> None:
        """Start the federation's one task (it follows catalog changes); no connecting."""
        await self._background.open()
        self._background.start_soon(self._follow_changes, name="catalog changes")
        self._open = True

    async def start(self) -> dict[str, str | None]:
        """Connect every server at once; returns name -> None (ok) or its error."""
        status: dict[str, str | None] = {}

        async def connect(name: str, connection: Connection) -> None:
            try:
                await connection.start()
                status[name] = None
            except ServerStartError as exc:
                log.warning("%s", exc)
                status[name] = connection.error

        async with anyio.create_task_group() as tg:
            for name, connection in self.connections.items():
                tg.start_soon(connect, name, connection)
        self.catalog.rebuild(self._tools_of, self._has_resources)
        return {name: status[name] for name in self.connections}

    async def close(self) -> None:
        """Stop following changes and close every server (no child process is left)."""
        self._open = False
        await self._background.close()
        with anyio.CancelScope(shield=True):
            async with anyio.create_task_group() as tg:
                for connection in self.connections.values():
                    tg.start_soon(connection.close)

    def _tools_of(self, server: str) -> list[Any]:
        return self.connections[server].tools

    def _has_resources(self, server: str) -> bool:
        return self.connections[server].resources > 0

    # -- changes -------------------------------------------------------------------------

    def on_tools_changed(self, listener: Callable[[], Awaitable[None]]) -> None:
        """`listener()` is awaited after every change of the catalog (it should not block:
        each has LISTENER_TIMEOUT_S)."""
        self._listeners.append(listener)

    async def _tools_changed(self) -> None:
        self._mark_changed()

    def _mark_changed(self) -> None:
        if self._open:
            self._changed.set()
        else:  # not running (a bare Federation): rebuild at once, no one to tell
            self.catalog.rebuild(self._tools_of, self._has_resources)

    async def _follow_changes(self) -> None:
        while True:
            await self._changed.wait()
            self._changed = anyio.Event()  # a change from here on runs the loop again
            self.catalog.rebuild(self._tools_of, self._has_resources)
            for listener in list(self._listeners):
                with anyio.move_on_after(LISTENER_TIMEOUT_S) as scope:
                    try:
                        await listener()
                    except Exception as exc:  # noqa: BLE001 - a listener's failure is its own
                        log.debug("a tools-changed listener failed: %s", exc)
                if scope.cancelled_caught:
                    log.warning("a tools-changed listener took over %g s", LISTENER_TIMEOUT_S)

    # -- the catalog ---------------------------------------------------------------------

    @property
    def tools(self) -> list[ToolInfo]:
        return self.catalog.tools

    @property
    def namespaces(self) -> dict[str, str]:
        """Server config key -> the namespace the code reaches its tools through."""
        return dict(self.catalog.namespaces)

    def stubs(self) -> str:
        return render_stubs(self.tools)

    def status(self) -> dict[str, str | None]:
        return {
            name: (None if c.state == "ready" else c.error or c.state)
            for name, c in self.connections.items()
        }

    # -- calls ---------------------------------------------------------------------------

    async def call_tool(
        self, server: Any, tool: Any, arguments: Any = None, context: CallContext | None = None
    ) -> Any:
        """Call by server (config key or namespace) and tool (MCP or Python name); raises
        ToolCallError with the kind and the fix."""
        if not isinstance(server, str) or not isinstance(tool, str):
            raise ToolCallError(
                "call_tool(server, tool, arguments): server and tool must be strings",
                ErrorKind.INVALID_ARGUMENTS,
            )
        if arguments is None:
            arguments = {}
        if not isinstance(arguments, dict):
            raise ToolCallError(
                f"call_tool(): arguments must be a dict, got {type(arguments).__name__}",
                ErrorKind.INVALID_ARGUMENTS,
                server=server,
                tool=tool,
            )
        key = self.catalog.server_of(server)
        if key is None:
            known = ", ".join(sorted(self.connections)) or "none configured"
            raise ToolCallError(
                f"no server named {server!r} (servers: {known})",
                ErrorKind.UNKNOWN_TOOL,
                server=server,
                tool=tool,
            )
        entry = self.catalog.find(key, tool)
        if entry is None:
            return await self._unlisted(key, tool, arguments, context)
        return await self.call_entry(entry, arguments, context)

    async def _unlisted(
        self, key: str, tool: str, arguments: dict[str, Any], context: CallContext | None
    ) -> Any:
        blocked = self.catalog.hidden.get(key, {}).get(tool)
        if blocked is not None:
            raise self.policy.refuse(key, tool, blocked)
        connection = self.connections[key]
        if tool in resources.NAMES and connection.state == "ready":
            raise resources.no_resources(key, self.catalog.namespaces[key], tool)
        if connection.state != "ready":
            # not listed because the server is down: the call reports why (and restarts it)
            approval = self.policy.approval_rule(key, tool)
            return await self._send(key, tool, arguments, context=context, approval=approval)
        ns = self.catalog.namespaces[key]
        names = sorted(e.info.py_name for (s, _), e in self.catalog.entries.items() if s == key)
        close = difflib.get_close_matches(tool, names, n=3)
        hint = f"; did you mean {', '.join(f'{ns}.{c}' for c in close)}?" if close else ""
        raise ToolCallError(
            f"{ns} (server {key!r}) has no tool {tool!r}{hint} Its tools: "
            f"{', '.join(names) or 'none'}",
            ErrorKind.UNKNOWN_TOOL,
            server=key,
            tool=tool,
        )

    async def call_entry(
        self, entry: Entry, arguments: dict[str, Any], context: CallContext | None = None
    ) -> Any:
        """Call a catalog entry with arguments under their schema names."""
        info = entry.info
        self.catalog.validate(entry, arguments)
        value = await self._send(
            info.server, info.name, arguments, info.output_schema, info.path, context,
            entry.approval,
        )  # fmt: skip
        if self.shapes is not None and (info.observed is not None or vague(info.returns)):
            if self.shapes.observe(info.server, info.name, entry.fingerprint, value):
                log.info("learned the result shape of %s", info.path)
                self._mark_changed()
        return value

    async def _send(
        self,
        server: str,
        tool: str,
        arguments: dict[str, Any],
        output_schema: Any = None,
        label: str | None = None,
        context: CallContext | None = None,
        approval: ApprovalRule | None = None,
    ) -> Any:
        """Every call downstream goes through here: a person's approval where the config
        asks for one, rate caps, the call, unwrapping."""
        check_text(server, tool, arguments)
        name = label or f"{self.catalog.namespaces.get(server, server)}.{tool}"
        timeout_s = self.config.codemode.approval_timeout_s
        identity = context.identity if context is not None else None
        with telemetry.tool_call_span(server, tool, arguments):
            self.policy.admit_identity(identity, server, tool)
            await approve(approval, server, tool, name, arguments, context, timeout_s)
            self.policy.admit(server, tool)
            result = await self.connections[server].call(tool, arguments, context)
            return unwrap(result, server, tool, output_schema, name)

    # -- resources -----------------------------------------------------------------------

    async def list_resources(self, server: str, context: CallContext | None = None) -> Any:
        """The server's resources and templates (see `_resources`); raises ToolCallError."""
        return await self._resource_request(server, resources.LIST, resources.list_all, context)

    async def read_resource(self, server: str, uri: Any, context: CallContext | None = None) -> Any:
        """One resource's contents (see `_resources`); raises ToolCallError."""
        uri = resources.check_uri(server, uri)

        async def read(session: Any) -> Any:
            return await resources.read(session, uri)

        return await self._resource_request(server, resources.READ, read, context)

    async def _resource_request(
        self, server: str, what: str, do: Callable[[Any], Awaitable[Any]], context: Any
    ) -> Any:
        connection = self.connections[server]
        if connection.state == "ready" and server not in self.catalog.with_resources:
            raise resources.no_resources(server, self.catalog.namespaces[server], what)
        self.policy.admit_identity(getattr(context, "identity", None), server, what)
        self.policy.admit(server, what)

        async def send(session: Any, entry: Any) -> Any:
            return await do(session)

        return await connection.request(what, send, context)
