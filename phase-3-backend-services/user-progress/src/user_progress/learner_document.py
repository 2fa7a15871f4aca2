"""The learner's progress as stored: one plain state document per learner, its lessons and
attempt ids spread over shards beside it, and what the reads derive from it, the projection and
the status.

The learner's actor is their only writer (one turn at a time, so without an ETag, as Dapr's
actor state is written), and it writes what changed in one transaction; the progress gateway
reads them too. They are not actor state because actor state cannot share a transaction with
the outbox's slot, and daprd's state API refuses actor-state keys (``||``), so nothing but the
actor could read it.

What grows with the learner's history is kept out of the one document every write carries: the
lessons and the applied attempt ids go to ``SHARDS`` shard keys by a hash of their id, and a
write rewrites the document and only the shards whose lessons or attempt ids changed. A learner
with 1,000 lessons had a 640 KiB document rewritten by every update. Reading it all is two calls
(the document, then its shards): the actor reads it once per activation, when no write of its
own is in flight; a read that derives from it outside the actor (below) can, for that one
answer, see a write land between the two.

The derived two are stored because they are read far more often than the document is written
(the projection by every lesson request), and derived on each read their cost grew with the
learner's history (28 ms of parsing for that learner). The projection stored is 1.5 KB whatever
the history; the status grows only with the learner's topics and active days.
"""

from __future__ import annotations

import time
import zlib
from bisect import insort
from collections.abc import Callable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, TypeVar

from learnflow_contracts.progress import ProgressProjectionV1
from learnflow_service_kit.sidecar_client import SidecarClient, Upsert
from pydantic import BaseModel, Field, field_validator

from user_progress.domain import (
    KnownLesson,
    LearnerProgress,
    LearnerStatus,
    empty_progress,
    learner_status,
    progress_projection,
)
from user_progress.domain.status import DERIVED_RULES, streak_days

T = TypeVar("T")


# Changing it would need every learner's shards rewritten: a document stored with another count
# is refused as unreadable rather than read wrong.
SHARDS = 32


def learner_progress_key(learner_id: str) -> str:
    return f"learner-progress-{learner_id}"


def learner_shard_key(learner_id: str, shard: int) -> str:
    return f"learner-progress-{learner_id}-shard-{shard}"


def shard_of(item_id: str) -> int:
    """The shard a lesson id or an attempt id is kept in (crc32: the same in every process)."""
    return zlib.crc32(item_id.encode()) % SHARDS


def learner_projection_key(learner_id: str) -> str:
    return f"learner-projection-{learner_id}"


def learner_status_key(learner_id: str) -> str:
    return f"learner-status-{learner_id}"


class StoredLearner(BaseModel):
    """The learner's state document. With ``shards``, its lessons and attempt ids are in the
    shard keys and ``progress`` has none; without (written before shards), it holds them."""

    progress: LearnerProgress
    shards: int | None = None

    @field_validator("shards")
    @classmethod
    def _this_many(cls, shards: int | None) -> int | None:
        if shards is not None and shards != SHARDS:
            raise ValueError(f"stored in {shards} shards; this version reads {SHARDS}")
        return shards


class ProgressShard(BaseModel):
    """The learner's lessons and applied attempt ids whose ids fall in one shard."""

    lessons: dict[str, KnownLesson] = Field(default_factory=dict)
    attempt_ids: list[str] = Field(default_factory=list)  # sorted: byte-stable JSON


# A shard's value as stored: ``ProgressShard.model_dump(mode="json")``.
ShardJson = dict[str, Any]


