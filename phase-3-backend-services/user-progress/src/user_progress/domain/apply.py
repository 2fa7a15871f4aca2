"""Applying progress updates and ``lesson-generated`` events to a learner's state.

Both functions are pure: they never mutate the state they are given and return
``ApplyResult(state, applied)``. A duplicate (attempt id or lesson event seen before) returns
the very same state with ``applied=False``, so redeliveries and client retries are harmless.

Updates and events may arrive in any order:

* progress for a lesson whose event has not arrived creates the lesson with
  ``assigned_at=None``; its topic is ``update.topic`` if one was given (the first one given
  wins), else unknown;
* when the event arrives it fills in topic, level, title and ``assigned_at`` and keeps the
  progress; the event's topic replaces any provisional one;
* a score counts in its topic's mastery exactly once, in ``occurred_at`` order: a score newer
  than its topic's last one folds into the topic's mastery; an older one, or a lesson's topic
  becoming (or changing to) known, recomputes the affected topics from their scores;
* a lesson is completed once (the earliest completion), however many attempts complete it;
  every distinct attempt's score is still a score;
* ``last_activity`` only moves forward in ``occurred_at``; a late, older update cannot
  replace it.
"""

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import NamedTuple

from learnflow_contracts.events import LessonGeneratedV1

from user_progress.domain.mastery import TopicMastery, ewma_mastery, ewma_step
from user_progress.domain.state import (
    KnownLesson,
    LastActivity,
    LearnerProgress,
    ScoreEntry,
)
from user_progress.domain.totals import totals_of, with_lesson_changed
from user_progress.domain.update_request import ProgressUpdateRequest


class ApplyResult(NamedTuple):
    state: LearnerProgress
    applied: bool


class LearnerMismatchError(ValueError):
    """An update or event was routed to another learner's state (a wiring bug)."""


def apply_update(state: LearnerProgress, update: ProgressUpdateRequest) -> ApplyResult:
    _require_same_learner(state, update.learner_id)
    if update.attempt_id in state.applied_attempt_ids:
        return ApplyResult(state, applied=False)

    new_state, lesson = _copy_for_change(state, update.lesson_id)
    new_state.applied_attempt_ids.add(update.attempt_id)
    topic_was_known = lesson.topic is not None
    if not topic_was_known and update.topic is not None:
        lesson.topic = update.topic

    _add_progress(lesson, update, sequence=new_state.version)
    new_state.active_days.add(update.occurred_at.astimezone(UTC).date())
    _advance_last_activity(new_state, update)
    if lesson.topic is not None and not topic_was_known:
        _refresh_mastery(new_state, [lesson.topic])  # its earlier scores join the topic too
    elif lesson.topic is not None and update.score is not None:
        _add_to_mastery(new_state, lesson.topic, lesson.scores[-1])
    _count_change(new_state, state, update.lesson_id)
    return ApplyResult(new_state, applied=True)


def apply_lesson_generated(state: LearnerProgress, event: LessonGeneratedV1) -> ApplyResult:
    _require_same_learner(state, event.learner_id)
    existing = state.lessons.get(event.lesson_id)
    if existing is not None and existing.is_assigned:
        return ApplyResult(state, applied=False)

    new_state, lesson = _copy_for_change(state, event.lesson_id)
    provisional_topic = lesson.topic
    lesson.topic = event.topic
    lesson.level = event.level
    lesson.title = event.title
    lesson.assigned_at = event.created_at
    if lesson.scores and provisional_topic != event.topic:
        affected = [event.topic] if provisional_topic is None else [provisional_topic, event.topic]
        _refresh_mastery(new_state, affected)
    _count_change(new_state, state, event.lesson_id)
    return ApplyResult(new_state, applied=True)


