"""An application-level outbox in the Dapr state store.

Why not Dapr's own transactional outbox: it publishes to an internal topic *before* committing,
so while Kafka is down the state transaction fails too, and we would have to refuse the write.
Here a pending event is written in the same state transaction as the business data, into one of
a few shard documents (Postgres v2 has no query API, so pending events must live under keys we
can enumerate). After commit the event is published in the background, off the request path (a
frozen broker never slows an answer whose data is already committed); whatever is still pending
is published by a periodic relay, which backs off while the broker fails. Delivery is
at-least-once with a stable CloudEvent id, so consumers dedupe.
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
    EtagMismatch,
    PublishFailed,
    SidecarClient,
    SidecarUnavailable,
    StateEntry,
    StateStoreUnavailable,
    Upsert,
)

log = structlog.get_logger()

SHARDS = 8
_CAS_ATTEMPTS = 20
# The relay leaves an event this young to whoever staged it: their publish (1.5 s at most) and
# unstaging (0.5 s) are under way, and a second publish would only be a duplicate.
RELAY_GRACE_SECONDS = 3.0
# How long a published event waits to be unstaged by a write of its own: the next event staged
# in its shard takes it out for free meanwhile. Well under any relay interval, so another
# replica's relay rarely republishes it (a consumer would dedupe it if it did).
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


SHARD_KEYS = tuple(f"outbox-shard-{shard}" for shard in range(SHARDS))


def outbox_shard_key(event_id: str) -> str:
    return SHARD_KEYS[int(hashlib.sha256(event_id.encode()).hexdigest()[:8], 16) % SHARDS]


Build = Callable[[Mapping[str, StateEntry]], Sequence[Upsert]]


class Outbox:
    def __init__(
        self,
        dapr: SidecarClient,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._dapr = dapr
        self._backoff = backoff or Backoff()
        self._clock = clock
        self._publishing: set[asyncio.Task[bool]] = set()
        self._to_forget: dict[str, set[str]] = {}  # shard key -> ids published, still staged
        self._forgetting: asyncio.Task[None] | None = None

    async def commit_with(self, reads: Sequence[str], build: Build, event: OutboxEvent) -> None:
        """Commit what ``build`` makes of the current entries of the ``reads`` keys, and stage
        ``event``, atomically. The keys and the event's shard are read in one bulk GET.

        After a lost optimistic-concurrency race everything is read and built again, so
        ``build`` must carry the ETags of what it depends on.
        """
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
            return
        raise StateStoreUnavailable(f"state too contended around {shard_key}; retry later")

    def publish_soon(self, event: OutboxEvent) -> None:
        """After commit: publish in the background, unless the broker is failing lately (then
        the relay publishes it once its backoff ends)."""
        if not self._backoff.ready():
            return
        task = asyncio.ensure_future(self.publish_now(event))
        self._publishing.add(task)
        task.add_done_callback(self._publishing.discard)

    async def drain(self) -> None:
        """Wait for background publishes and the removal of what they published (shutdown,
        tests)."""
        await asyncio.gather(*self._publishing, return_exceptions=True)
        if self._forgetting is not None:
            await asyncio.gather(self._forgetting, return_exceptions=True)

    async def publish_now(self, event: OutboxEvent) -> bool:
        """Best-effort immediate delivery after commit; the relay covers any failure."""
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
        self._forget_soon(event.event_id)
        return True

    def _forget_soon(self, event_id: str) -> None:
        """Unstage a published event with the next event staged in its shard, or else with the
        others published meanwhile: one read of every shard in the batch and one write per
        shard, instead of two round trips per event."""
        self._to_forget.setdefault(outbox_shard_key(event_id), set()).add(event_id)
        if self._forgetting is None or self._forgetting.done():
            self._forgetting = asyncio.ensure_future(self._forget_batches())

    async def _forget_batches(self) -> None:
        while any(self._to_forget.values()):
            await asyncio.sleep(_FORGET_BATCH_SECONDS)
            batch, self._to_forget = self._to_forget, {}
            # Some may have been taken out by a staging write meanwhile.
            batch = {shard_key: ids for shard_key, ids in batch.items() if ids}
            try:
                shards = await self._dapr.get_bulk_state(list(batch))
            except (SidecarUnavailable, StateStoreUnavailable) as error:
                log.warning("outbox entries left for the relay", error=str(error))
                continue
            for shard_key, event_ids in batch.items():
                try:
                    await self._forget(shard_key, event_ids, shards.get(shard_key))
                except (SidecarUnavailable, StateStoreUnavailable) as error:
                    # Published but still staged: the relay republishes, consumers dedupe.
                    log.warning("outbox entries left for the relay", error=str(error))

    def backoff_seconds(self) -> float:
        return self._backoff.remaining()

    async def relay_once(self) -> int:
        """Publish everything pending in every shard; returns how many were published.

        Every shard is read in one bulk GET. The pass stops at the first failed publish: the
        broker is down, and every further attempt would only cost a timeout and maybe a
        duplicate delivered later. Events staged less than RELAY_GRACE_SECONDS ago are left to
        their stager.
        """
        published = 0
        pending = 0
        broker_failing = False
        shards = await self._dapr.get_bulk_state(SHARD_KEYS)
        for key in SHARD_KEYS:
            entry = shards.get(key)
            done: set[str] = set()
            for raw in entry.value["events"] if entry else []:
                if raw["event_id"] in self._to_forget.get(key, ()):
                    continue  # published already, about to be unstaged
                if self._clock() - raw.get("staged_at", 0.0) < RELAY_GRACE_SECONDS:
                    pending += 1
                    continue  # its stager (maybe another replica) is still publishing it
                if broker_failing:
                    pending += 1
                    continue
                event = OutboxEvent.from_json(raw)
                try:
                    await self._dapr.publish(
                        event.topic, event.data, event.event_id, event.partition_key
                    )
                except (PublishFailed, SidecarUnavailable):
                    PUBLISH_FAILURES.inc()
                    self._backoff.failed()
                    broker_failing = True
                    pending += 1
                    continue
                self._backoff.succeeded()
                PUBLISHED.labels(event.topic).inc()
                done.add(event.event_id)
            if done:
                await self._forget(key, done, entry)
                published += len(done)
        PENDING.set(pending)
        return published

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
