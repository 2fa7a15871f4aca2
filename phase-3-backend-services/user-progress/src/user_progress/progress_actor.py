"""One Dapr actor per learner: the writes to a learner's progress are applied one at a time.

The progress is ``learner_document``'s plain state document, with its projection and status,
which only this actor writes. An update commits the three and stages its ``progress-updated``
event in one transaction, then publishes the event in the background; the outbox relay publishes
whatever a crash or a down broker left staged. Reads do not come here: the progress gateway
reads the store itself.

Its methods and their payloads are ``progress_protocol``'s. Every method runs as an
``ActorTurns`` turn (one at a time per learner in this process, even when daprd has given the turn
away after a caller timed out), and ``ApplyUpdate`` carries a ``not_after``: an update whose turn
comes too late is refused, never applied after its caller was told it failed.

The progress is read once per activation and kept, with what its shards hold; both are replaced
only after a write succeeded, and dropped (read again next turn) when a write failed. A write
carries the document and only the shards that changed since what was read or last written.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from dapr.actor import Actor, ActorInterface, actormethod
from dapr.actor.id import ActorId
from dapr.actor.runtime.context import ActorRuntimeContext
from learnflow_contracts.events import LessonGeneratedV1
from learnflow_contracts.names import PROGRESS_UPDATED_TOPIC
from learnflow_service_kit.actor_turns import ActorTurns, expired
from learnflow_service_kit.outbox import Outbox, OutboxEvent
from learnflow_service_kit.sidecar_client import SidecarClient
from prometheus_client import Counter

from user_progress.domain import (
    LearnerProgress,
    ProgressUpdateRequest,
    apply_lesson_generated,
    apply_update,
    learner_status,
    progress_updated_event,
)
from user_progress.learner_document import StoredShards, load_progress, progress_writes
from user_progress.progress_protocol import (
    APPLY_UPDATE,
    RECORD_LESSONS,
    ApplyUpdateCall,
    LessonsRecorded,
    RecordLessonsCall,
    UpdateExpired,
    UpdateTaken,
)

T = TypeVar("T")

DUPLICATES = Counter(
    "progress_duplicates_total", "Updates or events ignored as already applied", ["source"]
)


class LearnerProgressActorInterface(ActorInterface):
    """The actor's methods; each takes and answers the JSON of its ``progress_protocol`` models."""

    @actormethod(name=APPLY_UPDATE)
    async def on_apply_update(self, call: Any) -> dict[str, Any]: ...

    @actormethod(name=RECORD_LESSONS)
    async def on_record_lessons(self, call: Any) -> dict[str, Any]: ...


class LearnerProgressActor(Actor, LearnerProgressActorInterface):
    def __init__(
        self,
        ctx: ActorRuntimeContext,
        actor_id: ActorId,
        sidecar: SidecarClient,
        outbox: Outbox,
        turns: ActorTurns,
    ) -> None:
        super().__init__(ctx, actor_id)
        self._sidecar = sidecar
        self._outbox = outbox
        self._turns = turns
        self._progress: LearnerProgress | None = None
        self._shards: StoredShards | None = None

    async def on_apply_update(self, call: Any) -> dict[str, Any]:
        update = ApplyUpdateCall.from_wire(call)
        if expired(update.not_after):
            return UpdateExpired().model_dump(mode="json")
        answer = await self._turns.run(self.id.id, lambda: self._apply_update(update.update))
        return answer.model_dump(mode="json")

    async def _apply_update(self, request: ProgressUpdateRequest) -> UpdateTaken:
        result = apply_update(await self._load(), request)
        status = learner_status(result.state, datetime.now(UTC))
        if not result.applied:
            DUPLICATES.labels("update").inc()
        else:
            event = OutboxEvent(
                event_id=f"progress-{request.learner_id}-{request.attempt_id}",
                topic=PROGRESS_UPDATED_TOPIC,
                data=progress_updated_event(request, status.projection).model_dump(mode="json"),
                partition_key=request.learner_id,
            )
            writes, shards = progress_writes(result.state, status, self._stored_shards())
            staged = await self._write(
                lambda: self._outbox.commit_with([], lambda _: writes, event),
                result.state,
                shards,
            )
            self._outbox.publish_soon(staged)
        return UpdateTaken(status=status)

    async def on_record_lessons(self, call: Any) -> dict[str, Any]:
        lessons = RecordLessonsCall.model_validate(call).lessons
        answer = await self._turns.run(self.id.id, lambda: self._record_lessons(lessons))
        return answer.model_dump(mode="json")

    async def _record_lessons(self, lessons: list[LessonGeneratedV1]) -> LessonsRecorded:
        progress = await self._load()
        applied = 0
        for lesson in lessons:
            result = apply_lesson_generated(progress, lesson)
            progress = result.state
            applied += result.applied
        if applied:
            status = learner_status(progress, datetime.now(UTC))
            writes, shards = progress_writes(progress, status, self._stored_shards())
            await self._write(lambda: self._sidecar.transact(writes), progress, shards)
        DUPLICATES.labels("lesson-generated").inc(len(lessons) - applied)
        return LessonsRecorded(applied=applied)

    # -- internals --------------------------------------------------------------------------

    async def _load(self) -> LearnerProgress:
        if self._progress is None:
            loaded = await load_progress(self._sidecar, self.id.id)
            self._progress, self._shards = loaded.progress, loaded.shards
        return self._progress

    def _stored_shards(self) -> StoredShards:
        if self._shards is None:
            raise RuntimeError("a write before the learner's progress was loaded")
        return self._shards

    async def _write(
        self, write: Callable[[], Awaitable[T]], progress: LearnerProgress, shards: StoredShards
    ) -> T:
        try:
            written = await write()
        except BaseException:
            # Written or not: read it again next turn.
            self._progress = self._shards = None
            raise
        self._progress, self._shards = progress, shards
        return written
