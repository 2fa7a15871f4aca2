"""Applying updates and lesson-generated events: idempotency, ordering, reconciliation."""

import itertools
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from learnflow_contracts.events import LessonGeneratedV1
from learnflow_contracts.levels import Level
from user_progress.domain import (
    LearnerMismatchError,
    LearnerProgress,
    ProgressUpdateRequest,
    apply_lesson_generated,
    apply_update,
    learner_status,
    progress_projection,
)
from user_progress.domain.mastery import ewma_mastery

UpdateBuilder = Callable[..., ProgressUpdateRequest]
EventBuilder = Callable[..., LessonGeneratedV1]

T0 = datetime(2025, 5, 10, 8, 0, tzinfo=UTC)


def _apply_all(
    state: LearnerProgress, items: list[ProgressUpdateRequest | LessonGeneratedV1]
) -> LearnerProgress:
    for item in items:
        if isinstance(item, LessonGeneratedV1):
            state = apply_lesson_generated(state, item).state
        else:
            state = apply_update(state, item).state
    return state


def test_first_update_creates_an_unassigned_lesson(
    fresh_state: LearnerProgress, update: UpdateBuilder
) -> None:
    result = apply_update(
        fresh_state, update("a1", "exercise", 70, occurred_at=T0, time_spent_seconds=30)
    )

    assert result.applied
    lesson = result.state.lessons["lesson-1"]
    assert (lesson.assigned_at, lesson.topic, lesson.level, lesson.title) == (
        None,
        None,
        None,
        None,
    )
    assert (lesson.started_at, lesson.last_activity_at, lesson.completed_at) == (T0, T0, None)
    assert [entry.score for entry in lesson.scores] == [70]
    assert lesson.time_spent_seconds == 30
    assert result.state.version == 1
    assert result.state.applied_attempt_ids == {"a1"}
    assert result.state.active_days == {date(2025, 5, 10)}


def test_apply_does_not_mutate_its_input(
    fresh_state: LearnerProgress, update: UpdateBuilder, lesson_generated: EventBuilder
) -> None:
    before = fresh_state.model_dump_json()
    apply_update(fresh_state, update("a1", "quiz", 90, topic="loops"))
    apply_lesson_generated(fresh_state, lesson_generated())
    assert fresh_state.model_dump_json() == before
    # A state with history, changed again in the same lesson: the earlier version stays as it
    # was (the next one shares what it does not change).
    earlier = apply_update(fresh_state, update("a1", "quiz", 90, topic="loops")).state
    snapshot = earlier.model_dump_json()
    later = apply_update(earlier, update("a2", "quiz", 40)).state
    apply_lesson_generated(later, lesson_generated())
    assert earlier.model_dump_json() == snapshot
    assert later.model_dump_json() != snapshot


def test_same_attempt_twice_is_applied_once(
    fresh_state: LearnerProgress, update: UpdateBuilder
) -> None:
    once = apply_update(fresh_state, update("a1", "quiz", 90, time_spent_seconds=60)).state

    again = apply_update(once, update("a1", "quiz", 90, time_spent_seconds=60))

    assert not again.applied
    assert again.state is once
    assert learner_status(again.state, T0).total_time_seconds == 60
    assert again.state.version == 1


def test_attempt_ids_are_unique_per_learner_not_per_lesson(
    fresh_state: LearnerProgress, update: UpdateBuilder
) -> None:
    state = apply_update(fresh_state, update("a1", "quiz", 90, lesson_id="lesson-1")).state

    result = apply_update(state, update("a1", "quiz", 10, lesson_id="lesson-2"))

    assert not result.applied
    assert set(result.state.lessons) == {"lesson-1"}


def test_same_lesson_event_twice_is_applied_once(
    fresh_state: LearnerProgress, lesson_generated: EventBuilder
) -> None:
    once = apply_lesson_generated(fresh_state, lesson_generated()).state

    again = apply_lesson_generated(once, lesson_generated(topic="other", level=Level.ADVANCED))

    assert not again.applied
    assert again.state is once
    assert once.lessons["lesson-1"].topic == "loops"
    assert once.version == 1


