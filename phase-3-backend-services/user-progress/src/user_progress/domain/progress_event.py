"""The ``progress-updated`` event published after an update was applied."""

from learnflow_contracts.events import ProgressUpdatedV1
from learnflow_contracts.progress import ProgressProjectionV1

from user_progress.domain.update_request import ProgressUpdateRequest


def progress_updated_event(
    update: ProgressUpdateRequest, projection_after: ProgressProjectionV1
) -> ProgressUpdatedV1:
    """Describe ``update`` with the projection of the state it produced (the status of that
    state carries it: deriving it again costs what the learner's history weighs).

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
        projection=projection_after,
    )
