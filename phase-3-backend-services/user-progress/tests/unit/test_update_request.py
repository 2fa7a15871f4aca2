"""Validation of POST /update-progress bodies: every rejection names the offending field."""

from datetime import datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError
from user_progress.domain import ProgressUpdateRequest
from user_progress.domain.update_request import EDGE_VALIDATED


def _validate(payload: dict[str, Any], now: datetime) -> ProgressUpdateRequest:
    return ProgressUpdateRequest.model_validate(payload, context={"now": now})


def _rejected_fields(payload: dict[str, Any], now: datetime) -> list[tuple[str | int, ...]]:
    with pytest.raises(ValidationError) as excinfo:
        _validate(payload, now)
    return [error["loc"] for error in excinfo.value.errors()]


def test_valid_payload_is_accepted_and_time_normalised_to_utc(
    valid_payload: dict[str, Any], now: datetime
) -> None:
    valid_payload["occurred_at"] = "2025-05-10T13:30:00+02:00"
    valid_payload["topic"] = "  loops  "

    request = _validate(valid_payload, now)

    assert request.occurred_at.isoformat() == "2025-05-10T11:30:00+00:00"
    assert request.topic == "loops"
    assert (request.kind, request.score, request.time_spent_seconds) == ("quiz", 75, 120)


def test_time_spent_defaults_to_zero(valid_payload: dict[str, Any], now: datetime) -> None:
    del valid_payload["time_spent_seconds"]
    assert _validate(valid_payload, now).time_spent_seconds == 0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        pytest.param("score", -1, id="score-below-0"),
        pytest.param("score", 101, id="score-above-100"),
        pytest.param("score", True, id="score-bool"),
        pytest.param("score", "90", id="score-string"),
        pytest.param("score", 90.5, id="score-float"),
        pytest.param("kind", "paused", id="unknown-kind"),
        pytest.param("learner_id", "", id="empty-learner"),
        pytest.param("learner_id", "l" * 129, id="oversized-learner"),
        pytest.param("learner_id", "-leading-dash", id="learner-bad-first-char"),
        pytest.param("learner_id", "has space", id="learner-space"),
        pytest.param("lesson_id", "x" * 129, id="oversized-lesson"),
        pytest.param("lesson_id", "lesson/1", id="lesson-slash"),
        pytest.param("attempt_id", "a" * 129, id="oversized-attempt"),
        pytest.param("attempt_id", 42, id="attempt-not-string"),
        pytest.param("topic", "t" * 201, id="oversized-topic"),
        pytest.param("topic", "   ", id="blank-topic"),
        pytest.param("time_spent_seconds", -1, id="negative-time"),
        pytest.param("time_spent_seconds", 86_401, id="more-than-a-day"),
        pytest.param("occurred_at", "2025-05-10T12:00:00", id="naive-timestamp"),
        pytest.param("occurred_at", "yesterday", id="not-a-timestamp"),
    ],
)
def test_invalid_field_is_rejected_by_name(
    valid_payload: dict[str, Any], now: datetime, field: str, value: object
) -> None:
    valid_payload[field] = value
    assert _rejected_fields(valid_payload, now) == [(field,)]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("learner_id", "l" * 128),
        ("attempt_id", "A1._:@-z"),
        ("topic", "t" * 200),
        ("time_spent_seconds", 86_400),
        ("score", 0),
        ("score", 100),
    ],
)
def test_boundary_values_are_accepted(
    valid_payload: dict[str, Any], now: datetime, field: str, value: object
) -> None:
    valid_payload[field] = value
    assert getattr(_validate(valid_payload, now), field) == value


@pytest.mark.parametrize(
    ("offset", "accepted"),
    [
        (timedelta(minutes=5), True),
        (timedelta(minutes=5, seconds=1), False),
        (timedelta(days=365), False),
    ],
)
def test_future_timestamps_are_limited_to_five_minutes(
    valid_payload: dict[str, Any], now: datetime, offset: timedelta, accepted: bool
) -> None:
    valid_payload["occurred_at"] = (now + offset).isoformat()
    if accepted:
        assert _validate(valid_payload, now).occurred_at == now + offset
    else:
        assert _rejected_fields(valid_payload, now) == [("occurred_at",)]


