"""From an MCP CallToolResult to a plain Python (JSON) value, or a ToolCallError."""

from __future__ import annotations

import base64
import json
from typing import Any

from mcp import types

from ..errors import ErrorKind, ToolCallError
from ._schema import wrapped_result_schema


def unwrap(
    result: types.CallToolResult,
    server: str,
    tool: str,
    output_schema: Any = None,
    label: str | None = None,
) -> Any:
    """`structured_content` when present (the SDK's {"result": x} wrapper removed), else
    the content: JSON text parsed, other text as is, images/audio/resources as small dicts;
    one item gives its value, several a list, none None. `is_error` raises ToolCallError,
    whose message starts with `label` (the tool as the program calls it)."""
    if result.is_error:
        message = "\n".join(_text_of(item) for item in result.content).strip()
        name = label or f"{server}.{tool}"
        raise ToolCallError(
            f"{name} failed: {message}"
            if message
            else f"{name} reported an error without a message",
            ErrorKind.TOOL_ERROR,
            server=server,
            tool=tool,
        )
    structured = result.structured_content
    if structured is not None:
        if wrapped_result_schema(output_schema) is not None and isinstance(structured, dict):
            return structured.get("result")
        return structured
    values = [_content_value(item) for item in result.content]
    if not values:
        return None
    return values[0] if len(values) == 1 else values


def _text_of(item: Any) -> str:
    return item.text if isinstance(item, types.TextContent) else f"[{getattr(item, 'type', '?')}]"


def _content_value(item: Any) -> Any:
    if isinstance(item, types.TextContent):
        text = item.text
        stripped = text.lstrip()
        if stripped[:1] in ("{", "[", '"') or stripped in ("true", "false", "null"):
            try:
                return json.loads(text)
            except ValueError:
                return text
        return text
    if isinstance(item, (types.ImageContent, types.AudioContent)):
        return {
            "type": item.type,
            "mime_type": item.mime_type,
            "size": b64_size(item.data),
            "data": item.data,
        }
    if isinstance(item, types.EmbeddedResource):
        res = item.resource
        value: dict[str, Any] = {
            "type": "resource",
            "uri": str(res.uri),
            "mime_type": res.mime_type,
        }
        if isinstance(res, types.TextResourceContents):
            value["text"] = res.text
        else:
            value["size"] = b64_size(res.blob)
            value["blob"] = res.blob
        return value
    if isinstance(item, types.ResourceLink):
        return {
            "type": "resource_link",
            "uri": str(item.uri),
            "name": item.name,
            "mime_type": item.mime_type,
            "description": item.description,
        }
    dump = getattr(item, "model_dump", None)
    return dump(mode="json", by_alias=True, exclude_none=True) if dump else str(item)


def b64_size(data: str) -> int:
    try:
        return len(base64.b64decode(data, validate=False))
    except (ValueError, TypeError):
        return 0
