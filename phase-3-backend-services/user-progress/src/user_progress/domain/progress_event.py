"""The ``progress-updated`` event published after an update was applied."""

from learnflow_contracts.events import ProgressUpdatedV1

from user_progress.domain.projection import progress_projection
from user_progress.domain.state import LearnerProgress
from user_progress.domain.update_request import ProgressUpdateRequest


def progress_updated_event(
    update: ProgressUpdateRequest, state_after: LearnerProgress
) -> ProgressUpdatedV1:
    """Describe ``update`` with the projection of the state it produced.

    Call it only when ``apply_update`` returned ``applied=True``: a duplicate was already
    announced.
    """
    return ProgressUpdatedV1(
        learner_id=update.learner_id,
        lesson_id=update.lesson_id,
        attempt_id=update.attempt_id,
        kind=update.kind,
        score=update.score,
        occurred_at=update.occurred_at,
        projection=progress_projection(state_after),
    )
