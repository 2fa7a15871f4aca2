"""Lessons, the per-learner lesson index, cache pointers and idempotency records, in the
Dapr state store. Postgres v2 has no query API, so every read is by a key we can compute."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from learnflow_contracts.names import LESSON_GENERATED_TOPIC
from learnflow_service_kit.errors import ServiceError
from learnflow_service_kit.outbox import Outbox, OutboxEvent
from learnflow_service_kit.sidecar_client import (
    SidecarClient,
    StateEntry,
    StateOperation,
    Upsert,
)

from course_agent import lesson_index
from course_agent.generation_claim import generation_claim_key
from course_agent.lesson_index import IndexEntry, learner_index_key
from course_agent.lesson_record import LessonRecord


def new_lesson_id() -> str:
    """A new lesson's id: the key adds the ``lesson-`` namespace, so the id itself does not
    (lessons stored before had ids ``lesson-<hex>``, keys ``lesson-lesson-<hex>``; both read)."""
    return uuid.uuid4().hex


def lesson_key(lesson_id: str) -> str:
    return f"lesson-{lesson_id}"


def cache_pointer_key(cache_key: str) -> str:
    return f"lesson-cache-{cache_key}"


def idempotency_record_key(learner_id: str, key_digest: str) -> str:
    return f"idempotency-{learner_id}-{key_digest}"


@dataclass(frozen=True)
class CacheLookup:
    """What one read found for a cache key: the lesson, or whether another request is generating
    it; and every entry read (the learner's index head, the other key asked for), for the
    writes that follow."""

    lesson: LessonRecord | None
    claimed: bool
    read: Mapping[str, StateEntry]


@dataclass(frozen=True)
class IdempotencyRecord:
    body_digest: str
    lesson_id: str
    status: int


def encode_cursor(lesson_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": lesson_id}).encode()).decode()


def decode_cursor(cursor: str) -> str:
    try:
        after = json.loads(base64.urlsafe_b64decode(cursor.encode()))["after"]
    except (binascii.Error, ValueError, KeyError, TypeError) as bad:
        raise ServiceError(422, "invalid_cursor", "cursor: not a cursor this API returned") from bad
    if not isinstance(after, str):
        raise ServiceError(422, "invalid_cursor", "cursor: not a cursor this API returned")
    return after


class LessonStore:
    def __init__(
        self,
        dapr: SidecarClient,
        outbox: Outbox,
        cache_ttl_seconds: int,
        idempotency_ttl_seconds: int,
    ) -> None:
        self._dapr = dapr
        self._outbox = outbox
        self._cache_ttl = cache_ttl_seconds
        self._idempotency_ttl = idempotency_ttl_seconds

    async def get(self, lesson_id: str) -> LessonRecord | None:
        entry = await self._dapr.get_state(lesson_key(lesson_id))
        return LessonRecord.model_validate(entry.value) if entry else None

    async def _lesson_of(self, pointer: StateEntry | None) -> LessonRecord | None:
        # A pointer carries a copy of its (immutable) lesson, so a cache hit is one read;
        # pointers written before the copy existed name the lesson only.
        if pointer is None:
            return None
        if "lesson" in pointer.value:
            return LessonRecord.model_validate(pointer.value["lesson"])
        return await self.get(pointer.value["lesson_id"])

    async def lookup(self, cache_key: str, learner_id: str, other_key: str) -> CacheLookup:
        """The cache pointer, the generation claim, the learner's index head and ``other_key``,
        in one bulk GET."""
        pointer_key, claim_key = cache_pointer_key(cache_key), generation_claim_key(cache_key)
        found = await self._dapr.get_bulk_state(
            [pointer_key, claim_key, learner_index_key(learner_id), other_key]
        )
        lesson = await self._lesson_of(found.get(pointer_key))
        return CacheLookup(lesson, claim_key in found, found)

    async def save_new(
        self,
        record: LessonRecord,
        cache_key: str,
        read: Mapping[str, StateEntry] | None = None,
        also: Sequence[StateOperation] = (),
    ) -> None:
        """Store the lesson, index it, point the cache at it, stage its event and apply ``also``
        — atomically. ``read``: the learner's index head as ``lookup`` read it (it is read again
        if it changed since).

        Then publish the event in the background; if the broker is down the outbox relay
        publishes it later.
        """
        index_key = learner_index_key(record.learner_id)
        entry: IndexEntry = {"lesson_id": record.lesson_id, "topic": record.topic.casefold()}
        document = record.model_dump(mode="json")

        def operations(found: Mapping[str, StateEntry]) -> list[StateOperation]:
            return [
                Upsert(lesson_key(record.lesson_id), document),
                Upsert(
                    cache_pointer_key(cache_key),
                    {"lesson_id": record.lesson_id, "lesson": document},
                    ttl_seconds=self._cache_ttl,
                ),
                *lesson_index.adding(record.learner_id, found.get(index_key), entry),
                *also,
            ]

        event = OutboxEvent(
            event_id=record.lesson_id,
            topic=LESSON_GENERATED_TOPIC,
            data=record.generated_event().model_dump(mode="json"),
            partition_key=record.learner_id,
        )
        staged = await self._outbox.commit_with([index_key], operations, event, read)
        self._outbox.publish_soon(staged)

    async def page(
        self, learner_id: str, topic: str | None, cursor: str | None, limit: int
    ) -> tuple[list[LessonRecord], str | None]:
        """A learner's lessons, newest first, optionally of one topic (case-insensitive). The
        index's older pages are read only when its head does not fill the page."""
        after = decode_cursor(cursor) if cursor is not None else None
        head = await self._dapr.get_state(learner_index_key(learner_id))
        entries = _listed(lesson_index.head_entries(head), topic, after)
        older = lesson_index.older_page_keys(learner_id, head)
        if older and (entries is None or len(entries) <= limit):
            pages = await self._dapr.get_bulk_state(older)
            entries = _listed(lesson_index.all_entries(head, older, pages), topic, after)
        entries = entries or []
        window = entries[:limit]
        found = await self._dapr.get_bulk_state([lesson_key(e["lesson_id"]) for e in window])
        records = [
            LessonRecord.model_validate(found[lesson_key(e["lesson_id"])].value)
            for e in window
            if lesson_key(e["lesson_id"]) in found
        ]
        more = len(entries) > limit
        return records, encode_cursor(window[-1]["lesson_id"]) if more and window else None

    async def idempotency_record(
        self, learner_id: str, key_digest: str
    ) -> IdempotencyRecord | None:
        entry = await self._dapr.get_state(idempotency_record_key(learner_id, key_digest))
        return IdempotencyRecord(**entry.value) if entry else None

    async def remember_idempotency_record(
        self, learner_id: str, key_digest: str, record: IdempotencyRecord
    ) -> None:
        await self._dapr.transact(
            [
                Upsert(
                    idempotency_record_key(learner_id, key_digest),
                    {
                        "body_digest": record.body_digest,
                        "lesson_id": record.lesson_id,
                        "status": record.status,
                    },
                    ttl_seconds=self._idempotency_ttl,
                )
            ]
        )


def _listed(
    entries: list[IndexEntry], topic: str | None, after: str | None
) -> list[IndexEntry] | None:
    """The entries of ``topic`` that follow the lesson ``after``; None if ``after`` is not among
    ``entries``."""
    if topic is not None:
        entries = [e for e in entries if e["topic"] == topic.casefold()]
    if after is None:
        return entries
    positions = [i for i, e in enumerate(entries) if e["lesson_id"] == after]
    return entries[positions[0] + 1 :] if positions else None