@dataclass(frozen=True)
class StoredShards:
    """What a learner's shard keys hold: each shard's stored JSON, and all their lessons and
    attempt ids at once. The actor keeps it beside the progress, so a write finds what changed
    without hashing every id of the history again (for a learner with 1,000 lessons and 3,000
    attempts that walk was half of an update's work in the app), and serialises only the lessons
    that changed: a changed shard is its held JSON with theirs replaced (serialising whole
    shards was half of what was left at 3,000 lessons).

    The JSON values are shared between a ``StoredShards`` and the one ``written`` derives from
    it, and with the writes: nothing may change them in place."""

    contents: Mapping[int, ShardJson]  # a shard not in it holds nothing
    lessons: Mapping[str, KnownLesson]
    attempt_ids: AbstractSet[str]

    @classmethod
    def read(cls, values: Mapping[int, Any]) -> StoredShards:
        """From the values of the learner's shard keys, by shard number."""
        shards = {shard: ProgressShard.model_validate(value) for shard, value in values.items()}
        lessons: dict[str, KnownLesson] = {}
        attempt_ids: set[str] = set()
        for shard in shards.values():
            lessons.update(shard.lessons)
            attempt_ids.update(shard.attempt_ids)
        contents = {number: shard.model_dump(mode="json") for number, shard in shards.items()}
        return cls(contents, lessons, attempt_ids)

    def written(self, progress: LearnerProgress) -> tuple[dict[int, ShardJson], StoredShards]:
        """The shards whose contents differ in ``progress``, with their new JSON, and what the
        shards hold once those are written. Lessons and attempt ids are only ever added, and
        lessons are copied on write (``domain.apply``), so an unchanged lesson is the very
        object the shards hold, and its held JSON is still its own."""
        changed: dict[int, ShardJson] = {}

        def shard(item_id: str) -> ShardJson:
            number = shard_of(item_id)
            if number not in changed:
                held = self.contents.get(number, _EMPTY_SHARD)
                changed[number] = {
                    "lessons": dict(held["lessons"]),
                    "attempt_ids": list(held["attempt_ids"]),
                }
            return changed[number]

        held_lessons = self.lessons
        for lesson_id, lesson in progress.lessons.items():
            if held_lessons.get(lesson_id) is not lesson:
                shard(lesson_id)["lessons"][lesson_id] = lesson.model_dump(mode="json")
        for attempt_id in progress.applied_attempt_ids - self.attempt_ids:
            insort(shard(attempt_id)["attempt_ids"], attempt_id)
        after = StoredShards(
            {**self.contents, **changed}, progress.lessons, progress.applied_attempt_ids
        )
        return changed, after


_EMPTY_SHARD: ShardJson = ProgressShard().model_dump(mode="json")


NO_SHARDS = StoredShards({}, {}, frozenset())


@dataclass(frozen=True)
class LoadedProgress:
    """The learner's progress as read, and what of it the shards hold: all of it, or nothing
    (a learner never written, or a document written before shards)."""

    progress: LearnerProgress
    shards: StoredShards


def assembled(document: StoredLearner, shards: StoredShards) -> LearnerProgress:
    """The learner's progress from their document and what their shard keys hold."""
    return document.progress.model_copy(
        update={
            "lessons": dict(shards.lessons),
            "applied_attempt_ids": set(shards.attempt_ids),
        }
    )


class StoredProjection(BaseModel):
    """The learner's projection, and the version of the rules that derived it."""

    rules: int
    projection: ProgressProjectionV1


class StoredStatus(BaseModel):
    """The learner's status as of its write, and what its streak is counted from when read."""

    rules: int
    status: LearnerStatus
    active_days: list[date]

    def as_of(self, now: datetime) -> LearnerStatus:
        """The status at ``now``: only the streak depends on the day."""
        today = now.astimezone(UTC).date()
        return self.status.model_copy(
            update={"streak_days": streak_days(set(self.active_days), today)}
        )


async def load_progress(
    sidecar: SidecarClient,
    learner_id: str,
    timeout: float | None = None,  # noqa: ASYNC109 - the caller's deadline, for both reads
) -> LoadedProgress:
    """The learner's stored progress: their document, then their shards if it has them. A
    learner never stored has none yet. Raises pydantic's ValidationError for a document or shard
    that is not progress."""
    deadline = None if timeout is None else time.monotonic() + timeout
    found = await sidecar.get_state(learner_progress_key(learner_id), timeout=timeout)
    if found is None:
        return LoadedProgress(empty_progress(learner_id), NO_SHARDS)
    document = StoredLearner.model_validate(found.value)
    if document.shards is None:
        return LoadedProgress(document.progress, NO_SHARDS)
    keys = [learner_shard_key(learner_id, shard) for shard in range(SHARDS)]
    left = None if deadline is None else max(deadline - time.monotonic(), 0.001)
    values = await sidecar.get_bulk_state(keys, timeout=left)
    shards = StoredShards.read(
        {shard: values[key].value for shard, key in enumerate(keys) if key in values}
    )
    return LoadedProgress(assembled(document, shards), shards)


