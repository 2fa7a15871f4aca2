"""The derivations kept in the learner's state (topic mastery and totals) equal the same rules
applied from scratch to its lessons, after every step of arbitrary histories: updates and events
in any order, scores out of order or at the same instant, provisional topics replaced by the
event's, duplicates, a JSON round trip, and a document stored before totals were kept."""

import random
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from learnflow_contracts.events import LessonGeneratedV1, ProgressEventKind
from user_progress.domain import (
    LearnerProgress,
    ProgressUpdateRequest,
    TopicMastery,
    apply_lesson_generated,
    apply_update,
    learner_status,
)
from user_progress.domain.mastery import ewma_mastery
from user_progress.domain.state import ProgressTotals, ScoreEntry, TrackedScore
from user_progress.domain.totals import RECENT_SCORES_LIMIT, progress_totals

UpdateBuilder = Callable[..., ProgressUpdateRequest]
EventBuilder = Callable[..., LessonGeneratedV1]

T0 = datetime(2025, 5, 9, 8, 0, tzinfo=UTC)
LESSONS = [f"lesson-{n}" for n in range(6)]
TOPICS = ["loops", "recursion", "sorting"]
KINDS: list[ProgressEventKind] = ["started", "exercise", "quiz", "completed"]


def mastery_from_scratch(state: LearnerProgress) -> dict[str, TopicMastery]:
    by_topic: dict[str, list[ScoreEntry]] = defaultdict(list)
    for lesson in state.lessons.values():
        if lesson.topic is not None:
            by_topic[lesson.topic].extend(lesson.scores)
    mastery = {}
    for topic, entries in by_topic.items():
        oldest_first = sorted(entries, key=lambda entry: (entry.at, entry.sequence))
        if oldest_first:
            mastery[topic] = TopicMastery(
                mastery=ewma_mastery([entry.score for entry in oldest_first]),
                score_count=len(oldest_first),
                last_score_at=oldest_first[-1].at,
            )
    return mastery


def totals_from_scratch(state: LearnerProgress) -> ProgressTotals:
    lessons = state.lessons
    scores = [entry.score for lesson in lessons.values() for entry in lesson.scores]
    newest = sorted(
        (
            (entry.at, entry.sequence, lesson_id, lesson.topic, entry.score)
            for lesson_id, lesson in lessons.items()
            if lesson.topic is not None
            for entry in lesson.scores
        ),
        reverse=True,
    )[:RECENT_SCORES_LIMIT]
    return ProgressTotals(
        lessons_started=sum(lesson.started_at is not None for lesson in lessons.values()),
        lessons_completed=sum(lesson.completed_at is not None for lesson in lessons.values()),
        total_time_seconds=sum(lesson.time_spent_seconds for lesson in lessons.values()),
        score_count=len(scores),
        score_sum=sum(scores),
        recent_scores=tuple(
            TrackedScore(lesson_id=lesson_id, topic=topic, score=score, at=at, sequence=sequence)
            for at, sequence, lesson_id, topic, score in newest
        ),
    )


def random_step(
    rng: random.Random, update: UpdateBuilder, lesson_generated: EventBuilder
) -> ProgressUpdateRequest | LessonGeneratedV1:
    lesson_id = rng.choice(LESSONS)
    if rng.random() < 0.2:
        return lesson_generated(lesson_id, rng.choice(TOPICS))
    kind = rng.choice(KINDS)
    scored = kind in ("exercise", "quiz") or (kind == "completed" and rng.random() < 0.5)
    return update(
        f"attempt-{rng.randrange(60)}",  # repeats are redeliveries
        kind,
        rng.randrange(101) if scored else None,
        lesson_id=lesson_id,
        # Few distinct instants: many scores share one, many arrive older than the last.
        occurred_at=T0 + timedelta(minutes=rng.randrange(12)),
        topic=rng.choice([None, *TOPICS]),
        time_spent_seconds=rng.randrange(300),
    )


def applied(
    state: LearnerProgress, step: ProgressUpdateRequest | LessonGeneratedV1
) -> LearnerProgress:
    if isinstance(step, LessonGeneratedV1):
        return apply_lesson_generated(state, step).state
    return apply_update(state, step).state


@pytest.mark.parametrize("seed", range(40))
def test_kept_derivations_match_a_derivation_from_scratch(
    seed: int,
    fresh_state: LearnerProgress,
    update: UpdateBuilder,
    lesson_generated: EventBuilder,
) -> None:
    rng = random.Random(seed)
    state = fresh_state
    for step_number in range(120):
        state = applied(state, random_step(rng, update, lesson_generated))
        if step_number % 37 == 36:  # the actor reads its state back from the store
            state = LearnerProgress.model_validate_json(state.model_dump_json())

        assert state.topic_mastery == mastery_from_scratch(state)
        assert state.totals == totals_from_scratch(state)
        assert progress_totals(state.lessons) == state.totals
    # A history long enough to push scores out of the newest kept, and to meet every case.
    assert state.totals is not None
    assert state.totals.score_count > RECENT_SCORES_LIMIT


def test_a_document_stored_before_totals_were_kept_gets_them_at_its_next_change(
    fresh_state: LearnerProgress,
    update: UpdateBuilder,
    lesson_generated: EventBuilder,
    now: datetime,
) -> None:
    rng = random.Random(7)
    state = fresh_state
    for _ in range(80):
        state = applied(state, random_step(rng, update, lesson_generated))
    legacy = state.model_copy(update={"totals": None})

    assert learner_status(legacy, now) == learner_status(state, now)

    next_update = update("attempt-new", "quiz", 55, lesson_id="lesson-new", topic="loops")
    changed = apply_update(legacy, next_update).state
    assert changed.totals == totals_from_scratch(changed)
    assert changed.totals == apply_update(state, next_update).state.totals
