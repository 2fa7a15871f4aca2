"""The wire protocol of ``LearnerProgressActor``: its method names and what each call carries and
answers, shared by the actor (its ``LearnerProgressActorInterface`` declares its methods under
these names) and its caller (the progress gateway).

The JSON on the wire is what it always was (``{"update": ..., "not_after": ...}`` in,
``{"status": ...}`` or ``{"expired": true}`` out, and so on), so replicas of two versions still
understand each other during a rolling deploy.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from learnflow_contracts.events import LessonGeneratedV1
from learnflow_contracts.strict import StrictModel
from pydantic import Discriminator, Field, Tag, TypeAdapter

from user_progress.domain import LearnerStatus, ProgressUpdateRequest
from user_progress.domain.update_request import EDGE_VALIDATED

ACTOR_TYPE = "LearnerProgressActor"

# Method names: the last segment of ``/v1.0/actors/<type>/<id>/method/<name>``.
APPLY_UPDATE = "ApplyUpdate"  # ApplyUpdateCall -> UpdateAnswer
RECORD_LESSONS = "RecordLessons"  # RecordLessonsCall -> LessonsRecorded


class ApplyUpdateCall(StrictModel):
    """Apply one update, unless its turn starts after ``not_after`` (epoch seconds)."""

    update: ProgressUpdateRequest
    not_after: float

    @classmethod
    def from_wire(cls, data: Any) -> ApplyUpdateCall:
        """The call the gateway sent; the route validated its update already, so the update's
        ``occurred_at`` is not judged again by this replica's clock."""
        return cls.model_validate(data, context=EDGE_VALIDATED)


class UpdateTaken(StrictModel):
    """The update is applied (now, or before: a retry of one ``attempt_id``)."""

    status: LearnerStatus


class UpdateExpired(StrictModel):
    """The update's turn came after its ``not_after``: nothing was applied."""

    expired: Literal[True] = True


def _update_outcome(answer: Any) -> str:
    if isinstance(answer, dict):
        return "expired" if answer.get("expired") else "taken"
    return "expired" if isinstance(answer, UpdateExpired) else "taken"


UpdateAnswer = Annotated[
    Annotated[UpdateTaken, Tag("taken")] | Annotated[UpdateExpired, Tag("expired")],
    Discriminator(_update_outcome),
]
UPDATE_ANSWER: TypeAdapter[UpdateTaken | UpdateExpired] = TypeAdapter(UpdateAnswer)


class RecordLessonsCall(StrictModel):
    """A learner's ``lesson-generated`` events, in the order they are to be applied."""

    lessons: list[LessonGeneratedV1]


class LessonsRecorded(StrictModel):
    applied: int = Field(ge=0)  # how many of the call's events were new
