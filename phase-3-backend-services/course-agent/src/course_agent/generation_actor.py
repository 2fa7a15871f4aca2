"""A Dapr actor per lesson cache key: Dapr runs one call per actor id at a time, on one replica,
so N concurrent identical requests — on any number of replicas — make exactly one LLM call:
the first generates and stores, the others find the stored lesson when their turn comes."""

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


class GenerateOnce(Protocol):
    """The work done inside one actor turn (see ``LessonService.generate_once``)."""

    async def __call__(self, cache_key: str, job: GenerateJob) -> tuple[LessonRecord, bool]: ...


class LessonGenerationActor(Actor, LessonGenerationActorInterface):
    def __init__(
        self,
        ctx: ActorRuntimeContext,
        actor_id: ActorId,
        generate_once: GenerateOnce,
        turns: ActorTurns,
    ) -> None:
        super().__init__(ctx, actor_id)
        self._generate_once = generate_once
        self._turns = turns

    async def generate(self, job: dict[str, Any]) -> dict[str, Any]:
        # A turn of our own: daprd hands the turn on when a caller gives up, and two
        # generations for one cache key would mean two LLM calls.
        answer = await self._turns.run(
            self.id.id, lambda: self._generate(GenerateJob.model_validate(job))
        )
        document: dict[str, Any] = GENERATE_ANSWER.dump_python(answer, mode="json")
        return document

    async def _generate(self, job: GenerateJob) -> LessonGenerated | GenerationFailed:
        try:
            record, created = await self._generate_once(self.id.id, job)
        except CourseAgentError as error:
            return GenerationFailed.of(error)
        return LessonGenerated(lesson=record, created=created)
