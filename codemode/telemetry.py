"""OpenTelemetry: traces and metrics of executions and tool calls.

Written against `opentelemetry-api` only (the MCP SDK depends on it): with no SDK set up
every call here is a no-op. `setup()` sets the SDK up from the standard `OTEL_*`
environment variables (OTLP over HTTP by default) when they ask for it and the optional
extra is installed (`pip install 'codemode[telemetry]'`); otherwise nothing is exported.

Traces: one span per execute_code run (`codemode.execute`), a child span per tool call
(`codemode.tool_call`: server, tool, ok, error kind). The SDK's own span of the MCP
request is their parent, itself the child of the client's trace context (`_meta`
traceparent); downstream calls carry the context on (the SDK puts it in `_meta`, and
codemode in the `traceparent` header of HTTP servers). Spans never hold the code, the
arguments or the results unless `codemode.telemetry.record_content` says so.

Metrics: executions, their duration and queue wait, tool calls and their duration,
errors by kind, workers busy, downstream servers by state.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

from opentelemetry import metrics, propagate, trace
from opentelemetry.metrics import _internal as metrics_api
from opentelemetry.trace import Status, StatusCode

log = logging.getLogger("codemode.telemetry")

tracer = trace.get_tracer("codemode")
meter = metrics.get_meter("codemode")

executions = meter.create_counter("codemode.executions", description="execute_code runs")
execution_ms = meter.create_histogram(
    "codemode.execution.duration", unit="ms", description="run time, queue wait excluded"
)
queue_ms = meter.create_histogram(
    "codemode.execution.queue_wait", unit="ms", description="waiting for a sandbox worker"
)
tool_calls = meter.create_counter("codemode.tool_calls", description="tool calls made")
tool_call_ms = meter.create_histogram("codemode.tool_call.duration", unit="ms")
errors = meter.create_counter("codemode.errors", description="failed runs and calls, by kind")

CONTENT_LIMIT = 4096
"""With record_content, how much of the code, arguments or result a span holds."""

record_content = False
"""Set from `codemode.telemetry.record_content` (debug only: spans then hold content)."""


def setup(env: dict[str, str] | None = None) -> bool:
    """Export with the OTel SDK if the `OTEL_*` variables ask for it; True if it does."""
    env = dict(os.environ if env is None else env)
    wanted = [
        k for k in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                    "OTEL_TRACES_EXPORTER", "OTEL_METRICS_EXPORTER") if env.get(k)
    ]  # fmt: skip
    if not wanted or env.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    try:
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        log.warning(
            "%s is set, but the OpenTelemetry SDK is not installed: pip install "
            "'codemode[telemetry]' to export traces and metrics",
            wanted[0],
        )
        return False
    resource = Resource.create({"service.name": env.get("OTEL_SERVICE_NAME", "codemode")})
    traces = env.get("OTEL_TRACES_EXPORTER", "otlp")
    if traces != "none":
        provider = TracerProvider(resource=resource)
        provider.add_span_processor(BatchSpanProcessor(_span_exporter(traces)))
        trace.set_tracer_provider(provider)
    kind = env.get("OTEL_METRICS_EXPORTER", "otlp")
    if kind != "none":
        reader = PeriodicExportingMetricReader(_metric_exporter(kind))
        metrics.set_meter_provider(MeterProvider(resource=resource, metric_readers=[reader]))
    log.info("telemetry: traces %s, metrics %s", traces, kind)
    return True


def _span_exporter(kind: str) -> Any:
    if kind == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter(out=_Stderr())
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()


def _metric_exporter(kind: str) -> Any:
    if kind == "console":
        from opentelemetry.sdk.metrics.export import ConsoleMetricExporter

        return ConsoleMetricExporter(out=_Stderr())
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

    return OTLPMetricExporter()


class _Stderr:
    """Console exporters write here: stdout may be the MCP channel."""

    def write(self, text: str) -> int:
        import sys

        return sys.stderr.write(text)

    def flush(self) -> None:
        import sys

        sys.stderr.flush()


_observed: list[Callable[[], tuple[int, dict[str, str]]]] = []


def observe(read: Callable[[], tuple[int, dict[str, str]]]) -> None:
    """`read()` gives (workers busy, server -> state) when metrics are collected: the
    engine that serves now (the last one observed)."""
    _observed[:] = [read]


def _busy(options: Any) -> Iterator[Any]:
    for read in _observed:
        yield metrics.Observation(read()[0])


def _servers(options: Any) -> Iterator[Any]:
    for read in _observed:
        counts: dict[str, int] = {}
        for state in read()[1].values():
            counts[state] = counts.get(state, 0) + 1
        for state, n in counts.items():
            yield metrics.Observation(n, {"state": state})


meter.create_observable_gauge("codemode.workers.busy", callbacks=[_busy])
meter.create_observable_gauge("codemode.servers", callbacks=[_servers])


def _content(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text[:CONTENT_LIMIT]


_NOTHING = nullcontext()
_live = False
_PROVIDER_FROM_ENV = any(
    k in os.environ for k in ("OTEL_PYTHON_TRACER_PROVIDER", "OTEL_PYTHON_METER_PROVIDER")
)
"""A provider the API loads from an entry point on first use (read once, at import)."""


def active() -> bool:
    """Whether an OpenTelemetry SDK is set up (by `setup()`, or by the program codemode
    runs in): until then spans and metrics are skipped outright, not just not exported
    (as no-ops they still cost ~10 µs a tool call). Read from the API's once-set globals:
    asking for the providers reads the environment each time (~4 µs)."""
    global _live
    if not _live:
        _live = (
            getattr(trace, "_TRACER_PROVIDER", None) is not None
            or getattr(metrics_api, "_METER_PROVIDER", None) is not None
            or _PROVIDER_FROM_ENV
        )
    return _live


def execution_span(code: str, session: str | None, identity: str | None) -> Any:
    """The span of one run (a context manager yielding it; None while inactive)."""
    return _execution_span(code, session, identity) if active() else _NOTHING


def tool_call_span(server: str, tool: str, arguments: Any) -> Any:
    """The span of one tool call, which also counts it (a context manager)."""
    return _tool_call_span(server, tool, arguments) if active() else _NOTHING


@contextmanager
def _execution_span(code: str, session: str | None, identity: str | None) -> Iterator[Any]:
    attributes: dict[str, Any] = {}
    if session:
        attributes["codemode.session"] = session
    if identity:
        attributes["enduser.id"] = identity
    if record_content:
        attributes["codemode.code"] = _content(code)
    with tracer.start_as_current_span(
        "codemode.execute", attributes=attributes, record_exception=False
    ) as span:
        yield span


def finish_execution(span: Any, result: Any) -> None:
    """Record a finished run on its span and in the metrics."""
    if span is None:
        return
    stats, error = result.stats, result.error
    kind = error.kind.value if error is not None and error.kind is not None else None
    span.set_attributes({
        "codemode.ok": result.ok, "codemode.tool_calls": stats.tool_calls,
        "codemode.duration_ms": stats.duration_ms, "codemode.queue_ms": stats.queue_ms,
    })  # fmt: skip
    labels = {"ok": result.ok}
    if kind is not None:
        span.set_attribute("error.type", kind)
        span.set_status(Status(StatusCode.ERROR, kind))
        labels["error.kind"] = kind
        errors.add(1, {"where": "execution", "error.kind": kind})
    if record_content and result.ok:
        span.set_attribute("codemode.result", _content(result.result_json))
    executions.add(1, labels)
    execution_ms.record(stats.duration_ms, {"ok": result.ok})
    queue_ms.record(stats.queue_ms)


@contextmanager
def _tool_call_span(server: str, tool: str, arguments: Any) -> Iterator[Any]:
    attributes: dict[str, Any] = {"codemode.server": server, "codemode.tool": tool}
    if record_content:
        attributes["codemode.arguments"] = _content(arguments)
    started = time.monotonic()
    with tracer.start_as_current_span(
        "codemode.tool_call", attributes=attributes, record_exception=False,
        set_status_on_exception=False,
    ) as span:  # fmt: skip
        labels: dict[str, Any] = {"server": server}
        try:
            yield span
        except Exception as exc:
            kind = getattr(getattr(exc, "kind", None), "value", None) or type(exc).__name__
            span.set_attributes({"codemode.ok": False, "error.type": kind})
            span.set_status(Status(StatusCode.ERROR, kind))
            labels.update({"ok": False, "error.kind": kind})
            errors.add(1, {"where": "tool_call", "error.kind": kind})
            raise
        else:
            span.set_attribute("codemode.ok", True)
            labels["ok"] = True
        finally:
            tool_calls.add(1, labels)
            tool_call_ms.record((time.monotonic() - started) * 1000, {"server": server})


def inject_headers(headers: Any) -> None:
    """Put the current trace context on an outgoing HTTP request (W3C traceparent)."""
    if active():
        propagate.inject(headers)
