"""OpenTelemetry tracing for the LearnFlow services: one trace per lesson, end to end.

- ``install_tracing`` (called by ``install_service_plumbing``): a server span per request (the
  incoming W3C ``traceparent`` honoured), the trace id on every answer (``traceresponse`` and
  ``X-Trace-Id``), spans exported over OTLP/HTTP in batches, off the request path.
- ``TracedSidecar`` wraps the sidecar client's HTTP port (aiohttp, which no instrumentation
  installed here sees into): a client span per call to daprd, named after the Dapr
  API used (``dapr state transaction``, ``dapr publish lesson-generated``...), and the
  ``traceparent`` daprd continues (into the CloudEvent on a publish, into the callee on an
  invocation or actor call). Calls outside any trace (health probes) stay unspanned.
- ``llm_span``: the chat-completion call as a span with model and token counts, never text.
- ``start_consumer_span``: a consumer span in the producer's trace, from a CloudEvent's
  ``traceparent``.

Disabled (the default) unless ``OTEL_EXPORTER_OTLP_ENDPOINT`` names a collector and the
sampling ratio ``OTEL_TRACES_SAMPLER_ARG`` is above 0: then nothing is installed at all, and
every helper here is a no-op (the global tracer provider of the OpenTelemetry API is a no-op).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from typing import Any

from fastapi import FastAPI
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.propagate import inject
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from pydantic_settings import BaseSettings, SettingsConfigDict

from learnflow_service_kit.sidecar_http import SidecarHttp, SidecarResponse

TRACER_NAME = "learnflow"
TRACE_ID_HEADER = "x-trace-id"
# Probes and scrapes: no server span (they would bury the lessons' traces).
_UNTRACED_ROUTES = "/healthz,/readyz,/metrics"

_installed_provider: Any = None  # the process's TracerProvider once installed (one per process)


class TracingSettings(BaseSettings):
    """The standard OpenTelemetry environment variables this service honours."""

    model_config = SettingsConfigDict(env_prefix="OTEL_", extra="ignore")

    # OTLP/HTTP base URL of the collector (e.g. http://127.0.0.1:4318); empty = tracing off.
    exporter_otlp_endpoint: str = ""
    # Fraction of new traces recorded (a caller's sampled flag wins: parent-based); 0 = off.
    traces_sampler_arg: float = 1.0
    # service.name of this process's spans; empty = the service's own name.
    service_name: str = ""

    @property
    def enabled(self) -> bool:
        return bool(self.exporter_otlp_endpoint.strip()) and self.traces_sampler_arg > 0


def tracer() -> trace.Tracer:
    return trace.get_tracer(TRACER_NAME)


def install_tracing(
    app: FastAPI, settings: TracingSettings | None = None, provider: Any = None
) -> bool:
    """Trace ``app``'s requests and export to the configured collector; False when disabled.

    ``service.name``: ``OTEL_SERVICE_NAME``, else the app's title without "LearnFlow"
    ("LearnFlow Course Agent" -> "course-agent"). ``provider``: a TracerProvider to use instead
    of the process's own (tests)."""
    settings = settings or TracingSettings()
    if not settings.enabled:
        return False
    if provider is None:
        provider = _tracer_provider(settings.service_name or service_name_of(app), settings)
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    from opentelemetry.instrumentation.propagators import (
        TraceResponsePropagator,
        set_global_response_propagator,
    )

    # `traceresponse: 00-<trace id>-<span id>-<flags>` on every traced answer (W3C level 2).
    set_global_response_propagator(TraceResponsePropagator())  # type: ignore[no-untyped-call]
    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=provider,
        excluded_urls=_UNTRACED_ROUTES,
        exclude_spans=["receive", "send"],
    )
    app.add_middleware(TraceIdHeader)
    return True


def service_name_of(app: FastAPI) -> str:
    words = [w for w in re.split(r"\W+", app.title.lower()) if w and w != "learnflow"]
    return "-".join(words) or "learnflow"


def _tracer_provider(service_name: str, settings: TracingSettings) -> Any:
    global _installed_provider
    if _installed_provider is not None:
        return _installed_provider
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    provider = TracerProvider(
        resource=Resource.create({"service.name": service_name}),
        sampler=ParentBased(TraceIdRatioBased(min(settings.traces_sampler_arg, 1.0))),
    )
    endpoint = settings.exporter_otlp_endpoint.rstrip("/") + "/v1/traces"
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint, timeout=5)))
    trace.set_tracer_provider(provider)
    _installed_provider = provider
    return provider


def shutdown_tracing() -> None:
    """Flush what is still buffered (at process exit)."""
    if _installed_provider is not None:
        _installed_provider.shutdown()


def format_trace_id(span: Span | None = None) -> str | None:
    """The 32-hex trace id of ``span`` (default: the current one); None outside any trace."""
    context = (span or trace.get_current_span()).get_span_context()
    return trace.format_trace_id(context.trace_id) if context.is_valid else None


class TraceIdHeader:
    """``X-Trace-Id`` on every answer inside a trace: what an operator pastes into Jaeger."""

    def __init__(self, app: Any) -> None:
        self._app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        trace_id = format_trace_id() if scope["type"] == "http" else None
        if trace_id is None:
            await self._app(scope, receive, send)
            return

        async def send_with_trace_id(message: Any) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", []),
                    (TRACE_ID_HEADER.encode(), trace_id.encode()),
                ]
            await send(message)

        await self._app(scope, receive, send_with_trace_id)


