"""The gateway on a scripted sidecar: what it sends the actor (typed calls, the deadlines from the
settings), how it reads the typed answers, and how it reads a learner's document itself."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any, cast

import pytest
from learnflow_service_kit.errors import ServiceError
from learnflow_service_kit.sidecar_client import SidecarClient, StateEntry, StateStoreUnavailable
from user_progress.domain import (
    ProgressUpdateRequest,
    apply_update,
    empty_progress,
    learner_status,
    progress_projection,
)
from user_progress.learner_document import StoredLearner
from user_progress.progress_gateway import DaprProgressGateway
from user_progress.settings import Settings

NOW = datetime.now(UTC)
SETTINGS = Settings()


class ScriptedSidecar:
    def __init__(
        self, answer: Any = None, failing_part: str = "unknown", stored: Any = None
    ) -> None:
        self.answer = answer
        self.part = failing_part
        self.stored = stored  # the state store's one document, or the exception a read raises
        self.calls: list[tuple[str, str, str, Any, float]] = []
        self.reads: list[tuple[str, float | None]] = []

    async def invoke_actor(
        self,
        actor_type: str,
        actor_id: str,
        method: str,
        data: Any,
        *,
        timeout: float,  # noqa: ASYNC109
    ) -> Any:
        self.calls.append((actor_type, actor_id, method, data, timeout))
        return self.answer

    async def get_state(
        self,
        key: str,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> StateEntry | None:
        self.reads.append((key, timeout))
        if isinstance(self.stored, Exception):
            raise self.stored
        return None if self.stored is None else StateEntry(self.stored, "etag-1")

    async def failing_part(self) -> str:
        return self.part


def _gateway(sidecar: ScriptedSidecar) -> DaprProgressGateway:
    return DaprProgressGateway(
        cast(SidecarClient, sidecar),
        SETTINGS.call_deadlines,
        SETTINGS.max_pending_updates_per_learner,
    )


def _update() -> ProgressUpdateRequest:
    return ProgressUpdateRequest(
        learner_id="ada",
        lesson_id="lesson-1",
        attempt_id="a1",
        kind="quiz",
        score=90,
        occurred_at=NOW,
    )


def test_the_deadlines_are_split_from_the_one_request_deadline() -> None:
    deadlines = Settings(request_deadline_seconds=4.0).call_deadlines

    assert deadlines.call_seconds == pytest.approx(3.2)
    assert deadlines.update_start_seconds == pytest.approx(2.5)
    assert 0 < deadlines.update_start_seconds < deadlines.call_seconds < 4.0


async def test_an_update_is_sent_with_its_deadlines_and_answers_the_status() -> None:
    status = learner_status(empty_progress("ada"), NOW)
    sidecar = ScriptedSidecar({"status": status.model_dump(mode="json")})

    before = time.time()
    assert await _gateway(sidecar).record_progress(_update()) == status

    ((actor_type, actor_id, method, data, timeout),) = sidecar.calls
    assert (actor_type, actor_id, method) == ("LearnerProgressActor", "ada", "ApplyUpdate")
    assert data["update"] == _update().model_dump(mode="json")
    start = SETTINGS.call_deadlines.update_start_seconds
    assert before + start <= data["not_after"] <= time.time() + start
    assert timeout == SETTINGS.call_deadlines.call_seconds


@pytest.mark.parametrize(
    ("part", "status", "code"),
    [("unknown", 503, "learner_busy"), ("state_store", 503, "state_store_unavailable")],
)
async def test_an_expired_update_is_refused_naming_the_failing_part_if_any(
    part: str, status: int, code: str
) -> None:
    with pytest.raises(ServiceError) as refused:
        await _gateway(ScriptedSidecar({"expired": True}, part)).record_progress(_update())

    assert (refused.value.http_status, refused.value.code) == (status, code)


async def test_lessons_go_as_one_call_and_the_count_of_new_ones_comes_back() -> None:
    sidecar = ScriptedSidecar({"applied": 0})

    assert await _gateway(sidecar).record_lessons("ada", []) == 0
    assert sidecar.calls[0][2:4] == ("RecordLessons", {"lessons": []})


def _stored_after_one_update() -> dict[str, Any]:
    progress = apply_update(empty_progress("ada"), _update()).state
    return StoredLearner(progress=progress).model_dump(mode="json")


async def test_status_and_projection_are_one_read_of_the_learners_document() -> None:
    stored = _stored_after_one_update()
    sidecar = ScriptedSidecar(stored=stored)
    gateway = _gateway(sidecar)
    progress = StoredLearner.model_validate(stored).progress

    status = await gateway.status("ada")
    projection = await gateway.projection("ada")

    assert status == learner_status(progress, NOW)
    assert projection == progress_projection(progress)
    assert status.average_score == 90
    assert sidecar.calls == []  # no actor call
    deadline = SETTINGS.call_deadlines.call_seconds
    assert sidecar.reads == [("learner-progress-ada", deadline)] * 2


async def test_a_learner_with_no_document_has_an_empty_status() -> None:
    status = await _gateway(ScriptedSidecar()).status("ada")

    assert status.average_score is None
    assert status.lessons_started == 0


async def test_a_failed_read_names_the_failing_part() -> None:
    sidecar = ScriptedSidecar(failing_part="state_store", stored=StateStoreUnavailable("down"))

    with pytest.raises(ServiceError) as failed:
        await _gateway(sidecar).status("ada")

    assert (failed.value.http_status, failed.value.code) == (503, "state_store_unavailable")


async def test_a_document_that_is_not_progress_is_a_clear_error_not_a_crash() -> None:
    sidecar = ScriptedSidecar(stored={"not": "progress"})

    with pytest.raises(ServiceError) as failed:
        await _gateway(sidecar).projection("ada")

    assert (failed.value.http_status, failed.value.code) == (500, "stored_progress_unreadable")
