"""The lesson store over daprd's state API (scripted here): a cache hit is one read, because
the cache pointer carries a copy of its lesson; pointers stored before the copy still work."""

import pytest
from course_agent.lesson_record import LessonRecord
from course_agent.lesson_store import LessonStore, cache_pointer_key, lesson_key
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
    lesson, other = await store.cached_reading_also("cache-key-1", "llm-budget-ada")
    assert (lesson, other) == (record, None)
    assert _reads(daprd) == [f"POST {STATE}/bulk"]


async def test_a_pointer_stored_before_it_carried_the_lesson_still_finds_it(
    store: LessonStore, daprd: ScriptedDaprd, record: LessonRecord
) -> None:
    daprd.put(lesson_key(record.lesson_id), record.model_dump(mode="json"))
    daprd.put(cache_pointer_key("old"), {"lesson_id": record.lesson_id})

    assert await store.cached("old") == record
    assert await store.cached("never-stored") is None
    assert (await store.cached_reading_also("old", "other"))[0] == record
