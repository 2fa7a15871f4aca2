"""The port routes use to reach a learner's progress, and its adapter: the learner's actor."""

from __future__ import annotations

from typing import Any, Protocol

from learnflow_contracts.events import LessonGeneratedV1
from learnflow_contracts.progress import ProgressProjectionV1
from learnflow_service_kit.dapr_client import ActorCallFailed, DaprClient
from learnflow_service_kit.errors import ServiceError

from user_progress.domain import LearnerStatus, ProgressUpdateRequest
from user_progress.progress_actor import ACTOR_TYPE


class ProgressGateway(Protocol):
    async def apply_update(self, update: ProgressUpdateRequest) -> LearnerStatus: ...
    async def record_lesson(self, event: LessonGeneratedV1) -> bool: ...
    async def status(self, learner_id: str) -> LearnerStatus: ...
    async def projection(self, learner_id: str) -> ProgressProjectionV1: ...


class ActorProgressGateway:
    def __init__(self, dapr: DaprClient, timeout_seconds: float) -> None:
        self._dapr = dapr
        self._timeout = timeout_seconds

    async def _call(self, learner_id: str, method: str, data: Any = None) -> Any:
        try:
            return await self._dapr.invoke_actor(
                ACTOR_TYPE, learner_id, method, data, timeout=self._timeout
            )
        except ActorCallFailed as failure:
            # The actor could not load or save the learner's state: nothing was half-written,
            # because an actor saves all its state in one transaction or not at all.
            raise ServiceError(
                503,
                "progress_store_unavailable",
                "learner progress is temporarily unavailable; retry later",
                headers={"Retry-After": "5"},
            ) from failure

    async def apply_update(self, update: ProgressUpdateRequest) -> LearnerStatus:
        status = await self._call(update.learner_id, "ApplyUpdate", update.model_dump(mode="json"))
        return LearnerStatus.model_validate(status)

    async def record_lesson(self, event: LessonGeneratedV1) -> bool:
        result = await self._call(event.learner_id, "RecordLesson", event.model_dump(mode="json"))
        return bool(result["applied"])

    async def status(self, learner_id: str) -> LearnerStatus:
        return LearnerStatus.model_validate(await self._call(learner_id, "GetStatus"))

    async def projection(self, learner_id: str) -> ProgressProjectionV1:
        return ProgressProjectionV1.model_validate(await self._call(learner_id, "GetProjection"))
