"""A generated lesson as stored in the state store and as returned by the API."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from learnflow_contracts.events import LessonGeneratedV1, LessonObjective
from learnflow_contracts.levels import Level
from learnflow_contracts.strict import StrictModel
from pydantic import BaseModel

from course_agent.domain.lesson import LessonDraft
from course_agent.domain.personalisation import Personalisation

Personalization = Literal["applied", "no_history", "unavailable"]


class LessonRecord(StrictModel):
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
    personalized: bool
    personalization: Personalization
    # Exactly the progress the prompt was personalised with (after trimming to the budget).
    personalised_with: Personalisation | None
    trimmed: tuple[str, ...]
    created_at: datetime

    def generated_event(self) -> LessonGeneratedV1:
        return LessonGeneratedV1(
            lesson_id=self.lesson_id,
            learner_id=self.learner_id,
            topic=self.topic,
            level=self.level,
            title=self.content.title,
            objectives=tuple(
                LessonObjective(id=o.id, text=o.text) for o in self.content.objectives
            ),
            personalized=self.personalized,
            prompt_id=self.prompt_id,
            prompt_version=self.prompt_version,
            model=self.model,
            created_at=self.created_at,
        )


class LessonResponse(LessonRecord):
    """What POST /generate-lesson returns: the lesson, and whether it came from the cache."""

    from_cache: bool


class LessonPage(BaseModel):
    items: list[LessonRecord]
    next_cursor: str | None