def test_completing_twice_counts_the_lesson_once_and_keeps_both_scores(
    fresh_state: LearnerProgress, update: UpdateBuilder, lesson_generated: EventBuilder
) -> None:
    state = _apply_all(
        fresh_state,
        [
            lesson_generated(),
            update("done-1", "completed", 60, occurred_at=T0),
            update("done-2", "completed", 100, occurred_at=T0 + timedelta(hours=1)),
        ],
    )

    status = learner_status(state, T0)
    assert status.lessons_completed == 1
    assert status.completion_rate == 1.0
    assert state.lessons["lesson-1"].completed_at == T0
    assert state.topic_mastery["loops"].score_count == 2
    assert status.average_score == 80.0


def test_late_earlier_completion_moves_completed_at_back(
    fresh_state: LearnerProgress, update: UpdateBuilder
) -> None:
    state = _apply_all(
        fresh_state,
        [
            update("done-late", "completed", occurred_at=T0 + timedelta(hours=2)),
            update("done-early", "completed", occurred_at=T0),
        ],
    )
    assert state.lessons["lesson-1"].completed_at == T0
    assert learner_status(state, T0).lessons_completed == 1


class TestUpdateBeforeEvent:
    """Progress may overtake the lesson-generated event on Kafka."""

    def test_score_without_topic_waits_for_the_event(
        self, fresh_state: LearnerProgress, update: UpdateBuilder
    ) -> None:
        state = apply_update(fresh_state, update("a1", "exercise", 40, occurred_at=T0)).state

        assert state.topic_mastery == {}
        projection = progress_projection(state)
        assert projection.recent_scores == ()
        assert projection.average_score == 40.0

    def test_event_fills_in_the_assignment_and_keeps_progress(
        self,
        fresh_state: LearnerProgress,
        update: UpdateBuilder,
        lesson_generated: EventBuilder,
    ) -> None:
        state = _apply_all(
            fresh_state,
            [
                update("s", "started", occurred_at=T0, time_spent_seconds=5),
                update("a1", "exercise", 40, occurred_at=T0 + timedelta(minutes=1)),
            ],
        )
        event = lesson_generated(level=Level.INTERMEDIATE)

        result = apply_lesson_generated(state, event)

        assert result.applied
        lesson = result.state.lessons["lesson-1"]
        assert lesson.assigned_at == event.created_at
        assert (lesson.topic, lesson.level, lesson.title) == (
            "loops",
            Level.INTERMEDIATE,
            "All about loops",
        )
        assert lesson.started_at == T0
        assert lesson.time_spent_seconds == 5
        assert [entry.score for entry in lesson.scores] == [40]
        assert result.state.version == 3

    def test_mastery_of_early_scores_is_applied_exactly_once(
        self,
        fresh_state: LearnerProgress,
        update: UpdateBuilder,
        lesson_generated: EventBuilder,
    ) -> None:
        state = apply_update(fresh_state, update("a1", "exercise", 40, occurred_at=T0)).state

        state = apply_lesson_generated(state, lesson_generated()).state
        assert state.topic_mastery["loops"].score_count == 1
        assert state.topic_mastery["loops"].mastery == pytest.approx(0.4)

        state = apply_lesson_generated(state, lesson_generated()).state
        state = apply_update(state, update("a1", "exercise", 40, occurred_at=T0)).state
        assert state.topic_mastery["loops"].score_count == 1

        later = T0 + timedelta(minutes=5)
        state = apply_update(state, update("a2", "quiz", 100, occurred_at=later)).state
        assert state.topic_mastery["loops"].score_count == 2
        assert state.topic_mastery["loops"].mastery == pytest.approx(0.4 * 1.0 + 0.6 * 0.4)
        assert [score.score for score in progress_projection(state).recent_scores] == [100, 40]

    def test_same_provisional_topic_is_not_counted_twice(
        self,
        fresh_state: LearnerProgress,
        update: UpdateBuilder,
        lesson_generated: EventBuilder,
    ) -> None:
        state = apply_update(fresh_state, update("a1", "quiz", 50, topic="loops")).state
        assert state.topic_mastery["loops"].score_count == 1

        state = apply_lesson_generated(state, lesson_generated(topic="loops")).state

        assert state.topic_mastery["loops"].score_count == 1
        assert state.topic_mastery["loops"].mastery == pytest.approx(0.5)

    def test_event_topic_replaces_a_provisional_topic(
        self,
        fresh_state: LearnerProgress,
        update: UpdateBuilder,
        lesson_generated: EventBuilder,
    ) -> None:
        state = apply_update(fresh_state, update("a1", "quiz", 50, topic="Loops draft")).state

        state = apply_lesson_generated(state, lesson_generated(topic="loops")).state

        assert set(state.topic_mastery) == {"loops"}
        assert state.topic_mastery["loops"].score_count == 1
        assert state.lessons["lesson-1"].topic == "loops"

    def test_first_provisional_topic_wins_until_the_event(
        self, fresh_state: LearnerProgress, update: UpdateBuilder
    ) -> None:
        state = _apply_all(
            fresh_state,
            [
                update("a1", "quiz", 50, topic="loops"),
                update("a2", "quiz", 70, topic="recursion"),
            ],
        )
        assert state.lessons["lesson-1"].topic == "loops"
        assert set(state.topic_mastery) == {"loops"}

    def test_later_update_topic_makes_earlier_scores_count(
        self, fresh_state: LearnerProgress, update: UpdateBuilder
    ) -> None:
        state = _apply_all(
            fresh_state,
            [
                update("a1", "quiz", 50, occurred_at=T0),
                update("s", "started", occurred_at=T0 + timedelta(minutes=1), topic="loops"),
            ],
        )
        assert state.topic_mastery["loops"].score_count == 1
        assert state.topic_mastery["loops"].mastery == pytest.approx(0.5)


