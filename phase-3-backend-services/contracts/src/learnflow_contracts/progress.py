"""The slice of a learner's progress the Course Agent uses to personalise prompts."""

from datetime import datetime
from typing import Literal

from pydantic import Field

from learnflow_contracts.levels import Level
from learnflow_contracts.strict import StrictModel


class RecentScore(StrictModel):
    topic: str = Field(min_length=1, max_length=200)
    score: int = Field(ge=0, le=100)
    at: datetime


class ProgressProjectionV1(StrictModel):
    """Served by User Progress at ``GET /status/projection`` and embedded in events.

    A learner with no records gets ``has_history=False`` and empty lists: callers treat
    that exactly like "no personalisation data".
    """

    schema_version: Literal[1] = 1
    learner_id: str
    has_history: bool
    suggested_level: Level | None = None
    weak_topics: tuple[str, ...] = Field(default=(), max_length=20)
    strong_topics: tuple[str, ...] = Field(default=(), max_length=20)
    # Newest first; the Course Agent trims from the oldest end when over its token budget.
    recent_scores: tuple[RecentScore, ...] = Field(default=(), max_length=50)
    lessons_completed: int = Field(default=0, ge=0)
    average_score: float | None = Field(default=None, ge=0, le=100)
