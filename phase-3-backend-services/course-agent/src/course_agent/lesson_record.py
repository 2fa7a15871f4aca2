"""A generated lesson as stored in the state store, and the event it publishes.

The stored document is not the public contract: ``lesson_public.py`` maps it to what the API
returns. Its JSON field names (``personalized``, ``personalization``, ``personalised_with``)
are those of the documents already stored, so they stay; in Python each concept has one name.
"""

from __future__ import annotations

from datetime import datetime

from learnflow_contracts.events import LessonGeneratedV1, LessonObjective
from learnflow_contracts.levels import Level
from learnflow_contracts.strict import StrictModel
from pydantic import ConfigDict, Field

from course_agent.domain.lesson import LessonDraft
from course_agent.domain.personalisation import Personalisation, PersonalisationOutcome


class LessonRecord(StrictModel):
    # Python names here, the stored documents' names in JSON (read by either).
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
            personalized=self.personalised,
            prompt_id=self.prompt_id,
            prompt_version=self.prompt_version,
            model=self.model,
            created_at=self.created_at,
        )