def test_event_before_progress_applies_mastery_immediately(
    fresh_state: LearnerProgress, update: UpdateBuilder, lesson_generated: EventBuilder
) -> None:
    state = _apply_all(fresh_state, [lesson_generated(), update("a1", "quiz", 90, topic="ignored")])
    assert set(state.topic_mastery) == {"loops"}
    assert state.topic_mastery["loops"].mastery == pytest.approx(0.9)


def test_arrival_order_does_not_change_the_outcome(
    fresh_state: LearnerProgress,
    update: UpdateBuilder,
    lesson_generated: EventBuilder,
    now: datetime,
) -> None:
    items: list[ProgressUpdateRequest | LessonGeneratedV1] = [
        lesson_generated(),
        update("a1", "exercise", 50, occurred_at=T0),
        update("a2", "quiz", 100, occurred_at=T0 + timedelta(minutes=1)),
        update("a3", "completed", 80, occurred_at=T0 + timedelta(minutes=2)),
    ]
    expected_mastery = ewma_mastery([50, 100, 80])

    outcomes = set()
    for order in itertools.permutations(items):
        state = _apply_all(fresh_state, list(order))
        assert state.topic_mastery["loops"].mastery == pytest.approx(expected_mastery)
        outcomes.add(learner_status(state, now).model_dump_json())
    assert len(outcomes) == 1


def test_out_of_order_update_does_not_rewind_last_activity(
    fresh_state: LearnerProgress, update: UpdateBuilder
) -> None:
    newer = T0 + timedelta(hours=1)
    state = _apply_all(
        fresh_state,
        [
            update("a2", "completed", occurred_at=newer, lesson_id="lesson-2"),
            update("a1", "started", occurred_at=T0, lesson_id="lesson-1"),
        ],
    )

    assert state.last_activity is not None
    assert (state.last_activity.kind, state.last_activity.lesson_id, state.last_activity.at) == (
        "completed",
        "lesson-2",
        newer,
    )
    assert state.lessons["lesson-2"].last_activity_at == newer