def add_trace_ids(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: ``trace_id``/``span_id`` on every line logged inside a trace."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event.setdefault("trace_id", trace.format_trace_id(context.trace_id))
        event.setdefault("span_id", trace.format_span_id(context.span_id))
    return event


# -- calls to daprd ---------------------------------------------------------------------------

_API = re.compile(r"^/v1\.0(?:-alpha1|-beta1)?/(?P<api>[a-z]+)(?:/(?P<rest>.*))?$")


def dapr_operation(method: str, path: str) -> str:
    """A low-cardinality span name for a call to daprd's HTTP API (no keys, ids or learners)."""
    match = _API.match(path)
    if not match:
        return f"dapr {method}"
    api, parts = match["api"], (match["rest"] or "").split("/")
    if api == "state":
        store = parts[0]
        if len(parts) == 1:
            return f"dapr state save {store}"
        if parts[1] in {"transaction", "bulk"}:
            return f"dapr state {parts[1]} {store}"
        return f"dapr state {'delete' if method == 'DELETE' else 'get'} {store}"
    if api == "publish":
        if parts[0] == "bulk" and len(parts) >= 3:
            return f"dapr publish-bulk {parts[2]}"
        return f"dapr publish {parts[1] if len(parts) > 1 else ''}".rstrip()
    if api == "invoke":
        target = parts[0]
        method_path = parts[2] if len(parts) > 2 and parts[1] == "method" else ""
        return f"dapr invoke {target}/{method_path}".rstrip("/")
    if api == "actors":
        kind = parts[2] if len(parts) > 2 else ""
        name = parts[3] if len(parts) > 3 and kind in {"method", "state"} else ""
        return f"dapr actor {parts[0]} {kind} {name}".rstrip()
    return f"dapr {api}"


class TracedSidecar:
    """A client span around each call to daprd made inside a trace, ``traceparent`` injected.

    ``address``/``port``: daprd's, for the span's ``server.*`` attributes."""

    def __init__(self, inner: SidecarHttp, address: str, port: int) -> None:
        self._inner = inner
        self._server: dict[str, str | int] = {
            "server.address": address,
            "server.port": port,
            "rpc.system": "dapr",
        }

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> SidecarResponse:
        call = {"json": json, "params": params, "timeout": timeout}
        if not trace.get_current_span().get_span_context().is_valid:
            return await self._inner.request(method, path, headers=headers, **call)
        attributes: dict[str, str | int] = {"http.request.method": method, **self._server}
        with tracer().start_as_current_span(
            dapr_operation(method, path), kind=SpanKind.CLIENT, attributes=attributes
        ) as span:
            carrier = dict(headers or {})
            inject(carrier)
            response = await self._inner.request(method, path, headers=carrier, **call)
            span.set_attribute("http.response.status_code", response.status_code)
            if response.status_code >= 500:
                span.set_status(Status(StatusCode.ERROR, f"daprd answered {response.status_code}"))
            return response

    async def aclose(self) -> None:
        await self._inner.aclose()


def traced_sidecar(inner: SidecarHttp, address: str, port: int) -> SidecarHttp:
    """``inner`` traced when tracing is on (``TracingSettings``); as it is otherwise."""
    return TracedSidecar(inner, address, port) if TracingSettings().enabled else inner


# -- the LLM ---------------------------------------------------------------------------------


@contextmanager
def llm_span(model: str, **request: float | int | None) -> Iterator[Span]:
    """A chat-completion call (GenAI semantic conventions): the model and, set by the caller on
    the span, the token counts (``record_llm_usage``). Never the prompt or the answer."""
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.system": "openai",
        "gen_ai.request.model": model,
    }
    attributes.update({f"gen_ai.request.{k}": v for k, v in request.items() if v is not None})
    with tracer().start_as_current_span(
        f"chat {model}", kind=SpanKind.CLIENT, attributes=attributes
    ) as span:
        yield span


def record_llm_usage(
    span: Span, response_model: str, input_tokens: int, output_tokens: int
) -> None:
    span.set_attribute("gen_ai.response.model", response_model)
    span.set_attribute("gen_ai.usage.input_tokens", input_tokens)
    span.set_attribute("gen_ai.usage.output_tokens", output_tokens)


# -- consuming events --------------------------------------------------------------------------


def context_from_cloud_event(cloud_event: Mapping[str, Any]) -> otel_context.Context | None:
    """The producer's trace context from a CloudEvent's ``traceparent`` (and ``tracestate``),
    which daprd writes on publish; None when it carries none (or a malformed one)."""
    carrier = {
        key: value
        for key in ("traceparent", "tracestate")
        if isinstance(value := cloud_event.get(key), str)
    }
    if "traceparent" not in carrier:
        return None
    extracted = TraceContextTextMapPropagator().extract(carrier)
    return extracted if trace.get_current_span(extracted).get_span_context().is_valid else None


def start_consumer_span(topic: str, cloud_event: Mapping[str, Any]) -> Span:
    """A consumer span for one event, a child of its producer's span (so the consumer's work
    joins the producer's trace), linked to the delivery that brought it. The caller ends it."""
    parent = context_from_cloud_event(cloud_event)
    delivery = trace.get_current_span().get_span_context()
    links = [Link(delivery)] if parent is not None and delivery.is_valid else []
    attributes: dict[str, Any] = {
        "messaging.system": "kafka",
        "messaging.destination.name": topic,
        "messaging.operation.type": "process",
    }
    if isinstance(event_id := cloud_event.get("id"), str):
        attributes["messaging.message.id"] = event_id
    return tracer().start_span(
        f"process {topic}",
        context=parent,
        kind=SpanKind.CONSUMER,
        attributes=attributes,
        links=links,
    )
