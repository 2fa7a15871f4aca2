"""HTTP routes: thin, they validate and hand over to the progress gateway."""

from __future__ import annotations

from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Body, Depends, Query, Request
from learnflow_contracts.events import LessonGeneratedV1
from learnflow_contracts.identifiers import Identifier
from learnflow_contracts.progress import ProgressProjectionV1
from learnflow_service_kit.dapr_client import SidecarUnavailable
from learnflow_service_kit.errors import ServiceError
from prometheus_client import Counter
from pydantic import ValidationError

from user_progress.domain import LearnerStatus, ProgressUpdateRequest
from user_progress.progress_gateway import ProgressGateway

log = structlog.get_logger()
EVENTS = Counter("lesson_events_total", "lesson-generated deliveries by outcome", ["outcome"])

router = APIRouter()
LearnerId = Annotated[Identifier, Query(description="The learner whose progress to read")]


def gateway(request: Request) -> ProgressGateway:
    found: ProgressGateway = request.app.state.progress
    return found


Gateway = Annotated[ProgressGateway, Depends(gateway)]


@router.post("/update-progress", response_model=LearnerStatus)
async def update_progress(update: ProgressUpdateRequest, progress: Gateway) -> LearnerStatus:
    return await progress.apply_update(update)


@router.get("/status", response_model=LearnerStatus)
async def status(learner_id: LearnerId, progress: Gateway) -> LearnerStatus:
    return await progress.status(learner_id)


@router.get("/status/projection", response_model=ProgressProjectionV1)
async def projection(learner_id: LearnerId, progress: Gateway) -> ProgressProjectionV1:
    return await progress.projection(learner_id)


@router.post("/events/lesson-generated", include_in_schema=False)
async def lesson_generated(
    progress: Gateway, cloud_event: Annotated[Any, Body()] = None
) -> dict[str, str]:
    """Dapr delivers a CloudEvent. SUCCESS acks, RETRY redelivers, DROP dead-letters."""
    data = cloud_event.get("data") if isinstance(cloud_event, dict) else None
    try:
        event = LessonGeneratedV1.model_validate(data)
    except ValidationError as invalid:
        EVENTS.labels("dropped").inc()
        log.warning(
            "malformed lesson-generated event dead-lettered",
            event_id=cloud_event.get("id") if isinstance(cloud_event, dict) else None,
            errors=invalid.error_count(),
        )
        return {"status": "DROP"}
    try:
        applied = await progress.record_lesson(event)
    except (ServiceError, SidecarUnavailable) as failure:
        EVENTS.labels("retried").inc()
        log.warning(
            "lesson-generated event will be redelivered",
            lesson_id=event.lesson_id,
            error=str(failure),
        )
        return {"status": "RETRY"}
    EVENTS.labels("applied" if applied else "duplicate").inc()
    return {"status": "SUCCESS"}
