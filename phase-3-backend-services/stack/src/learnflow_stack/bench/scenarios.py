"""The scenarios the benchmark measures, each with its baseline, run one after another against
the stack; measure_all runs them all and returns the Figures."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import httpx
from httpx_aiohttp import AiohttpTransport

from learnflow_stack.bench.config import BenchConfig
from learnflow_stack.bench.cost import CostMeter, ScenarioCost, idle_cost
from learnflow_stack.bench.drain import DrainResult, measure_drain, put_lesson_events
from learnflow_stack.bench.events import EventLagResult, measure_event_lag
from learnflow_stack.bench.floors import ACTOR, BULK_GET, STATE_GET, FloorWorkloads
from learnflow_stack.bench.load import (
    REQUEST_FAILURES,
    Call,
    ScenarioResult,
    UnexpectedAnswer,
    describe,
    drive,
    expect,
    log,
    measure,
)
from learnflow_stack.bench.outbox_drain import OutboxDrainResult, measure_outbox_drain
from learnflow_stack.bench.requests import (
    Target,
    active_system_prompt,
    stub_chat_request,
)
from learnflow_stack.process import ManagedProcess
from learnflow_stack.stack import AppInstance

# Requests per scenario at --requests 1.0: sized so the default run, stack start included,
# stays well under four minutes on two cores with the default 0.2 s stub delay.
# A miss's p99 is a target of its own (issue 10): 200 samples put it between the second and
# third slowest, where 60 made it the slowest one.
STUB_DIRECT_REQUESTS = 200
CACHE_MISS_REQUESTS = 200
CACHE_HIT_REQUESTS = 400
STATUS_REQUESTS = 400
LESSON_LIST_REQUESTS = 300
PROGRESS_HOT_REQUESTS = 200
PROGRESS_MANY_REQUESTS = 200
LESSONS_PER_LISTED_LEARNER = 20  # not scaled: it is the shape of the listed page
# Not scaled: a learner whose lesson index is two full pages (the Course Agent's head page is 50
# lessons), so a hit reads the largest head there is.
LESSONS_OF_A_BUSY_LEARNER = 100
HOT_LEARNER_LESSONS = 5  # the hot learner's updates rotate over this many lessons
# Not scaled: a learner with a long history, so what User Progress reads and writes per request
# shows whether it grows with the history (it did: the whole history was one document).
LESSONS_OF_A_LONG_HISTORY = 1000
LONG_HISTORY = f"learner with {LESSONS_OF_A_LONG_HISTORY} lessons"
STUB_DIRECT = "LLM stub called directly (floor)"
IDLE_SECONDS = 5  # not scaled: a rate, measured once


@dataclass(frozen=True)
class Figures:
    idle: ScenarioCost | None  # per second, before any request: what the stack costs at rest
    floors: list[ScenarioResult]  # each floor at each concurrency the scenarios use
    stub_direct: ScenarioResult
    first_misses: ScenarioResult  # the first generations after start, all at once, no warm-up
    cache_miss: ScenarioResult
    cache_hit: ScenarioResult
    cache_hit_wide: ScenarioResult  # at the progress scenarios' (higher) concurrency
    cache_hit_busy_learner: ScenarioResult  # as wide, for a learner with many lessons
    lesson_list: ScenarioResult
    events_settled_seconds: float | None  # generation events consumed this long after the list
    progress_hot: ScenarioResult
    progress_many: ScenarioResult
    status: ScenarioResult
    progress_long_history: ScenarioResult  # updates of one learner with a long history
    status_long_history: ScenarioResult
    long_history_scores: int  # scores User Progress held for that learner when it was measured
    event_lag: EventLagResult
    drain: DrainResult
    outbox_drain: OutboxDrainResult

    def scenarios(self) -> list[ScenarioResult]:
        return [
            self.stub_direct,
            self.first_misses,
            self.cache_miss,
            self.cache_hit,
            self.cache_hit_wide,
            self.cache_hit_busy_learner,
            self.lesson_list,
            self.progress_hot,
            self.progress_many,
            self.status,
            self.progress_long_history,
            self.status_long_history,
        ]

    def floor_of(self, scenario: ScenarioResult) -> ScenarioResult | None:
        """The floor ``scenario`` is compared with, measured at its concurrency."""
        if scenario.floor == self.stub_direct.name:
            return self.stub_direct
        return next(
            (
                floor
                for floor in self.floors
                if floor.name == scenario.floor and floor.concurrency == scenario.concurrency
            ),
            None,
        )


class Workloads(Target):
    """The request scenarios, each a method run against the target stack."""

    async def _measure(
        self,
        name: str,
        call: Call,
        *,
        requests: int,
        concurrency: int,
        floor: str,
        warmup: int | None = None,
    ) -> ScenarioResult:
        result = await measure(
            name,
            call,
            requests=requests,
            concurrency=concurrency,
            deadline=self.deadline(),
            meter=self.meter,
            warmup=warmup,
        )
        return dataclasses.replace(result, floor=floor)

    async def stub_direct(self) -> ScenarioResult:
        system_prompt = active_system_prompt()

        async def call(index: int) -> None:
            body = stub_chat_request(system_prompt, f"Stub topic {index}")
            expect(await self.client.post(f"{self.stub_url}/v1/chat/completions", json=body), 200)

        return await measure(
            STUB_DIRECT,
            call,
            requests=self.config.count(STUB_DIRECT_REQUESTS),
            concurrency=self.config.concurrency,
            deadline=self.deadline(),
        )

    async def first_misses(self) -> ScenarioResult:
        """The process's first generations, ``concurrency`` of them at once: what the first
        learners after a start or a deploy wait, one-time costs included."""
        name = "Course Agent generate, first after start"

        async def call(index: int) -> None:
            await self.generate(self.id_for("first", index), f"First topic {index}", 201)

        concurrency = self.config.concurrency
        return await self._measure(
            name, call, requests=concurrency, concurrency=concurrency, floor=STUB_DIRECT, warmup=0
        )

    async def cache_miss(self) -> ScenarioResult:
        # A new learner and topic each time: no cache entry, no per-learner write contention.
        async def call(index: int) -> None:
            await self.generate(self.id_for("miss", index), f"Miss topic {index}", 201)

        return await self._measure(
            "Course Agent generate, cache miss",
            call,
            requests=self.config.count(CACHE_MISS_REQUESTS),
            concurrency=self.config.concurrency,
            floor=STUB_DIRECT,
        )

    async def cache_hit(self, concurrency: int) -> ScenarioResult:
        learner = self.id_for("hit", f"learner-{concurrency}")
        name = "Course Agent generate, cache hit"
        requests = self.config.count(CACHE_HIT_REQUESTS)
        try:
            await self.generate(learner, "Cached topic", 201)
        except REQUEST_FAILURES as error:
            return ScenarioResult.set_up_failed(name, concurrency, requests, describe(error))

        async def hit(_: int) -> None:
            await self.generate(learner, "Cached topic", 200)

        return await self._measure(
            name, hit, requests=requests, concurrency=concurrency, floor=STATE_GET
        )

    async def cache_hit_busy_learner(self) -> ScenarioResult:
        """Cache hits for a learner with LESSONS_OF_A_BUSY_LEARNER lessons: a hit reads the
        head of the learner's lesson index, so its cost must not grow with their history."""
        learner = self.id_for("hit", "busy-learner")
        concurrency = self.config.progress_concurrency
        name = f"Course Agent generate, hit, {LESSONS_OF_A_BUSY_LEARNER} lessons"
        requests = self.config.count(CACHE_HIT_REQUESTS)

        async def create(index: int) -> None:
            await self.generate(learner, f"Busy topic {index}", 201)

        lessons = range(LESSONS_OF_A_BUSY_LEARNER)
        created = await drive(create, lessons, self.config.concurrency, self.deadline())
        if created.errors or len(created.latencies) < len(lessons):
            reason = created.errors[0] if created.errors else "the deadline came first"
            return ScenarioResult.set_up_failed(name, concurrency, requests, reason)

        async def hit(_: int) -> None:
            await self.generate(learner, "Busy topic 0", 200)

        return await self._measure(
            name, hit, requests=requests, concurrency=concurrency, floor=STATE_GET
        )

    async def _list_lessons(self, learner_id: str) -> int:
        response = await self.client.get(
            f"{self.agent.url}/lessons",
            params={"learner_id": learner_id, "limit": LESSONS_PER_LISTED_LEARNER},
        )
        return len(expect(response, 200).json()["items"])

    async def lesson_list(self) -> tuple[ScenarioResult, str, int]:
        """(GET /lessons of a learner given LESSONS_PER_LISTED_LEARNER lessons, that learner,
        how many lessons were generated for them).

        The lessons are generated ``concurrency`` at a time, as a busy learner would; if the
        list then shows fewer than were generated, the scenario says so in a note and
        measures the list as it is (each answer must show the same count)."""
        deadline = self.deadline()
        learner = self.id_for("list", "learner")
        requests = self.config.count(LESSON_LIST_REQUESTS)

        async def create(index: int) -> None:
            await self.generate(learner, f"Listed topic {index}", 201)

        created = await drive(
            create, range(LESSONS_PER_LISTED_LEARNER), self.config.concurrency, deadline
        )
        generated = len(created.latencies)
        try:
            listed = await self._list_lessons(learner) if generated else 0
        except REQUEST_FAILURES as error:
            created.errors.append(describe(error))
            listed = 0
        if listed == 0:
            reason = created.errors[0] if created.errors else f"0 of {generated} lessons listed"
            failed = ScenarioResult.set_up_failed(
                "GET /lessons", self.config.concurrency, requests, reason
            )
            return failed, learner, generated

        async def call(_: int) -> None:
            if (count := await self._list_lessons(learner)) != listed:
                raise UnexpectedAnswer(f"GET /lessons listed {count}, before {listed} lessons")

        result = await self._measure(
            f"GET /lessons, learner with {listed} lessons",
            call,
            requests=requests,
            concurrency=self.config.concurrency,
            floor=BULK_GET,
        )
        if listed < generated:
            result = dataclasses.replace(
                result,
                note=f"the learner's list shows {listed} of the {generated} lessons generated "
                f"for them ({self.config.concurrency} at a time, each answered 201)",
            )
        return result, learner, generated

    async def settle(self, learner_id: str, lessons: int) -> float | None:
        """Seconds until User Progress shows ``lessons`` for ``learner_id`` (the last lessons
        generated), so the update and lag scenarios do not share the CPU with that backlog;
        None if it did not within the cap."""
        began = time.perf_counter()
        deadline = began + self.config.max_seconds_per_scenario
        while time.perf_counter() < deadline:
            try:
                if await self.lessons_assigned(learner_id) >= lessons:
                    return time.perf_counter() - began
            except REQUEST_FAILURES as error:
                log(f"waiting for lesson events: {error}")
            await asyncio.sleep(0.1)
        return None

    async def long_history(
        self, kafka_bootstrap: str
    ) -> tuple[ScenarioResult, ScenarioResult, int]:
        """(updates, GET /status) of one learner given LESSONS_OF_A_LONG_HISTORY lessons by
        lesson-generated events put straight onto Kafka, and, with ``--scored-history``, scored
        updates of each; and the scores User Progress then held for that learner."""
        learner = self.id_for("history", 0)
        updates = f"update-progress, {LONG_HISTORY}"
        status = f"GET /status, {LONG_HISTORY}"
        unsent = await asyncio.to_thread(
            put_lesson_events, kafka_bootstrap, self, "history", LESSONS_OF_A_LONG_HISTORY, 1
        )

        def set_up_failed(reason: str) -> tuple[ScenarioResult, ScenarioResult, int]:
            concurrency = self.config.progress_concurrency
            return (
                ScenarioResult.set_up_failed(
                    updates, concurrency, self.config.count(PROGRESS_HOT_REQUESTS), reason
                ),
                ScenarioResult.set_up_failed(
                    status, concurrency, self.config.count(STATUS_REQUESTS), reason
                ),
                0,
            )

        seeded = None if unsent else await self.settle(learner, LESSONS_OF_A_LONG_HISTORY)
        if seeded is None:
            return set_up_failed(
                f"{unsent} events not sent" if unsent else "its lessons not all applied"
            )
        log(f"{LONG_HISTORY}: its lesson events applied in {seeded:.1f} s")
        if (unscored := await self._score_history(learner)) is not None:
            return set_up_failed(unscored)
        scores = await self._scores_of(learner)
        updated = await self._progress_updates(
            updates, lambda _: learner, self.config.count(PROGRESS_HOT_REQUESTS)
        )

        async def call(_: int) -> None:
            await self.lessons_assigned(learner)

        read = await self._measure(
            status,
            call,
            requests=self.config.count(STATUS_REQUESTS),
            concurrency=self.config.progress_concurrency,
            floor=STATE_GET,
        )
        return updated, read, scores

    async def _scores_of(self, learner: str) -> int:
        """The scores User Progress holds for ``learner``: its topics' score counts."""
        return sum(topic["score_count"] for topic in (await self.status_of(learner))["topics"])

    async def _score_history(self, learner: str) -> str | None:
        """Give each of the long-history learner's lessons ``scored_history_attempts`` scored
        updates, at the updates' concurrency, within a minute per attempt; why not, or None."""
        attempts = self.config.scored_history_attempts * LESSONS_OF_A_LONG_HISTORY
        if not attempts:
            return None

        async def call(index: int) -> None:
            await self.record_quiz(
                learner,
                self.id_for("history-lesson", index % LESSONS_OF_A_LONG_HISTORY),
                self.id_for("history-attempt", index),
                score=(index * 37) % 101,
            )

        deadline = time.perf_counter() + 60.0 * self.config.scored_history_attempts
        run = await drive(call, range(attempts), self.config.progress_concurrency, deadline)
        if run.errors or run.attempted < attempts:
            return f"{len(run.latencies)} of {attempts} scored updates made; {run.errors[:1]}"
        log(f"{LONG_HISTORY}: {attempts} scored updates made in {run.elapsed_seconds:.1f} s")
        return None

    async def _progress_updates(
        self, name: str, learner_of: Callable[[int], str], requests: int
    ) -> ScenarioResult:
        async def call(index: int) -> None:
            await self.record_quiz(
                learner_of(index),
                self.id_for("lesson", index % HOT_LEARNER_LESSONS),
                self.id_for("attempt", index),
                score=(index * 37) % 101,
            )

        return await self._measure(
            name,
            call,
            requests=requests,
            concurrency=self.config.progress_concurrency,
            floor=ACTOR,
        )

    async def progress_hot(self) -> ScenarioResult:
        hot = self.id_for("hot", "learner")
        return await self._progress_updates(
            "update-progress, one hot learner",
            lambda _: hot,
            self.config.count(PROGRESS_HOT_REQUESTS),
        )

    async def progress_many(self) -> ScenarioResult:
        return await self._progress_updates(
            "update-progress, a new learner each",
            lambda index: self.id_for("many", index),
            self.config.count(PROGRESS_MANY_REQUESTS),
        )

    async def status(self) -> ScenarioResult:
        """GET /status of the learners the many-learners scenario just updated."""

        # The many-learners scenario's learners: its warm-up ones and its measured ones.
        updated = 2 * self.config.progress_concurrency + self.config.count(PROGRESS_MANY_REQUESTS)

        async def call(index: int) -> None:
            await self.lessons_assigned(self.id_for("many", index % updated))

        return await self._measure(
            "GET /status, many learners",
            call,
            requests=self.config.count(STATUS_REQUESTS),
            concurrency=self.config.progress_concurrency,
            floor=STATE_GET,
        )


