"""`learnflow-stack bench`: start a private stack with an LLM stub, measure, print figures.

Every scenario is bounded twice, by a request count (scaled by --requests) and by a wall-clock
cap (--max-seconds-per-scenario); whichever comes first ends it, and the table marks the
scenarios the cap cut short. Warm-up requests run first and are left out of every figure.
Each figure that carries a cost of its own has a baseline measured in the same run (the stub
called directly, one state read), so overheads are measured differences, not assumptions.
Everything listens and talks on 127.0.0.1 only.

Run: ``python -m learnflow_stack.bench --requests 0.1`` (a quick pass) or ``learnflow-stack bench``.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import yaml
from learnflow_contracts.events import LessonGeneratedV1, LessonObjective
from learnflow_contracts.levels import Level
from learnflow_contracts.names import (
    COURSE_AGENT_APP_ID,
    LESSON_GENERATED_TOPIC,
    PUBSUB,
    STATESTORE,
    USER_PROGRESS_APP_ID,
)

from learnflow_stack import services
from learnflow_stack.bench_stats import (
    LatencySummary,
    PercentileDifference,
    difference,
    scaled_count,
    summarize,
    throughput,
)
from learnflow_stack.llm_stub import start_stub_process
from learnflow_stack.paths import PHASE_DIR, runs_root
from learnflow_stack.process import ManagedProcess, StartError
from learnflow_stack.stack import AppInstance, Stack

# Requests per scenario at --requests 1.0: sized so the default run, stack start included,
# stays well under four minutes on two cores with the default 0.2 s stub delay.
STUB_DIRECT_REQUESTS = 100
CACHE_MISS_REQUESTS = 60
CACHE_HIT_REQUESTS = 400
STATE_READ_REQUESTS = 400
LESSON_LIST_REQUESTS = 300
PROGRESS_HOT_REQUESTS = 200
PROGRESS_MANY_REQUESTS = 200
LAG_EVENTS = 50
LONE_LAG_EVENTS = 5  # not scaled: published one at a time before the burst
LESSONS_PER_LISTED_LEARNER = 20  # not scaled: it is the shape of the listed page
HOT_LEARNER_LESSONS = 5  # the hot learner's updates rotate over this many lessons
_MIB = 1024 * 1024


def _log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# -- options -------------------------------------------------------------------------------


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--llm-delay",
        type=_non_negative_float,
        default=0.2,
        help="seconds the LLM stub waits before each answer (default 0.2)",
    )
    parser.add_argument(
        "--requests",
        type=_positive_float,
        default=1.0,
        help="scale factor for every scenario's request count (default 1.0; 0.1 = quick pass)",
    )
    parser.add_argument(
        "--concurrency",
        type=_positive_int,
        default=4,
        help="requests in flight for the Course Agent scenarios and baselines (default 4)",
    )
    parser.add_argument(
        "--progress-concurrency",
        type=_positive_int,
        default=8,
        help="requests in flight for the User Progress update scenarios (default 8)",
    )
    parser.add_argument(
        "--max-seconds-per-scenario",
        type=_positive_float,
        default=20.0,
        help="wall-clock cap of each scenario, warm-up and set-up included (default 20)",
    )
    parser.add_argument(
        "--json", type=Path, default=None, metavar="PATH", help="also write the results as JSON"
    )


@dataclass(frozen=True)
class BenchConfig:
    llm_delay_seconds: float
    scale: float
    concurrency: int
    progress_concurrency: int
    max_seconds_per_scenario: float
    json_path: Path | None

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> BenchConfig:
        return cls(
            llm_delay_seconds=args.llm_delay,
            scale=args.requests,
            concurrency=args.concurrency,
            progress_concurrency=args.progress_concurrency,
            max_seconds_per_scenario=args.max_seconds_per_scenario,
            json_path=args.json,
        )

    def count(self, base: int) -> int:
        return scaled_count(base, self.scale)

    @property
    def request_timeout_seconds(self) -> float:
        # A cache miss waits for the stub once (max_retries is 0); the rest is headroom for a
        # loaded machine. This also bounds how far an in-flight request can overrun the cap.
        return 10.0 + 2 * self.llm_delay_seconds


# -- driving load --------------------------------------------------------------------------


class UnexpectedAnswer(RuntimeError):
    """A service answered, but not what the scenario expects: the request counts as an error."""


def expect(response: httpx.Response, status: int) -> httpx.Response:
    if response.status_code != status:
        raise UnexpectedAnswer(
            f"{response.request.method} {response.request.url.path} answered "
            f"{response.status_code} (expected {status}): {response.text[:200]}"
        )
    return response


Call = Callable[[int], Awaitable[None]]


@dataclass
class LoadRun:
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    elapsed_seconds: float = 0.0

    @property
    def attempted(self) -> int:
        return len(self.latencies) + len(self.errors)


async def drive(call: Call, indices: range, concurrency: int, deadline: float) -> LoadRun:
    """Run ``call(i)`` for each index with ``concurrency`` workers; none starts after
    ``deadline`` (a ``time.perf_counter`` value). Failed calls count as errors, not latencies."""
    run = LoadRun()
    remaining = iter(indices)  # shared: each worker takes the next index

    async def worker() -> None:
        for index in remaining:
            if time.perf_counter() >= deadline:
                return
            started = time.perf_counter()
            try:
                await call(index)
            except (httpx.HTTPError, UnexpectedAnswer) as error:
                run.errors.append(f"{type(error).__name__}: {error}")
            else:
                run.latencies.append(time.perf_counter() - started)

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    run.elapsed_seconds = time.perf_counter() - began
    return run


@dataclass(frozen=True)
class ScenarioResult:
    name: str
    concurrency: int
    planned: int
    errors: int
    latency: LatencySummary | None
    requests_per_second: float
    cut_short: bool  # the wall-clock cap ended it before ``planned`` requests
    first_error: str | None = None
    note: str | None = None  # something the scenario saw that is not a failed request

    @property
    def completed(self) -> int:
        return self.latency.count if self.latency else 0

    @classmethod
    def set_up_failed(cls, name: str, concurrency: int, planned: int, error: str) -> ScenarioResult:
        return cls(
            name=name,
            concurrency=concurrency,
            planned=planned,
            errors=1,
            latency=None,
            requests_per_second=0.0,
            cut_short=False,
            first_error=f"set-up failed: {error}",
        )


async def measure(
    name: str, call: Call, *, requests: int, concurrency: int, deadline: float
) -> ScenarioResult:
    """Warm up with ``2 * concurrency`` calls (indices before the measured ones), then measure."""
    warmup = 2 * concurrency
    await drive(call, range(warmup), concurrency, deadline)
    run = await drive(call, range(warmup, warmup + requests), concurrency, deadline)
    _log(f"{name}: {len(run.latencies)} ok, {len(run.errors)} errors")
    return ScenarioResult(
        name=name,
        concurrency=concurrency,
        planned=requests,
        errors=len(run.errors),
        latency=summarize(run.latencies),
        requests_per_second=throughput(len(run.latencies), run.elapsed_seconds),
        cut_short=run.attempted < requests,
        first_error=run.errors[0] if run.errors else None,
    )


# -- request shapes ------------------------------------------------------------------------


def active_system_prompt() -> str:
    """The active lesson system prompt's text, so the direct stub call carries what the
    Course Agent sends (it is static text, read as is, never rendered)."""
    prompts = PHASE_DIR / "prompts"
    manifest = yaml.safe_load((prompts / "manifest.yaml").read_text())
    lesson = manifest["prompts"]["lesson"]
    system_file: str = lesson["versions"][lesson["active"]]["system"]
    return (prompts / system_file).read_text()


def stub_chat_request(system_prompt: str, topic: str) -> dict[str, Any]:
    """A chat-completions body shaped like the Course Agent's: system + user message with the
    topic tag, strict JSON-schema output, its temperature and token cap. The schema is a
    stand-in; the stub does not read it."""
    return {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": system_prompt},
            {
                "role": "user",
                "content": "Write a lesson on the topic below.\n\n"
                f"<learner_topic>{topic}</learner_topic>\n\nLevel: beginner\nLocale: en",
            },
        ],
        "response_format": {
            "type": "json_schema",
            "json_schema": {
                "name": "LessonDraft",
                "strict": True,
                "schema": {"type": "object", "additionalProperties": False},
            },
        },
        "temperature": 0.2,
        "max_tokens": 4096,
    }


def generate_body(learner_id: str, topic: str) -> dict[str, str]:
    return {"learner_id": learner_id, "topic": topic, "level": Level.BEGINNER.value}


def quiz_update(learner_id: str, lesson_id: str, attempt_id: str, score: int) -> dict[str, Any]:
    return {
        "learner_id": learner_id,
        "lesson_id": lesson_id,
        "attempt_id": attempt_id,
        "kind": "quiz",
        "score": score,
        "time_spent_seconds": 30,
        "occurred_at": datetime.now(UTC).isoformat(),
    }


def lesson_generated_event(lesson_id: str, learner_id: str) -> dict[str, Any]:
    event = LessonGeneratedV1(
        lesson_id=lesson_id,
        learner_id=learner_id,
        topic="Event lag",
        level=Level.BEGINNER,
        title="How fast events travel",
        objectives=(LessonObjective(id="O1", text="Measure the lag of one event."),),
        personalized=False,
        prompt_id="lesson",
        prompt_version="bench",
        model="bench",
        created_at=datetime.now(UTC),
    )
    return event.model_dump(mode="json")


# -- scenarios -----------------------------------------------------------------------------


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


@dataclass(frozen=True)
class Figures:
    stub_direct: ScenarioResult
    cache_miss: ScenarioResult
    state_read: ScenarioResult
    cache_hit: ScenarioResult
    lesson_list: ScenarioResult
    events_settled_seconds: float | None  # generation events consumed this long after the list
    progress_hot: ScenarioResult
    progress_many: ScenarioResult
    event_lag: EventLagResult

    def scenarios(self) -> list[ScenarioResult]:
        return [
            self.stub_direct,
            self.cache_miss,
            self.state_read,
            self.cache_hit,
            self.lesson_list,
            self.progress_hot,
            self.progress_many,
        ]


class Workloads:
    def __init__(
        self,
        client: httpx.AsyncClient,
        agent: AppInstance,
        progress: AppInstance,
        stub_url: str,
        config: BenchConfig,
    ) -> None:
        self.client = client
        self.agent = agent
        self.progress = progress
        self.stub_url = stub_url
        self.config = config
        # Ids are unique per run, so a shared PostgreSQL (LEARNFLOW_PG_CONNECTION) stays valid.
        self.tag = uuid.uuid4().hex[:8]

    def _id(self, kind: str, index: int | str) -> str:
        return f"bench-{self.tag}-{kind}-{index}"

    def _deadline(self) -> float:
        return time.perf_counter() + self.config.max_seconds_per_scenario

    async def _generate(self, learner_id: str, topic: str, status: int) -> dict[str, Any]:
        response = await self.client.post(
            f"{self.agent.url}/generate-lesson", json=generate_body(learner_id, topic)
        )
        answer: dict[str, Any] = expect(response, status).json()
        return answer

    async def _lessons_assigned(self, learner_id: str) -> int:
        response = await self.client.get(
            f"{self.progress.url}/status", params={"learner_id": learner_id}
        )
        assigned: int = expect(response, 200).json()["lessons_assigned"]
        return assigned

    async def stub_direct(self) -> ScenarioResult:
        system_prompt = active_system_prompt()

        async def call(index: int) -> None:
            body = stub_chat_request(system_prompt, f"Stub topic {index}")
            expect(await self.client.post(f"{self.stub_url}/v1/chat/completions", json=body), 200)

        return await measure(
            "LLM stub called directly (baseline)",
            call,
            requests=self.config.count(STUB_DIRECT_REQUESTS),
            concurrency=self.config.concurrency,
            deadline=self._deadline(),
        )

    async def cache_miss(self) -> ScenarioResult:
        # A new learner and topic each time: no cache entry, no per-learner write contention.
        async def call(index: int) -> None:
            await self._generate(self._id("miss", index), f"Miss topic {index}", 201)

        return await measure(
            "Course Agent generate, cache miss",
            call,
            requests=self.config.count(CACHE_MISS_REQUESTS),
            concurrency=self.config.concurrency,
            deadline=self._deadline(),
        )

    async def cache_hit(self) -> tuple[ScenarioResult, ScenarioResult]:
        """(one daprd state GET of the cached lesson, the cache hit that serves it)."""
        learner = self._id("hit", "learner")
        state_name, hit_name = (
            "Dapr state GET of one key (baseline)",
            "Course Agent generate, cache hit",
        )
        state_requests = self.config.count(STATE_READ_REQUESTS)
        hit_requests = self.config.count(CACHE_HIT_REQUESTS)
        try:
            lesson = await self._generate(learner, "Cached topic", 201)
        except (httpx.HTTPError, UnexpectedAnswer) as error:
            reason = f"{type(error).__name__}: {error}"
            return (
                ScenarioResult.set_up_failed(
                    state_name, self.config.concurrency, state_requests, reason
                ),
                ScenarioResult.set_up_failed(
                    hit_name, self.config.concurrency, hit_requests, reason
                ),
            )
        state_url = (
            f"{self.agent.sidecar.http_url}/v1.0/state/{STATESTORE}/lesson-{lesson['lesson_id']}"
        )

        async def read_state(_: int) -> None:
            expect(await self.client.get(state_url), 200)

        async def hit(_: int) -> None:
            await self._generate(learner, "Cached topic", 200)

        state_read = await measure(
            state_name,
            read_state,
            requests=state_requests,
            concurrency=self.config.concurrency,
            deadline=self._deadline(),
        )
        cache_hit = await measure(
            hit_name,
            hit,
            requests=hit_requests,
            concurrency=self.config.concurrency,
            deadline=self._deadline(),
        )
        return state_read, cache_hit

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
        deadline = self._deadline()
        learner = self._id("list", "learner")
        requests = self.config.count(LESSON_LIST_REQUESTS)

        async def create(index: int) -> None:
            await self._generate(learner, f"Listed topic {index}", 201)

        created = await drive(
            create, range(LESSONS_PER_LISTED_LEARNER), self.config.concurrency, deadline
        )
        generated = len(created.latencies)
        try:
            listed = await self._list_lessons(learner) if generated else 0
        except (httpx.HTTPError, UnexpectedAnswer) as error:
            created.errors.append(f"{type(error).__name__}: {error}")
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

        result = await measure(
            f"GET /lessons, learner with {listed} lessons",
            call,
            requests=requests,
            concurrency=self.config.concurrency,
            deadline=deadline,
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
                if await self._lessons_assigned(learner_id) >= lessons:
                    return time.perf_counter() - began
            except (httpx.HTTPError, UnexpectedAnswer) as error:
                _log(f"waiting for lesson events: {error}")
            await asyncio.sleep(0.1)
        return None

    async def _progress_updates(
        self, name: str, learner_of: Callable[[int], str], requests: int
    ) -> ScenarioResult:
        async def call(index: int) -> None:
            body = quiz_update(
                learner_of(index),
                self._id("lesson", index % HOT_LEARNER_LESSONS),
                self._id("attempt", index),
                score=(index * 37) % 101,
            )
            expect(await self.client.post(f"{self.progress.url}/update-progress", json=body), 200)

        return await measure(
            name,
            call,
            requests=requests,
            concurrency=self.config.progress_concurrency,
            deadline=self._deadline(),
        )

    async def progress_hot(self) -> ScenarioResult:
        hot = self._id("hot", "learner")
        return await self._progress_updates(
            "update-progress, one hot learner",
            lambda _: hot,
            self.config.count(PROGRESS_HOT_REQUESTS),
        )

    async def progress_many(self) -> ScenarioResult:
        return await self._progress_updates(
            "update-progress, a new learner each",
            lambda index: self._id("many", index),
            self.config.count(PROGRESS_MANY_REQUESTS),
        )

    async def _publish_and_watch(self, indices: range, deadline: float) -> WatchedEvents:
        """Publish a lesson-generated event for each index, each for its own learner, through
        the Course Agent's daprd, while polling GET /status of every published learner not yet
        showing the lesson, in rounds, until all show it or ``deadline``."""
        url = f"{self.agent.sidecar.http_url}/v1.0/publish/{PUBSUB}/{LESSON_GENERATED_TOPIC}"
        watched = WatchedEvents()
        if time.perf_counter() >= deadline:
            return watched  # nothing published that nobody would watch
        publishing = asyncio.Event()
        publishing.set()
        publish_slots = asyncio.Semaphore(self.config.concurrency)
        poll_slots = asyncio.Semaphore(self.config.progress_concurrency)

        async def publish(index: int) -> None:
            learner = self._id("lag", index)
            event = lesson_generated_event(self._id("lag-lesson", index), learner)
            async with publish_slots:
                sent = time.perf_counter()
                try:
                    expect(await self.client.post(url, json=event), 204)
                except (httpx.HTTPError, UnexpectedAnswer) as error:
                    watched.publish_errors.append(f"{type(error).__name__}: {error}")
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
                    if await self._lessons_assigned(learner) >= 1:
                        watched.visible_at[learner] = time.perf_counter()
                except (httpx.HTTPError, UnexpectedAnswer) as error:
                    watched.poll_errors.append(f"{type(error).__name__}: {error}")

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

    async def event_lag(self) -> EventLagResult:
        """First LONE_LAG_EVENTS events one at a time (nothing queued, one GET per poll round),
        then a burst of LAG_EVENTS published at once (queueing, and the consumption rate)."""
        deadline = self._deadline()
        lone = WatchedEvents()
        for index in range(LONE_LAG_EVENTS):
            lone.merge(await self._publish_and_watch(range(index, index + 1), deadline))
        burst_count = self.config.count(LAG_EVENTS)
        burst = await self._publish_and_watch(
            range(LONE_LAG_EVENTS, LONE_LAG_EVENTS + burst_count), deadline
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
        _log(
            f"event lag: {len(lone.visible_at)} lone and {len(burst.visible_at)} burst events seen"
        )
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
            poll_errors=len(lone.poll_errors) + len(burst.poll_errors),
            first_error=errors[0] if errors else None,
        )


async def measure_all(
    agent: AppInstance, progress: AppInstance, stub_url: str, config: BenchConfig
) -> Figures:
    async with httpx.AsyncClient(
        timeout=config.request_timeout_seconds,
        trust_env=False,  # loopback only: never through a proxy from the environment
        limits=httpx.Limits(
            max_connections=4 * max(config.concurrency, config.progress_concurrency)
        ),
    ) as client:
        work = Workloads(client, agent, progress, stub_url, config)
        stub_direct = await work.stub_direct()
        cache_miss = await work.cache_miss()
        state_read, cache_hit = await work.cache_hit()
        lesson_list, listed_learner, generated = await work.lesson_list()
        settled = await work.settle(listed_learner, generated)
        progress_hot = await work.progress_hot()
        progress_many = await work.progress_many()
        event_lag = await work.event_lag()
    return Figures(
        stub_direct=stub_direct,
        cache_miss=cache_miss,
        state_read=state_read,
        cache_hit=cache_hit,
        lesson_list=lesson_list,
        events_settled_seconds=settled,
        progress_hot=progress_hot,
        progress_many=progress_many,
        event_lag=event_lag,
    )


# -- memory --------------------------------------------------------------------------------


def status_kib(status_text: str, name: str) -> int | None:
    """A ``kB`` field (``VmHWM``, ``VmRSS``, ...) of a /proc/<pid>/status text, in KiB."""
    for line in status_text.splitlines():
        key, _, value = line.partition(":")
        if key == name:
            return int(value.split()[0])
    return None


def stat_fields(stat_text: str) -> list[str]:
    """The fields of a /proc/<pid>/stat text from field 3 (state) on. The command name (field
    2) may hold spaces and parentheses, so counting starts after its last closing one."""
    return stat_text[stat_text.rindex(")") + 2 :].split()


def parent_pid(stat_text: str) -> int:
    return int(stat_fields(stat_text)[1])


def cpu_ticks(stat_text: str, *, reaped_children: bool) -> int:
    """utime + stime in clock ticks, plus cutime + cstime (children it has waited for) if
    ``reaped_children``."""
    fields = stat_fields(stat_text)
    own = int(fields[11]) + int(fields[12])
    return own + (int(fields[13]) + int(fields[14]) if reaped_children else 0)


def descendants(pid: int, parents: Mapping[int, int]) -> list[int]:
    """Every process below ``pid`` in the ``child -> parent`` map."""
    children: dict[int, list[int]] = {}
    for child, parent in parents.items():
        children.setdefault(parent, []).append(child)
    found: list[int] = []
    frontier = [pid]
    while frontier:
        below = children.get(frontier.pop(), [])
        found.extend(below)
        frontier.extend(below)
    return found


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text()
    except OSError:
        return None  # the process ended while we looked


def _process_parents() -> dict[int, int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _read(f"/proc/{entry.name}/stat")):
            parents[int(entry.name)] = parent_pid(stat)
    return parents


@dataclass(frozen=True)
class ProcessUsage:
    name: str
    pid: int
    peak_mib: float | None  # VmHWM; None if the process had ended
    children: int  # living descendants, e.g. PostgreSQL backends
    children_peak_mib: float  # their VmHWM summed: shared pages are counted in each one
    cpu_seconds: float  # since it started: itself, its reaped and its living descendants


def process_usage(processes: Iterable[ManagedProcess]) -> list[ProcessUsage]:
    parents = _process_parents()
    ticks_per_second = os.sysconf("SC_CLK_TCK")
    measured: list[ProcessUsage] = []
    for process in processes:
        status, stat = _read(f"/proc/{process.pid}/status"), _read(f"/proc/{process.pid}/stat")
        peak = status_kib(status, "VmHWM") if status else None
        ticks = cpu_ticks(stat, reaped_children=True) if stat else 0
        child_peaks: list[int] = []
        for child in descendants(process.pid, parents):
            child_status, child_stat = _read(f"/proc/{child}/status"), _read(f"/proc/{child}/stat")
            if child_status and child_stat and (child_peak := status_kib(child_status, "VmHWM")):
                child_peaks.append(child_peak)
                ticks += cpu_ticks(child_stat, reaped_children=False)
        measured.append(
            ProcessUsage(
                name=process.name,
                pid=process.pid,
                peak_mib=None if peak is None else peak * 1024 / _MIB,
                children=len(child_peaks),
                children_peak_mib=sum(child_peaks) * 1024 / _MIB,
                cpu_seconds=ticks / ticks_per_second,
            )
        )
    return measured


# -- report --------------------------------------------------------------------------------


@dataclass(frozen=True)
class BenchReport:
    config: BenchConfig
    cpus: int
    load_average_at_start: tuple[float, float, float]
    stack_start_seconds: float
    total_seconds: float
    client_cpu_seconds: float  # this process: the load generator shares the CPUs too
    figures: Figures
    processes: list[ProcessUsage]

    @property
    def service_overhead(self) -> PercentileDifference | None:
        return _difference(self.figures.cache_miss, self.figures.stub_direct)

    @property
    def cache_hit_overhead(self) -> PercentileDifference | None:
        return _difference(self.figures.cache_hit, self.figures.state_read)

    @property
    def failed_requests(self) -> int:
        lag = self.figures.event_lag
        scenario_errors = sum(s.errors for s in self.figures.scenarios())
        return scenario_errors + lag.publish_errors + lag.poll_errors

    def as_json(self) -> dict[str, Any]:
        document = dataclasses.asdict(self)
        document["config"]["json_path"] = self.config.json_path and str(self.config.json_path)
        document["service_overhead"] = _as_dict(self.service_overhead)
        document["cache_hit_overhead"] = _as_dict(self.cache_hit_overhead)
        document["units"] = {
            "latency": "seconds",
            "memory": "MiB",
            "cpu": "seconds",
            "throughput": "per second",
        }
        return document


def _difference(measured: ScenarioResult, baseline: ScenarioResult) -> PercentileDifference | None:
    if measured.latency is None or baseline.latency is None:
        return None
    return difference(measured.latency, baseline.latency)


def _as_dict(value: PercentileDifference | None) -> dict[str, float] | None:
    return None if value is None else dataclasses.asdict(value)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:9.1f}"


def _scenario_row(result: ScenarioResult) -> str:
    count = f"{result.completed}{'*' if result.cut_short else ''}"
    latency = result.latency
    figures = (
        f"{_ms(latency.p50)}{_ms(latency.p95)}{_ms(latency.p99)}"
        if latency
        else f"{'-':>9}{'-':>9}{'-':>9}"
    )
    return (
        f"{result.name:<44}{result.concurrency:>5}{count:>6}{result.errors:>5}"
        f"{figures}{result.requests_per_second:>9.1f}"
    )


def _difference_row(label: str, value: PercentileDifference | None) -> str:
    if value is None:
        return f"{label:<60}{'(no figures)':>27}"
    return f"{label:<60}{value.p50 * 1000:>+9.1f}{value.p95 * 1000:>+9.1f}{value.p99 * 1000:>+9.1f}"


def render(report: BenchReport) -> str:
    config, figures = report.config, report.figures
    load = " / ".join(f"{x:.2f}" for x in report.load_average_at_start)
    lines = [
        "LearnFlow benchmark",
        f"  LLM stub delay {config.llm_delay_seconds:.3f} s, request scale "
        f"{config.scale:g}, cap {config.max_seconds_per_scenario:g} s per scenario",
        f"  {report.cpus} CPUs, load average at start {load}; "
        f"this client used {report.client_cpu_seconds:.1f} CPU s",
        f"  stack + stub ready in {report.stack_start_seconds:.1f} s, "
        f"whole run {report.total_seconds:.1f} s",
        "",
        f"{'scenario':<44}{'conc':>5}{'n':>6}{'err':>5}"
        f"{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'req/s':>9}",
        "-" * 96,
        _scenario_row(figures.stub_direct),
        _scenario_row(figures.cache_miss),
        _difference_row("  service overhead: cache miss - direct stub", report.service_overhead),
        _scenario_row(figures.state_read),
        _scenario_row(figures.cache_hit),
        _difference_row("  cache hit - one state GET", report.cache_hit_overhead),
        _scenario_row(figures.lesson_list),
        _scenario_row(figures.progress_hot),
        _scenario_row(figures.progress_many),
        "-" * 96,
        "n: measured requests (warm-up of 2 x conc excluded); * the cap ended it early.",
        "Percentiles: linear interpolation between ranks (numpy's default); "
        "req/s: successes / wall time.",
    ]
    settled = figures.events_settled_seconds
    lines.append(
        "User Progress had consumed every lesson event of the generation scenarios "
        + (f"{settled:.1f} s after GET /lessons ended." if settled is not None else "NOT IN TIME.")
    )
    for scenario in figures.scenarios():
        if scenario.first_error:
            lines.append(f"  first error of {scenario.name}: {scenario.first_error}")
        if scenario.note:
            lines.append(f"  NOTE on {scenario.name}: {scenario.note}")
    lines += ["", *_event_lag_lines(figures.event_lag), "", *_usage_lines(report.processes)]
    return "\n".join(lines)


def _event_lag_lines(lag: EventLagResult) -> list[str]:
    lines = [
        "Event lag: lesson-generated published via course-agent's daprd -> GET /status shows it"
    ]
    if lone := lag.lone:
        lines.append(
            f"  one at a time ({lone.count} of {lag.lone_published} seen): "
            f"p50 {lone.p50 * 1000:.0f} ms, max {lone.maximum * 1000:.0f} ms; "
            f"resolution ~{_rounded_ms(lag.lone_mean_poll_seconds)} (one GET /status)"
        )
    lines.append(
        f"  burst of {lag.burst_published} published at once: {lag.burst_visible} became visible"
    )
    if burst := lag.burst_lag:
        lines.append(
            f"    lag p50 {burst.p50 * 1000:.0f} ms, p95 {burst.p95 * 1000:.0f} ms, "
            f"p99 {burst.p99 * 1000:.0f} ms, max {burst.maximum * 1000:.0f} ms; "
            f"consumed at {lag.burst_events_per_second:.1f} events/s;\n"
            f"    resolution ~{_rounded_ms(lag.burst_mean_poll_round_seconds)} (one poll round)"
        )
    lines.append(f"  {lag.publish_errors} publish errors, {lag.poll_errors} poll errors")
    if lag.first_error:
        lines.append(f"  first error: {lag.first_error}")
    return lines


def _rounded_ms(seconds: float | None) -> str:
    return "?" if seconds is None else f"{seconds * 1000:.0f} ms"


def _usage_lines(usage: list[ProcessUsage]) -> list[str]:
    lines = [
        "Peak memory (VmHWM) and CPU time of each process at the end of the run",
        f"  {'process':<22}{'pid':>8}{'peak MiB':>10}{'CPU s':>8}"
        "   living children: count, sum of their peaks",
    ]
    for process in usage:
        peak = f"{process.peak_mib:10.1f}" if process.peak_mib is not None else f"{'ended':>10}"
        children = (
            f"   {process.children}, {process.children_peak_mib:.1f} MiB"
            if process.children
            else ""
        )
        lines.append(
            f"  {process.name:<22}{process.pid:>8}{peak}{process.cpu_seconds:>8.1f}{children}"
        )
    peaks = sum(p.peak_mib or 0.0 for p in usage)
    cpu = sum(p.cpu_seconds for p in usage)
    lines.append(f"  {'sum':<22}{'':>8}{peaks:10.1f}{cpu:>8.1f}   (children's peaks not included)")
    lines.append("  CPU s: user + system since the process started, its children included.")
    return lines


# -- command -------------------------------------------------------------------------------


def course_agent_env(stub_url: str, config: BenchConfig) -> dict[str, str]:
    return {
        "COURSE_AGENT_LLM_PROVIDER": "openai",
        "COURSE_AGENT_LLM_BASE_URL": f"{stub_url}/v1",
        "COURSE_AGENT_LLM_API_KEY": "stub-key",  # the stub ignores it; not a secret
        "COURSE_AGENT_LLM_TIMEOUT_SECONDS": f"{5.0 + 2 * config.llm_delay_seconds:g}",
        # A retry would hide a failure inside a slower figure; errors must show as errors.
        "COURSE_AGENT_LLM_MAX_RETRIES": "0",
    }


def _own_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def run(args: argparse.Namespace) -> int:
    config = BenchConfig.from_args(args)
    began = time.perf_counter()
    load_average = os.getloadavg()
    run_dir = runs_root() / f"bench-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    try:
        stub_url, stub = start_stub_process(
            config.llm_delay_seconds, run_dir / "logs" / "llm-stub.log"
        )
    except StartError as error:
        _log(f"could not start the LLM stub: {error}")
        return 1
    stack = Stack(
        [services.user_progress(), services.course_agent(course_agent_env(stub_url, config))],
        run_dir=run_dir,
    )
    try:
        with stack:
            stack_start_seconds = time.perf_counter() - began
            figures = asyncio.run(
                measure_all(
                    stack.app(COURSE_AGENT_APP_ID),
                    stack.app(USER_PROGRESS_APP_ID),
                    stub_url,
                    config,
                )
            )
            processes = process_usage([*stack.processes(), stub])
    except StartError as error:
        _log(f"could not start: {error}")
        return 1
    finally:
        stub.stop()
    report = BenchReport(
        config=config,
        cpus=os.cpu_count() or 0,
        load_average_at_start=load_average,
        stack_start_seconds=stack_start_seconds,
        total_seconds=time.perf_counter() - began,
        client_cpu_seconds=_own_cpu_seconds(),
        figures=figures,
        processes=processes,
    )
    print(render(report), flush=True)
    if config.json_path is not None:
        config.json_path.write_text(json.dumps(report.as_json(), indent=2))
        _log(f"results written to {config.json_path}")
    if report.failed_requests:
        _log(f"{report.failed_requests} requests failed; see the first errors above")
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="learnflow-stack bench", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
