"""A learner's lesson index, newest first, kept in pages so that what every cache lookup reads
stays small: the head page, and full pages behind it numbered from the oldest.

A lesson joins the head. When the head is full, the same transaction moves its entries, whole,
to the next page number, and drops the page that falls beyond the cap.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from learnflow_service_kit.sidecar_client import Delete, StateEntry, StateOperation, Upsert

HEAD_PAGE_SIZE = 50
# The index keeps about a learner's newest INDEX_CAP lessons; older ones stay readable by id.
INDEX_CAP = 1000
PAGES_BEHIND_HEAD = INDEX_CAP // HEAD_PAGE_SIZE - 1

IndexEntry = dict[str, Any]  # {"lesson_id": ..., "topic": <casefolded>}


def learner_index_key(learner_id: str) -> str:
    return f"learner-lessons-{learner_id}"


def index_page_key(learner_id: str, number: int) -> str:
    return f"learner-lessons-{learner_id}-page-{number}"


def head_entries(head: StateEntry | None) -> list[IndexEntry]:
    return list(head.value["lessons"]) if head else []


def _pages_behind(head: StateEntry | None) -> int:
    # A head written before the index had pages has none behind it (and may hold up to the cap).
    return int(head.value.get("pages", 0)) if head else 0


def adding(learner_id: str, head: StateEntry | None, entry: IndexEntry) -> list[StateOperation]:
    """The writes that put ``entry`` first in the index whose head was read as ``head``; the head
    is written under its ETag, so a concurrent addition makes the transaction a lost race."""
    entries, pages = head_entries(head), _pages_behind(head)
    operations: list[StateOperation] = []
    if len(entries) >= HEAD_PAGE_SIZE:
        operations.append(Upsert(index_page_key(learner_id, pages), {"lessons": entries}))
        beyond_cap = pages - PAGES_BEHIND_HEAD
        if beyond_cap >= 0:
            operations.append(Delete(index_page_key(learner_id, beyond_cap)))
        entries, pages = [], pages + 1
    operations.append(
        Upsert(
            learner_index_key(learner_id),
            {"lessons": [entry, *entries], "pages": pages},
            etag=head.etag if head else None,
            new_only=head is None,
        )
    )
    return operations


def older_page_keys(learner_id: str, head: StateEntry | None) -> list[str]:
    """The keys of the pages behind ``head``, newest first."""
    newest = _pages_behind(head) - 1
    oldest = max(0, newest - PAGES_BEHIND_HEAD + 1)
    return [index_page_key(learner_id, n) for n in range(newest, oldest - 1, -1)]


def all_entries(
    head: StateEntry | None, older_keys: Sequence[str], pages: Mapping[str, StateEntry]
) -> list[IndexEntry]:
    """The whole index, newest first: the head, then the pages read (a missing one is skipped)."""
    entries = head_entries(head)
    for key in older_keys:
        if key in pages:
            entries.extend(pages[key].value["lessons"])
    return entries
