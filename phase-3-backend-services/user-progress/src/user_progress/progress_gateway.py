"""The port routes use to reach a learner's progress, and its adapter: the learner's actor.

Every call answers within ``deadline_seconds``. An update either is applied and answered, or is
refused before anything is applied (too many pending for the learner: 429; its actor turn came
too late: 503 naming the failing part, or ``learner_busy`` when nothing failed), or — only when
a dependency fails mid-call — answers 503/504 naming the failing part, and then a retry with the
same ``attempt_id`` is applied at most once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from learnflow_contracts.events import LessonGeneratedV1
from learnflow_contracts.progress import ProgressProjectionV1
from learnflow_service_kit.actor_turns import deadline_after
from learnflow_service_kit.errors import ServiceError, dependency_failed
from learnflow_service_kit.sidecar_client import (
    ActorCallFailed,
    PlacementUnavailable,
    SidecarClient,
    SidecarUnavailable,
)

from user_progress.admission import PerLearnerAdmission
from user_progress.domain import LearnerStatus, ProgressUpdateRequest
from user_progress.progress_actor import ACTOR_TYPE

# Of the deadline: what the failure diagnosis may take, and what the turn itself may take
# (an update must *start* before the rest has passed, or it is refused).
_DIAGNOSIS_SECONDS = 0.8
_TURN_SECONDS = 0.7
_RETRY_HINT = "retry later; an update retried with the same attempt_id is applied at most once"


class ProgressGateway(Protocol):
    async def apply_update(self, update: ProgressUpdateRequest) -> LearnerStatus: ...
    async def record_lessons(self, learner_id: str, events: Sequence[LessonGeneratedV1]) -> int:
        """Apply a learner's lesson-generated events in order; returns how many were new."""
        ...

    async def status(self, learner_id: str) -> LearnerStatus: ...
    async def projection(self, learner_id: str) -> ProgressProjectionV1: ...


class ActorProgressGateway:
    def __init__(
        self, dapr: SidecarClient, deadline_seconds: float, max_pending_per_learner: int
    ) -> None:
        self._dapr = dapr
        self._call_timeout = deadline_seconds - _DIAGNOSIS_SECONDS
        self._start_within = self._call_timeout - _TURN_SECONDS
        self._admission = PerLearnerAdmission(max_pending_per_learner)

    async def _call(self, learner_id: str, method: str, data: Any = None) -> Any:
        try:
            return await self._dapr.invoke_actor(
                ACTOR_TYPE, learner_id, method, data, timeout=self._call_timeout
            )
        except PlacementUnavailable as failure:
            raise dependency_failed("actor_placement", _RETRY_HINT) from failure
        except (ActorCallFailed, SidecarUnavailable) as failure:
            # An actor saves all its state in one transaction or not at all: nothing is
            # half-written, whichever part failed.
            raise dependency_failed(await self._dapr.failing_part(), _RETRY_HINT) from failure

    async def apply_update(self, update: ProgressUpdateRequest) -> LearnerStatus:
        async with self._admission.admit(update.learner_id):
            answer = await self._call(
                update.learner_id,
                "ApplyUpdate",
                {
                    "update": update.model_dump(mode="json"),
                    "not_after": deadline_after(self._start_within),
                },
            )
        if answer.get("expired"):
            # Queued behind a turn that hung on a failing part, or just too many updates.
            part = await self._dapr.failing_part()
            if part != "unknown":
                raise dependency_failed(part, "nothing was applied; retry later")
            raise ServiceError(
                503,
                "learner_busy",
                "this learner's updates waited too long for their turn; nothing was applied, "
                "retry later",
                headers={"Retry-After": "1"},
            )
        return LearnerStatus.model_validate(answer["status"])

    async def record_lessons(self, learner_id: str, events: Sequence[LessonGeneratedV1]) -> int:
        lessons = [event.model_dump(mode="json") for event in events]
        result = await self._call(learner_id, "RecordLessons", {"lessons": lessons})
        return int(result["applied"])

    async def status(self, learner_id: str) -> LearnerStatus:
        return LearnerStatus.model_validate(await self._call(learner_id, "GetStatus"))

    async def projection(self, learner_id: str) -> ProgressProjectionV1:
        return ProgressProjectionV1.model_validate(await self._call(learner_id, "GetProjection"))