@pytest.mark.parametrize(
    ("occurred_at", "accepted"),
    [
        ("2000-01-01T00:00:00+00:00", True),
        ("1999-12-31T23:59:59+00:00", False),
        ("2000-01-01T00:30:00+01:00", False),  # 1999-12-31T23:30 UTC
        ("1970-01-01T00:00:00+00:00", False),
    ],
)
def test_ancient_timestamps_are_rejected(
    valid_payload: dict[str, Any], now: datetime, occurred_at: str, accepted: bool
) -> None:
    valid_payload["occurred_at"] = occurred_at
    if accepted:
        assert _validate(valid_payload, now).occurred_at.year == 2000
    else:
        assert _rejected_fields(valid_payload, now) == [("occurred_at",)]


@pytest.mark.parametrize("kind", ["exercise", "quiz"])
def test_score_is_required_for_scored_kinds(
    valid_payload: dict[str, Any], now: datetime, kind: str
) -> None:
    valid_payload["kind"] = kind
    del valid_payload["score"]
    with pytest.raises(ValidationError) as excinfo:
        _validate(valid_payload, now)
    [error] = excinfo.value.errors()
    assert error["loc"] == ("score",)
    assert f"score is required when kind is '{kind}'" in error["msg"]


def test_score_is_forbidden_for_started(valid_payload: dict[str, Any], now: datetime) -> None:
    valid_payload["kind"] = "started"
    with pytest.raises(ValidationError) as excinfo:
        _validate(valid_payload, now)
    [error] = excinfo.value.errors()
    assert error["loc"] == ("score",)
    assert "not allowed" in error["msg"]


@pytest.mark.parametrize("score", [None, 88])
def test_score_is_optional_for_completed(
    valid_payload: dict[str, Any], now: datetime, score: int | None
) -> None:
    valid_payload.update(kind="completed", score=score)
    assert _validate(valid_payload, now).score == score


def test_unknown_kind_does_not_also_blame_the_score(
    valid_payload: dict[str, Any], now: datetime
) -> None:
    valid_payload["kind"] = "paused"
    del valid_payload["score"]
    assert _rejected_fields(valid_payload, now) == [("kind",)]


def test_unknown_field_is_rejected(valid_payload: dict[str, Any], now: datetime) -> None:
    valid_payload["mastery"] = 1.0
    assert _rejected_fields(valid_payload, now) == [("mastery",)]


def test_without_context_the_real_clock_is_used(valid_payload: dict[str, Any]) -> None:
    valid_payload["occurred_at"] = "2999-01-01T00:00:00+00:00"
    with pytest.raises(ValidationError):
        ProgressUpdateRequest.model_validate(valid_payload)


def test_an_update_validated_at_the_edge_is_not_judged_again_by_another_clock(
    valid_payload: dict[str, Any], now: datetime
) -> None:
    valid_payload["occurred_at"] = (now + timedelta(minutes=4)).isoformat()
    at_the_edge = _validate(valid_payload, now)
    # The learner's actor, on a replica whose clock is 2 minutes behind, takes it as it is.
    behind = now - timedelta(minutes=2)
    carried = at_the_edge.model_dump(mode="json")

    with pytest.raises(ValidationError):
        ProgressUpdateRequest.model_validate(carried, context={"now": behind})
    assert ProgressUpdateRequest.model_validate(carried, context=EDGE_VALIDATED) == at_the_edge


@pytest.mark.parametrize("learner_id", ["learner-1", "a", "user@example.com", "L" * 128])
def test_valid_learner_ids_are_accepted(
    valid_payload: dict[str, Any], now: datetime, learner_id: str
) -> None:
    valid_payload["learner_id"] = learner_id
    assert _validate(valid_payload, now).learner_id == learner_id


@pytest.mark.parametrize("learner_id", ["", "-x", "a b", "L" * 129, "ünicode"])
def test_invalid_learner_ids_are_rejected(
    valid_payload: dict[str, Any], now: datetime, learner_id: str
) -> None:
    valid_payload["learner_id"] = learner_id
    assert _rejected_fields(valid_payload, now) == [("learner_id",)]
