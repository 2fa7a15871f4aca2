"""The port routes use to reach a learner's progress, and its adapter over Dapr: writes go
through the learner's actor (one at a time per learner), reads straight to the state store: a
status and a projection read what the learner's actor stored beside their document (one call
each; an acknowledged write is committed, so a read sees it).

Every call answers within the request deadline (split by ``CallDeadlines``, from the settings).
An update either is applied and answered, or is refused before anything is applied (too many
pending for the learner: 429; its actor turn came too late: 503 naming the failing part, or
``learner_busy`` when nothing failed), or — only when a dependency fails mid-call — answers
503/504 naming the failing part, and then a retry with the same ``attempt_id`` is applied at most
once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Protocol, TypeVar

from learnflow_contracts.events import LessonGeneratedV1
from learnflow_contracts.progress import ProgressProjectionV1
from learnflow_service_kit.actor_turns import deadline_after
from learnflow_service_kit.errors import ServiceError, dependency_failed
from learnflow_service_kit.sidecar_client import (
    ActorCallFailed,
    PlacementUnavailable,
    SidecarClient,
    SidecarUnavailable,
    StateStoreUnavailable,
)
from pydantic import BaseModel, ValidationError

from user_progress.admission import PerLearnerAdmission
from user_progress.domain import (
    LearnerStatus,
    ProgressUpdateRequest,
)
from user_progress.learner_document import read_projection, read_status
from user_progress.progress_protocol import (
    ACTOR_TYPE,
    APPLY_UPDATE,
    RECORD_LESSONS,
    UPDATE_ANSWER,
    ApplyUpdateCall,
    LessonsRecorded,
    RecordLessonsCall,
    UpdateExpired,
)
from user_progress.settings import CallDeadlines

T = TypeVar("T")
# How the gateway reads what a learner has stored: (sidecar, learner id, timeout) -> it.
StoredReader = Callable[[SidecarClient, str, float], Awaitable[T]]

_RETRY_HINT = "retry later; an update retried with the same attempt_id is applied at most once"


class ProgressGateway(Protocol):
    async def record_progress(self, update: ProgressUpdateRequest) -> LearnerStatus:
        """Apply one update (at most once per ``attempt_id``); the learner's status after it."""
        ...

    async def record_lessons(self, learner_id: str, events: Sequence[LessonGeneratedV1]) -> int:
        """Apply a learner's lesson-generated events in order; returns how many were new."""
        ...

    async def status(self, learner_id: str) -> LearnerStatus: ...
    async def projection(self, learner_id: str) -> ProgressProjectionV1: ...


class DaprProgressGateway:
    def __init__(
        self, dapr: SidecarClient, deadlines: CallDeadlines, max_pending_per_learner: int
    ) -> None:
        self._dapr = dapr
        self._deadlines = deadlines
        self._admission = PerLearnerAdmission(max_pending_per_learner)

    async def _call(self, learner_id: str, method: str, call: BaseModel | None = None) -> object:
        try:
            return await self._dapr.invoke_actor(
                ACTOR_TYPE,
                learner_id,
                method,
                None if call is None else call.model_dump(mode="json"),
                timeout=self._deadlines.call_seconds,
            )
        except PlacementUnavailable as failure:
            raise dependency_failed("actor_placement", _RETRY_HINT) from failure
        except (ActorCallFailed, SidecarUnavailable) as failure:
            # An actor saves all its state in one transaction or not at all: nothing is
            # half-written, whichever part failed.
            raise dependency_failed(await self._dapr.failing_part(), _RETRY_HINT) from failure

    async def record_progress(self, update: ProgressUpdateRequest) -> LearnerStatus:
        async with self._admission.admit(update.learner_id):
            call = ApplyUpdateCall(
                update=update, not_after=deadline_after(self._deadlines.update_start_seconds)
            )
            answer = UPDATE_ANSWER.validate_python(
                await self._call(update.learner_id, APPLY_UPDATE, call)
            )
        if isinstance(answer, UpdateExpired):
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
        return answer.status

    async def record_lessons(self, learner_id: str, events: Sequence[LessonGeneratedV1]) -> int:
        answer = await self._call(learner_id, RECORD_LESSONS, RecordLessonsCall(lessons=[*events]))
        return LessonsRecorded.model_validate(answer).applied

    async def status(self, learner_id: str) -> LearnerStatus:
        return await self._stored(partial(read_status, now=datetime.now(UTC)), learner_id)

    async def projection(self, learner_id: str) -> ProgressProjectionV1:
        return await self._stored(read_projection, learner_id)

    async def _stored(self, read: StoredReader[T], learner_id: str) -> T:
        try:
            return await read(self._dapr, learner_id, self._deadlines.call_seconds)
        except (StateStoreUnavailable, SidecarUnavailable) as failure:
            raise dependency_failed(await self._dapr.failing_part(), "retry later") from failure
        except ValidationError as corrupt:
            raise ServiceError(
                500,
                "stored_progress_unreadable",
                "learner_id: this learner's stored progress cannot be read; it needs repair",
            ) from corrupt