async def read_progress(
    sidecar: SidecarClient,
    learner_id: str,
    timeout: float | None = None,  # noqa: ASYNC109 - the caller's deadline
) -> LearnerProgress:
    return (await load_progress(sidecar, learner_id, timeout)).progress


async def read_projection(
    sidecar: SidecarClient,
    learner_id: str,
    timeout: float,  # noqa: ASYNC109 - the caller's deadline, for both reads together
) -> ProgressProjectionV1:
    """The learner's stored projection, or, when none holds, one derived from their document
    (see ``_stored_or_derived``)."""

    def stored(value: Any) -> ProgressProjectionV1 | None:
        found = StoredProjection.model_validate(value)
        return found.projection if found.rules == DERIVED_RULES else None

    key = learner_projection_key(learner_id)
    return await _stored_or_derived(sidecar, learner_id, key, timeout, stored, progress_projection)


async def read_status(
    sidecar: SidecarClient,
    learner_id: str,
    timeout: float,  # noqa: ASYNC109 - the caller's deadline, for both reads together
    now: datetime,
) -> LearnerStatus:
    """The learner's status at ``now``: the stored one, its streak counted again, or, when none
    holds, one derived from their document (see ``_stored_or_derived``)."""

    def stored(value: Any) -> LearnerStatus | None:
        found = StoredStatus.model_validate(value)
        return found.as_of(now) if found.rules == DERIVED_RULES else None

    def derived(progress: LearnerProgress) -> LearnerStatus:
        return learner_status(progress, now)

    key = learner_status_key(learner_id)
    return await _stored_or_derived(sidecar, learner_id, key, timeout, stored, derived)


async def _stored_or_derived(
    sidecar: SidecarClient,
    learner_id: str,
    key: str,
    timeout: float,  # noqa: ASYNC109
    stored: Callable[[Any], T | None],
    derived: Callable[[LearnerProgress], T],
) -> T:
    """What ``key`` stores, read by ``stored``. A learner never written has nothing stored, and
    one last written before it was stored, or under other rules (``stored`` answers None), has
    nothing that holds: theirs is ``derived`` from the document, read in what is left of
    ``timeout``. Raises pydantic's ValidationError for a stored value that is not one."""
    deadline = time.monotonic() + timeout
    found = await sidecar.get_state(key, timeout=timeout)
    if found is not None and (value := stored(found.value)) is not None:
        return value
    left = max(deadline - time.monotonic(), 0.001)
    return derived(await read_progress(sidecar, learner_id, timeout=left))


def progress_writes(
    progress: LearnerProgress, status: LearnerStatus, shards: StoredShards
) -> tuple[list[Upsert], StoredShards]:
    """The writes that store ``progress``, its projection and its ``status`` (``learner_status``
    of it, now: the caller has it already, as its answer): the document, and the shards whose
    lessons or attempt ids differ from what ``shards`` holds; and what the shards hold once
    they are written."""
    learner_id = progress.learner_id
    bare = progress.model_copy(update={"lessons": {}, "applied_attempt_ids": set()})
    document = StoredLearner(progress=bare, shards=SHARDS).model_dump(mode="json")
    projection = StoredProjection(rules=DERIVED_RULES, projection=status.projection)
    stored_status = StoredStatus(
        rules=DERIVED_RULES, status=status, active_days=sorted(progress.active_days)
    )
    changed, shards_after = shards.written(progress)
    writes = [
        Upsert(learner_progress_key(learner_id), document),
        *(
            Upsert(learner_shard_key(learner_id, shard), content)
            for shard, content in sorted(changed.items())
        ),
        Upsert(learner_projection_key(learner_id), projection.model_dump(mode="json")),
        Upsert(learner_status_key(learner_id), stored_status.model_dump(mode="json")),
    ]
    return writes, shards_after
