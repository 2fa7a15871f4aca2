"""A bulk delivery of ``lesson-generated`` events from Dapr (bulk subscribe), as per-learner
batches and the per-entry answer Dapr expects.

Each entry is answered on its own: SUCCESS acks it, RETRY has Dapr redeliver it (then dead-letter
it once the resiliency policy gives up), DROP dead-letters it at once (a malformed event never
becomes valid). A learner's events keep the order they came in: Kafka keeps one learner's
events on one partition, so they arrive in one delivery, in order.

Tracing: each valid entry gets a consumer span in its producer's trace (parent: the
``traceparent`` daprd wrote into the CloudEvent on publish), from its receipt until its answer,
which it records. When every entry of a delivery comes from one trace (the usual case: one
lesson), that span is also the current span while the delivery is applied, so the actor call
and the sidecar's spans join the producer's trace too; a delivery mixing traces keeps its work
under the delivery's own request span, which each consumer span links to.
"""

from __future__ import annotations

from contextvars import Token
from dataclasses import dataclass, field
from typing import Any, Literal

from learnflow_contracts.events import LessonGeneratedV1
from learnflow_contracts.names import LESSON_GENERATED_TOPIC
from learnflow_service_kit.tracing import start_consumer_span
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span
from pydantic import ValidationError

Status = Literal["SUCCESS", "RETRY", "DROP"]


@dataclass(frozen=True)
class LearnerBatch:
    learner_id: str
    entry_ids: list[str] = field(default_factory=list)
    events: list[LessonGeneratedV1] = field(default_factory=list)


@dataclass
class BulkDelivery:
    batches: dict[str, LearnerBatch] = field(default_factory=dict)  # learner -> their events
    statuses: dict[str, Status] = field(default_factory=dict)  # entry id -> answer so far
    dropped_event_ids: list[str | None] = field(default_factory=list)  # CloudEvent ids
    spans: dict[str, Span] = field(default_factory=dict, compare=False, repr=False)
    _joined: Token[otel_context.Context] | None = field(default=None, compare=False, repr=False)

    def join_producer_trace(self) -> None:
        """Make the entries' consumer span current when they all belong to one trace."""
        traces = {span.get_span_context().trace_id for span in self.spans.values()}
        if len(traces) == 1 and self._joined is None:
            first = next(iter(self.spans.values()))
            self._joined = otel_context.attach(trace.set_span_in_context(first))

    def answer(self) -> dict[str, list[dict[str, str]]]:
        """The per-entry answer Dapr expects; ends the entries' consumer spans with it."""
        if self._joined is not None:
            otel_context.detach(self._joined)
            self._joined = None
        for entry_id, span in self.spans.items():
            span.set_attribute("learnflow.delivery.status", self.statuses.get(entry_id, "RETRY"))
            span.end()
        self.spans.clear()
        return {
            "statuses": [
                {"entryId": entry_id, "status": status}
                for entry_id, status in self.statuses.items()
            ]
        }


def read_bulk_delivery(envelope: Any) -> BulkDelivery | None:
    """The delivery's valid events grouped by learner, its malformed entries already marked
    DROP; None if ``envelope`` is not a bulk delivery at all."""
    entries = envelope.get("entries") if isinstance(envelope, dict) else None
    if not isinstance(entries, list):
        return None
    delivery = BulkDelivery()
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("entryId"), str):
            continue  # nothing to answer it by; daprd validates entry ids before sending
        entry_id: str = entry["entryId"]
        cloud_event = entry.get("event")
        if not isinstance(cloud_event, dict):
            cloud_event = {}
        data = cloud_event.get("data")
        try:
            event = LessonGeneratedV1.model_validate(data)
        except ValidationError:
            delivery.statuses[entry_id] = "DROP"
            delivery.dropped_event_ids.append(cloud_event.get("id"))
            continue
        batch = delivery.batches.setdefault(event.learner_id, LearnerBatch(event.learner_id))
        batch.entry_ids.append(entry_id)
        batch.events.append(event)
        delivery.statuses[entry_id] = "RETRY"  # until the learner's batch is applied
        delivery.spans[entry_id] = start_consumer_span(LESSON_GENERATED_TOPIC, cloud_event)
    delivery.join_producer_trace()
    return delivery
