"""The lesson index's pages: what a lookup reads stays one small head page, however many lessons
a learner has; a full head moves whole to the next page; the cap drops the oldest page."""

from course_agent.lesson_index import (
    HEAD_PAGE_SIZE,
    INDEX_CAP,
    PAGES_BEHIND_HEAD,
    adding,
    all_entries,
    index_page_key,
    learner_index_key,
    older_page_keys,
)
from learnflow_service_kit.sidecar_client import Delete, StateEntry, Upsert


def _entry(n: int) -> dict[str, str]:
    return {"lesson_id": f"l{n}", "topic": "t"}


def _head(entries: list[dict[str, str]], pages: int | None, etag: str = "7") -> StateEntry:
    value: dict[str, object] = {"lessons": entries}
    if pages is not None:
        value["pages"] = pages
    return StateEntry(value, etag)


def test_the_first_lesson_creates_the_head() -> None:
    assert adding("ada", None, _entry(1)) == [
        Upsert(learner_index_key("ada"), {"lessons": [_entry(1)], "pages": 0}, new_only=True)
    ]


def test_a_lesson_joins_a_head_with_room_under_its_etag() -> None:
    assert adding("ada", _head([_entry(1)], 2), _entry(2)) == [
        Upsert(learner_index_key("ada"), {"lessons": [_entry(2), _entry(1)], "pages": 2}, etag="7")
    ]


def test_a_full_head_moves_whole_to_the_next_page() -> None:
    full = [_entry(n) for n in range(HEAD_PAGE_SIZE, 0, -1)]

    assert adding("ada", _head(full, 2), _entry(99)) == [
        Upsert(index_page_key("ada", 2), {"lessons": full}),
        Upsert(learner_index_key("ada"), {"lessons": [_entry(99)], "pages": 3}, etag="7"),
    ]


def test_the_page_beyond_the_cap_is_dropped_with_the_move() -> None:
    full = [_entry(n) for n in range(HEAD_PAGE_SIZE)]
    operations = adding("ada", _head(full, PAGES_BEHIND_HEAD), _entry(99))

    assert operations[1] == Delete(index_page_key("ada", 0))
    assert (PAGES_BEHIND_HEAD + 1) * HEAD_PAGE_SIZE == INDEX_CAP


def test_a_head_from_before_pages_is_one_page_when_it_moves() -> None:
    legacy = [_entry(n) for n in range(INDEX_CAP)]

    operations = adding("ada", _head(legacy, None), _entry(-1))

    assert operations[0] == Upsert(index_page_key("ada", 0), {"lessons": legacy})
    assert older_page_keys("ada", _head(legacy, None)) == []


def test_the_pages_behind_the_head_are_listed_newest_first_and_read_in_that_order() -> None:
    head = _head([_entry(9)], 3)
    keys = older_page_keys("ada", head)
    assert keys == [index_page_key("ada", n) for n in (2, 1, 0)]
    pages = {
        keys[0]: StateEntry({"lessons": [_entry(8), _entry(7)]}, "1"),
        keys[2]: StateEntry({"lessons": [_entry(1)]}, "2"),  # page 1 is gone: skipped
    }

    assert all_entries(head, keys, pages) == [_entry(9), _entry(8), _entry(7), _entry(1)]
    many = _head([], PAGES_BEHIND_HEAD + 5)
    assert len(older_page_keys("ada", many)) == PAGES_BEHIND_HEAD
    assert older_page_keys("ada", many)[-1] == index_page_key("ada", 5)
