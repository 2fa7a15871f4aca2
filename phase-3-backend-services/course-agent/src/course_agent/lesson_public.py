"""What the API returns for a lesson, mapped explicitly from the stored ``LessonRecord``: how
lessons are stored can change without changing the public contract, and the other way round."""

from __future__ import annotations

from datetime import datetime
from typing import Self

from learnflow_contracts.levels import Level
from learnflow_contracts.strict import StrictModel
from pydantic import BaseModel, ConfigDict, Field

from course_agent.domain.lesson import LessonDraft
from course_agent.domain.personalisation import Personalisation, PersonalisationOutcome
from course_agent.lesson_record import LessonRecord


class LessonPublic(StrictModel):
    """A lesson as GET /lessons/{lesson_id} and GET /lessons return it."""

    # Python names here, the public JSON names (the published field spellings) on the wire.
    model_config = ConfigDict(validate_by_name=True, serialize_by_alias=True)

    lesson_id: str
    learner_id: str
    topic: str
    level: Level
    goal: str | None
    locale: str
    content: LessonDraft
    prompt_id: str
    prompt_version: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    personalised: bool = Field(alias="personalized")
    personalisation_outcome: PersonalisationOutcome = Field(alias="personalization")
    # Exactly the progress the prompt was personalised with (after trimming to the budget).
    personalisation: Personalisation | None = Field(alias="personalised_with")
    trimmed: tuple[str, ...]
    created_at: datetime

    @classmethod
    def of(cls, record: LessonRecord) -> Self:
        """Field by field: a field added to the stored record is not public until added here."""
        return cls(
            lesson_id=record.lesson_id,
            learner_id=record.learner_id,
            topic=record.topic,
            level=record.level,
            goal=record.goal,
            locale=record.locale,
            content=record.content,
            prompt_id=record.prompt_id,
            prompt_version=record.prompt_version,
            model=record.model,
            prompt_tokens=record.prompt_tokens,
            completion_tokens=record.completion_tokens,
            personalised=record.personalised,
            personalisation_outcome=record.personalisation_outcome,
            personalisation=record.personalisation,
            trimmed=record.trimmed,
            created_at=record.created_at,
        )


class LessonResponse(LessonPublic):
    """What POST /generate-lesson returns: the lesson, and whether it came from the cache."""

    from_cache: bool

    @classmethod
    def of_generation(cls, record: LessonRecord, *, from_cache: bool) -> Self:
        public = LessonPublic.of(record)
        return cls.model_validate({**dict(public), "from_cache": from_cache})


class LessonPage(BaseModel):
    items: list[LessonPublic]
    next_cursor: str | None
