"""Tracing: traceparent honoured and propagated to daprd, trace ids on answers and log lines,
consumer spans in the producer's trace, span names without keys or ids, off by default."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import structlog
from fastapi import FastAPI
from fastapi.testclient import TestClient
from learnflow_service_kit import tracing
from learnflow_service_kit.observability import configure_logging
from learnflow_service_kit.sidecar_http import HttpxSidecar
from learnflow_service_kit.tracing import (
    TracedSidecar,
    TracingSettings,
    add_trace_ids,
    context_from_cloud_event,
    dapr_operation,
    install_tracing,
    llm_span,
    record_llm_usage,
    start_consumer_span,
    traced_sidecar,
)
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_SPAN_ID}-01"
ON = TracingSettings(exporter_otlp_endpoint="http://127.0.0.1:4318", traces_sampler_arg=1.0)


@pytest.fixture
def exported(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    """A private TracerProvider (the process-wide one is left alone) with an in-memory export."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(tracing, "tracer", lambda: provider.get_tracer("test"))
    monkeypatch.setattr(tracing, "_test_provider", provider, raising=False)
    yield exporter
    provider.shutdown()


def by_name(exporter: InMemorySpanExporter) -> dict[str, ReadableSpan]:
    return {span.name: span for span in exporter.get_finished_spans()}


def hex_trace(span: ReadableSpan) -> str:
    assert span.context is not None
    return trace.format_trace_id(span.context.trace_id)


# -- settings ----------------------------------------------------------------------------------


def test_off_without_a_collector_or_with_sampling_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    assert not TracingSettings().enabled
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0")
    assert not TracingSettings().enabled
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0.25")
    assert TracingSettings().enabled


def test_disabled_installs_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    app = FastAPI()
    middleware_before = list(app.user_middleware)
    assert install_tracing(app) is False
    assert app.user_middleware == middleware_before
    inner = HttpxSidecar.scripted(lambda _: httpx.Response(204))
    assert traced_sidecar(inner, "127.0.0.1", 3500) is inner  # the sidecar client's port untouched


# -- a traced app calling its sidecar ------------------------------------------------------------


def traced(daprd: Callable[[httpx.Request], httpx.Response]) -> TracedSidecar:
    """The sidecar client's HTTP port, traced, over a scripted daprd."""
    return TracedSidecar(HttpxSidecar.scripted(daprd), "127.0.0.1", 3500)


def traced_app(exporter: InMemorySpanExporter, sidecar_calls: list[httpx.Request]) -> FastAPI:
    def daprd(request: httpx.Request) -> httpx.Response:
        sidecar_calls.append(request)
        return httpx.Response(204)

    app = FastAPI(title="LearnFlow Test Service")
    provider: TracerProvider = tracing._test_provider  # type: ignore[attr-defined]

    @app.post("/work")
    async def work() -> dict[str, Any]:
        sidecar = traced(daprd)
        await sidecar.request("POST", "/v1.0/state/statestore/transaction", json={"operations": []})
        await sidecar.aclose()
        return {"trace_id": tracing.format_trace_id()}

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        sidecar = traced(daprd)
        await sidecar.request("GET", "/v1.0/healthz")
        await sidecar.aclose()
        return {}

    assert install_tracing(app, ON, provider=provider)
    return app


def test_incoming_traceparent_is_honoured_and_continued_to_daprd(
    exported: InMemorySpanExporter,
) -> None:
    calls: list[httpx.Request] = []
    with TestClient(traced_app(exported, calls)) as client:
        response = client.post("/work", headers={"traceparent": TRACEPARENT})
    assert response.status_code == 200
    assert response.json() == {"trace_id": TRACE_ID}
    assert response.headers["x-trace-id"] == TRACE_ID
    assert response.headers["traceresponse"].startswith(f"00-{TRACE_ID}-")

    spans = by_name(exported)
    server, client_span = spans["POST /work"], spans["dapr state transaction statestore"]
    assert server.kind is SpanKind.SERVER
    assert client_span.kind is SpanKind.CLIENT
    assert hex_trace(server) == hex_trace(client_span) == TRACE_ID
    assert server.parent is not None
    assert trace.format_span_id(server.parent.span_id) == PARENT_SPAN_ID
    assert client_span.parent is not None
    assert server.context is not None
    assert client_span.parent.span_id == server.context.span_id
    assert client_span.attributes is not None
    assert client_span.attributes["http.response.status_code"] == 204

    # daprd got the trace context: the client span is the parent of whatever daprd does.
    (sent,) = calls
    assert client_span.context is not None
    span_id = trace.format_span_id(client_span.context.span_id)
    assert sent.headers["traceparent"] == f"00-{TRACE_ID}-{span_id}-01"


def test_a_request_without_traceparent_starts_a_trace(exported: InMemorySpanExporter) -> None:
    calls: list[httpx.Request] = []
    with TestClient(traced_app(exported, calls)) as client:
        response = client.post("/work")
    trace_id = response.headers["x-trace-id"]
    assert len(trace_id) == 32
    assert trace_id != TRACE_ID
    assert calls[0].headers["traceparent"].split("-")[1] == trace_id


def test_probes_make_no_spans_and_send_no_traceparent(exported: InMemorySpanExporter) -> None:
    calls: list[httpx.Request] = []
    with TestClient(traced_app(exported, calls)) as client:
        response = client.get("/healthz", headers={"traceparent": TRACEPARENT})
    assert response.status_code == 200
    assert "x-trace-id" not in response.headers
    assert exported.get_finished_spans() == ()
    assert "traceparent" not in calls[0].headers


