"""The fields a lesson has, stored and public alike (FastAPI's full-stack template's
``ItemBase``): ``LessonRecord`` is the stored document, ``LessonPublic`` what the API returns.
A field only one of them has goes on that one."""

from __future__ import annotations

from datetime import datetime

from learnflow_contracts.levels import Level
from learnflow_contracts.strict import StrictModel
from pydantic import ConfigDict, Field

from course_agent.domain.lesson import LessonDraft
from course_agent.domain.personalisation import Personalisation, PersonalisationOutcome


class LessonBase(StrictModel):
    # Python names here; in JSON the names the stored documents and the API have always used
    # (``personalized``, ``personalization``, ``personalised_with``); either is read.
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
