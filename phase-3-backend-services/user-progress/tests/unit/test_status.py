"""Status and projection: counts, rates, ordering, streaks, suggested level, empty learner."""

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from learnflow_contracts.events import LessonGeneratedV1
from learnflow_contracts.levels import Level
from learnflow_contracts.progress import ProgressProjectionV1, RecentScore
from user_progress.domain import (
    LearnerProgress,
    LearnerStatus,
    ProgressUpdateRequest,
    apply_lesson_generated,
    apply_update,
    empty_progress,
    learner_status,
    progress_projection,
    progress_updated_event,
    suggest_level,
)
from user_progress.domain.mastery import TopicStanding
from user_progress.domain.status import streak_days

UpdateBuilder = Callable[..., ProgressUpdateRequest]
EventBuilder = Callable[..., LessonGeneratedV1]

TODAY = date(2025, 5, 10)


def _with_updates(state: LearnerProgress, *updates: ProgressUpdateRequest) -> LearnerProgress:
    for item in updates:
        state = apply_update(state, item).state
    return state


def _with_events(state: LearnerProgress, *events: LessonGeneratedV1) -> LearnerProgress:
    for event in events:
        state = apply_lesson_generated(state, event).state
    return state


def _day(offset: int, hour: int = 9) -> datetime:
    return datetime(2025, 5, 10, hour, tzinfo=UTC) - timedelta(days=offset)


def test_empty_learner_has_a_well_defined_status(learner_id: str, now: datetime) -> None:
    status = learner_status(empty_progress(learner_id), now)

    assert status == LearnerStatus(
        learner_id=learner_id,
        lessons_assigned=0,
        lessons_started=0,
        lessons_completed=0,
        completion_rate=0.0,
        average_score=None,
        topics=[],
        weak_topics=[],
        strengths=[],
        streak_days=0,
        total_time_seconds=0,
        last_activity_at=None,
        most_recent_activity=None,
        projection=ProgressProjectionV1(
            learner_id=learner_id,
            has_history=False,
            suggested_level=None,
            weak_topics=(),
            strong_topics=(),
            recent_scores=(),
            lessons_completed=0,
            average_score=None,
        ),
    )


def test_assigned_lessons_alone_are_no_history(
    fresh_state: LearnerProgress, lesson_generated: EventBuilder, now: datetime
) -> None:
    state = _with_events(fresh_state, lesson_generated("l1"), lesson_generated("l2"))

    status = learner_status(state, now)

    assert (status.lessons_assigned, status.lessons_started, status.completion_rate) == (2, 0, 0.0)
    assert not status.projection.has_history


def test_status_math_for_a_mixed_history(
    fresh_state: LearnerProgress,
    update: UpdateBuilder,
    lesson_generated: EventBuilder,
    now: datetime,
) -> None:
    state = _with_events(
        fresh_state,
        lesson_generated("l1", "loops"),
        lesson_generated("l2", "loops"),
        lesson_generated("l3", "recursion"),
    )
    state = _with_updates(
        state,
        update("1", "started", lesson_id="l1", occurred_at=_day(1), time_spent_seconds=10),
        update("2", "quiz", 80, lesson_id="l1", occurred_at=_day(1, 10), time_spent_seconds=100),
        update("3", "completed", 90, lesson_id="l1", occurred_at=_day(1, 11)),
        update("4", "exercise", 30, lesson_id="l3", occurred_at=_day(0), time_spent_seconds=50),
        update("5", "completed", lesson_id="l4", occurred_at=_day(0, 8)),  # no event yet
        update("6", "quiz", 45, lesson_id="l4", occurred_at=_day(0, 7)),  # topic unknown
    )

    status = learner_status(state, now)

    assert (status.lessons_assigned, status.lessons_started, status.lessons_completed) == (4, 3, 2)
    assert status.completion_rate == 0.5
    assert status.average_score == 61.25  # (80 + 90 + 30 + 45) / 4
    assert status.total_time_seconds == 160
    assert [(t.topic, t.mastery, t.score_count, t.standing) for t in status.topics] == [
        ("loops", 0.84, 2, TopicStanding.STRONG),  # 0.4*0.9 + 0.6*0.8
        ("recursion", 0.3, 1, TopicStanding.WEAK),
    ]
    assert status.weak_topics == ["recursion"]
    assert status.strengths == ["loops"]
    assert status.streak_days == 2
    assert status.last_activity_at == _day(0, 9)
    assert status.most_recent_activity is not None
    assert status.most_recent_activity.kind == "exercise"
    assert status.most_recent_activity.lesson_id == "l3"
    assert status.projection == progress_projection(state)
    assert [(s.topic, s.score) for s in status.projection.recent_scores] == [
        ("recursion", 30),
        ("loops", 90),
        ("loops", 80),
    ]
    assert status.projection.suggested_level is Level.BEGINNER  # 61.25 < 70


