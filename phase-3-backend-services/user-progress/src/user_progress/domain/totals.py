"""The learner's totals (``ProgressTotals``): what the status and the projection sum over every
lesson, kept as each lesson changes rather than summed again by every update (for a learner with
1,000 lessons that sum was a fifth of an update's CPU, growing with the history).

A lesson only grows: progress adds a start, a completion, time and scores (appended, never
removed), and its topic, once known, is never unknown again. So after a lesson changes, the
totals are those before, less what the lesson counted before, plus what it counts now; and the
newest scores are the newest of those kept and all of the lesson's own, since any score that ever
fell out of the kept ones is older than every one kept.
"""

import heapq
from collections.abc import Iterable, Mapping

from user_progress.domain.state import KnownLesson, LearnerProgress, ProgressTotals, TrackedScore

RECENT_SCORES_LIMIT = 20

_NEW_LESSON = KnownLesson()


def totals_of(state: LearnerProgress) -> ProgressTotals:
    """The totals kept in ``state``, or, for a document stored before they were kept, summed
    from its lessons."""
    return state.totals if state.totals is not None else progress_totals(state.lessons)


def progress_totals(lessons: Mapping[str, KnownLesson]) -> ProgressTotals:
    """The totals of ``lessons``, summed from scratch."""
    newest = heapq.nlargest(
        RECENT_SCORES_LIMIT,
        (
            (entry.at, entry.sequence, lesson_id, topic, entry.score)
            for lesson_id, lesson in lessons.items()
            if (topic := lesson.topic) is not None
            for entry in lesson.scores
        ),
    )
    return ProgressTotals(
        lessons_started=sum(lesson.started_at is not None for lesson in lessons.values()),
        lessons_completed=sum(lesson.completed_at is not None for lesson in lessons.values()),
        total_time_seconds=sum(lesson.time_spent_seconds for lesson in lessons.values()),
        score_count=sum(len(lesson.scores) for lesson in lessons.values()),
        score_sum=sum(_score_sum(lesson) for lesson in lessons.values()),
        recent_scores=tuple(
            TrackedScore(lesson_id=lesson_id, topic=topic, score=score, at=at, sequence=sequence)
            for at, sequence, lesson_id, topic, score in newest
        ),
    )


def with_lesson_changed(
    totals: ProgressTotals, lesson_id: str, before: KnownLesson | None, after: KnownLesson
) -> ProgressTotals:
    """``totals`` after the lesson ``lesson_id`` went from ``before`` (None: it was not known)
    to ``after``."""
    was = before or _NEW_LESSON
    recent = totals.recent_scores
    if after.topic != was.topic or len(after.scores) != len(was.scores):
        others = (tracked for tracked in recent if tracked.lesson_id != lesson_id)
        recent = _newest([*others, *_tracked_scores(lesson_id, after)])
    return ProgressTotals(
        lessons_started=totals.lessons_started
        + _counted(after.started_at is not None)
        - _counted(was.started_at is not None),
        lessons_completed=totals.lessons_completed
        + _counted(after.completed_at is not None)
        - _counted(was.completed_at is not None),
        total_time_seconds=totals.total_time_seconds
        + after.time_spent_seconds
        - was.time_spent_seconds,
        score_count=totals.score_count + len(after.scores) - len(was.scores),
        score_sum=totals.score_sum + _score_sum(after) - _score_sum(was),
        recent_scores=recent,
    )


def _tracked_scores(lesson_id: str, lesson: KnownLesson) -> list[TrackedScore]:
    topic = lesson.topic
    if topic is None:  # its scores count in no topic yet
        return []
    return [
        TrackedScore(
            lesson_id=lesson_id,
            topic=topic,
            score=entry.score,
            at=entry.at,
            sequence=entry.sequence,
        )
        for entry in lesson.scores
    ]


def _newest(scores: Iterable[TrackedScore]) -> tuple[TrackedScore, ...]:
    newest_first = sorted(scores, key=lambda tracked: (tracked.at, tracked.sequence), reverse=True)
    return tuple(newest_first[:RECENT_SCORES_LIMIT])


def _score_sum(lesson: KnownLesson) -> int:
    return sum(entry.score for entry in lesson.scores)


def _counted(condition: bool) -> int:
    return 1 if condition else 0
