"""The body of ``POST /update-progress``: one learner action, validated at the edge."""

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from learnflow_contracts.events import ProgressEventKind
from learnflow_contracts.identifiers import Identifier
from learnflow_contracts.strict import StrictModel
from pydantic import (
    AwareDatetime,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

EARLIEST_OCCURRED_AT = datetime(2000, 1, 1, tzinfo=UTC)
# Client clocks drift; more than this ahead of ours is a bug or a forgery, not drift.
MAX_CLOCK_SKEW = timedelta(minutes=5)
_SKEW_MINUTES = int(MAX_CLOCK_SKEW.total_seconds() // 60)
MAX_TIME_SPENT_SECONDS = 86_400

SCORED_KINDS: frozenset[ProgressEventKind] = frozenset({"exercise", "quiz"})

# The validation context of an update the edge already validated (carried to the learner's
# actor): its ``occurred_at`` is not judged again, by another replica's clock.
EDGE_VALIDATED: Mapping[str, Any] = {"edge_validated": True}

TopicName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class ProgressUpdateRequest(StrictModel):
    """One progress update. ``attempt_id`` is the idempotency key of the update.

    ``score`` is required for ``exercise`` and ``quiz``, forbidden for ``started`` and optional
    for ``completed``. ``topic`` is only a fallback used while the lesson's
    ``lesson-generated`` event has not arrived. The "not in the future" check compares with
    ``datetime.now(UTC)`` unless a validation context ``{"now": datetime}`` supplies the clock;
    it is skipped with the context ``EDGE_VALIDATED``.
    """

    learner_id: Identifier
    lesson_id: Identifier
    attempt_id: Identifier
    kind: ProgressEventKind
    # Strict: JSON true/"90"/90.5 are client bugs, not scores.
    score: int | None = Field(default=None, ge=0, le=100, strict=True, validate_default=True)
    time_spent_seconds: int = Field(default=0, ge=0, le=MAX_TIME_SPENT_SECONDS, strict=True)
    occurred_at: AwareDatetime
    topic: TopicName | None = None

    @field_validator("score")
    @classmethod
    def _score_matches_kind(cls, score: int | None, info: ValidationInfo) -> int | None:
        kind = info.data.get("kind")  # absent when kind itself was invalid
        if kind in SCORED_KINDS and score is None:
            raise ValueError(f"score is required when kind is '{kind}'")
        if kind == "started" and score is not None:
            raise ValueError("score is not allowed when kind is 'started'")
        return score

    @field_validator("occurred_at")
    @classmethod
    def _occurred_at_is_plausible(cls, occurred_at: datetime, info: ValidationInfo) -> datetime:
        context = info.context if isinstance(info.context, Mapping) else {}
        if context.get("edge_validated"):
            return occurred_at.astimezone(UTC)
        now: datetime = context.get("now") or datetime.now(UTC)
        if occurred_at < EARLIEST_OCCURRED_AT:
            raise ValueError(f"occurred_at must not be before {EARLIEST_OCCURRED_AT.isoformat()}")
        if occurred_at > now + MAX_CLOCK_SKEW:
            raise ValueError(
                f"occurred_at must not be more than {_SKEW_MINUTES} minutes in the future"
            )
        return occurred_at.astimezone(UTC)
