"""The learner's progress as stored: one plain state document per learner.

The learner's actor is its only writer (one turn at a time, so without an ETag, as Dapr's actor
state is written); anyone may read it. It is not actor state because actor state cannot share a
transaction with the outbox's slot, and daprd's state API refuses actor-state keys (``||``).
"""

from __future__ import annotations

from pydantic import BaseModel

from user_progress.domain import LearnerProgress


def learner_progress_key(learner_id: str) -> str:
    return f"learner-progress-{learner_id}"


class StoredLearner(BaseModel):
    """The learner's state document."""

    progress: LearnerProgress
