"""HTTP routes: thin, they validate and hand over to the progress gateway."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Body, Depends, Query, Request
from learnflow_contracts.identifiers import Identifier
from learnflow_contracts.progress import ProgressProjectionV1
from learnflow_service_kit.end_user_auth import AUTH_ERRORS, AuthenticatedCaller
from learnflow_service_kit.errors import ERROR_RESPONSE, ServiceError
from learnflow_service_kit.sidecar_client import SidecarUnavailable
from prometheus_client import Counter

from user_progress.domain import LearnerStatus, ProgressUpdateRequest
from user_progress.lesson_deliveries import LearnerBatch, Status, read_bulk_delivery
from user_progress.progress_gateway import ProgressGateway

log = structlog.get_logger()
EVENTS = Counter("lesson_events_total", "lesson-generated deliveries by outcome", ["outcome"])

router = APIRouter()
LearnerId = Annotated[Identifier, Query(description="The learner whose progress to read")]


def gateway(request: Request) -> ProgressGateway:
    found: ProgressGateway = request.app.state.progress
    return found


Gateway = Annotated[ProgressGateway, Depends(gateway)]


_RETRY_CONTRACT = (
    "Answers within 3 s. 429 `too_many_pending_updates` or 503 `learner_busy`: nothing was "
    "applied; retry after `Retry-After`. 503 naming a part (`state_store_unavailable`, "
    "`actor_placement_unavailable`, `dapr_sidecar_unavailable`) or 504 `deadline_exceeded`: the "
    "update may or may not have been applied; retry with the **same `attempt_id`**, which is "
    "applied at most once, and the answer is the learner's status either way."
)


@router.post(
    "/update-progress",
    response_model=LearnerStatus,
    description=_RETRY_CONTRACT,
    responses={
        **AUTH_ERRORS,
        400: ERROR_RESPONSE,  # a body that is not JSON at all
        413: ERROR_RESPONSE,
        429: ERROR_RESPONSE,
        503: ERROR_RESPONSE,
        504: ERROR_RESPONSE,
    },
)
async def update_progress(
    update: ProgressUpdateRequest, progress: Gateway, caller: AuthenticatedCaller
) -> LearnerStatus:
    caller.require_access_to(update.learner_id)
    return await progress.apply_update(update)


@router.get(
    "/status",
    response_model=LearnerStatus,
    responses={**AUTH_ERRORS, 503: ERROR_RESPONSE, 504: ERROR_RESPONSE},
)
async def status(
    learner_id: LearnerId, progress: Gateway, caller: AuthenticatedCaller
) -> LearnerStatus:
    caller.require_access_to(learner_id)
    return await progress.status(learner_id)


@router.get(
    "/status/projection",
    response_model=ProgressProjectionV1,
    responses={**AUTH_ERRORS, 503: ERROR_RESPONSE, 504: ERROR_RESPONSE},
)
async def projection(
    learner_id: LearnerId, progress: Gateway, caller: AuthenticatedCaller
) -> ProgressProjectionV1:
    caller.require_access_to(learner_id)
    return await progress.projection(learner_id)


@router.post("/events/lesson-generated", include_in_schema=False)
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
