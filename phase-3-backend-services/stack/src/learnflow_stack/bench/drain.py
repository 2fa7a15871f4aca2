"""Draining a backlog: a burst of lesson-generated events put straight onto Kafka (a producer of
the benchmark's own, so publishing is not the bottleneck), then how fast User Progress applies
them, read from its own ``lesson_events_total{outcome="applied"}`` counter every 100 ms.

Learners get several events each, as after an outage: the events of one learner share a
partition and arrive in one bulk delivery, applied in one actor turn.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass

from confluent_kafka import Producer
from learnflow_contracts.names import LESSON_GENERATED_TOPIC

from learnflow_stack.bench.cost import ScenarioCost, cost_between
from learnflow_stack.bench.load import REQUEST_FAILURES, describe, log
from learnflow_stack.bench.requests import Target, lesson_generated_event

DRAIN_EVENTS = 2000  # at --requests 1.0
EVENTS_PER_LEARNER = 5
_POLL_SECONDS = 0.1  # every scrape costs the app CPU: py-spy saw 20 ms polls take 8.6%


@dataclass(frozen=True)
class DrainResult:
    events: int
    learners: int
    produce_seconds: float  # putting the whole burst on Kafka
    applied: int  # of ``events``, when the run ended
    first_applied_seconds: float | None  # from the start of producing
    half_applied_seconds: float | None
    all_applied_seconds: float | None  # an upper bound of every event's lag
    first_error: str | None = None
    cost: ScenarioCost | None = None  # per event

    @property
    def events_per_second(self) -> float:
        finished = self.all_applied_seconds
        return self.events / finished if finished else 0.0


def put_lesson_events(bootstrap: str, target: Target, kind: str, events: int, learners: int) -> int:
    """Put ``events`` lesson-generated events for ``learners`` learners (ids of ``kind``) straight
    onto Kafka; how many could not be sent."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for index in range(events):
        learner = target.id_for(kind, index % learners)
        data = lesson_generated_event(target.id_for(f"{kind}-lesson", index), learner)
        cloud_event = {
            "specversion": "1.0",
            "id": target.id_for(f"{kind}-event", index),
            "source": "learnflow-bench",
            "type": "com.dapr.event.sent",
            "datacontenttype": "application/json",
            "data": data,
        }
        producer.produce(
            LESSON_GENERATED_TOPIC,
            key=learner,
            value=json.dumps(cloud_event).encode(),
            headers={"content-type": "application/cloudevents+json"},
        )
        producer.poll(0)
    unsent: int = producer.flush(30)
    return unsent


async def measure_drain(target: Target, kafka_bootstrap: str) -> DrainResult:
    events = target.config.count(DRAIN_EVENTS)
    learners = max(1, events // EVENTS_PER_LEARNER)
    first_error: str | None = None
    try:
        before = await target.lesson_events_applied()
    except REQUEST_FAILURES as error:
        return DrainResult(events, learners, 0.0, 0, None, None, None, describe(error))
    snapshot = await target.meter.snapshot()
    began = time.perf_counter()
    unsent = await asyncio.to_thread(
        put_lesson_events, kafka_bootstrap, target, "drain", events, learners
    )
    produced = time.perf_counter() - began
    if unsent:
        first_error = f"{unsent} events were not put on Kafka"
    first = half = done = None
    applied = 0
    deadline = began + target.config.max_seconds_per_scenario * 3
    while time.perf_counter() < deadline:
        try:
            applied = await target.lesson_events_applied() - before
        except REQUEST_FAILURES as error:
            first_error = first_error or describe(error)
        now = time.perf_counter() - began
        first = first if first is not None or applied == 0 else now
        half = half if half is not None or applied < events / 2 else now
        if applied >= events:
            done = now
            break
        await asyncio.sleep(_POLL_SECONDS)
    log(f"drain: {applied} of {events} events applied")
    cost = cost_between(snapshot, await target.meter.snapshot(), events)
    return DrainResult(events, learners, produced, applied, first, half, done, first_error, cost)
