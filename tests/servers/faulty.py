"""A downstream MCP server that misbehaves on request, for failure tests.

    python faulty.py [--exit-at-start | --garbage-at-start]

Tools: echo, slow(ms), hang(), crash() (exits mid-call), error(message), big(mb),
add_tool() (adds a tool and sends tools/list_changed), mixed() (text + image),
pid() (its process id, to tell restarts apart), weird-name (a hyphenated tool),
getenv(name), trace() (the traceparent it was called with), record(entry) (appends a
line to $FAULTY_RECORD_FILE), peek() (the one
tool marked readOnlyHint). --http-port / --sse-port
serve over HTTP instead of stdio.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import sys

from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ImageContent, TextContent, ToolAnnotations

server = MCPServer("faulty")


@server.tool()
async def echo(value: str, times: int = 1) -> str:
    """Return value repeated `times` times."""
    return value * times


@server.tool()
async def getenv(name: str) -> str | None:
    """The value of an environment variable of this server's process (None if unset)."""
    return os.environ.get(name)


@server.tool()
async def record(entry: str) -> int:
    """Append `entry` as a line to the file $FAULTY_RECORD_FILE (what was really done);
    returns the number of lines now there."""
    path = os.environ["FAULTY_RECORD_FILE"]
    with open(path, "a") as f:  # O_APPEND: concurrent calls never overwrite each other
        f.write(entry + "\n")
    with open(path) as f:
        return sum(1 for _ in f)


@server.tool()
async def trace(ctx: Context) -> dict:
    """The W3C trace context this call came with: its HTTP `traceparent` header (over
    HTTP) and the one in the request's `_meta`."""
    headers = ctx.headers or {}
    meta = ctx.request_context.meta or {}
    return {"header": headers.get("traceparent"), "meta": meta.get("traceparent")}


@server.tool(annotations=ToolAnnotations(read_only_hint=True))
async def peek() -> str:
    """Read something; changes nothing."""
    return "peeked"


@server.tool()
async def slow(ms: int) -> int:
    """Sleep ms milliseconds, then return ms."""
    await asyncio.sleep(ms / 1000)
    return ms


@server.tool()
async def hang() -> str:
    """Never answer."""
    await asyncio.Event().wait()
    return "unreachable"


@server.tool()
async def crash() -> str:
    """Exit the process in the middle of the call."""
    sys.stderr.write("faulty: crashing on purpose\n")
    sys.stderr.flush()
    os._exit(3)


@server.tool()
async def error(message: str) -> str:
    """Fail with `message`."""
    raise ToolError(message)


@server.tool()
async def big(mb: int) -> str:
    """Return a string of `mb` megabytes."""
    return "z" * (mb * 1024 * 1024)


@server.tool()
async def pid() -> int:
    """This server process's id."""
    return os.getpid()


@server.tool()
async def mixed() -> list[TextContent | ImageContent]:
    """A text item and a small PNG image."""
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 16).decode()
    return [
        TextContent(type="text", text="caption"),
        ImageContent(type="image", data=png, mime_type="image/png"),
    ]


@server.tool(name="weird-name")
async def weird_name(some_value: int) -> int:
    """A tool whose MCP name is not an identifier."""
    return some_value * 2


@server.tool()
async def add_tool(ctx: Context) -> str:
    """Add a tool named `late_tool` and notify the client that the tool list changed."""

    async def late_tool() -> str:
        """Added at run time."""
        return "late"

    server.add_tool(late_tool, name="late_tool")
    await ctx.session.send_tool_list_changed()
    return "added"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--exit-at-start", action="store_true")
    parser.add_argument("--garbage-at-start", action="store_true")
    parser.add_argument("--http-port", type=int, help="serve streamable HTTP on 127.0.0.1")
    parser.add_argument("--sse-port", type=int, help="serve the SSE transport on 127.0.0.1")
    args = parser.parse_args()
    if args.http_port:
        server.run("streamable-http", host="127.0.0.1", port=args.http_port)
        return
    if args.sse_port:
        server.run("sse", host="127.0.0.1", port=args.sse_port)
        return
    if args.exit_at_start:
        sys.stderr.write("faulty: missing API key FAULTY_TOKEN, exiting\n")
        sys.exit(2)
    if args.garbage_at_start:
        print("this is not JSON-RPC", flush=True)
        print("{broken", flush=True)
    server.run()


if __name__ == "__main__":
    main()
