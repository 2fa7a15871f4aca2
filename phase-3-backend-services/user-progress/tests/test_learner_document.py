"""How a learner's progress is stored: the document, the shards a write touches, and reading it
all back, through the sidecar client on daprd's state API over a dict (``ScriptedDaprd``; daprd
and PostgreSQL are the integration tests')."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from learnflow_contracts.events import LessonGeneratedV1, LessonObjective
from learnflow_contracts.levels import Level
from learnflow_service_kit.scripted_daprd import ScriptedDaprd
from learnflow_service_kit.sidecar_client import SidecarClient
from pydantic import ValidationError
from user_progress.domain import (
    LearnerProgress,
    ProgressUpdateRequest,
    apply_lesson_generated,
    apply_update,
    empty_progress,
    learner_status,
)
from user_progress.learner_document import (
    NO_SHARDS,
    SHARDS,
    StoredLearner,
    StoredShards,
    learner_progress_key,
    learner_shard_key,
    load_progress,
    progress_writes,
    shard_of,
)

LEARNER = "ada"
NOW = datetime(2025, 5, 10, 12, 0, tzinfo=UTC)
SHARD_PREFIX = f"learner-progress-{LEARNER}-shard-"


def _update(index: int, lesson: int) -> ProgressUpdateRequest:
    return ProgressUpdateRequest.model_validate(
        {
            "learner_id": LEARNER,
            "lesson_id": f"lesson-{lesson}",
            "attempt_id": f"attempt-{index}",
            "kind": "quiz",
            "score": (index * 37) % 101,
            "time_spent_seconds": 30,
            "occurred_at": NOW - timedelta(minutes=500 - index),
            "topic": f"topic {lesson % 7}",
        },
        context={"now": NOW},
    )


def _lesson_event(lesson: int) -> LessonGeneratedV1:
    return LessonGeneratedV1(
        lesson_id=f"lesson-{lesson}",
        learner_id=LEARNER,
        topic=f"topic {lesson % 5}",
        level=Level.BEGINNER,
        title=f"Lesson {lesson}",
        objectives=(LessonObjective(id="o1", text="Learn it"),),
        personalized=False,
        prompt_id="lesson",
        prompt_version="1",
        model="gpt-4o-mini",
        created_at=NOW - timedelta(days=1),
    )


@pytest.fixture
def daprd() -> ScriptedDaprd:
    return ScriptedDaprd()


@pytest.fixture
async def sidecar(daprd: ScriptedDaprd) -> AsyncIterator[SidecarClient]:
    client = daprd.client()
    yield client
    await client.aclose()


async def _write(
    sidecar: SidecarClient, progress: LearnerProgress, shards: StoredShards
) -> tuple[list[str], StoredShards]:
    """Store ``progress`` as the actor does; the keys written and what the shards then hold."""
    writes, shards_after = progress_writes(progress, learner_status(progress, NOW), shards)
    await sidecar.transact(writes)
    return [write.key for write in writes], shards_after


def _stored(daprd: ScriptedDaprd, key: str) -> Any:
    return daprd.state[key][0] if key in daprd.state else None


def _dumped(progress: LearnerProgress) -> dict[str, Any]:
    return StoredLearner(progress=progress).model_dump(mode="json")


async def test_every_write_leaves_the_store_reading_back_as_the_progress(
    daprd: ScriptedDaprd, sidecar: SidecarClient
) -> None:
    """Lesson events, updates, progress that overtakes its lesson event and a duplicate: after
    each write, what the store reads back is the progress and what the writer holds as the
    shards' contents is what they hold, and an update touches at most the shards of its lesson
    and of its attempt."""
    progress, shards = empty_progress(LEARNER), NO_SHARDS
    steps: list[ProgressUpdateRequest | LessonGeneratedV1] = [_lesson_event(n) for n in range(40)]
    steps += [_update(index, lesson=index % 50) for index in range(150)]
    steps += [_update(3, lesson=3), *(_lesson_event(n) for n in range(40, 50))]
    for step in steps:
        if isinstance(step, ProgressUpdateRequest):
            result = apply_update(progress, step)
        else:
            result = apply_lesson_generated(progress, step)
        if not result.applied:
            continue
        written, shards = await _write(sidecar, result.state, shards)
        progress = result.state

        shards_written = [key for key in written if key.startswith(SHARD_PREFIX)]
        if isinstance(step, ProgressUpdateRequest):
            assert 1 <= len(shards_written) <= 2
        loaded = await load_progress(sidecar, LEARNER)
        assert _dumped(loaded.progress) == _dumped(progress)
        assert loaded.shards.contents == shards.contents

    assert len(progress.lessons) == 50
    assert len(progress.applied_attempt_ids) == 150
    document = _stored(daprd, learner_progress_key(LEARNER))
    assert document["shards"] == SHARDS
    assert document["progress"]["lessons"] == {}
    assert document["progress"]["applied_attempt_ids"] == []


async def test_a_shard_holds_exactly_the_ids_that_fall_in_it(
    daprd: ScriptedDaprd, sidecar: SidecarClient
) -> None:
    progress = empty_progress(LEARNER)
    for index in range(60):
        progress = apply_update(progress, _update(index, lesson=index)).state
    await _write(sidecar, progress, NO_SHARDS)

    for shard in range(SHARDS):
        value = _stored(daprd, learner_shard_key(LEARNER, shard)) or {}
        lesson_ids = set(value.get("lessons", {}))
        attempt_ids = value.get("attempt_ids", [])
        assert lesson_ids == {i for i in progress.lessons if shard_of(i) == shard}
        assert set(attempt_ids) == {a for a in progress.applied_attempt_ids if shard_of(a) == shard}
        assert attempt_ids == sorted(attempt_ids)


async def test_a_document_from_before_shards_is_read_and_its_next_write_moves_it_into_shards(
    daprd: ScriptedDaprd, sidecar: SidecarClient
) -> None:
    progress = empty_progress(LEARNER)
    for index in range(20):
        progress = apply_update(progress, _update(index, lesson=index)).state
    daprd.put(learner_progress_key(LEARNER), _dumped(progress))  # as written before shards

    loaded = await load_progress(sidecar, LEARNER)
    assert _dumped(loaded.progress) == _dumped(progress)
    assert loaded.shards == NO_SHARDS  # the shards hold nothing of it yet

    after = apply_update(loaded.progress, _update(20, lesson=20)).state
    _, shards = await _write(sidecar, after, loaded.shards)

    reloaded = await load_progress(sidecar, LEARNER)
    assert _dumped(reloaded.progress) == _dumped(after)
    assert reloaded.shards.contents == shards.contents
    assert len(shards.contents) == len(
        {shard_of(i) for i in [*after.lessons, *after.applied_attempt_ids]}
    )


async def test_a_learner_never_written_has_empty_progress_read_in_one_call(
    daprd: ScriptedDaprd, sidecar: SidecarClient
) -> None:
    loaded = await load_progress(sidecar, LEARNER)

    assert loaded.progress == empty_progress(LEARNER)
    assert loaded.shards == NO_SHARDS
    assert daprd.reads == 1  # no shards to read for a learner with no document


def test_a_document_stored_in_another_number_of_shards_is_refused() -> None:
    document = StoredLearner(progress=empty_progress(LEARNER)).model_dump(mode="json")

    with pytest.raises(ValidationError, match="shards"):
        StoredLearner.model_validate({**document, "shards": SHARDS + 1})
