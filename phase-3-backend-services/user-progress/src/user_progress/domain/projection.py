"""The ``ProgressProjectionV1`` the Course Agent personalises lessons with.

Rules
-----
* ``has_history``: the learner has at least one applied progress update. Assigned lessons
  alone (``lesson-generated`` events) say nothing about performance, so they do not count.
* ``weak_topics``: weak topics (see ``mastery``), weakest first (ties by name); at most 20.
* ``strong_topics``: strong topics, strongest first (ties by name); at most 20.
* ``recent_scores``: the 20 newest scores whose lesson topic is known, newest first.
* ``average_score``: mean of every score of every attempt (topic known or not), rounded to
  2 decimals; None when there is no score.
* ``lessons_completed``: lessons with at least one ``completed`` update.
* ``suggested_level`` (``suggest_level``), from evidence of both quality and volume:

      no score at all                                   -> None (keep the requested level)
      average >= 85 and lessons_completed >= 5          -> advanced
      average >= 70 and lessons_completed >= 2          -> intermediate
      otherwise                                         -> beginner
"""

from learnflow_contracts.levels import Level
from learnflow_contracts.progress import ProgressProjectionV1, RecentScore

from user_progress.domain.mastery import TopicStanding
from user_progress.domain.state import LearnerProgress, ProgressTotals
from user_progress.domain.totals import totals_of

TOPIC_LIST_LIMIT = 20
ADVANCED_MIN_AVERAGE = 85.0
ADVANCED_MIN_COMPLETED = 5
INTERMEDIATE_MIN_AVERAGE = 70.0
INTERMEDIATE_MIN_COMPLETED = 2


def progress_projection(state: LearnerProgress) -> ProgressProjectionV1:
    totals = totals_of(state)
    average = average_score(totals)
    completed = totals.lessons_completed
    return ProgressProjectionV1(
        learner_id=state.learner_id,
        has_history=bool(state.applied_attempt_ids),
        suggested_level=suggest_level(average, completed),
        weak_topics=tuple(ranked_topics(state, TopicStanding.WEAK)[:TOPIC_LIST_LIMIT]),
        strong_topics=tuple(ranked_topics(state, TopicStanding.STRONG)[:TOPIC_LIST_LIMIT]),
        recent_scores=tuple(
            RecentScore(topic=tracked.topic, score=tracked.score, at=tracked.at)
            for tracked in totals.recent_scores
        ),
        lessons_completed=completed,
        average_score=average,
    )


def suggest_level(average: float | None, completed: int) -> Level | None:
    if average is None:
        return None
    if average >= ADVANCED_MIN_AVERAGE and completed >= ADVANCED_MIN_COMPLETED:
        return Level.ADVANCED
    if average >= INTERMEDIATE_MIN_AVERAGE and completed >= INTERMEDIATE_MIN_COMPLETED:
        return Level.INTERMEDIATE
    return Level.BEGINNER


def ranked_topics(state: LearnerProgress, standing: TopicStanding) -> list[str]:
    """Topics of one standing; weak ones weakest first, others strongest first."""
    direction = 1 if standing is TopicStanding.WEAK else -1
    matching = [
        (direction * mastery.mastery, topic)
        for topic, mastery in state.topic_mastery.items()
        if mastery.standing is standing
    ]
    return [topic for _, topic in sorted(matching)]


def average_score(totals: ProgressTotals) -> float | None:
    return round(totals.score_sum / totals.score_count, 2) if totals.score_count else None