# -- span names ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "name"),
    [
        ("POST", "/v1.0/state/statestore/transaction", "dapr state transaction statestore"),
        ("POST", "/v1.0/state/statestore/bulk", "dapr state bulk statestore"),
        ("POST", "/v1.0/state/statestore", "dapr state save statestore"),
        ("GET", "/v1.0/state/statestore/course-agent||lesson-ada-42", "dapr state get statestore"),
        ("DELETE", "/v1.0/state/statestore/key-1", "dapr state delete statestore"),
        ("POST", "/v1.0/publish/pubsub/lesson-generated", "dapr publish lesson-generated"),
        ("POST", "/v1.0-alpha1/publish/bulk/pubsub/progress", "dapr publish-bulk progress"),
        (
            "GET",
            "/v1.0/invoke/user-progress/method/progress/ada",
            "dapr invoke user-progress/progress",
        ),
        (
            "PUT",
            "/v1.0/actors/GenerationActor/ada/method/generate",
            "dapr actor GenerationActor method generate",
        ),
        ("GET", "/v1.0/metadata", "dapr metadata"),
        ("GET", "/elsewhere", "dapr GET"),
    ],
)
def test_span_names_hold_no_keys_or_ids(method: str, path: str, name: str) -> None:
    assert dapr_operation(method, path) == name


# -- log lines -----------------------------------------------------------------------------------


def test_log_lines_inside_a_trace_carry_its_id(exported: InMemorySpanExporter) -> None:
    assert add_trace_ids(None, "info", {"event": "outside"}) == {"event": "outside"}
    with tracing.tracer().start_as_current_span("work") as span:
        line = add_trace_ids(None, "info", {"event": "inside"})
    assert line["trace_id"] == trace.format_trace_id(span.get_span_context().trace_id)
    assert line["span_id"] == trace.format_span_id(span.get_span_context().span_id)


# -- the LLM ---------------------------------------------------------------------------------------


def test_llm_span_has_model_and_tokens_never_text(exported: InMemorySpanExporter) -> None:
    with llm_span("gpt-4o-mini", temperature=0.2, max_tokens=4096) as span:
        record_llm_usage(span, "gpt-4o-mini-2024-07-18", 812, 455)
    (recorded,) = exported.get_finished_spans()
    assert recorded.name == "chat gpt-4o-mini"
    assert recorded.kind is SpanKind.CLIENT
    assert dict(recorded.attributes or {}) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.system": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.request.temperature": 0.2,
        "gen_ai.request.max_tokens": 4096,
        "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
        "gen_ai.usage.input_tokens": 812,
        "gen_ai.usage.output_tokens": 455,
    }


# -- consuming events ------------------------------------------------------------------------------


def test_trace_context_from_a_cloud_event() -> None:
    context = context_from_cloud_event({"id": "e1", "traceparent": TRACEPARENT})
    assert context is not None
    parent = trace.get_current_span(context).get_span_context()
    assert trace.format_trace_id(parent.trace_id) == TRACE_ID
    assert parent.is_remote
    assert context_from_cloud_event({"id": "e1"}) is None
    assert context_from_cloud_event({"traceparent": "00-nonsense"}) is None
    assert context_from_cloud_event({"traceparent": 42}) is None


def test_consumer_span_joins_the_producers_trace_and_links_the_delivery(
    exported: InMemorySpanExporter,
) -> None:
    with tracing.tracer().start_as_current_span("POST /events/lesson-generated") as delivery:
        span = start_consumer_span(
            "lesson-generated", {"id": "outbox-1", "traceparent": TRACEPARENT}
        )
        span.end()
    consumer = by_name(exported)["process lesson-generated"]
    assert consumer.kind is SpanKind.CONSUMER
    assert hex_trace(consumer) == TRACE_ID
    assert consumer.parent is not None
    assert trace.format_span_id(consumer.parent.span_id) == PARENT_SPAN_ID
    assert [link.context.span_id for link in consumer.links] == [
        delivery.get_span_context().span_id
    ]
    assert consumer.attributes is not None
    assert consumer.attributes["messaging.message.id"] == "outbox-1"
    assert consumer.attributes["messaging.destination.name"] == "lesson-generated"


def test_an_event_without_trace_context_is_consumed_under_the_delivery(
    exported: InMemorySpanExporter,
) -> None:
    with tracing.tracer().start_as_current_span("delivery") as delivery:
        start_consumer_span("lesson-generated", {"id": "e2"}).end()
    consumer = by_name(exported)["process lesson-generated"]
    assert consumer.parent is not None
    assert consumer.parent.span_id == delivery.get_span_context().span_id
    assert consumer.links == ()


def test_json_log_lines_carry_the_trace_id(
    exported: InMemorySpanExporter, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("info")
    log = structlog.get_logger()
    with tracing.tracer().start_as_current_span("work") as span:
        log.info("inside a trace", lesson="l-1")
    log.info("outside any trace")
    inside, outside = (json.loads(line) for line in capsys.readouterr().out.splitlines()[-2:])
    assert inside["trace_id"] == trace.format_trace_id(span.get_span_context().trace_id)
    assert inside["event"] == "inside a trace"
    assert "trace_id" not in outside
