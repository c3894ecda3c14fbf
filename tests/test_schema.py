"""Tool definitions to Python: names, signatures, catalog and stubs, deterministically."""

from __future__ import annotations

import ast
from types import SimpleNamespace

from codemode.tool_adapters import annotation, identifier, params_of
from codemode.tool_adapters._schema import ToolInfo, assign_names, render_catalog, render_stubs


def test_identifiers_keep_valid_names_and_snake_case_others():
    assert identifier("getUser") == "getUser"
    assert identifier("get-sum") == "get_sum"
    assert identifier("List Files") == "list_files"
    assert identifier("printEnv") == "printEnv"
    assert identifier("2fa") == "_2fa"
    assert identifier("class") == "class_"
    assert identifier("tools") == "tools_" and identifier("json") == "json_"


def test_colliding_tool_names_resolve_deterministically():
    tools = [SimpleNamespace(name=n) for n in ["get-sum", "get_sum", "get sum"]]
    names = assign_names("s", "s", tools)
    assert names == {"get_sum": "get_sum", "get sum": "get_sum_2", "get-sum": "get_sum_3"}
    assert assign_names("s", "s", list(reversed(tools))) == names


def test_annotations_cover_types_enums_objects_unions_refs():
    assert annotation({"type": "string", "enum": ["open", "closed"]}) == "Literal['open', 'closed']"
    assert annotation({"type": ["string", "null"]}) == "str | None"
    assert annotation({"type": "array", "items": {"type": "integer"}}) == "list[int]"
    obj = {
        "type": "object",
        "properties": {"id": {"type": "string"}, "n": {"type": "number"}},
        "required": ["id"],
    }
    assert annotation(obj) == "{id: str, n?: float}"
    assert annotation({"anyOf": [{"type": "integer"}, {"$ref": "#/$defs/Node"}]}) == "int | Node"
    recursive = {"type": "object", "properties": {"child": {"$ref": "#"}}}
    assert annotation(recursive) == "{child?: dict}"
    assert annotation("garbage") == "Any" and annotation({"type": 5}) == "Any"


def test_params_put_required_first_and_rename_non_identifiers():
    schema = {
        "type": "object",
        "properties": {
            "limit": {"type": "integer", "default": 10},
            "repo-name": {"type": "string"},
        },
        "required": ["repo-name"],
    }
    params = params_of(schema)
    assert [(p.name, p.original, p.required) for p in params] == [
        ("repo_name", "repo-name", True),
        ("limit", "limit", False),
    ]
    assert params_of({"properties": "nope"}) == () and params_of(None) == ()


def _tool(name, schema, description="Does a thing.\nMore.", output=None):
    return ToolInfo(
        server="srv",
        namespace="srv",
        name=name,
        py_name=identifier(name, frozenset()),
        description=description,
        params=params_of(schema),
        returns="Any",
        input_schema=schema,
        output_schema=output,
    )


def test_catalog_and_stubs_are_deterministic_and_stubs_parse():
    obj = {"type": "object", "properties": {"id": {"type": "string"}}}
    tools = [
        _tool("b-tool", {"type": "object", "properties": {"x": {"type": "integer", "default": 3}}}),
        _tool("a_tool", {"type": "object", "properties": {"filter": obj}, "required": ["filter"]}),
    ]
    catalog = render_catalog(tools)
    assert catalog == render_catalog(list(reversed(tools)))
    assert catalog.splitlines()[0] == "await srv.a_tool(filter: {id?: str}) -> Any  # Does a thing."
    assert "srv.b_tool(x: int = 3)" in catalog
    stubs = render_stubs(tools)
    ast.parse(stubs)
    assert "MCP name: 'b-tool'" in stubs
