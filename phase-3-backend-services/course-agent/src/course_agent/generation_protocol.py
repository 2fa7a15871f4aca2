"""The wire protocol of ``LessonGenerationActor``, shared by the actor and its caller
(``LessonService``): the actor type, its method names, the job it takes and the answer it gives.

Failures travel as a typed answer, not an exception: the Dapr SDK would flatten an exception
into an opaque 500, losing the status, code and headers the HTTP caller must see.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self

from dapr.actor import ActorInterface, actormethod
from learnflow_contracts.strict import StrictModel
from learnflow_service_kit.errors import ServiceError
from pydantic import Field, TypeAdapter

from course_agent.domain.errors import CourseAgentError
from course_agent.domain.generation_request import GenerateLessonRequest
from course_agent.domain.personalisation import PersonalisationOutcome
from course_agent.domain.prompt import RenderedPrompt
from course_agent.lesson_record import LessonRecord

ACTOR_TYPE = "LessonGenerationActor"
GENERATE_METHOD = "Generate"


class GenerateJob(StrictModel):
    """One generation, for the actor whose id is the lesson's cache key."""

    prompt: RenderedPrompt
    request: GenerateLessonRequest
    personalisation_outcome: PersonalisationOutcome


class LessonGenerated(StrictModel):
    kind: Literal["lesson"] = "lesson"
    lesson: LessonRecord
    created: bool  # False: whoever held the turn before stored this lesson already


class GenerationFailed(StrictModel):
    """An expected failure (``CourseAgentError``), as the HTTP caller must see it."""

    kind: Literal["failed"] = "failed"
    status: int
    code: str
    message: str
    headers: dict[str, str] = {}

    @classmethod
    def of(cls, error: CourseAgentError) -> Self:
        return cls(
            status=error.http_status, code=error.code, message=str(error), headers=error.headers()
        )

    def as_error(self) -> ServiceError:
        return ServiceError(self.status, self.code, self.message, headers=dict(self.headers))


GenerateAnswer = Annotated[LessonGenerated | GenerationFailed, Field(discriminator="kind")]
GENERATE_ANSWER: TypeAdapter[LessonGenerated | GenerationFailed] = TypeAdapter(GenerateAnswer)


class LessonGenerationActorInterface(ActorInterface):
    """Both sides speak JSON documents (the SDK's serializer); ``GenerateJob`` and
    ``GenerateAnswer`` are their shapes."""

    @actormethod(name=GENERATE_METHOD)  # type: ignore[misc]  # the SDK's decorator is untyped
    async def generate(self, job: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError
