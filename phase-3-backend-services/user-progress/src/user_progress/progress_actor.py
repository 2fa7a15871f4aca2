"""One Dapr actor per learner: updates for a learner are applied one at a time, and the
learner's progress plus its unpublished events are saved together in the actor state store.

Publishing ``progress-updated``: the event is saved in the actor's outbox with the progress (one
transaction), then sent in the background by the ``EventSender``; the learner's next turn or a
reminder drops it from the outbox once sent, and the reminder publishes whatever was not. The
reminder is armed *before* the first pending event is saved, so a crash between saving and
publishing still ends with the event published.

Every method runs as an ``ActorTurns`` turn (one at a time per learner in this process, even when
daprd has given the turn away after a caller timed out), and ``ApplyUpdate`` carries a
``not_after``: an update whose turn comes too late is refused, never applied after its caller
was told it failed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from dapr.actor import Actor, ActorInterface, Remindable, actormethod
from dapr.actor.id import ActorId
from dapr.actor.runtime.context import ActorRuntimeContext
from learnflow_contracts.events import LessonGeneratedV1
from learnflow_contracts.names import PROGRESS_UPDATED_TOPIC
from learnflow_service_kit.actor_turns import ActorTurns, expired
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
from user_progress.event_sender import EventSender

ACTOR_TYPE = "LearnerProgressActor"
FLUSH_REMINDER = "flush-outbox"
_PROGRESS = "progress"
_OUTBOX = "outbox"
_ARMED = "outbox-armed"

log = structlog.get_logger()
DUPLICATES = Counter(
    "progress_duplicates_total", "Updates or events ignored as already applied", ["source"]
)


class LearnerProgressActorInterface(ActorInterface):
    @actormethod(name="ApplyUpdate")
    async def apply_update(self, call: dict[str, Any]) -> dict[str, Any]: ...

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
        events: EventSender,
        flush_every: timedelta,
        turns: ActorTurns,
    ) -> None:
        super().__init__(ctx, actor_id)
        self._events = events
        self._flush_every = flush_every
        self._turns = turns

    async def apply_update(self, call: dict[str, Any]) -> dict[str, Any]:
        """``call``: ``{"update": <ProgressUpdateRequest>, "not_after": <epoch seconds>}``;
        answers ``{"status": ...}``, or ``{"expired": true}`` with nothing applied."""
        if expired(call.get("not_after")):
            return {"expired": True}
        request = ProgressUpdateRequest.model_validate(call["update"])
        return await self._turns.run(self.id.id, lambda: self._apply_update(request))

    async def _apply_update(self, request: ProgressUpdateRequest) -> dict[str, Any]:
        result = apply_update(await self._progress(), request)
        if not result.applied:
            DUPLICATES.labels("update").inc()
        else:
            event = {
                "event_id": f"progress-{request.learner_id}-{request.attempt_id}",
                "data": progress_updated_event(request, result.state).model_dump(mode="json"),
                "partition_key": request.learner_id,
            }
            await self._save(result.state, event)
            self._events.send_soon(PROGRESS_UPDATED_TOPIC, event)
        return {"status": learner_status(result.state, datetime.now(UTC)).model_dump(mode="json")}

    async def record_lesson(self, event: dict[str, Any]) -> dict[str, Any]:
        lesson = LessonGeneratedV1.model_validate(event)
        return await self._turns.run(self.id.id, lambda: self._record_lesson(lesson))

    async def _record_lesson(self, lesson: LessonGeneratedV1) -> dict[str, Any]:
        result = apply_lesson_generated(await self._progress(), lesson)
        if result.applied:
            await self._save(result.state, None)
        else:
            DUPLICATES.labels("lesson-generated").inc()
        return {"applied": result.applied}

    async def get_status(self) -> dict[str, Any]:
        progress = await self._turns.run(self.id.id, self._progress)
        return learner_status(progress, datetime.now(UTC)).model_dump(mode="json")

    async def get_projection(self) -> dict[str, Any]:
        progress = await self._turns.run(self.id.id, self._progress)
        return progress_projection(progress).model_dump(mode="json")

    async def receive_reminder(
        self,
        name: str,
        state: bytes,
        due_time: timedelta,
        period: timedelta,
        ttl: timedelta | None = None,
    ) -> None:
        if name == FLUSH_REMINDER:
            await self._turns.run(self.id.id, self._flush_from_reminder)

    async def _flush_from_reminder(self) -> None:
        if await self._flush() == 0:
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
        """One transaction: the progress, and the outbox without what was sent since."""
        await self._state_manager.set_state(_PROGRESS, progress.model_dump(mode="json"))
        if pending_event is not None:
            unsent = [e for e in await self._pending() if not self._events.sent(e["event_id"])]
            await self._state_manager.set_state(_OUTBOX, [*unsent, pending_event])
            if not await self._state_manager.get_or_add_state(_ARMED, False):
                await self.register_reminder(
                    FLUSH_REMINDER, b"", self._flush_every, self._flush_every
                )
                await self._state_manager.set_state(_ARMED, True)
        await self._state_manager.save_state()

    async def _pending(self) -> list[dict[str, Any]]:
        return list(await self._state_manager.get_or_add_state(_OUTBOX, []) or [])

    async def _flush(self) -> int:
        """Publish the outbox's unsent events in order; returns how many are still pending.

        A broker that failed lately is not tried until its backoff ends."""
        outbox = await self._pending()
        unsent = [e for e in outbox if not self._events.sent(e["event_id"])]
        while unsent and self._events.ready():
            if not await self._events.send(PROGRESS_UPDATED_TOPIC, unsent[0]):
                break
            unsent.pop(0)
        if len(unsent) != len(outbox):
            await self._state_manager.set_state(_OUTBOX, unsent)
            await self._state_manager.save_state()
        return len(unsent)
