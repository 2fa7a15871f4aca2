"""The User Progress domain: validation, learner state, applying updates, status. No I/O."""

from user_progress.domain.apply import (
    ApplyResult,
    LearnerMismatchError,
    apply_lesson_generated,
    apply_update,
)
from user_progress.domain.mastery import TopicMastery, TopicStanding
from user_progress.domain.progress_event import progress_updated_event
from user_progress.domain.projection import progress_projection, suggest_level
from user_progress.domain.state import KnownLesson, LearnerProgress, empty_progress
from user_progress.domain.status import LearnerStatus, TopicMasteryView, learner_status
from user_progress.domain.update_request import ProgressUpdateRequest

__all__ = [
    "ApplyResult",
    "KnownLesson",
    "LearnerMismatchError",
    "LearnerProgress",
    "LearnerStatus",
    "ProgressUpdateRequest",
    "TopicMastery",
    "TopicMasteryView",
    "TopicStanding",
    "apply_lesson_generated",
    "apply_update",
    "empty_progress",
    "learner_status",
    "progress_projection",
    "progress_updated_event",
    "suggest_level",
]
