"""A learner's progress: the JSON document one Dapr actor stores per learner.

Everything the status and projection report is derived from ``lessons``. Two derivations are
kept beside them so that an update costs the same however long the history: ``topic_mastery``
(``apply``: a score in order folds into its topic's mastery, anything else recomputes the topic
from the lessons) and ``totals`` (``totals``: what the status sums over every lesson, changed by
each lesson's change). The unit tests check both against a derivation from scratch over
arbitrary orders of updates and events.

Deduplication
-------------
* Progress updates: ``applied_attempt_ids`` keeps **every** attempt id ever applied, unbounded.
  A bounded LRU would silently double-count a redelivery older than its window; ids are at
  most 128 characters and grow the document no faster than the score history itself
  (about 40 bytes per attempt with typical ids, so 10,000 attempts ~ 0.4 MB).
* ``lesson-generated`` events: a lesson whose ``assigned_at`` is set has had its event
  applied; ``lesson_id`` is the dedupe key and the known lesson is the marker, so there is no
  second set to keep in step.

``schema_version`` is bumped on any change to this document's shape; a loader for the old
shape must then be added next to this model.
"""

from datetime import date, datetime
from typing import Any, Literal

from learnflow_contracts.events import ProgressEventKind
from learnflow_contracts.identifiers import Identifier
from learnflow_contracts.levels import Level
from learnflow_contracts.strict import StrictModel
from pydantic import BaseModel, ConfigDict, Field, field_serializer

from user_progress.domain.mastery import TopicMastery


class ScoreEntry(StrictModel):
    score: int = Field(ge=0, le=100)
    at: datetime
    # The state version that applied it: orders scores that share an ``at``.
    sequence: int = Field(ge=1)


class KnownLesson(BaseModel):
    """One lesson of the learner as User Progress knows it, from its ``lesson-generated`` event
    and/or its progress (an entry of ``LearnerProgress.lessons``; not the Course Agent's stored
    lesson)."""

    model_config = ConfigDict(extra="forbid")

    topic: str | None = Field(default=None, max_length=200)
    level: Level | None = None
    title: str | None = Field(default=None, max_length=200)
    # None until the lesson-generated event arrives (progress can overtake it).
    assigned_at: datetime | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    last_activity_at: datetime | None = None
    scores: list[ScoreEntry] = Field(default_factory=list)
    time_spent_seconds: int = Field(default=0, ge=0)

    @property
    def is_assigned(self) -> bool:
        return self.assigned_at is not None


class LastActivity(StrictModel):
    kind: ProgressEventKind
    lesson_id: str
    at: datetime


class TrackedScore(StrictModel):
    """A score among the learner's newest (``ProgressTotals.recent_scores``), with its lesson's
    topic, which is relabelled if an event replaces a provisional one."""

    lesson_id: str
    topic: str
    score: int = Field(ge=0, le=100)
    at: datetime
    sequence: int = Field(ge=1)


class ProgressTotals(StrictModel):
    """What the status and projection sum over every lesson (``domain.totals`` keeps it)."""

    lessons_started: int = Field(default=0, ge=0)
    lessons_completed: int = Field(default=0, ge=0)
    total_time_seconds: int = Field(default=0, ge=0)
    score_count: int = Field(default=0, ge=0)
    score_sum: int = Field(default=0, ge=0)
    # The newest scores whose lesson's topic is known, newest first by (at, sequence).
    recent_scores: tuple[TrackedScore, ...] = ()


class LearnerProgress(BaseModel):
    """One learner's progress, as stored in their document (``learner_document``)."""

    model_config = ConfigDict(extra="forbid")

    schema_version: Literal[1] = 1
    learner_id: Identifier
    # Incremented by every applied update or event; 0 for a learner with no records.
    version: int = Field(default=0, ge=0)
    lessons: dict[str, KnownLesson] = Field(default_factory=dict)
    applied_attempt_ids: set[str] = Field(default_factory=set)
    topic_mastery: dict[str, TopicMastery] = Field(default_factory=dict)
    # UTC calendar days with at least one progress update (for the streak).
    active_days: set[date] = Field(default_factory=set)
    last_activity: LastActivity | None = None
    # None in a document written before totals were kept: derived from the lessons when needed.
    totals: ProgressTotals | None = None

    @field_serializer("applied_attempt_ids", "active_days")
    def _sorted(self, values: set[Any]) -> list[Any]:
        # Sets have no stable order; sorting keeps the stored JSON byte-stable.
        return sorted(values)


def empty_progress(learner_id: str) -> LearnerProgress:
    """The state of a learner with no records: what the actor starts from.

    Its status is well defined: ``lessons_assigned``/``started``/``completed``,
    ``streak_days`` and ``total_time_seconds`` are 0, ``completion_rate`` is 0.0,
    ``average_score`` and ``last_activity_at``/``most_recent_activity`` are None, every topic
    list is empty, and the projection has ``has_history=False``, ``suggested_level=None``,
    ``lessons_completed=0`` and no scores.
    """
    return LearnerProgress(learner_id=learner_id)
