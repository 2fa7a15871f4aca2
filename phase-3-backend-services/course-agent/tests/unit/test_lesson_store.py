"""The lesson store over daprd's state API (scripted here): a cache hit is one read, because
the cache pointer carries a copy of its lesson; pointers stored before the copy still work."""

import pytest
from course_agent.lesson_record import LessonRecord
from course_agent.lesson_store import (
    LessonStore,
    cache_pointer_key,
    learner_index_key,
    lesson_key,
)
from learnflow_service_kit.outbox import Outbox
from learnflow_service_kit.scripted_daprd import ScriptedDaprd

STATE = "/v1.0/state/statestore"


@pytest.fixture
def daprd() -> ScriptedDaprd:
    return ScriptedDaprd()


@pytest.fixture
def store(daprd: ScriptedDaprd) -> LessonStore:
    dapr = daprd.client()
    return LessonStore(dapr, Outbox(dapr), cache_ttl_seconds=60, idempotency_ttl_seconds=60)


def _reads(daprd: ScriptedDaprd) -> list[str]:
    return [call for call in daprd.calls if "/publish/" not in call]


async def test_a_saved_lesson_is_a_cache_hit_in_one_read(
    store: LessonStore, daprd: ScriptedDaprd, record: LessonRecord
) -> None:
    await store.save_new(record, "cache-key-1")
    daprd.calls.clear()

    assert await store.cached("cache-key-1") == record
    assert _reads(daprd) == [f"GET {STATE}/{cache_pointer_key('cache-key-1')}"]

    daprd.calls.clear()
    learner = record.learner_id
    lesson, read = await store.cached_reading_also("cache-key-1", learner, "llm-budget")
    assert lesson == record
    assert set(read) == {cache_pointer_key("cache-key-1"), learner_index_key(learner)}
    assert _reads(daprd) == [f"POST {STATE}/bulk"]


async def test_a_lesson_saved_after_the_turn_read_the_index_is_committed_without_a_read(
    store: LessonStore, daprd: ScriptedDaprd, record: LessonRecord
) -> None:
    _, read = await store.cached_reading_also("cache-key-1", record.learner_id, "budget")
    daprd.calls.clear()

    await store.save_new(record, "cache-key-1", read)

    assert _reads(daprd) == [f"POST {STATE}/transaction"]
    index = daprd.state[learner_index_key(record.learner_id)][0]
    assert [e["lesson_id"] for e in index["lessons"]] == [record.lesson_id]


async def test_an_index_changed_since_the_turn_read_it_is_read_again_and_kept(
    store: LessonStore, daprd: ScriptedDaprd, record: LessonRecord
) -> None:
    _, read = await store.cached_reading_also("cache-key-1", record.learner_id, "budget")
    # Another lesson of the same learner (another cache key, another turn) is indexed meanwhile.
    daprd.put(learner_index_key(record.learner_id), {"lessons": [{"lesson_id": "x", "topic": "t"}]})

    await store.save_new(record, "cache-key-1", read)

    index = daprd.state[learner_index_key(record.learner_id)][0]
    assert [e["lesson_id"] for e in index["lessons"]] == [record.lesson_id, "x"]


async def test_a_pointer_stored_before_it_carried_the_lesson_still_finds_it(
    store: LessonStore, daprd: ScriptedDaprd, record: LessonRecord
) -> None:
    daprd.put(lesson_key(record.lesson_id), record.model_dump(mode="json"))
    daprd.put(cache_pointer_key("old"), {"lesson_id": record.lesson_id})

    assert await store.cached("old") == record
    assert await store.cached("never-stored") is None
    assert (await store.cached_reading_also("old", "ada", "other"))[0] == record
