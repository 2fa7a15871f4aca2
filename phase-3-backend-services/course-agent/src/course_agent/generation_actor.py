"""A Dapr actor per lesson cache key, where requests that found their lesson claimed by another
wait for it (``LessonService.wait_and_generate``). Dapr runs one call per actor id at a time, on
one replica, so however many requests wait for a lesson, on any number of replicas, one of them
polls the state store; the others find the stored lesson when their turn comes."""

from __future__ import annotations

from typing import Any, Protocol

from dapr.actor import Actor
from dapr.actor.id import ActorId
from dapr.actor.runtime.context import ActorRuntimeContext
from learnflow_service_kit.actor_turns import ActorTurns

from course_agent.domain.errors import CourseAgentError
from course_agent.generation_protocol import (
    GENERATE_ANSWER,
    GenerateJob,
    GenerationFailed,
    LessonGenerated,
    LessonGenerationActorInterface,
)
from course_agent.lesson_record import LessonRecord


class WaitAndGenerate(Protocol):
    """The work done inside one actor turn (see ``LessonService.wait_and_generate``)."""

    async def __call__(self, cache_key: str, job: GenerateJob) -> tuple[LessonRecord, bool]: ...


class LessonGenerationActor(Actor, LessonGenerationActorInterface):
    def __init__(
        self,
        ctx: ActorRuntimeContext,
        actor_id: ActorId,
        wait_and_generate: WaitAndGenerate,
        turns: ActorTurns,
    ) -> None:
        super().__init__(ctx, actor_id)
        self._wait_and_generate = wait_and_generate
        self._turns = turns

    async def generate(self, job: dict[str, Any]) -> dict[str, Any]:
        # A turn of our own: daprd hands the turn on when a caller gives up, and two waiters
        # polling for one lesson would be one too many.
        answer = await self._turns.run(
            self.id.id, lambda: self._generate(GenerateJob.model_validate(job))
        )
        document: dict[str, Any] = GENERATE_ANSWER.dump_python(answer, mode="json")
        return document

    async def _generate(self, job: GenerateJob) -> LessonGenerated | GenerationFailed:
        try:
            record, created = await self._wait_and_generate(self.id.id, job)
        except CourseAgentError as error:
            return GenerationFailed.of(error)
        return LessonGenerated(lesson=record, created=created)
