"""OpenTelemetry: a span per execution with a child span per tool call (server, tool,
ok, error kind; never the code, arguments or results), the caller's trace context
passed on to downstream servers (in `_meta`, and as the `traceparent` header over HTTP),
and the metrics, all read from the SDK's in-memory exporters."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from serve_client import FAULTY, demo, free_port, wait_for_port

from codemode.config import parse_config
from codemode.context import CallContext
from codemode.server import Engine

SECRET_ARGUMENT = "s3cret-argument-value"


@pytest.fixture(scope="module")
def exporters():
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    trace.set_tracer_provider(provider)
    reader = InMemoryMetricReader()
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
    return spans, reader


@pytest.fixture(scope="module")
def http_server():
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, FAULTY, "--http-port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    wait_for_port(port)
    yield f"http://127.0.0.1:{port}/mcp"
    proc.kill()
    proc.wait()


def metric_points(reader: InMemoryMetricReader) -> dict[str, list]:
    points: dict[str, list] = {}
    data = reader.get_metrics_data()
    for resource in data.resource_metrics if data else []:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                points.setdefault(metric.name, []).extend(metric.data.data_points)
    return points


async def test_spans_metrics_and_trace_context(exporters, http_server):
    spans, reader = exporters
    config = parse_config({
        "mcpServers": {"team": demo("team"), "web": {"type": "http", "url": http_server}},
    })  # fmt: skip
    code = (
        f"members = await team.get_team_members()\nseen = await web.trace()\n"
        f"try:\n    await web.error(message='{SECRET_ARGUMENT}')\nexcept ToolError:\n    pass\n"
        "seen"
    )
    tracer = trace.get_tracer("test")
    async with Engine(config, workers=1) as engine:
        with tracer.start_as_current_span("client request") as outer:  # the caller's trace
            result = await engine.execute(code, context=CallContext(identity="alice"))
        points = metric_points(reader)  # gauges are read now: while the engine serves
    assert result.ok, result.error
    trace_id = f"{outer.get_span_context().trace_id:032x}"
    # the downstream HTTP server got the caller's trace, in the header and in _meta
    assert result.result["header"].split("-")[1] == trace_id
    assert result.result["meta"].split("-")[1] == trace_id

    finished = spans.get_finished_spans()
    (execute,) = [s for s in finished if s.name == "codemode.execute"]
    assert execute.parent.span_id == outer.get_span_context().span_id
    assert execute.attributes["codemode.tool_calls"] == 3 and execute.attributes["codemode.ok"]
    assert execute.attributes["enduser.id"] == "alice"
    calls = [s for s in finished if s.name == "codemode.tool_call"]
    assert {(s.attributes["codemode.server"], s.attributes["codemode.tool"]) for s in calls} == {
        ("team", "get_team_members"), ("web", "trace"), ("web", "error"),
    }  # fmt: skip
    assert all(s.parent.span_id == execute.context.span_id for s in calls)
    (failed,) = [s for s in calls if s.attributes["codemode.tool"] == "error"]
    assert failed.attributes["codemode.ok"] is False
    assert failed.attributes["error.type"] == "ToolError"
    # never the code, the arguments or the results
    everything = json.dumps([dict(s.attributes) for s in finished], default=str)
    assert SECRET_ARGUMENT not in everything and "get_team_members()" not in everything

    assert sum(p.value for p in points["codemode.executions"]) >= 1
    by_tool = {
        (dict(p.attributes)["server"], dict(p.attributes)["ok"])
        for p in points["codemode.tool_calls"]
    }
    assert ("web", False) in by_tool and ("team", True) in by_tool
    kinds = {dict(p.attributes)["error.kind"] for p in points["codemode.errors"]}
    assert "ToolError" in kinds
    assert "codemode.execution.queue_wait" in points and "codemode.tool_call.duration" in points
    assert "codemode.workers.busy" in points
    assert {dict(p.attributes)["state"] for p in points["codemode.servers"]} == {"ready"}


def test_telemetry_is_off_unless_the_environment_asks():
    from codemode import telemetry

    assert telemetry.setup({}) is False
    assert (
        telemetry.setup({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x", "OTEL_SDK_DISABLED": "true"})
        is False
    )
