"""Draining an outbox backlog: after a broker outage, how fast User Progress's relay puts the
``progress-updated`` events that waited onto Kafka, and whether each learner's arrive in order.

The backlog is staged through the services' own ``Outbox`` on User Progress's sidecar, as its
updates stage events when the broker is down (slots first, a shard once the slots are taken),
each learner's events one after another. A Kafka consumer of the benchmark's own then reads the
topic: which events arrived, the broker's timestamps, and each learner's order on its partition.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from confluent_kafka import Consumer, KafkaException
from learnflow_contracts.events import ProgressUpdatedV1
from learnflow_contracts.names import PROGRESS_UPDATED_TOPIC
from learnflow_contracts.progress import ProgressProjectionV1
from learnflow_service_kit.outbox import SLOT_KEYS, Outbox, OutboxEvent
from learnflow_service_kit.sidecar_client import SidecarUnavailable, StateStoreUnavailable

from learnflow_stack.bench.cost import ScenarioCost, cost_between
from learnflow_stack.bench.load import log
from learnflow_stack.bench.requests import Target

OUTBOX_EVENTS = 2000  # at --requests 1.0; more than the outbox's slots, so shards fill too
EVENTS_PER_LEARNER = 5
_STAGERS = 8  # learners staged at once; each learner's events one after another
_POLL_SECONDS = 0.5
# The relay publishes in passes 2 s apart: a pause this long on the topic ends a pass.
_PASS_GAP_SECONDS = 1.0


@dataclass(frozen=True)
class OutboxDrainResult:
    events: int
    learners: int
    in_slots: int  # of ``events``; the rest waited in shards
    stage_seconds: float
    seen: int  # of ``events``, on Kafka by the end
    first_seen_seconds: float | None  # from the end of staging (the relay's grace is 3 s)
    all_seen_seconds: float | None
    publish_span_seconds: float | None  # first to last on Kafka, by the broker's timestamps
    busiest_pass: tuple[int, float]  # the relay pass that published most: events, seconds
    learners_out_of_order: int  # learners whose events reached Kafka in another order
    first_error: str | None = None
    cost: ScenarioCost | None = None  # per event

    @property
    def events_per_second(self) -> float:
        """The relay's publishing rate: its busiest pass's events over that pass's span."""
        events, seconds = self.busiest_pass
        return events / seconds if seconds > 0 else 0.0

    @property
    def errors(self) -> int:
        return (self.events - self.seen) + self.learners_out_of_order

    @classmethod
    def staging_failed(cls, events: int, learners: int, error: str) -> OutboxDrainResult:
        """Nothing staged: every event counts as missing."""
        return cls(
            events=events,
            learners=learners,
            in_slots=0,
            stage_seconds=0.0,
            seen=0,
            first_seen_seconds=None,
            all_seen_seconds=None,
            publish_span_seconds=None,
            busiest_pass=(0, 0.0),
            learners_out_of_order=0,
            first_error=f"staging: {error}",
        )


def backlog_event(event_id: str, learner_id: str, index: int) -> OutboxEvent:
    """A ``progress-updated`` event as User Progress stages it (a quiz, its projection)."""
    update = ProgressUpdatedV1(
        learner_id=learner_id,
        lesson_id=f"{learner_id}-lesson",
        attempt_id=event_id,
        kind="quiz",
        score=(index * 37) % 101,
        occurred_at=datetime.now(UTC),
        projection=ProgressProjectionV1(learner_id=learner_id, has_history=True),
    )
    return OutboxEvent(
        event_id=event_id,
        topic=PROGRESS_UPDATED_TOPIC,
        data=update.model_dump(mode="json"),
        partition_key=learner_id,
    )


def busiest_pass(stamps: Sequence[float]) -> tuple[int, float]:
    """(events, seconds from its first to its last) of the largest run of ``stamps`` with no
    pause of _PASS_GAP_SECONDS: one relay pass."""
    best = (0, 0.0)
    ordered = sorted(stamps)
    start = 0
    for end in range(1, len(ordered) + 1):
        if end == len(ordered) or ordered[end] - ordered[end - 1] > _PASS_GAP_SECONDS:
            best = max(best, (end - start, ordered[end - 1] - ordered[start]))
            start = end
    return best


