"""One Dapr actor per learner: updates for a learner are applied one at a time, and the
learner's progress plus its unpublished events are saved together, as one state document.

Publishing ``progress-updated``: the event is saved in the document's outbox with the progress
(one write), then sent in the background by the ``EventSender``; the learner's next turn or a
reminder drops it from the outbox once sent, and the reminder publishes whatever was not. The
reminder is armed *before* the first pending event of an activation is saved, so a crash between
saving and publishing still ends with the event published; it unregisters itself once the outbox
is empty.

Its methods and their payloads are ``progress_protocol``'s. Every method runs as an
``ActorTurns`` turn (one at a time per learner in this process, even when daprd has given the turn
away after a caller timed out), and ``ApplyUpdate`` carries a ``not_after``: an update whose turn
comes too late is refused, never applied after its caller was told it failed.

The document is read once per activation and kept; it is replaced only after a write succeeded,
and dropped (read again next turn) when a write failed.
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
from learnflow_service_kit.sidecar_client import SidecarClient
from prometheus_client import Counter
from pydantic import BaseModel

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
from user_progress.progress_protocol import (
    ACTOR_TYPE,
    APPLY_UPDATE,
    GET_PROJECTION,
    GET_STATUS,
    RECORD_LESSONS,
    ApplyUpdateCall,
    LessonsRecorded,
    RecordLessonsCall,
    UpdateExpired,
    UpdateTaken,
)

FLUSH_REMINDER = "flush-outbox"
_STATE_KEY = "learner"

log = structlog.get_logger()
DUPLICATES = Counter(
    "progress_duplicates_total", "Updates or events ignored as already applied", ["source"]
)


class LearnerProgressActorInterface(ActorInterface):
    """The actor's methods; each takes and answers the JSON of its ``progress_protocol`` models."""

    @actormethod(name=APPLY_UPDATE)
    async def on_apply_update(self, call: Any) -> dict[str, Any]: ...

    @actormethod(name=RECORD_LESSONS)
    async def on_record_lessons(self, call: Any) -> dict[str, Any]: ...

    @actormethod(name=GET_STATUS)
    async def on_get_status(self) -> dict[str, Any]: ...

    @actormethod(name=GET_PROJECTION)
    async def on_get_projection(self) -> dict[str, Any]: ...


class StoredLearner(BaseModel):
    """The actor's one state document."""

    progress: LearnerProgress
    outbox: list[dict[str, Any]] = []  # progress-updated events not yet known to be sent


class LearnerProgressActor(Actor, LearnerProgressActorInterface, Remindable):
    def __init__(
        self,
        ctx: ActorRuntimeContext,
        actor_id: ActorId,
        sidecar: SidecarClient,
        events: EventSender,
        flush_every: timedelta,
        turns: ActorTurns,
    ) -> None:
        super().__init__(ctx, actor_id)
        self._sidecar = sidecar
        self._events = events
        self._flush_every = flush_every
        self._turns = turns
        self._stored: StoredLearner | None = None
        self._reminder_armed = False

    async def on_apply_update(self, call: Any) -> dict[str, Any]:
        update = ApplyUpdateCall.from_wire(call)
        if expired(update.not_after):
            return UpdateExpired().model_dump(mode="json")
        answer = await self._turns.run(self.id.id, lambda: self._apply_update(update.update))
        return answer.model_dump(mode="json")

    async def _apply_update(self, request: ProgressUpdateRequest) -> UpdateTaken:
        stored = await self._load()
        result = apply_update(stored.progress, request)
        if not result.applied:
            DUPLICATES.labels("update").inc()
        else:
            event = {
                "event_id": f"progress-{request.learner_id}-{request.attempt_id}",
                "data": progress_updated_event(request, result.state).model_dump(mode="json"),
                "partition_key": request.learner_id,
            }
            if not self._reminder_armed:
                await self._sidecar.register_reminder(
                    ACTOR_TYPE, self.id.id, FLUSH_REMINDER, self._flush_every.total_seconds()
                )
                self._reminder_armed = True
            unsent = self._unsent(stored)
            await self._save(StoredLearner(progress=result.state, outbox=[*unsent, event]))
            self._events.send_soon(PROGRESS_UPDATED_TOPIC, event)
        return UpdateTaken(status=learner_status(result.state, datetime.now(UTC)))

    async def on_record_lessons(self, call: Any) -> dict[str, Any]:
        lessons = RecordLessonsCall.model_validate(call).lessons
        answer = await self._turns.run(self.id.id, lambda: self._record_lessons(lessons))
        return answer.model_dump(mode="json")

    async def _record_lessons(self, lessons: list[LessonGeneratedV1]) -> LessonsRecorded:
        stored = await self._load()
        progress = stored.progress
        applied = 0
        for lesson in lessons:
            result = apply_lesson_generated(progress, lesson)
            progress = result.state
            applied += result.applied
        if applied:
            await self._save(StoredLearner(progress=progress, outbox=self._unsent(stored)))
        DUPLICATES.labels("lesson-generated").inc(len(lessons) - applied)
        return LessonsRecorded(applied=applied)

    async def on_get_status(self) -> dict[str, Any]:
        stored = await self._turns.run(self.id.id, self._load)
        return learner_status(stored.progress, datetime.now(UTC)).model_dump(mode="json")

    async def on_get_projection(self) -> dict[str, Any]:
        stored = await self._turns.run(self.id.id, self._load)
        return progress_projection(stored.progress).model_dump(mode="json")

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
            await self._sidecar.unregister_reminder(ACTOR_TYPE, self.id.id, FLUSH_REMINDER)
            self._reminder_armed = False

    # -- internals --------------------------------------------------------------------------

    async def _load(self) -> StoredLearner:
        if self._stored is None:
            found = await self._sidecar.get_actor_state(ACTOR_TYPE, self.id.id, _STATE_KEY)
            self._stored = (
                StoredLearner(progress=empty_progress(self.id.id))
                if found is None
                else StoredLearner.model_validate(found)
            )
        return self._stored

    async def _save(self, stored: StoredLearner) -> None:
        try:
            await self._sidecar.save_actor_state(
                ACTOR_TYPE, self.id.id, {_STATE_KEY: stored.model_dump(mode="json")}
            )
        except BaseException:
            self._stored = None  # written or not: read it again next turn
            raise
        self._stored = stored

    def _unsent(self, stored: StoredLearner) -> list[dict[str, Any]]:
        """The stored outbox without what this process has sent since it was saved."""
        return [e for e in stored.outbox if not self._events.sent(e["event_id"])]

    async def _flush(self) -> int:
        """Publish the outbox's unsent events in order; returns how many are still pending.

        A broker that failed lately is not tried until its backoff ends."""
        stored = await self._load()
        unsent = self._unsent(stored)
        while unsent and self._events.ready():
            if not await self._events.send(PROGRESS_UPDATED_TOPIC, unsent[0]):
                break
            unsent.pop(0)
        if len(unsent) != len(stored.outbox):
            await self._save(StoredLearner(progress=stored.progress, outbox=unsent))
        return len(unsent)
