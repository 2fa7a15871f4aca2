"""An application-level outbox in the Dapr state store.

Why not Dapr's own transactional outbox: it publishes to an internal topic *before* committing,
so while Kafka is down the state transaction fails too, and we would have to refuse the write.
Here a pending event is written in the same state transaction as the business data. After
commit it is published in the background, off the request path (a frozen broker never slows an
answer whose data is already committed); whatever is still pending is published by a periodic
relay, which backs off while the broker fails. Delivery is at-least-once with a stable
CloudEvent id, so consumers dedupe.

Where a pending event waits: Postgres v2 has no query API, so under keys we can enumerate.
- **A slot** of its own, ``outbox-slot-<n>``, inserted with first-write concurrency: nothing is
  read first, and no two writers contend unless they pick the same free slot (then the loser
  picks another). Unstaging is an ETag-checked delete, so a slot refilled since is left alone.
- **A shard** document, ``outbox-shard-<n>``, holding a list, when no free slot is found (a long
  broker outage filled them): read and rewritten under its ETag, so writers to one shard
  contend, but a shard never fills. No event is refused for want of room.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from prometheus_client import Counter, Gauge

from learnflow_service_kit.backoff import Backoff
from learnflow_service_kit.sidecar_client import (
    Delete,
    EtagMismatch,
    PublishFailed,
    SidecarClient,
    SidecarUnavailable,
    StateEntry,
    StateOperation,
    StateStoreUnavailable,
    Upsert,
)

log = structlog.get_logger()

# Every replica and every version must agree on these: the relay reads exactly these keys.
SLOTS = 1024
SHARDS = 8
_CAS_ATTEMPTS = 20
# Random picks for a slot not known to be taken, and taken slots met by one commit, before its
# event goes to a shard instead.
_SLOT_PICKS = 8
_SLOT_COLLISIONS = 2
# The relay leaves an event this young to whoever staged it: their publish (1.5 s at most) and
# unstaging (1 s) are under way, and a second publish would only be a duplicate.
RELAY_GRACE_SECONDS = 3.0
# How long a published event waits to be unstaged, so that one read and one write unstage many.
# A shard's events also leave for free with the next event staged in their shard meanwhile.
# Well under the relay's grace, so another replica's relay rarely republishes one (a consumer
# would dedupe it if it did).
_FORGET_BATCH_SECONDS = 1.0

PUBLISHED = Counter("outbox_events_published_total", "Outbox events published", ["topic"])
PUBLISH_FAILURES = Counter("outbox_publish_failures_total", "Failed outbox publish attempts")
PENDING = Gauge("outbox_pending_events", "Events pending in the outbox at the last relay pass")


@dataclass(frozen=True)
class OutboxEvent:
    event_id: str
    topic: str
    data: dict[str, Any]
    partition_key: str | None = None  # the Kafka key: one learner's events stay in order

    def as_json(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "topic": self.topic,
            "data": self.data,
            "partition_key": self.partition_key,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> OutboxEvent:
        return cls(raw["event_id"], raw["topic"], raw["data"], raw.get("partition_key"))


SLOT_KEYS = tuple(f"outbox-slot-{slot}" for slot in range(SLOTS))
SHARD_KEYS = tuple(f"outbox-shard-{shard}" for shard in range(SHARDS))
_SLOT_PREFIX = "outbox-slot-"


def outbox_shard_key(event_id: str) -> str:
    return SHARD_KEYS[int(hashlib.sha256(event_id.encode()).hexdigest()[:8], 16) % SHARDS]


def _is_slot(key: str) -> bool:
    return key.startswith(_SLOT_PREFIX)


def _staged_events(key: str, entry: StateEntry) -> list[dict[str, Any]]:
    """The events waiting under ``key``: a slot holds one, a shard a list."""
    return [entry.value] if _is_slot(key) else list(entry.value["events"])


@dataclass(frozen=True)
class StagedEvent:
    event: OutboxEvent
    key: str  # the slot or shard it waits in


Build = Callable[[Mapping[str, StateEntry]], Sequence[StateOperation]]
Staged = dict[str, set[str]]  # slot or shard key -> event ids


class Outbox:
    def __init__(
        self,
        dapr: SidecarClient,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.time,
        slots: int = SLOTS,  # fewer only in tests, to reach the shards
        pick: Callable[[Sequence[str]], str] = random.choice,  # a slot to try
    ) -> None:
        self._dapr = dapr
        self._backoff = backoff or Backoff()
        self._clock = clock
        self._slots = SLOT_KEYS[:slots]
        self._pick = pick
        self._publishing: set[asyncio.Task[bool]] = set()
        self._to_forget: Staged = {}  # published, still staged
        self._forgetting: asyncio.Task[None] | None = None
        # Slots known to be taken: as the last relay pass read them, plus what we staged and
        # the slots we lost since. Picking around them keeps first-write collisions rare.
        self._taken_slots: set[str] = set()

    async def commit_with(
        self,
        reads: Sequence[str],
        build: Build,
        event: OutboxEvent,
        read: Mapping[str, StateEntry] | None = None,
    ) -> StagedEvent:
        """Commit what ``build`` makes of the current entries of the ``reads`` keys, and stage
        ``event``, atomically. ``read``: those entries if the caller read them already.

        After a lost optimistic-concurrency race everything is read and built again, so
        ``build`` must carry the ETags of what it depends on.
        """
        found = read
        for _ in range(_SLOT_COLLISIONS):
            slot = self._free_slot()
            if slot is None:
                break
            if found is None:
                found = await self._dapr.get_bulk_state(reads) if reads else {}
            self._taken_slots.add(slot)
            staged = Upsert(slot, {**event.as_json(), "staged_at": self._clock()}, new_only=True)
            try:
                await self._dapr.transact([*build(found), staged])
            except EtagMismatch:
                # The slot was taken, or a key read has changed: read again, pick another slot.
                found = None
                await asyncio.sleep(random.uniform(0, 0.02))
                continue
            return StagedEvent(event, slot)
        return await self._commit_in_shard(reads, build, event)

    def _free_slot(self) -> str | None:
        for _ in range(_SLOT_PICKS if self._slots else 0):
            slot = self._pick(self._slots)
            if slot not in self._taken_slots:
                return slot
        return None

    async def _commit_in_shard(
        self, reads: Sequence[str], build: Build, event: OutboxEvent
    ) -> StagedEvent:
        shard_key = outbox_shard_key(event.event_id)
        for _ in range(_CAS_ATTEMPTS):
            found = await self._dapr.get_bulk_state([*reads, shard_key])
            shard = found.get(shard_key)
            # What this process published from the shard leaves with this write, for free.
            published = set(self._to_forget.get(shard_key, ()))
            stored = shard.value["events"] if shard else []
            events = [e for e in stored if e["event_id"] not in published]
            if all(e["event_id"] != event.event_id for e in events):
                events.append({**event.as_json(), "staged_at": self._clock()})
            staged = Upsert(
                shard_key,
                {"events": events},
                etag=shard.etag if shard else None,
                new_only=shard is None,
            )
            try:
                await self._dapr.transact([*build(found), staged])
            except EtagMismatch:
                await asyncio.sleep(random.uniform(0, 0.02))
                continue
            self._to_forget.get(shard_key, set()).difference_update(published)
            return StagedEvent(event, shard_key)
        raise StateStoreUnavailable(f"state too contended around {shard_key}; retry later")

    def publish_soon(self, staged: StagedEvent) -> None:
        """After commit: publish in the background, unless the broker is failing lately (then
        the relay publishes it once its backoff ends)."""
        if not self._backoff.ready():
            return
        task = asyncio.ensure_future(self.publish_now(staged))
        self._publishing.add(task)
        task.add_done_callback(self._publishing.discard)

    async def drain(self) -> None:
        """Wait for background publishes and the removal of what they published (shutdown,
        tests)."""
        await asyncio.gather(*self._publishing, return_exceptions=True)
        if self._forgetting is not None:
            await asyncio.gather(self._forgetting, return_exceptions=True)

    async def publish_now(self, staged: StagedEvent) -> bool:
        """Best-effort immediate delivery after commit; the relay covers any failure."""
        event = staged.event
        try:
            await self._dapr.publish(event.topic, event.data, event.event_id, event.partition_key)
        except (PublishFailed, SidecarUnavailable) as error:
            PUBLISH_FAILURES.inc()
            self._backoff.failed()
            log.warning(
                "publish deferred to outbox relay", event_id=event.event_id, error=str(error)
            )
            return False
        self._backoff.succeeded()
        PUBLISHED.labels(event.topic).inc()
        self._forget_soon(staged)
        return True

    def _forget_soon(self, staged: StagedEvent) -> None:
        """Unstage a published event together with the others published meanwhile: one read of
        all their keys and one write for the slots (and one per shard), not two per event."""
        self._to_forget.setdefault(staged.key, set()).add(staged.event.event_id)
        if self._forgetting is None or self._forgetting.done():
            self._forgetting = asyncio.ensure_future(self._forget_batches())

    async def _forget_batches(self) -> None:
        while any(self._to_forget.values()):
            await asyncio.sleep(_FORGET_BATCH_SECONDS)
            batch, self._to_forget = self._to_forget, {}
            # A shard's may have been taken out by a staging write meanwhile.
            batch = {key: ids for key, ids in batch.items() if ids}
            try:
                await self._unstage(batch, await self._dapr.get_bulk_state(list(batch)))
            except (SidecarUnavailable, StateStoreUnavailable) as error:
                # Published but still staged: the relay republishes, consumers dedupe.
                log.warning("outbox entries left for the relay", error=str(error))

    def backoff_seconds(self) -> float:
        return self._backoff.remaining()

    async def relay_once(self) -> int:
        """Publish everything pending, oldest first; returns how many were published.

        Every slot and shard is read in one bulk GET. The pass stops at the first failed
        publish: the broker is down, and every further attempt would only cost a timeout and
        maybe a duplicate delivered later. Events staged less than RELAY_GRACE_SECONDS ago are
        left to their stager.
        """
        keys = [*self._slots, *SHARD_KEYS]
        found = await self._dapr.get_bulk_state(keys)
        self._taken_slots = {k for k in self._slots if k in found} | {
            k for k in self._to_forget if _is_slot(k)
        }
        waiting = sorted(
            ((raw, key) for key in keys if key in found for raw in _staged_events(key, found[key])),
            key=lambda item: float(item[0].get("staged_at", 0.0)),
        )
        published: Staged = {}
        pending = 0
        broker_failing = False
        for raw, key in waiting:
            if raw["event_id"] in self._to_forget.get(key, ()):
                continue  # published already, about to be unstaged
            young = self._clock() - raw.get("staged_at", 0.0) < RELAY_GRACE_SECONDS
            # A young event's stager (maybe another replica) is still publishing it.
            if young or broker_failing:
                pending += 1
                continue
            if not await self._relay(raw):
                broker_failing = True
                pending += 1
                continue
            published.setdefault(key, set()).add(raw["event_id"])
        await self._unstage(published, found)
        PENDING.set(pending)
        return sum(len(ids) for ids in published.values())

    async def _relay(self, raw: dict[str, Any]) -> bool:
        event = OutboxEvent.from_json(raw)
        try:
            await self._dapr.publish(event.topic, event.data, event.event_id, event.partition_key)
        except (PublishFailed, SidecarUnavailable):
            PUBLISH_FAILURES.inc()
            self._backoff.failed()
            return False
        self._backoff.succeeded()
        PUBLISHED.labels(event.topic).inc()
        return True

    async def _unstage(self, published: Staged, found: Mapping[str, StateEntry]) -> None:
        """Remove ``published`` from the slots and shards as read in ``found``."""
        slots = {key: ids for key, ids in published.items() if _is_slot(key)}
        if slots:
            await self._free_slots(slots, found)
        for key, ids in published.items():
            if not _is_slot(key):
                await self._forget(key, ids, found.get(key))

    async def _free_slots(self, slots: Staged, found: Mapping[str, StateEntry]) -> None:
        """Delete the slots that still hold the events published from them, in one transaction
        of ETag-checked deletes; after a lost race, as read again."""
        for _ in range(_CAS_ATTEMPTS):
            deletes = [
                Delete(key, entry.etag or "")
                for key in slots
                if (entry := found.get(key)) is not None and entry.value["event_id"] in slots[key]
            ]
            if not deletes:
                return
            try:
                await self._dapr.transact(deletes)
            except EtagMismatch:
                await asyncio.sleep(random.uniform(0, 0.02))
                found = await self._dapr.get_bulk_state(list(slots))
                continue
            self._taken_slots.difference_update(slots)
            return
        # Leaving them is safe: the relay republishes and consumers dedupe on the event id.
        log.warning("outbox slots left for the relay", slots=len(slots))

    async def _forget(self, shard_key: str, event_ids: set[str], shard: StateEntry | None) -> None:
        """Unstage ``event_ids`` from the shard as it was read (``shard``); after a lost race,
        from the shard read again."""
        for _ in range(_CAS_ATTEMPTS):
            if shard is None:
                return
            remaining = [e for e in shard.value["events"] if e["event_id"] not in event_ids]
            if len(remaining) == len(shard.value["events"]):
                return
            try:
                await self._dapr.transact(
                    [Upsert(shard_key, {"events": remaining}, etag=shard.etag)]
                )
                return
            except EtagMismatch:
                await asyncio.sleep(random.uniform(0, 0.02))
                shard = await self._dapr.get_state(shard_key)
        # Leaving it is safe: the relay republishes it and consumers dedupe on the event id.
        log.warning("outbox entry left for the relay", shard=shard_key)


async def run_relay(outbox: Outbox, interval_seconds: float, stop: asyncio.Event) -> None:
    """Relay loop for the app's lifespan; survives sidecar and broker outages, and waits out
    the publish backoff (1 s doubling to 15 s) while the broker fails."""
    while not stop.is_set():
        try:
            await outbox.relay_once()
        except (SidecarUnavailable, StateStoreUnavailable) as error:
            log.warning("outbox relay pass failed", error=str(error))
        with contextlib.suppress(TimeoutError):
            wait = max(interval_seconds, outbox.backoff_seconds())
            await asyncio.wait_for(stop.wait(), timeout=wait)
