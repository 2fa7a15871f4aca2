"""The route daprd delivers ``lesson-generated`` to. The Subscription itself (topic, this route,
bulk delivery, dead-letter topic) is declared in ``components/subscription-lesson-generated.yaml``
and its Kubernetes copy; the path here must stay the one declared there."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Body
from learnflow_service_kit.errors import ServiceError
from learnflow_service_kit.sidecar_client import SidecarUnavailable
from prometheus_client import Counter

from user_progress.lesson_deliveries import LearnerBatch, Status, read_bulk_delivery
from user_progress.progress_gateway import ProgressGateway
from user_progress.progress_routes import Gateway

log = structlog.get_logger()
EVENTS = Counter("lesson_events_total", "lesson-generated deliveries by outcome", ["outcome"])

LESSON_GENERATED_ROUTE = "/events/lesson-generated"

router = APIRouter(tags=["dapr subscriptions"])


@router.post(LESSON_GENERATED_ROUTE, include_in_schema=False)
async def lesson_generated(
    progress: Gateway, envelope: Annotated[Any, Body()] = None
) -> dict[str, list[dict[str, str]]]:
    """Dapr delivers lesson-generated events in bulk; each entry is answered SUCCESS, RETRY
    (redeliver) or DROP (dead-letter). Each learner's events are applied in one actor turn,
    the learners concurrently."""
    delivery = read_bulk_delivery(envelope)
    if delivery is None:
        raise ServiceError(400, "malformed_delivery", "body: not a Dapr bulk delivery (no entries)")
    for event_id in delivery.dropped_event_ids:
        EVENTS.labels("dropped").inc()
        log.warning("malformed lesson-generated event dead-lettered", event_id=event_id)
    batches = list(delivery.batches.values())
    outcomes = await asyncio.gather(*(_record(progress, batch) for batch in batches))
    for batch, outcome in zip(batches, outcomes, strict=True):
        for entry_id in batch.entry_ids:
            delivery.statuses[entry_id] = outcome
    return delivery.answer()


async def _record(progress: ProgressGateway, batch: LearnerBatch) -> Status:
    try:
        applied = await progress.record_lessons(batch.learner_id, batch.events)
    except (ServiceError, SidecarUnavailable) as failure:
        EVENTS.labels("retried").inc(len(batch.events))
        log.warning(
            "lesson-generated events will be redelivered",
            learner_id=batch.learner_id,
            lessons=len(batch.events),
            error=str(failure),
        )
        return "RETRY"
    EVENTS.labels("applied").inc(applied)
    EVENTS.labels("duplicate").inc(len(batch.events) - applied)
    return "SUCCESS"
