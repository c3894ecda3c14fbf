"""Bad input, fuzzed: every input gives a value or a clear error, never a crash or a hang.

Covers the config parser, the schema-to-signature generator (arbitrary JSON Schemas, with
$ref, anyOf, recursion and malformed parts), result unwrapping, and the bridge's messages
from the guest to the host.
"""

from __future__ import annotations

import ast
import json
import keyword
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp import types

from codemode.config import parse_config
from codemode.errors import ConfigError, ToolCallError
from codemode.tool_adapters import ToolInfo, render_catalog, render_stubs, unwrap
from codemode.tool_adapters._schema import RESERVED, params_of, returns_of

json_scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)

# -- the config parser ------------------------------------------------------------------

server_shapes = st.fixed_dictionaries(
    {},
    optional={
        "command": st.text(max_size=10) | json_values,
        "args": st.lists(st.text(max_size=5)) | json_values,
        "url": st.text(max_size=20) | json_values,
        "env": st.dictionaries(st.text(max_size=5), st.text(max_size=5)) | json_values,
        "type": st.sampled_from(["stdio", "http", "sse", "streamable-http"]) | json_values,
        "headers": json_values,
        "bogus": json_values,
    },
)
configs = (
    st.fixed_dictionaries(
        {},
        optional={
            "mcpServers": st.dictionaries(
                st.text(max_size=8), server_shapes | json_values, max_size=3
            )
            | json_values,
            "servers": st.dictionaries(st.text(max_size=8), server_shapes, max_size=2),
            "codemode": st.fixed_dictionaries(
                {},
                optional={
                    "limits": st.dictionaries(
                        st.sampled_from(["timeout_s", "memory_mb", "nope"]), json_values, max_size=2
                    )
                    | json_values,
                    "servers": json_values,
                    "read_only": json_values,
                    "workers": json_values,
                },
            )
            | json_values,
            "extra": json_values,
        },
    )
    | json_values
)


@settings(max_examples=400, deadline=None)
@given(configs)
def test_config_parser_gives_a_config_or_a_clear_error(data):
    try:
        config = parse_config(data, "fuzz.json")
    except ConfigError as exc:
        message = str(exc)
        assert message.startswith("fuzz.json: "), message
        assert len(message) < 5000
        return
    for name, server in config.servers.items():
        assert isinstance(name, str)
        assert server.transport in ("stdio", "http")


# -- schemas to signatures --------------------------------------------------------------

type_names = st.sampled_from(
    ["string", "integer", "number", "boolean", "object", "array", "null", "bogus"]
)


def schema_strategy() -> st.SearchStrategy[Any]:
    leaf = st.one_of(
        st.fixed_dictionaries({"type": type_names | st.lists(type_names, max_size=3)}),
        st.fixed_dictionaries({"enum": st.lists(json_scalars, max_size=4)}),
        st.fixed_dictionaries({"const": json_scalars}),
        st.fixed_dictionaries(
            {
                "$ref": st.sampled_from(
                    ["#/$defs/node", "#/$defs/missing", "#", "http://x/y", "#/definitions/a"]
                )
            }
        ),
        json_values,
    )

    def extend(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        return st.one_of(
            st.fixed_dictionaries(
                {"type": st.just("object")},
                optional={
                    "properties": st.dictionaries(st.text(max_size=12), inner, max_size=4),
                    "required": st.lists(st.text(max_size=12), max_size=3) | json_values,
                    "additionalProperties": st.booleans() | inner,
                },
            ),
            st.fixed_dictionaries({"type": st.just("array")}, optional={"items": inner}),
            st.fixed_dictionaries({"anyOf": st.lists(inner, max_size=3)}),
            st.fixed_dictionaries({"oneOf": st.lists(inner, max_size=3)}),
            st.fixed_dictionaries({"allOf": st.lists(inner, max_size=3)}),
        )

    return st.recursive(leaf, extend, max_leaves=12)


def with_defs(schema: Any, node: Any) -> Any:
    if isinstance(schema, dict):
        return {**schema, "$defs": {"node": node}}
    return schema


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schema_strategy(), schema_strategy(), st.text(max_size=15), st.text(max_size=40))
def test_any_schema_gives_a_signature_that_parses(schema, node, name, description):
    schema = with_defs(schema, node)
    params = params_of(schema)
    returns = returns_of(schema)
    assert all(p.name.isidentifier() for p in params)
    assert len({p.name for p in params}) == len(params)
    info = ToolInfo(
        server="s",
        namespace="s",
        name=name or "t",
        py_name="t",
        description=description,
        params=params,
        returns=returns,
        input_schema=schema,
        output_schema=schema,
    )
    assert render_catalog([info]).startswith("await s.t(")
    ast.parse(render_stubs([info]))  # the stubs are Python


def test_recursive_ref_terminates():
    schema = {
        "type": "object",
        "properties": {"tree": {"$ref": "#/$defs/node"}},
        "$defs": {
            "node": {
                "type": "object",
                "properties": {"children": {"type": "array", "items": {"$ref": "#/$defs/node"}}},
            }
        },
    }
    (param,) = params_of(schema)
    assert param.name == "tree" and len(param.annotation) < 500


# -- result unwrapping ------------------------------------------------------------------

content_items = st.one_of(
    st.builds(lambda t: types.TextContent(type="text", text=t), st.text(max_size=50)),
    st.builds(lambda t: types.TextContent(type="text", text=json.dumps(t)), json_values),
    st.builds(
        lambda d: types.ImageContent(type="image", data=d, mime_type="image/png"),
        st.text(alphabet="QUJDRA==", max_size=12),
    ),
)
results = st.builds(
    lambda content, structured, is_error: types.CallToolResult(
        content=content, structured_content=structured, is_error=is_error
    ),
    st.lists(content_items, max_size=4),
    st.none() | st.dictionaries(st.text(max_size=6), json_values, max_size=3),
    st.booleans(),
)


@settings(max_examples=400, deadline=None)
@given(results, st.none() | schema_strategy())
def test_unwrap_gives_a_json_value_or_a_tool_error(result, output_schema):
    try:
        value = unwrap(result, "srv", "tool", output_schema)
    except ToolCallError as exc:
        assert result.is_error
        assert "srv" in exc.message or exc.details.get("server") == "srv"
        return
    assert not result.is_error
    json.dumps(value, default=str)


# -- the bridge: whatever the guest sends through the host function ---------------------

batches = st.one_of(
    st.text(max_size=60),
    st.builds(json.dumps, json_values),
    st.builds(
        json.dumps,
        st.lists(
            st.fixed_dictionaries(
                {},
                optional={
                    "id": json_scalars,
                    "target": json_scalars | st.sampled_from(["echo", "add"]),
                    "args": json_values,
                },
            ),
            max_size=4,
        ),
    ),
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(batches, min_size=1, max_size=8))
async def test_bridge_messages_never_break_the_host(run, messages):
    code = (
        "from wit_world.imports import host\n"
        f"replies = [host.wait(m, 0) for m in {messages!r}]\n"
        "[type(r).__name__ for r in replies]"
    )
    r = await run(code, timeout_s=10)
    assert r.ok or r.error.type not in ("WorkerDied",), r.error
    if r.ok:
        assert r.result == ["str"] * len(messages)
    after = await run("await echo('ok')")
    assert after.ok and after.result == "ok"


def test_identifiers_are_identifiers():
    from codemode.tool_adapters import identifier

    @settings(max_examples=500, deadline=None)
    @given(st.text(max_size=30))
    def check(name):
        result = identifier(name)
        assert result.isidentifier() and not keyword.iskeyword(result)
        assert result not in RESERVED

    check()
