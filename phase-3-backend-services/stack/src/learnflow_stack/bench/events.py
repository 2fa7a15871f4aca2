"""Event lag: how long a lesson-generated event takes from being published through the Course
Agent's daprd until User Progress's GET /status shows it, one at a time and in a burst."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from learnflow_contracts.names import LESSON_GENERATED_TOPIC, PUBSUB

from learnflow_stack.bench.load import REQUEST_FAILURES, describe, expect, log
from learnflow_stack.bench.requests import Target, lesson_generated_event
from learnflow_stack.bench.stats import LatencySummary, summarize, throughput

LAG_EVENTS = 50  # the burst, at --requests 1.0
LONE_LAG_EVENTS = 5  # not scaled: published one at a time before the burst
_COUNT_GRACE_SECONDS = 5.0


@dataclass
class WatchedEvents:
    published_at: dict[str, float] = field(default_factory=dict)  # learner -> publish sent
    visible_at: dict[str, float] = field(default_factory=dict)  # learner -> GET showed it
    rounds: list[float] = field(default_factory=list)  # durations of the poll rounds
    publish_errors: list[str] = field(default_factory=list)
    poll_errors: list[str] = field(default_factory=list)

    def lags(self) -> list[float]:
        return [seen - self.published_at[learner] for learner, seen in self.visible_at.items()]

    def mean_round(self) -> float | None:
        return sum(self.rounds) / len(self.rounds) if self.rounds else None

    def merge(self, other: WatchedEvents) -> None:
        self.published_at.update(other.published_at)
        self.visible_at.update(other.visible_at)
        self.rounds += other.rounds
        self.publish_errors += other.publish_errors
        self.poll_errors += other.poll_errors


@dataclass(frozen=True)
class EventLagResult:
    """Publish-to-visible lag. A lag is resolved to one poll round: the time between two
    GET /status of the same learner (the mean round durations are kept to show it)."""

    lone_published: int
    lone: LatencySummary | None  # of those that became visible
    lone_mean_poll_seconds: float | None
    burst_published: int
    burst_visible: int
    burst_lag: LatencySummary | None
    burst_events_per_second: float  # visible / (last visible - first publish)
    burst_mean_poll_round_seconds: float | None
    publish_errors: int
    poll_errors: int
    first_error: str | None = None


async def _publish_and_watch(target: Target, indices: range, deadline: float) -> WatchedEvents:
    """Publish a lesson-generated event for each index, each for its own learner, through
    the Course Agent's daprd, while polling GET /status of every published learner not yet
    showing the lesson, in rounds, until all show it or ``deadline``."""
    url = f"{target.agent.sidecar.http_url}/v1.0/publish/{PUBSUB}/{LESSON_GENERATED_TOPIC}"
    watched = WatchedEvents()
    if time.perf_counter() >= deadline:
        return watched  # nothing published that nobody would watch
    publishing = asyncio.Event()
    publishing.set()
    publish_slots = asyncio.Semaphore(target.config.concurrency)
    poll_slots = asyncio.Semaphore(target.config.progress_concurrency)

    async def publish(index: int) -> None:
        learner = target.id_for("lag", index)
        event = lesson_generated_event(target.id_for("lag-lesson", index), learner)
        async with publish_slots:
            sent = time.perf_counter()
            try:
                expect(
                    await target.client.post(
                        url, json=event, headers=target.agent.sidecar.api_headers
                    ),
                    204,
                )
            except REQUEST_FAILURES as error:
                watched.publish_errors.append(describe(error))
                return
        watched.published_at[learner] = sent

    async def publish_all() -> None:
        try:
            await asyncio.gather(*(publish(index) for index in indices))
        finally:
            publishing.clear()

    async def check(learner: str) -> None:
        async with poll_slots:
            try:
                if await target.lessons_assigned(learner) >= 1:
                    watched.visible_at[learner] = time.perf_counter()
            except REQUEST_FAILURES as error:
                watched.poll_errors.append(describe(error))

    async def watch() -> None:
        while time.perf_counter() < deadline:
            # Oldest first: they are the likeliest to have arrived.
            pending = [
                learner for learner in watched.published_at if learner not in watched.visible_at
            ]
            if not pending:
                if not publishing.is_set():
                    return
                await asyncio.sleep(0.005)
                continue
            began = time.perf_counter()
            await asyncio.gather(*(check(learner) for learner in pending))
            watched.rounds.append(time.perf_counter() - began)

    await asyncio.gather(publish_all(), watch())
    return watched


async def _counted(target: Target, at_least: int, deadline: float) -> bool:
    """Whether User Progress's applied-events counter reaches ``at_least`` by ``deadline``."""
    while True:
        try:
            if await target.lesson_events_applied() >= at_least:
                return True
        except REQUEST_FAILURES as error:
            log(f"reading User Progress's counter: {describe(error)}")
        if time.perf_counter() >= deadline:
            return False
        await asyncio.sleep(0.05)


async def measure_event_lag(target: Target) -> EventLagResult:
    """First LONE_LAG_EVENTS events one at a time (nothing queued, one GET per poll round),
    then a burst of LAG_EVENTS published at once (queueing, and the consumption rate).

    It returns once User Progress has also counted every event it showed: a delivery is
    answered, and its events counted, only after each of its learners' writes, so a scenario
    reading the counter next would otherwise count the last of these as its own."""
    deadline = target.deadline()
    try:
        counted_before: int | None = await target.lesson_events_applied()
    except REQUEST_FAILURES as error:
        log(f"reading User Progress's counter: {describe(error)}")
        counted_before = None
    lone = WatchedEvents()
    for index in range(LONE_LAG_EVENTS):
        lone.merge(await _publish_and_watch(target, range(index, index + 1), deadline))
    burst_count = target.config.count(LAG_EVENTS)
    burst = await _publish_and_watch(
        target, range(LONE_LAG_EVENTS, LONE_LAG_EVENTS + burst_count), deadline
    )
    span = (
        max(burst.visible_at.values()) - min(burst.published_at.values())
        if burst.visible_at
        else 0.0
    )
    errors = [
        *lone.publish_errors,
        *burst.publish_errors,
        *lone.poll_errors,
        *burst.poll_errors,
    ]
    seen = len(lone.visible_at) + len(burst.visible_at)
    # Counting follows the writes within milliseconds; a few seconds past the cap is plenty.
    count_deadline = max(deadline, time.perf_counter() + _COUNT_GRACE_SECONDS)
    if counted_before is None or not await _counted(target, counted_before + seen, count_deadline):
        errors.append(f"User Progress showed {seen} events but did not count them in time")
    log(f"event lag: {len(lone.visible_at)} lone and {len(burst.visible_at)} burst events seen")
    return EventLagResult(
        lone_published=len(lone.published_at),
        lone=summarize(lone.lags()),
        lone_mean_poll_seconds=lone.mean_round(),
        burst_published=len(burst.published_at),
        burst_visible=len(burst.visible_at),
        burst_lag=summarize(burst.lags()),
        burst_events_per_second=throughput(len(burst.visible_at), span),
        burst_mean_poll_round_seconds=burst.mean_round(),
        publish_errors=len(lone.publish_errors) + len(burst.publish_errors),
        poll_errors=len(errors) - len(lone.publish_errors) - len(burst.publish_errors),
        first_error=errors[0] if errors else None,
    )
