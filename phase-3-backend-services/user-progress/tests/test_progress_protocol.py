"""The actor's wire protocol: one set of names and models for the actor and the gateway, and the
JSON on the wire as it always was (replicas of two versions meet during a rolling deploy)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from dapr.actor.runtime._type_utils import get_dispatchable_attrs
from pydantic import ValidationError
from user_progress.domain import ProgressUpdateRequest, empty_progress, learner_status
from user_progress.progress_actor import LearnerProgressActor
from user_progress.progress_protocol import (
    ACTOR_TYPE,
    APPLY_UPDATE,
    RECORD_LESSONS,
    UPDATE_ANSWER,
    ApplyUpdateCall,
    LessonsRecorded,
    RecordLessonsCall,
    UpdateExpired,
    UpdateTaken,
)

NOW = datetime.now(UTC)


def _update(**overrides: Any) -> dict[str, Any]:
    return {
        "learner_id": "ada",
        "lesson_id": "lesson-1",
        "attempt_id": "a1",
        "kind": "quiz",
        "score": 90,
        "time_spent_seconds": 0,
        "occurred_at": NOW.isoformat(),
        "topic": None,
        **overrides,
    }


def test_the_actor_is_hosted_under_the_type_its_callers_name() -> None:
    # The Dapr SDK registers an actor type under its class name.
    assert LearnerProgressActor.__name__ == ACTOR_TYPE


def test_the_actor_answers_exactly_the_protocols_methods() -> None:
    methods = get_dispatchable_attrs(LearnerProgressActor)

    assert set(methods) == {APPLY_UPDATE, RECORD_LESSONS}
    assert (APPLY_UPDATE, RECORD_LESSONS) == ("ApplyUpdate", "RecordLessons")


def test_an_update_call_is_the_json_it_always_was() -> None:
    update = ProgressUpdateRequest.model_validate(_update())

    wire = ApplyUpdateCall(update=update, not_after=1.5).model_dump(mode="json")

    assert wire == {"update": update.model_dump(mode="json"), "not_after": 1.5}
    assert ApplyUpdateCall.from_wire(wire) == ApplyUpdateCall(update=update, not_after=1.5)


def test_the_actor_does_not_judge_occurred_at_again_by_its_own_clock() -> None:
    # Validated by the route on a replica whose clock is ahead of the actor's host.
    # Taken when the test runs, not at collection: a long run must not age it into the past.
    ahead = datetime.now(UTC) + timedelta(minutes=7)
    wire = {"update": _update(occurred_at=ahead.isoformat()), "not_after": 1.0}

    with pytest.raises(ValidationError):
        ApplyUpdateCall.model_validate(wire)
    assert ApplyUpdateCall.from_wire(wire).update.occurred_at == ahead


@pytest.mark.parametrize(
    "wire",
    [
        {"update": _update(score=None), "not_after": 1.0},  # a quiz needs a score
        {"update": _update(learner_id="bad id"), "not_after": 1.0},
        {"update": _update()},
        {"update": _update(), "not_after": 1.0, "extra": 1},
    ],
    ids=["rule", "identifier", "no-deadline", "unknown-field"],
)
def test_a_malformed_update_call_is_refused(wire: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        ApplyUpdateCall.from_wire(wire)


def test_an_update_answer_is_taken_or_expired_and_the_json_it_always_was() -> None:
    status = learner_status(empty_progress("ada"), NOW)
    taken_wire = {"status": status.model_dump(mode="json")}

    taken = UPDATE_ANSWER.validate_python(taken_wire)
    expired = UPDATE_ANSWER.validate_python({"expired": True})

    assert taken == UpdateTaken(status=status)
    assert isinstance(expired, UpdateExpired)
    assert taken.model_dump(mode="json") == taken_wire
    assert expired.model_dump(mode="json") == {"expired": True}
    malformed_answers: list[object] = [{}, {"expired": False}, {"status": {}}, {"error": "x"}, []]
    for malformed in malformed_answers:
        with pytest.raises(ValidationError):
            UPDATE_ANSWER.validate_python(malformed)


def test_a_lessons_call_and_its_answer_are_the_json_they_always_were() -> None:
    assert RecordLessonsCall(lessons=[]).model_dump(mode="json") == {"lessons": []}
    assert LessonsRecorded.model_validate({"applied": 3}).applied == 3
    with pytest.raises(ValidationError):
        LessonsRecorded.model_validate({"applied": -1})