def test_completion_rate_is_rounded(
    fresh_state: LearnerProgress,
    update: UpdateBuilder,
    lesson_generated: EventBuilder,
    now: datetime,
) -> None:
    state = _with_events(fresh_state, *(lesson_generated(f"l{n}") for n in range(3)))
    state = _with_updates(state, update("done", "completed", lesson_id="l0"))
    assert learner_status(state, now).completion_rate == 0.3333


@pytest.mark.parametrize(
    ("active_offsets", "expected"),
    [
        pytest.param(set(), 0, id="never-active"),
        pytest.param({0}, 1, id="today-only"),
        pytest.param({0, 1, 2}, 3, id="ending-today"),
        pytest.param({1, 2}, 2, id="ending-yesterday"),
        pytest.param({2, 3}, 0, id="broken-two-days-ago"),
        pytest.param({0, 2, 3}, 1, id="gap-yesterday"),
        pytest.param({1, 2, 3, 5, 6}, 3, id="older-run-ignored"),
        pytest.param({-1, 0}, 1, id="future-day-ignored"),
        pytest.param({-1}, 0, id="only-future"),
    ],
)
def test_streak_days(active_offsets: set[int], expected: int) -> None:
    days = {TODAY - timedelta(days=offset) for offset in active_offsets}
    assert streak_days(days, today=TODAY) == expected


def test_streak_across_days_from_updates_and_month_boundary(
    fresh_state: LearnerProgress, update: UpdateBuilder
) -> None:
    times = [datetime(2025, 4, 29, 23, 59, tzinfo=UTC) + timedelta(days=n) for n in range(3)]
    state = _with_updates(
        fresh_state, *(update(f"a{n}", "started", occurred_at=at) for n, at in enumerate(times))
    )  # active on 29 Apr, 30 Apr, 1 May

    def streak_at(moment: datetime) -> int:
        return learner_status(state, moment).streak_days

    assert streak_at(datetime(2025, 5, 1, 12, tzinfo=UTC)) == 3
    assert streak_at(datetime(2025, 5, 2, 23, 59, tzinfo=UTC)) == 3  # yesterday still counts
    assert streak_at(datetime(2025, 5, 3, 0, 0, tzinfo=UTC)) == 0
    # 00:30 on 3 May in UTC+2 is still 2 May in UTC: the streak holds.
    assert streak_at(datetime(2025, 5, 3, 0, 30, tzinfo=timezone(timedelta(hours=2)))) == 3


def test_status_needs_an_aware_clock(fresh_state: LearnerProgress) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        learner_status(fresh_state, datetime(2025, 5, 10, 12))


@pytest.mark.parametrize(
    ("average", "completed", "level"),
    [
        (None, 0, None),
        (None, 9, None),
        (100.0, 0, Level.BEGINNER),
        (69.99, 10, Level.BEGINNER),
        (70.0, 1, Level.BEGINNER),
        (70.0, 2, Level.INTERMEDIATE),
        (84.99, 10, Level.INTERMEDIATE),
        (85.0, 4, Level.INTERMEDIATE),
        (85.0, 5, Level.ADVANCED),
        (100.0, 50, Level.ADVANCED),
    ],
)
def test_suggested_level_rule(average: float | None, completed: int, level: Level | None) -> None:
    assert suggest_level(average, completed) is level


