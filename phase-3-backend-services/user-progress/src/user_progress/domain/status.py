"""``GET /status``: the learner's progress summary.

* ``lessons_assigned``: lessons known for the learner, whether from their
  ``lesson-generated`` event or from progress that overtook it (a lesson with progress was
  necessarily assigned), so ``completion_rate`` never exceeds 1.
* ``lessons_started``: lessons with any progress; ``lessons_completed``: with a completion.
* ``completion_rate``: completed / assigned rounded to 4 decimals; 0.0 when none assigned
  (nothing to complete is reported as nothing completed, never as an error or NaN).
* ``average_score``: as in the projection (None when there is no score).
* ``topics``: every topic with a score, by name, mastery rounded to 4 decimals.
* ``weak_topics`` weakest first and ``strengths`` strongest first, not truncated.
* ``streak_days``: see ``streak_days``.
* ``total_time_seconds``: sum of ``time_spent_seconds`` of every applied update.
"""

from collections.abc import Set
from datetime import UTC, date, datetime, timedelta

from learnflow_contracts.progress import ProgressProjectionV1
from learnflow_contracts.strict import StrictModel

from user_progress.domain.mastery import TopicStanding
from user_progress.domain.projection import progress_projection, ranked_topics
from user_progress.domain.state import LastActivity, LearnerProgress
from user_progress.domain.totals import totals_of

# The projection and the status are stored beside the learner's document (``learner_document``):
# bump this when a rule of either changes, and what was stored under other rules is derived again.
DERIVED_RULES = 1
_MASTERY_DECIMALS = 4
_RATE_DECIMALS = 4


class TopicMasteryView(StrictModel):
    topic: str
    mastery: float
    score_count: int
    standing: TopicStanding
    last_score_at: datetime


class LearnerStatus(StrictModel):
    learner_id: str
    lessons_assigned: int
    lessons_started: int
    lessons_completed: int
    completion_rate: float
    average_score: float | None
    topics: list[TopicMasteryView]
    weak_topics: list[str]
    strengths: list[str]
    streak_days: int
    total_time_seconds: int
    last_activity_at: datetime | None
    most_recent_activity: LastActivity | None
    projection: ProgressProjectionV1


def learner_status(state: LearnerProgress, now: datetime) -> LearnerStatus:
    """Summarise ``state`` as of ``now`` (timezone-aware; only the streak depends on it)."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    projection = progress_projection(state)
    totals = totals_of(state)
    assigned = len(state.lessons)
    last_activity = state.last_activity
    return LearnerStatus(
        learner_id=state.learner_id,
        lessons_assigned=assigned,
        lessons_started=totals.lessons_started,
        lessons_completed=projection.lessons_completed,
        completion_rate=(
            round(projection.lessons_completed / assigned, _RATE_DECIMALS) if assigned else 0.0
        ),
        average_score=projection.average_score,
        topics=[
            TopicMasteryView(
                topic=topic,
                mastery=round(mastery.mastery, _MASTERY_DECIMALS),
                score_count=mastery.score_count,
                standing=mastery.standing,
                last_score_at=mastery.last_score_at,
            )
            for topic, mastery in sorted(state.topic_mastery.items())
        ],
        weak_topics=ranked_topics(state, TopicStanding.WEAK),
        strengths=ranked_topics(state, TopicStanding.STRONG),
        streak_days=streak_days(state.active_days, today=_utc_date(now)),
        total_time_seconds=totals.total_time_seconds,
        last_activity_at=last_activity.at if last_activity else None,
        most_recent_activity=last_activity,
        projection=projection,
    )


def streak_days(active_days: Set[date], today: date) -> int:
    """Consecutive active UTC days ending today, or ending yesterday if today has no activity
    yet (the streak is not lost until the day is over). Days after ``today`` are ignored.

    Examples with today = 10 May: {10, 9, 8} -> 3; {9, 8} -> 2; {8, 7} -> 0; {10, 8} -> 1.
    """
    day = today if today in active_days else today - timedelta(days=1)
    streak = 0
    while day in active_days:
        streak += 1
        day -= timedelta(days=1)
    return streak


def _utc_date(moment: datetime) -> date:
    return moment.astimezone(UTC).date()