def _copy_for_change(state: LearnerProgress, lesson_id: str) -> tuple[LearnerProgress, KnownLesson]:
    """The next version of ``state``, and its copy of the lesson about to change.

    Copy-on-write: the containers an update changes are new, the one lesson it changes is a copy,
    and everything else (other lessons, score entries, mastery entries: never mutated in place)
    is shared with ``state``, which stays as it was. A deep copy of the whole history cost a
    sixth of User Progress's CPU under load (profiled with py-spy), growing with the history.
    """
    lessons = dict(state.lessons)
    current = lessons.get(lesson_id)
    lesson = (
        KnownLesson()
        if current is None
        else current.model_copy(update={"scores": list(current.scores)})
    )
    lessons[lesson_id] = lesson
    new_state = state.model_copy(
        update={
            "version": state.version + 1,
            "lessons": lessons,
            "applied_attempt_ids": set(state.applied_attempt_ids),
            "topic_mastery": dict(state.topic_mastery),
            "active_days": set(state.active_days),
        }
    )
    return new_state, lesson


def _require_same_learner(state: LearnerProgress, learner_id: str) -> None:
    if learner_id != state.learner_id:
        raise LearnerMismatchError(
            f"progress of learner {learner_id!r} cannot be applied to {state.learner_id!r}"
        )


def _add_progress(lesson: KnownLesson, update: ProgressUpdateRequest, sequence: int) -> None:
    at = update.occurred_at
    lesson.started_at = _earliest(lesson.started_at, at)
    lesson.last_activity_at = _latest(lesson.last_activity_at, at)
    lesson.time_spent_seconds += update.time_spent_seconds
    if update.kind == "completed":
        lesson.completed_at = _earliest(lesson.completed_at, at)
    if update.score is not None:
        lesson.scores.append(ScoreEntry(score=update.score, at=at, sequence=sequence))


def _advance_last_activity(state: LearnerProgress, update: ProgressUpdateRequest) -> None:
    # ">=": of two updates stamped with the same instant, the later-applied one is newer.
    if state.last_activity is None or update.occurred_at >= state.last_activity.at:
        state.last_activity = LastActivity(
            kind=update.kind, lesson_id=update.lesson_id, at=update.occurred_at
        )


def _count_change(new_state: LearnerProgress, state: LearnerProgress, lesson_id: str) -> None:
    new_state.totals = with_lesson_changed(
        totals_of(state), lesson_id, state.lessons.get(lesson_id), new_state.lessons[lesson_id]
    )


def _add_to_mastery(state: LearnerProgress, topic: str, entry: ScoreEntry) -> None:
    current = state.topic_mastery.get(topic)
    if current is None:
        state.topic_mastery[topic] = TopicMastery(
            mastery=ewma_mastery([entry.score]), score_count=1, last_score_at=entry.at
        )
    elif entry.at >= current.last_score_at:
        # Its sequence is the newest, so it is the topic's last score even at an equal ``at``.
        state.topic_mastery[topic] = TopicMastery(
            mastery=ewma_step(current.mastery, entry.score),
            score_count=current.score_count + 1,
            last_score_at=entry.at,
        )
    else:
        _refresh_mastery(state, [topic])


def _refresh_mastery(state: LearnerProgress, topics: Iterable[str]) -> None:
    for topic in set(topics):
        entries = sorted(
            (
                entry
                for lesson in state.lessons.values()
                if lesson.topic == topic
                for entry in lesson.scores
            ),
            key=lambda entry: (entry.at, entry.sequence),
        )
        if entries:
            state.topic_mastery[topic] = TopicMastery(
                mastery=ewma_mastery([entry.score for entry in entries]),
                score_count=len(entries),
                last_score_at=entries[-1].at,
            )
        else:
            state.topic_mastery.pop(topic, None)


def _earliest(current: datetime | None, candidate: datetime) -> datetime:
    return candidate if current is None else min(current, candidate)


def _latest(current: datetime | None, candidate: datetime) -> datetime:
    return candidate if current is None else max(current, candidate)
