"""The lesson store over daprd's state API (scripted here): a cache lookup is one read, because
the cache pointer carries a copy of its lesson and the claim, the index head and the budget come
in the same bulk GET; pointers stored before the copy still work; lessons list across the
index's pages."""

import pytest
from course_agent.generation_claim import Claim, generation_claim_key
from course_agent.lesson_index import HEAD_PAGE_SIZE, index_page_key, learner_index_key
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


def _state_calls(daprd: ScriptedDaprd) -> list[str]:
    return [call for call in daprd.calls if "/publish/" not in call]


async def test_a_saved_lesson_is_found_by_one_lookup_with_the_index_head_and_other_key(
    store: LessonStore, daprd: ScriptedDaprd, record: LessonRecord
) -> None:
    learner = record.learner_id
    daprd.put("llm-budget", {"spent": 1})
    await store.save_new(record, "cache-key-1")
    daprd.calls.clear()

    found = await store.lookup("cache-key-1", learner, "llm-budget")

    assert found.lesson == record
    assert found.claimed is False
    assert set(found.read) == {
        cache_pointer_key("cache-key-1"),
        learner_index_key(learner),
        "llm-budget",
    }
    assert _state_calls(daprd) == [f"POST {STATE}/bulk"]


async def test_a_lookup_says_whether_the_lesson_is_claimed(
    store: LessonStore, daprd: ScriptedDaprd
) -> None:
    assert (await store.lookup("cache-key-1", "ada", "budget")).claimed is False
    daprd.put(generation_claim_key("cache-key-1"), {"holder": "another request"})

    found = await store.lookup("cache-key-1", "ada", "budget")

    assert (found.lesson, found.claimed) == (None, True)


async def test_a_lesson_saved_after_its_lookup_is_committed_without_a_read_with_what_else_is_given(
    store: LessonStore, daprd: ScriptedDaprd, record: LessonRecord
) -> None:
    claim = Claim("cache-key-1")
    daprd.put(claim.key, {"holder": claim.holder})
    found = await store.lookup("cache-key-1", record.learner_id, "budget")
    daprd.calls.clear()

    await store.save_new(record, "cache-key-1", found.read, also=[claim.releasing()])

    assert _state_calls(daprd) == [f"POST {STATE}/transaction"]
    index = daprd.state[learner_index_key(record.learner_id)][0]
    assert index == {
        "lessons": [{"lesson_id": record.lesson_id, "topic": record.topic.casefold()}],
        "pages": 0,
    }
    assert claim.key not in daprd.state  # released in the same transaction
    assert daprd.state[lesson_key(record.lesson_id)][0]["lesson_id"] == record.lesson_id


async def test_an_index_changed_since_the_lookup_is_read_again_and_kept(
    store: LessonStore, daprd: ScriptedDaprd, record: LessonRecord
) -> None:
    found = await store.lookup("cache-key-1", record.learner_id, "budget")
    # Another lesson of the same learner (another cache key) is indexed meanwhile.
    daprd.put(learner_index_key(record.learner_id), {"lessons": [{"lesson_id": "x", "topic": "t"}]})

    await store.save_new(record, "cache-key-1", found.read)

    index = daprd.state[learner_index_key(record.learner_id)][0]
    assert [e["lesson_id"] for e in index["lessons"]] == [record.lesson_id, "x"]


async def test_a_pointer_stored_before_it_carried_the_lesson_still_finds_it(
    store: LessonStore, daprd: ScriptedDaprd, record: LessonRecord
) -> None:
    daprd.put(lesson_key(record.lesson_id), record.model_dump(mode="json"))
    daprd.put(cache_pointer_key("old"), {"lesson_id": record.lesson_id})

    assert (await store.lookup("old", "ada", "other")).lesson == record
    assert (await store.lookup("never-stored", "ada", "other")).lesson is None


async def _save_many(store: LessonStore, record: LessonRecord, count: int) -> list[str]:
    """``count`` lessons of ``record``'s learner, topics "even" and "odd"; their ids, oldest
    first."""
    ids = []
    for n in range(count):
        lesson = record.model_copy(
            update={"lesson_id": f"l{n:04d}", "topic": ("even", "odd")[n % 2]}
        )
        await store.save_new(lesson, f"cache-{n}")
        ids.append(lesson.lesson_id)
    return ids


async def test_lessons_list_newest_first_across_the_index_pages_by_cursor_and_topic(
    store: LessonStore, daprd: ScriptedDaprd, record: LessonRecord
) -> None:
    learner = record.learner_id
    ids = await _save_many(store, record, 2 * HEAD_PAGE_SIZE + 7)
    assert index_page_key(learner, 1) in daprd.state  # two full pages behind the head

    listed: list[str] = []
    cursor = None
    while True:
        page, cursor = await store.page(learner, None, cursor, limit=30)
        listed += [r.lesson_id for r in page]
        if cursor is None:
            break
    assert listed == ids[::-1]

    odd, _ = await store.page(learner, "ODD", None, limit=1000)
    assert [r.lesson_id for r in odd] == ids[1::2][::-1]


async def test_a_list_the_head_fills_reads_no_older_page(
    store: LessonStore, daprd: ScriptedDaprd, record: LessonRecord
) -> None:
    ids = await _save_many(store, record, HEAD_PAGE_SIZE + 20)  # 20 in the head
    daprd.calls.clear()

    page, cursor = await store.page(record.learner_id, None, None, limit=10)

    assert [r.lesson_id for r in page] == ids[::-1][:10]
    assert cursor is not None
    # The head, then the ten lessons: no page behind the head.
    assert _state_calls(daprd) == [
        f"GET {STATE}/{learner_index_key(record.learner_id)}",
        f"POST {STATE}/bulk",
    ]
