"""The gateway on a scripted sidecar: what it sends the actor (typed calls, the deadlines from the
settings), how it reads the typed answers, and how it reads what a learner has stored itself."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
from learnflow_contracts.progress import ProgressProjectionV1
from learnflow_service_kit.errors import ServiceError
from learnflow_service_kit.sidecar_client import SidecarClient, StateEntry, StateStoreUnavailable
from user_progress.domain import (
    LearnerProgress,
    ProgressUpdateRequest,
    apply_update,
    empty_progress,
    learner_status,
    progress_projection,
)
from user_progress.domain.status import DERIVED_RULES
from user_progress.learner_document import NO_SHARDS, SHARDS, StoredStatus, progress_writes
from user_progress.progress_gateway import DaprProgressGateway
from user_progress.settings import Settings

NOW = datetime.now(UTC)
SETTINGS = Settings()


class ScriptedSidecar:
    def __init__(
        self,
        answer: Any = None,
        failing_part: str = "unknown",
        stored: dict[str, Any] | Exception | None = None,
    ) -> None:
        self.answer = answer
        self.part = failing_part
        self.stored = stored or {}  # the state store: key -> value, or what every read raises
        self.calls: list[tuple[str, str, str, Any, float]] = []
        self.reads: list[tuple[str, float | None]] = []
        self.bulk_reads: list[tuple[int, float | None]] = []  # (keys, timeout)

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
        return StateEntry(self.stored[key], "etag-1") if key in self.stored else None

    async def get_bulk_state(
        self,
        keys: Sequence[str],
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> dict[str, StateEntry]:
        self.bulk_reads.append((len(keys), timeout))
        assert not isinstance(self.stored, Exception)
        return {key: StateEntry(self.stored[key], "etag-1") for key in keys if key in self.stored}

    async def failing_part(self) -> str:
        return self.part


def empty_projection(learner_id: str) -> ProgressProjectionV1:
    return progress_projection(empty_progress(learner_id))


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


def _progress_after_one_update() -> LearnerProgress:
    return apply_update(empty_progress("ada"), _update()).state


def _as_stored(progress: LearnerProgress) -> dict[str, Any]:
    """The state store after the actor wrote ``progress`` (now)."""
    writes, _ = progress_writes(progress, learner_status(progress, NOW), NO_SHARDS)
    return {write.key: write.value for write in writes}


def _read(gateway: DaprProgressGateway, what: str) -> Awaitable[object]:
    return gateway.status("ada") if what == "status" else gateway.projection("ada")


def _derived(progress: LearnerProgress, what: str) -> object:
    return learner_status(progress, NOW) if what == "status" else progress_projection(progress)


@pytest.mark.parametrize("what", ["status", "projection"])
async def test_a_read_is_one_read_of_what_the_actor_stored_beside_the_document(what: str) -> None:
    progress = _progress_after_one_update()
    sidecar = ScriptedSidecar(stored=_as_stored(progress))

    assert await _read(_gateway(sidecar), what) == _derived(progress, what)
    assert sidecar.calls == []  # no actor call
    assert sidecar.reads == [(f"learner-{what}-ada", SETTINGS.call_deadlines.call_seconds)]


@pytest.mark.parametrize("days_later", [0, 1, 2])
def test_a_stored_status_counts_its_streak_on_the_day_it_is_read(days_later: int) -> None:
    """Active today, stored today: a streak of 1 today and tomorrow, 0 the day after."""
    progress = _progress_after_one_update()
    stored = StoredStatus.model_validate(_as_stored(progress)["learner-status-ada"])
    later = NOW + timedelta(days=days_later)

    assert stored.as_of(later) == learner_status(progress, later)
    assert stored.as_of(later).streak_days == (1 if days_later < 2 else 0)


@pytest.mark.parametrize("what", ["status", "projection"])
async def test_a_learner_last_written_before_it_was_stored_gets_it_derived(what: str) -> None:
    """The document alone: derived from it, both reads within the one deadline."""
    progress = _progress_after_one_update()
    stored = _as_stored(progress)
    del stored[f"learner-{what}-ada"]
    sidecar = ScriptedSidecar(stored=stored)

    assert await _read(_gateway(sidecar), what) == _derived(progress, what)

    (first, first_timeout), (second, second_timeout) = sidecar.reads
    assert (first, second) == (f"learner-{what}-ada", "learner-progress-ada")
    ((shards, shards_timeout),) = sidecar.bulk_reads
    assert shards == SHARDS
    deadline = SETTINGS.call_deadlines.call_seconds
    assert first_timeout == deadline
    assert 0 < cast(float, shards_timeout) <= cast(float, second_timeout) < deadline


@pytest.mark.parametrize("what", ["status", "projection"])
async def test_what_was_stored_under_other_rules_is_derived_again(what: str) -> None:
    """Stored as for a learner with no history, under the rules before: not believed."""
    progress = _progress_after_one_update()
    stored = _as_stored(progress)
    outdated = _as_stored(empty_progress("ada"))[f"learner-{what}-ada"]
    stored[f"learner-{what}-ada"] = {**outdated, "rules": DERIVED_RULES - 1}

    assert await _read(_gateway(ScriptedSidecar(stored=stored)), what) == _derived(progress, what)


async def test_a_learner_with_nothing_stored_has_an_empty_projection() -> None:
    sidecar = ScriptedSidecar()

    assert await _gateway(sidecar).projection("ada") == empty_projection("ada")
    assert [key for key, _ in sidecar.reads] == ["learner-projection-ada", "learner-progress-ada"]


async def test_a_learner_with_no_document_has_an_empty_status() -> None:
    status = await _gateway(ScriptedSidecar()).status("ada")

    assert status.average_score is None
    assert status.lessons_started == 0


async def test_a_failed_read_names_the_failing_part() -> None:
    sidecar = ScriptedSidecar(failing_part="state_store", stored=StateStoreUnavailable("down"))

    with pytest.raises(ServiceError) as failed:
        await _gateway(sidecar).status("ada")

    assert (failed.value.http_status, failed.value.code) == (503, "state_store_unavailable")


@pytest.mark.parametrize(
    ("what", "key"),
    [
        ("status", "learner-progress-ada"),
        ("status", "learner-status-ada"),
        ("projection", "learner-progress-ada"),
        ("projection", "learner-projection-ada"),
    ],
)
async def test_a_document_that_is_not_progress_is_a_clear_error_not_a_crash(
    what: str, key: str
) -> None:
    sidecar = ScriptedSidecar(stored={key: {"not": "progress"}})

    with pytest.raises(ServiceError) as failed:
        await _read(_gateway(sidecar), what)

    assert (failed.value.http_status, failed.value.code) == (500, "stored_progress_unreadable")
