"""A downstream MCP server that says more than tool results: it logs, reports progress,
asks its client's user (elicitation) and offers resources. Serves both protocol eras.

    python chatty.py [--http-port N | --modern-only]

--modern-only serves stdio in the 2026-07-28 era only (an `initialize` is refused with
UNSUPPORTED_PROTOCOL_VERSION, as a server that speaks no handshake era refuses it).

Tools:
- steps(n): logs at info and warning, reports progress n times, returns "did n steps".
- confirm(what): asks "May chatty <what>?" with ctx.elicit (a request: handshake era only);
  returns "accept:<note>", "decline" or "cancel".
- confirm_either(what): the same question through Resolve(Elicit(...)), which the SDK sends
  as a request in the handshake era and as an input-required result in 2026-07-28.
- link(): asks in URL mode (open an address); returns the action.
- wait(ms): sleeps, then returns ms.
- resources(): a tool named like the resource listing (the program reaches it as
  `chatty.resources_`).
Resources: chatty://readme (text), chatty://logo (bytes), chatty://items/{item} (template).
"""

from __future__ import annotations

import argparse
import asyncio
import warnings
from typing import Annotated

import anyio
from mcp.server.mcpserver import Context, Elicit, ElicitationResult, MCPServer, Resolve
from pydantic import BaseModel, Field

warnings.simplefilter("ignore")  # the SDK marks ctx.info / ctx.log deprecated; they work

server = MCPServer("chatty")


class Consent(BaseModel):
    ok: bool = Field(description="Go ahead?")
    note: str = Field(default="", description="Anything to add")


def _said(result: object) -> str:
    action = getattr(result, "action", "?")
    if action == "accept":
        data = getattr(result, "data", None)
        return f"accept:{getattr(data, 'note', '')}" if getattr(data, "ok", True) else "accept:no"
    return action


@server.tool()
async def steps(n: int, ctx: Context) -> str:
    """Work in n steps, logging and reporting progress."""
    await ctx.info(f"starting {n} steps")
    await ctx.log("warning", {"steps": n, "careful": True}, logger_name="worker")
    for i in range(n):
        await ctx.report_progress(i + 1, n, f"step {i + 1} of {n}")
    return f"did {n} steps"


@server.tool()
async def wait(ms: int) -> int:
    """Sleep ms milliseconds (a call that stays in flight), then return ms."""
    await asyncio.sleep(ms / 1000)
    return ms


@server.tool()
async def confirm(what: str, ctx: Context) -> str:
    """Ask the user whether to do `what`."""
    return _said(await ctx.elicit(f"May chatty {what}?", Consent))


def _consent(what: str) -> Elicit[Consent]:
    return Elicit(f"May chatty {what}?", Consent)


@server.tool()
async def confirm_either(
    what: str, answer: Annotated[ElicitationResult[Consent], Resolve(_consent)]
) -> str:
    """Ask the user whether to do `what`, in whichever way the protocol era allows."""
    return _said(answer)


@server.tool()
async def link(ctx: Context) -> str:
    """Ask the user to open an address."""
    result = await ctx.session.elicit_url(
        "Sign in to chatty's partner", "https://example.invalid/sign-in", "link-1",
        related_request_id=ctx.request_id,
    )  # fmt: skip
    return result.action


@server.tool(name="resources")
async def resources_tool() -> str:
    """A tool that happens to be called like the namespace's resource listing."""
    return "the tool named resources"


@server.resource("chatty://readme", mime_type="text/plain", description="What chatty is")
def readme() -> str:
    return "chatty says hello"


@server.resource("chatty://logo", mime_type="image/png")
def logo() -> bytes:
    return b"\x89PNG\r\n\x1a\nchatty"


@server.resource("chatty://items/{item}", mime_type="application/json")
def items(item: str) -> dict:
    return {"item": item, "size": len(item)}


async def _modern_only() -> None:
    # the SDK serves both eras on stdio; its 2026-07-28 loop alone is a modern-only server
    from mcp.server.runner import _serve_modern_stream
    from mcp.server.stdio import stdio_server

    low = server._lowlevel_server
    async with stdio_server() as (read, write), low.lifespan(low) as state:
        await _serve_modern_stream(low, read, write, lifespan_state=state, raise_exceptions=False)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--http-port", type=int)
    parser.add_argument("--modern-only", action="store_true")
    args = parser.parse_args()
    if args.modern_only:
        anyio.run(_modern_only)
    elif args.http_port:
        server.run("streamable-http", host="127.0.0.1", port=args.http_port)
    else:
        server.run("stdio")


if __name__ == "__main__":
    main()
