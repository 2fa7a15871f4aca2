"""One Dapr actor per learner: updates for a learner are applied one at a time, and the
learner's progress plus its unpublished events are saved together in the actor state store.

Publishing ``progress-updated``: the event is saved in actor state with the progress (one
transaction), then published; on failure it stays there and a reminder retries it. The
reminder is armed *before* the first unpublished event is saved, so a crash between saving
and publishing still ends with the event published.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import structlog
from dapr.actor import Actor, ActorInterface, Remindable, actormethod
from dapr.actor.id import ActorId
from dapr.actor.runtime.context import ActorRuntimeContext
from learnflow_contracts.events import LessonGeneratedV1
from learnflow_contracts.names import PROGRESS_UPDATED_TOPIC
from prometheus_client import Counter

from user_progress.domain import (
    LearnerProgress,
    ProgressUpdateRequest,
    apply_lesson_generated,
    apply_update,
    empty_progress,
    learner_status,
    progress_projection,
    progress_updated_event,
)

ACTOR_TYPE = "LearnerProgressActor"
FLUSH_REMINDER = "flush-outbox"
_PROGRESS = "progress"
_OUTBOX = "outbox"
_ARMED = "outbox-armed"

log = structlog.get_logger()
DUPLICATES = Counter(
    "progress_duplicates_total", "Updates or events ignored as already applied", ["source"]
)


class EventPublisher(Protocol):
    async def publish(self, topic: str, data: dict[str, Any], event_id: str) -> None: ...


class LearnerProgressActorInterface(ActorInterface):
    @actormethod(name="ApplyUpdate")
    async def apply_update(self, update: dict[str, Any]) -> dict[str, Any]: ...

    @actormethod(name="RecordLesson")
    async def record_lesson(self, event: dict[str, Any]) -> dict[str, Any]: ...

    @actormethod(name="GetStatus")
    async def get_status(self) -> dict[str, Any]: ...

    @actormethod(name="GetProjection")
    async def get_projection(self) -> dict[str, Any]: ...


class LearnerProgressActor(Actor, LearnerProgressActorInterface, Remindable):
    def __init__(
        self,
        ctx: ActorRuntimeContext,
        actor_id: ActorId,
        publisher: EventPublisher,
        flush_every: timedelta,
    ) -> None:
        super().__init__(ctx, actor_id)
        self._publisher = publisher
        self._flush_every = flush_every

    async def apply_update(self, update: dict[str, Any]) -> dict[str, Any]:
        request = ProgressUpdateRequest.model_validate(update)
        result = apply_update(await self._progress(), request)
        if not result.applied:
            DUPLICATES.labels("update").inc()
        else:
            event = progress_updated_event(request, result.state)
            await self._save(
                result.state,
                {
                    "event_id": f"progress-{request.learner_id}-{request.attempt_id}",
                    "data": event.model_dump(mode="json"),
                },
            )
        return learner_status(result.state, datetime.now(UTC)).model_dump(mode="json")

    async def record_lesson(self, event: dict[str, Any]) -> dict[str, Any]:
        lesson = LessonGeneratedV1.model_validate(event)
        result = apply_lesson_generated(await self._progress(), lesson)
        if result.applied:
            await self._save(result.state, None)
        else:
            DUPLICATES.labels("lesson-generated").inc()
        return {"applied": result.applied}

    async def get_status(self) -> dict[str, Any]:
        return learner_status(await self._progress(), datetime.now(UTC)).model_dump(mode="json")

    async def get_projection(self) -> dict[str, Any]:
        return progress_projection(await self._progress()).model_dump(mode="json")

    async def receive_reminder(
        self,
        name: str,
        state: bytes,
        due_time: timedelta,
        period: timedelta,
        ttl: timedelta | None = None,
    ) -> None:
        if name == FLUSH_REMINDER and await self._flush() == 0:
            await self.unregister_reminder(FLUSH_REMINDER)
            await self._state_manager.set_state(_ARMED, False)
            await self._state_manager.save_state()

    # -- internals --------------------------------------------------------------------------

    async def _progress(self) -> LearnerProgress:
        found, stored = await self._state_manager.try_get_state(_PROGRESS)
        if not found:
            return empty_progress(self.id.id)
        return LearnerProgress.model_validate(stored)

    async def _save(self, progress: LearnerProgress, pending_event: dict[str, Any] | None) -> None:
        await self._state_manager.set_state(_PROGRESS, progress.model_dump(mode="json"))
        if pending_event is not None:
            outbox = await self._pending()
            await self._state_manager.set_state(_OUTBOX, [*outbox, pending_event])
            if not await self._state_manager.get_or_add_state(_ARMED, False):
                await self.register_reminder(
                    FLUSH_REMINDER, b"", self._flush_every, self._flush_every
                )
                await self._state_manager.set_state(_ARMED, True)
        await self._state_manager.save_state()
        if pending_event is not None:
            await self._flush()

    async def _pending(self) -> list[dict[str, Any]]:
        return list(await self._state_manager.get_or_add_state(_OUTBOX, []) or [])

    async def _flush(self) -> int:
        """Publish pending events in order; returns how many are still pending."""
        outbox = await self._pending()
        published = 0
        for entry in outbox:
            try:
                await self._publisher.publish(
                    PROGRESS_UPDATED_TOPIC, entry["data"], entry["event_id"]
                )
            except Exception as error:  # broker or sidecar down: the reminder retries
                log.warning("progress-updated publish deferred", error=str(error))
                break
            published += 1
        if published:
            await self._state_manager.set_state(_OUTBOX, outbox[published:])
            await self._state_manager.save_state()
        return len(outbox) - published