def test_suggested_level_from_history(
    fresh_state: LearnerProgress,
    update: UpdateBuilder,
    lesson_generated: EventBuilder,
) -> None:
    state = fresh_state
    for n in range(5):
        state = _with_events(state, lesson_generated(f"l{n}"))
        state = _with_updates(state, update(f"done-{n}", "completed", 90, lesson_id=f"l{n}"))
    assert progress_projection(state).suggested_level is Level.ADVANCED


def test_recent_scores_are_the_newest_twenty_with_a_known_topic(
    fresh_state: LearnerProgress, update: UpdateBuilder, lesson_generated: EventBuilder
) -> None:
    state = _with_events(fresh_state, lesson_generated("known", "loops"))
    state = _with_updates(
        state,
        *(
            update(f"a{n}", "exercise", n, lesson_id="known", occurred_at=_day(0) - timedelta(n))
            for n in range(25)
        ),
        update("mystery", "quiz", 99, lesson_id="unknown", occurred_at=_day(0, 11)),
    )

    recent = progress_projection(state).recent_scores

    assert recent == tuple(
        RecentScore(topic="loops", score=n, at=_day(0) - timedelta(n)) for n in range(20)
    )


def test_topics_are_ranked_weakest_and_strongest_first(
    fresh_state: LearnerProgress,
    update: UpdateBuilder,
    lesson_generated: EventBuilder,
    now: datetime,
) -> None:
    scores_by_topic = {
        "b-weak": [50],
        "a-weak": [50],
        "weakest": [10],
        "neutral": [70],
        "strong": [80, 80],
        "strongest": [100, 100],
    }
    state = fresh_state
    for topic, scores in scores_by_topic.items():
        state = _with_events(state, lesson_generated(topic, topic))
        state = _with_updates(
            state,
            *(update(f"{topic}-{n}", "quiz", s, lesson_id=topic) for n, s in enumerate(scores)),
        )

    status = learner_status(state, now)

    assert status.weak_topics == ["weakest", "a-weak", "b-weak"]
    assert status.strengths == ["strongest", "strong"]
    assert status.projection.weak_topics == ("weakest", "a-weak", "b-weak")
    assert status.projection.strong_topics == ("strongest", "strong")


def test_projection_lists_are_capped_at_the_contract_limit(
    fresh_state: LearnerProgress,
    update: UpdateBuilder,
    lesson_generated: EventBuilder,
    now: datetime,
) -> None:
    state = fresh_state
    for n in range(25):
        topic = f"topic-{n:02d}"
        state = _with_events(state, lesson_generated(topic, topic))
        state = _with_updates(state, update(f"a{n}", "quiz", 30 + n, lesson_id=topic))

    status = learner_status(state, now)

    assert len(status.weak_topics) == 25
    assert status.projection.weak_topics == tuple(f"topic-{n:02d}" for n in range(20))


def test_status_is_json_serialisable(
    fresh_state: LearnerProgress, update: UpdateBuilder, now: datetime
) -> None:
    state = _with_updates(fresh_state, update("a1", "quiz", 55, topic="loops"))
    dumped = learner_status(state, now).model_dump(mode="json")
    assert dumped["projection"]["weak_topics"] == ["loops"]
    assert dumped["topics"][0]["standing"] == "weak"
    assert dumped["last_activity_at"] == "2025-05-10T12:00:00Z"


def test_progress_updated_event_carries_the_new_projection(
    fresh_state: LearnerProgress, update: UpdateBuilder, now: datetime
) -> None:
    request = update("a1", "quiz", 55, topic="loops")
    state = apply_update(fresh_state, request).state

    event = progress_updated_event(request, learner_status(state, now).projection)

    assert (event.learner_id, event.lesson_id, event.attempt_id) == (
        "learner-1",
        "lesson-1",
        "a1",
    )
    assert (event.kind, event.score, event.occurred_at) == ("quiz", 55, request.occurred_at)
    assert event.projection == progress_projection(state)
    assert event.projection.has_history
