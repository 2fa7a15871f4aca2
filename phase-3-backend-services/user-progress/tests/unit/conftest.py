"""Fixtures for the User Progress domain: a fixed clock and builders for updates and events."""

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from learnflow_contracts.events import LessonGeneratedV1, LessonObjective, ProgressEventKind
from learnflow_contracts.levels import Level
from user_progress.domain import LearnerProgress, ProgressUpdateRequest, empty_progress

LEARNER_ID = "learner-1"
NOW = datetime(2025, 5, 10, 12, 0, tzinfo=UTC)


@pytest.fixture
def now() -> datetime:
    return NOW


@pytest.fixture
def learner_id() -> str:
    return LEARNER_ID


@pytest.fixture
def fresh_state(learner_id: str) -> LearnerProgress:
    return empty_progress(learner_id)


@pytest.fixture
def valid_payload(learner_id: str, now: datetime) -> dict[str, Any]:
    """A JSON-like body of POST /update-progress, as a client would send it."""
    return {
        "learner_id": learner_id,
        "lesson_id": "lesson-1",
        "attempt_id": "attempt-1",
        "kind": "quiz",
        "score": 75,
        "time_spent_seconds": 120,
        "occurred_at": now.isoformat(),
    }


@pytest.fixture
def update(learner_id: str, now: datetime) -> Callable[..., ProgressUpdateRequest]:
    """Build a validated update; ``score`` must fit ``kind`` as the request model demands."""

    def build(
        attempt_id: str,
        kind: ProgressEventKind,
        score: int | None = None,
        *,
        lesson_id: str = "lesson-1",
        occurred_at: datetime = NOW,
        topic: str | None = None,
        time_spent_seconds: int = 0,
    ) -> ProgressUpdateRequest:
        return ProgressUpdateRequest.model_validate(
            {
                "learner_id": learner_id,
                "lesson_id": lesson_id,
                "attempt_id": attempt_id,
                "kind": kind,
                "score": score,
                "time_spent_seconds": time_spent_seconds,
                "occurred_at": occurred_at,
                "topic": topic,
            },
            context={"now": now},
        )

    return build


@pytest.fixture
def lesson_generated(learner_id: str) -> Callable[..., LessonGeneratedV1]:
    def build(
        lesson_id: str = "lesson-1",
        topic: str = "loops",
        *,
        level: Level = Level.BEGINNER,
        created_at: datetime = datetime(2025, 5, 1, 9, 0, tzinfo=UTC),
    ) -> LessonGeneratedV1:
        return LessonGeneratedV1(
            lesson_id=lesson_id,
            learner_id=learner_id,
            topic=topic,
            level=level,
            title=f"All about {topic}",
            objectives=(LessonObjective(id="o1", text=f"Use {topic}"),),
            personalized=False,
            prompt_id="lesson",
            prompt_version="1",
            model="gpt-4o-mini",
            created_at=created_at,
        )

    return build
