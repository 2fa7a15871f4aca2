"""Event payloads published on Kafka through Dapr pub/sub (the CloudEvent ``data``)."""

from datetime import datetime
from typing import Literal

from pydantic import Field

from learnflow_contracts.identifiers import Identifier
from learnflow_contracts.levels import Level
from learnflow_contracts.progress import ProgressProjectionV1
from learnflow_contracts.strict import StrictModel


class LessonObjective(StrictModel):
    id: str = Field(min_length=1, max_length=16)
    text: str = Field(min_length=1, max_length=300)


class LessonGeneratedV1(StrictModel):
    """A lesson was stored for a learner. ``lesson_id`` is the dedupe key for consumers."""

    schema_version: Literal[1] = 1
    lesson_id: Identifier
    learner_id: Identifier
    topic: str = Field(min_length=1, max_length=200)
    level: Level
    title: str = Field(min_length=1, max_length=200)
    objectives: tuple[LessonObjective, ...] = Field(min_length=1, max_length=10)
    personalized: bool
    prompt_id: str
    prompt_version: str
    model: str
    created_at: datetime


ProgressEventKind = Literal["started", "exercise", "quiz", "completed"]


class ProgressUpdatedV1(StrictModel):
    """A progress update was applied; ``attempt_id`` is the dedupe key for consumers."""

    schema_version: Literal[1] = 1
    learner_id: Identifier
    lesson_id: Identifier
    attempt_id: Identifier
    kind: ProgressEventKind
    score: int | None = Field(default=None, ge=0, le=100)
    occurred_at: datetime
    projection: ProgressProjectionV1
