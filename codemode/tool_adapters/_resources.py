"""A downstream server's resources, as the program reads them.

`await ns.resources()` lists a server's resources and resource templates (each a dict with
`uri`; a template's `uri` is its RFC 6570 template, and it has `"template": True`);
`await ns.read_resource(uri)` gives a text resource's text, a binary one's small dict
(`uri`, `mime_type`, `size` in bytes, `blob` in base64), and a list when the server
returns several contents. Both go through the same path as tool calls: the server is
restarted if it died, the call timeout and rate caps apply, and failures are ToolErrors.
"""

from __future__ import annotations

import logging
from typing import Any

from mcp import types
from mcp.client.session import ClientSession

from ..errors import ErrorKind, ToolCallError
from ._results import b64_size

log = logging.getLogger("codemode.downstream")

LIST = "resources"
READ = "read_resource"
NAMES = frozenset({LIST, READ})
"""The functions a namespace of a server with resources has beside its tools (a tool of
the same name gets a trailing "_")."""

MAX_PAGES = 100


async def count(session: ClientSession) -> int:
    """How many resources and templates a server lists (0 when it declares none, or
    listing them fails: its tools still work)."""
    caps = session.server_capabilities
    if caps is None or caps.resources is None:
        return 0
    try:
        return len(await list_all(session))
    except Exception as exc:  # noqa: BLE001 - resources are extra; the server still serves
        log.info("could not list the resources of a server: %s", exc)
        return 0


async def list_all(session: ClientSession) -> list[dict[str, Any]]:
    """Every resource and resource template of the server, as plain dicts."""
    found: list[dict[str, Any]] = []
    cursor = None
    for _ in range(MAX_PAGES):
        params = types.PaginatedRequestParams(cursor=cursor) if cursor else None
        page = await session.list_resources(params=params)
        found.extend(_listed(r, r.uri, False) for r in page.resources)
        cursor = page.next_cursor
        if not cursor:
            break
    cursor = None
    for _ in range(MAX_PAGES):
        params = types.PaginatedRequestParams(cursor=cursor) if cursor else None
        try:
            templates = await session.list_resource_templates(params=params)
        except Exception:  # noqa: BLE001 - a server may list resources but no templates
            break
        found.extend(_listed(t, t.uri_template, True) for t in templates.resource_templates)
        cursor = templates.next_cursor
        if not cursor:
            break
    return found


def _listed(item: Any, uri: Any, template: bool) -> dict[str, Any]:
    entry: dict[str, Any] = {"uri": str(uri), "name": item.name}
    if template:
        entry["template"] = True
    for key in ("title", "description", "mime_type", "size"):
        value = getattr(item, key, None)
        if value not in (None, ""):
            entry[key] = value
    return entry


async def read(session: ClientSession, uri: str) -> Any:
    result = await session.read_resource(uri)
    values = [_content(c) for c in result.contents]
    if not values:
        return None
    return values[0] if len(values) == 1 else values


def _content(item: Any) -> Any:
    if isinstance(item, types.TextResourceContents):
        return item.text
    return {
        "uri": str(item.uri),
        "mime_type": item.mime_type,
        "size": b64_size(item.blob),
        "blob": item.blob,
    }


def check_uri(server: str, uri: Any) -> str:
    if not isinstance(uri, str) or not uri:
        raise ToolCallError(
            f"read_resource(uri) takes the resource's URI as a string, got "
            f"{type(uri).__name__}; `await ns.resources()` lists them",
            ErrorKind.INVALID_ARGUMENTS,
            server=server,
            tool=READ,
        )
    return uri


def no_resources(server: str, ns: str, what: str) -> ToolCallError:
    return ToolCallError(
        f"{ns}.{what}: server {server!r} offers no resources (it listed none when it "
        "connected); its tools are what it has",
        ErrorKind.UNKNOWN_TOOL,
        server=server,
        tool=what,
    )
