"""Resources from code: `await ns.resources()` lists a server's resources and templates,
`await ns.read_resource(uri)` reads one (text, or a small dict for binary content), with
the same limits and errors as tools. Against the npm `server-everything` (static and
template resources) and the chatty fixture (a tool named like the listing)."""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path

import pytest
from serve_client import NPM_BIN, Serve, faulty, text_of

CHATTY = str(Path(__file__).parent / "servers" / "chatty.py")


@pytest.fixture(scope="module")
async def serve(tmp_path_factory):
    config = {
        "mcpServers": {
            "everything": {"command": str(NPM_BIN / "mcp-server-everything")},
            "chatty": {"command": sys.executable, "args": [CHATTY]},
            "f": faulty(),
        },
        "codemode": {"limits": {"max_tool_calls": 5}},
    }
    async with Serve(config, tmp_path_factory.mktemp("resources")) as s:
        yield s


async def run(serve: Serve, code: str) -> dict:
    result = await serve.run(code)
    out = result.structured_content
    assert out is not None, text_of(result)
    out["text"] = text_of(result)
    return out


async def test_resources_and_templates_are_listed(serve):
    out = await run(serve, "await everything.resources()")
    assert out["error"] is None, out["text"]
    listed = out["result"]
    static = [r for r in listed if not r.get("template")]
    templates = [r for r in listed if r.get("template")]
    assert static and all(r["uri"].startswith("demo://") and r["name"] for r in static)
    assert any("{resourceId}" in t["uri"] for t in templates)
    assert out["calls"][0]["tool"] == "everything.resources"


async def test_a_text_resource_reads_as_its_text(serve):
    code = (
        "listed = await everything.resources()\n"
        "doc = next(r for r in listed if r.get('mime_type') == 'text/markdown')\n"
        "text = await everything.read_resource(doc['uri'])\n"
        "[type(text).__name__, text[:1]]"
    )
    out = await run(serve, code)
    assert out["error"] is None and out["result"] == ["str", "#"], out["text"]


async def test_a_template_is_read_by_filling_it_in(serve):
    code = (
        "text = await everything.read_resource('demo://resource/dynamic/text/7')\n"
        "blob = await everything.read_resource('demo://resource/dynamic/blob/7')\n"
        "[text, blob]"
    )
    out = await run(serve, code)
    assert out["error"] is None, out["text"]
    text, blob = out["result"]
    assert isinstance(text, str) and "7" in text
    assert set(blob) == {"uri", "mime_type", "size", "blob"}
    assert blob["size"] == len(base64.b64decode(blob["blob"])) > 0


async def test_binary_content_is_a_small_dict(serve):
    out = await run(serve, "await chatty.read_resource('chatty://logo')")
    assert out["error"] is None, out["text"]
    logo = out["result"]
    assert logo["mime_type"] == "image/png" and logo["size"] == 14
    assert base64.b64decode(logo["blob"]).startswith(b"\x89PNG")


async def test_a_tool_named_like_the_listing_keeps_working(serve):
    out = await run(serve, "[await chatty.resources_(), len(await chatty.resources())]")
    assert out["error"] is None, out["text"]
    assert out["result"] == ["the tool named resources", 3]


async def test_errors_are_tool_errors_with_the_fix(serve):
    code = (
        "seen = []\n"
        "for call in (lambda: chatty.read_resource('chatty://nope'),\n"
        "             lambda: chatty.read_resource(42)):\n"
        "    try:\n        await call()\n"
        "    except ToolError as e:\n        seen.append([e.kind, str(e)])\n"
        "seen"
    )
    out = await run(serve, code)
    assert out["error"] is None, out["text"]
    (unknown, bad) = out["result"]
    assert unknown[0] == "ToolError" and "Unknown resource: chatty://nope" in unknown[1]
    assert bad[0] == "InvalidArguments" and "`await ns.resources()` lists them" in bad[1]
    # a server that lists no resources has no such function: the program is not run
    out = await run(serve, "await f.resources()")
    assert out["error"]["type"] == "CheckError" and "chatty.resources" in out["error"]["message"]
    # reached past the check (by name), the call says why
    out = await run(serve, "await call_tool('f', 'resources')")
    assert out["error"]["kind"] == "UnknownTool" and "offers no resources" in out["text"]


async def test_resource_reads_count_against_the_call_limit(serve):
    code = "for _ in range(6):\n    await chatty.read_resource('chatty://readme')"
    out = await run(serve, code)
    assert out["error"] is not None and out["error"]["kind"] == "LimitExceeded", out["text"]


async def test_the_description_says_which_servers_have_resources(serve):
    (tool,) = (await serve.session.list_tools()).tools
    line = next(x for x in (tool.description or "").splitlines() if "resources" in x)
    assert "`chatty`, `everything` also offer resources" in line
    assert "`f`" not in line
    assert json.dumps(line)  # one line