def learners_out_of_order(
    staged: dict[str, list[str]], arrived: Sequence[tuple[str, int, int]]
) -> int:
    """How many learners' events (``staged``: learner -> event ids in staging order) arrived
    in another order; ``arrived``: (event id, partition, offset) as consumed."""
    position = {event_id: (partition, offset) for event_id, partition, offset in arrived}
    late = 0
    for event_ids in staged.values():
        seen = [position[e] for e in event_ids if e in position]
        late += seen != sorted(seen)
    return late


def _consume(
    bootstrap: str, wanted: set[str], deadline: float
) -> tuple[list[tuple[str, int, int]], list[float], str | None]:
    """Read the topic from its start until every ``wanted`` event id was seen or ``deadline``:
    (event id, partition, offset) in arrival order, the broker timestamps, the first error."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-outbox-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    arrived: dict[str, tuple[int, int]] = {}  # the first copy of each: partition, offset
    stamps: list[float] = []
    error: str | None = None
    try:
        consumer.subscribe([PROGRESS_UPDATED_TOPIC])
        while len(arrived) < len(wanted) and time.time() < deadline:
            message = consumer.poll(_POLL_SECONDS)
            if message is None:
                continue
            if message.error():
                error = error or str(message.error())
                continue
            try:
                event_id = json.loads(message.value() or b"{}").get("id")
            except ValueError:
                continue  # not a CloudEvent of ours
            if event_id in wanted and event_id not in arrived:
                arrived[event_id] = (message.partition(), message.offset())
                stamps.append(message.timestamp()[1] / 1000)
    except KafkaException as failure:
        error = error or str(failure)
    finally:
        consumer.close()
    return [(e, partition, offset) for e, (partition, offset) in arrived.items()], stamps, error


async def _stage(target: Target, staged: dict[str, list[OutboxEvent]]) -> int:
    """Stage every learner's events through a fresh ``Outbox`` on User Progress's sidecar;
    returns how many went into slots."""
    sidecar = target.progress.sidecar.client()
    outbox = Outbox(sidecar)
    in_slots = 0
    learners = iter(staged.items())

    async def stager() -> None:
        nonlocal in_slots
        for _, events in learners:
            for event in events:
                where = await outbox.commit_with([], lambda _: [], event)
                in_slots += where.key in SLOT_KEYS

    try:
        await asyncio.gather(*(stager() for _ in range(_STAGERS)))
    finally:
        await sidecar.aclose()
    return in_slots


async def measure_outbox_drain(target: Target, kafka_bootstrap: str) -> OutboxDrainResult:
    events = target.config.count(OUTBOX_EVENTS)
    learners = max(1, events // EVENTS_PER_LEARNER)
    staged: dict[str, list[OutboxEvent]] = {}
    for index in range(events):
        learner = target.id_for("backlog", index % learners)
        event = backlog_event(target.id_for("backlog-event", index), learner, index)
        staged.setdefault(learner, []).append(event)
    wanted = {e.event_id for learner_events in staged.values() for e in learner_events}
    began = time.perf_counter()
    try:
        in_slots = await _stage(target, staged)
    except (SidecarUnavailable, StateStoreUnavailable) as failure:
        log(f"outbox drain: staging failed: {failure}")
        return OutboxDrainResult.staging_failed(events, learners, str(failure))
    staged_at = time.time()
    stage_seconds = time.perf_counter() - began
    # Metered from here: staging's calls are the benchmark's own. What the relay published
    # while staging outlasted its 3 s grace is left out of the cost per event.
    snapshot = await target.meter.snapshot()
    deadline = staged_at + target.config.max_seconds_per_scenario * 3
    arrived, stamps, error = await asyncio.to_thread(_consume, kafka_bootstrap, wanted, deadline)
    cost = cost_between(snapshot, await target.meter.snapshot(), events)
    log(f"outbox drain: {len(arrived)} of {events} events on Kafka")
    order = {learner: [e.event_id for e in evs] for learner, evs in staged.items()}
    return OutboxDrainResult(
        events=events,
        learners=learners,
        in_slots=in_slots,
        stage_seconds=stage_seconds,
        seen=len(arrived),
        first_seen_seconds=min(stamps) - staged_at if stamps else None,
        all_seen_seconds=(max(stamps) - staged_at) if len(arrived) == events else None,
        publish_span_seconds=max(stamps) - min(stamps) if len(stamps) > 1 else None,
        busiest_pass=busiest_pass(stamps),
        learners_out_of_order=learners_out_of_order(order, arrived),
        first_error=error,
        cost=cost,
    )