async def measure_all(
    agent: AppInstance,
    progress: AppInstance,
    stub_url: str,
    config: BenchConfig,
    authorization: dict[str, str],
    processes: Sequence[ManagedProcess],
    kafka_bootstrap: str,
) -> Figures:
    connections = httpx.Limits(
        max_connections=4 * max(config.concurrency, config.progress_concurrency)
    )
    async with httpx.AsyncClient(
        timeout=config.request_timeout_seconds,
        headers=authorization,
        trust_env=False,  # loopback only: never through a proxy from the environment
        # The load generator shares the CPUs with the stack: aiohttp under httpx costs it half.
        transport=AiohttpTransport(limits=connections, trust_env=False),
    ) as client:
        meter = CostMeter(
            client,
            processes,
            {app.spec.app_id: app.sidecar.metrics_url for app in (agent, progress)},
        )
        target = (client, agent, progress, stub_url, config, meter)
        idle = await idle_cost(meter, IDLE_SECONDS)
        floors = FloorWorkloads(*target)
        measured_floors = [
            floor
            for concurrency in sorted({config.concurrency, config.progress_concurrency})
            for floor in await floors.run(concurrency)
        ]
        work = Workloads(*target)
        first_misses = await work.first_misses()
        stub_direct = await work.stub_direct()
        cache_miss = await work.cache_miss()
        cache_hit = await work.cache_hit(config.concurrency)
        cache_hit_wide = await work.cache_hit(config.progress_concurrency)
        cache_hit_busy_learner = await work.cache_hit_busy_learner()
        lesson_list, listed_learner, generated = await work.lesson_list()
        settled = await work.settle(listed_learner, generated)
        progress_hot = await work.progress_hot()
        progress_many = await work.progress_many()
        status = await work.status()
        (
            progress_long_history,
            status_long_history,
            long_history_scores,
        ) = await work.long_history(kafka_bootstrap)
        event_lag = await measure_event_lag(work)
        drain = await measure_drain(work, kafka_bootstrap)
        outbox_drain = await measure_outbox_drain(work, kafka_bootstrap)
    return Figures(
        idle=idle,
        floors=measured_floors,
        stub_direct=stub_direct,
        first_misses=first_misses,
        cache_miss=cache_miss,
        cache_hit=cache_hit,
        cache_hit_wide=cache_hit_wide,
        cache_hit_busy_learner=cache_hit_busy_learner,
        lesson_list=lesson_list,
        events_settled_seconds=settled,
        progress_hot=progress_hot,
        progress_many=progress_many,
        status=status,
        progress_long_history=progress_long_history,
        status_long_history=status_long_history,
        long_history_scores=long_history_scores,
        event_lag=event_lag,
        drain=drain,
        outbox_drain=outbox_drain,
    )