def test_same_instant_keeps_the_later_applied_update(
    fresh_state: LearnerProgress, update: UpdateBuilder
) -> None:
    state = _apply_all(
        fresh_state,
        [update("a1", "quiz", 60, occurred_at=T0), update("a2", "completed", occurred_at=T0)],
    )
    assert state.last_activity is not None
    assert state.last_activity.kind == "completed"


def test_activity_day_is_the_utc_day(fresh_state: LearnerProgress, update: UpdateBuilder) -> None:
    evening_in_brazil = datetime(2025, 5, 9, 21, 30, tzinfo=timezone(timedelta(hours=-3)))
    state = apply_update(fresh_state, update("a1", "started", occurred_at=evening_in_brazil)).state
    assert state.active_days == {date(2025, 5, 10)}


def test_two_hundred_sequential_updates_give_exact_counts(
    fresh_state: LearnerProgress,
    update: UpdateBuilder,
    lesson_generated: EventBuilder,
    now: datetime,
) -> None:
    lessons = 50
    updates: list[ProgressUpdateRequest] = []
    for n in range(lessons):
        lesson_id = f"lesson-{n}"
        at = T0 - timedelta(days=n)
        updates += [
            update(f"{n}-start", "started", lesson_id=lesson_id, occurred_at=at),
            update(
                f"{n}-ex", "exercise", n, lesson_id=lesson_id, occurred_at=at, time_spent_seconds=10
            ),
            update(
                f"{n}-quiz",
                "quiz",
                100 - n,
                lesson_id=lesson_id,
                occurred_at=at,
                time_spent_seconds=20,
            ),
            update(f"{n}-done", "completed", lesson_id=lesson_id, occurred_at=at),
        ]
    events = [lesson_generated(f"lesson-{n}", topic=f"topic-{n % 5}") for n in range(lessons)]
    assert len(updates) == 200

    state = fresh_state
    for item in updates:
        result = apply_update(state, item)
        assert result.applied
        state = result.state
    state = _apply_all(state, list(events))

    status = learner_status(state, now)
    assert (status.lessons_assigned, status.lessons_started, status.lessons_completed) == (
        50,
        50,
        50,
    )
    assert status.completion_rate == 1.0
    assert status.total_time_seconds == 50 * 30
    assert status.average_score == 50.0  # each lesson scores n and 100 - n
    assert status.streak_days == 50
    assert sum(topic.score_count for topic in status.topics) == 100
    assert state.version == 250
    assert len(state.applied_attempt_ids) == 200

    replayed = _apply_all(state, [*updates, *events])
    assert replayed is state


def test_update_for_another_learner_is_refused(
    fresh_state: LearnerProgress, valid_payload: dict[str, object], now: datetime
) -> None:
    valid_payload["learner_id"] = "someone-else"
    foreign = ProgressUpdateRequest.model_validate(valid_payload, context={"now": now})
    with pytest.raises(LearnerMismatchError, match="someone-else"):
        apply_update(fresh_state, foreign)


def test_event_for_another_learner_is_refused(
    fresh_state: LearnerProgress, lesson_generated: EventBuilder
) -> None:
    foreign = lesson_generated().model_copy(update={"learner_id": "someone-else"})
    with pytest.raises(LearnerMismatchError, match="someone-else"):
        apply_lesson_generated(fresh_state, foreign)


def test_state_survives_a_json_round_trip_byte_for_byte(
    fresh_state: LearnerProgress, update: UpdateBuilder, lesson_generated: EventBuilder
) -> None:
    state = _apply_all(
        fresh_state,
        [
            update("z-attempt", "quiz", 90, occurred_at=T0),
            update(
                "a-attempt", "started", lesson_id="lesson-2", occurred_at=T0 - timedelta(days=3)
            ),
            lesson_generated(),
        ],
    )

    stored = state.model_dump_json()
    loaded = LearnerProgress.model_validate_json(stored)

    assert loaded == state
    assert loaded.model_dump_json() == stored
    assert stored.index('"a-attempt"') < stored.index('"z-attempt"')
    assert stored.index('"2025-05-07"') < stored.index('"2025-05-10"')
