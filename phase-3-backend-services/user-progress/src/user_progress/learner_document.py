"""The learner's progress as stored: one plain state document per learner.

The learner's actor is its only writer (one turn at a time, so without an ETag, as Dapr's actor
state is written); the progress gateway reads it too. It is not actor state because actor state
cannot share a transaction with the outbox's slot, and daprd's state API refuses actor-state keys
(``||``), so nothing but the actor could read it.
"""

from __future__ import annotations

from learnflow_service_kit.sidecar_client import SidecarClient, Upsert
from pydantic import BaseModel

from user_progress.domain import LearnerProgress, empty_progress


def learner_progress_key(learner_id: str) -> str:
    return f"learner-progress-{learner_id}"


class StoredLearner(BaseModel):
    """The learner's state document."""

    progress: LearnerProgress


async def read_progress(
    sidecar: SidecarClient,
    learner_id: str,
    timeout: float | None = None,  # noqa: ASYNC109 - the caller's deadline
) -> LearnerProgress:
    """The learner's stored progress; a learner never stored has none yet. Raises pydantic's
    ValidationError for a document that is not progress."""
    found = await sidecar.get_state(learner_progress_key(learner_id), timeout=timeout)
    if found is None:
        return empty_progress(learner_id)
    return StoredLearner.model_validate(found.value).progress


def progress_write(progress: LearnerProgress) -> Upsert:
    """The write that stores ``progress`` as its learner's document."""
    document = StoredLearner(progress=progress).model_dump(mode="json")
    return Upsert(learner_progress_key(progress.learner_id), document)
