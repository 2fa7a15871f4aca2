"""A bulk delivery of ``lesson-generated`` events from Dapr (bulk subscribe), as per-learner
batches and the per-entry answer Dapr expects.

Each entry is answered on its own: SUCCESS acks it, RETRY has Dapr redeliver it (then dead-letter
it once the resiliency policy gives up), DROP dead-letters it at once (a malformed event never
becomes valid). A learner's events keep the order they came in: Kafka keeps one learner's
events on one partition, so they arrive in one delivery, in order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from learnflow_contracts.events import LessonGeneratedV1
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

    def answer(self) -> dict[str, list[dict[str, str]]]:
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
        data = cloud_event.get("data") if isinstance(cloud_event, dict) else None
        try:
            event = LessonGeneratedV1.model_validate(data)
        except ValidationError:
            delivery.statuses[entry_id] = "DROP"
            delivery.dropped_event_ids.append(
                cloud_event.get("id") if isinstance(cloud_event, dict) else None
            )
            continue
        batch = delivery.batches.setdefault(event.learner_id, LearnerBatch(event.learner_id))
        batch.entry_ids.append(entry_id)
        batch.events.append(event)
        delivery.statuses[entry_id] = "RETRY"  # until the learner's batch is applied
    return delivery
