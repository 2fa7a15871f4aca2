"""The public routes: thin, they validate, check the caller and hand over to the progress
gateway. Their paths are the spec's."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from learnflow_contracts.identifiers import Identifier
from learnflow_contracts.progress import ProgressProjectionV1
from learnflow_service_kit.end_user_auth import AUTH_ERRORS, AuthenticatedCaller
from learnflow_service_kit.errors import ERROR_RESPONSE

from user_progress.domain import LearnerStatus, ProgressUpdateRequest
from user_progress.progress_gateway import ProgressGateway
from user_progress.settings import REQUEST_DEADLINE_SECONDS

router = APIRouter(tags=["progress"])
LearnerId = Annotated[Identifier, Query(description="The learner whose progress to read")]


async def gateway(request: Request) -> ProgressGateway:
    """The progress gateway the wiring put on ``app.state.progress`` (async: FastAPI runs a
    plain ``def`` dependency in its threadpool, a thread hop per request)."""
    found: ProgressGateway = request.app.state.progress
    return found


Gateway = Annotated[ProgressGateway, Depends(gateway)]


_RETRY_CONTRACT = (
    f"Answers within {REQUEST_DEADLINE_SECONDS:g} s. 429 `too_many_pending_updates` or 503 "
    "`learner_busy`: nothing was applied; retry after `Retry-After`. 503 naming a part "
    "(`state_store_unavailable`, `actor_placement_unavailable`, `dapr_sidecar_unavailable`) or "
    "504 `deadline_exceeded`: the update may or may not have been applied; retry with the "
    "**same `attempt_id`**, which is applied at most once, and the answer is the learner's "
    "status either way."
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
    return await progress.record_progress(update)


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
