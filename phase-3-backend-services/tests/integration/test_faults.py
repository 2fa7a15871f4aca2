"""Faults on the real stack: a dependency goes down, the services answer clearly, and nothing
acknowledged is lost. Each test restores what it stopped (these run last).

The fault suite (the tests that record a ``FaultRow``) freezes or kills the real pieces and checks
its invariants with readers of its own: SQL on the Dapr state table, a Kafka consumer counting
CloudEvent ids. Every answer must come within its documented deadline: 3 s for progress calls;
for a generation the LLM's time plus 5 s (progress lookup, then the state store, each bounded).
Each fault table row is printed at the end of the run and written to fault-report.md."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import statistics
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from course_agent.generation_claim import LEASE_SECONDS
from learnflow_contracts.names import LESSON_GENERATED_TOPIC, PROGRESS_UPDATED_TOPIC
from learnflow_stack.private_network import network_namespace
from learnflow_stack.stack import AppInstance, Stack

from .conftest import (
    FAULT_ROWS,
    FaultRow,
    LlmStub,
    TopicReader,
    eventually,
    learner_status,
    live_generation_claims,
    post_quiz_update,
    quiz_update_body,
    stored_progress,
)

PROGRESS_DEADLINE = 3.0
GENERATE_DEADLINE = 5.0  # the stub LLM answers at once
# Deadlines are the service's promise, checked on its own clock (the Server-Timing header): a
# burst of 200 connections from one Python client on 2 cores adds seconds of client-side
# queueing that no server can bound. What comes before the middleware gets this much slack.
SERVER_SLACK = 0.25
RECOVERY_LIMIT = 30.0


def _learner() -> str:
    return f"learner-{uuid.uuid4().hex[:10]}"


def _generate(stack: Stack, learner: str, topic: str) -> httpx.Response:
    return httpx.post(
        f"{stack.app('course-agent').url}/generate-lesson",
        json={"learner_id": learner, "topic": topic},
        timeout=60,
        headers=stack.auth_headers(),
    )


def _ready(instance: AppInstance) -> bool:
    return httpx.get(f"{instance.url}/readyz", timeout=5).status_code == 200


@contextmanager
def postgres_down(stack: Stack) -> Iterator[None]:
    assert stack.postgres is not None
    stack.postgres.stop()
    try:
        yield
    finally:
        stack.postgres.start()
        for instance in stack.instances:
            eventually(lambda i=instance: _ready(i), timeout=60)


@contextmanager
def kafka_down(stack: Stack) -> Iterator[None]:
    assert stack.kafka is not None
    stack.kafka.stop()
    try:
        yield
    finally:
        stack.kafka.start()


def test_user_progress_down_gives_a_non_personalised_lesson(stack: Stack) -> None:
    progress = stack.app("user-progress")
    progress.process.stop()
    try:
        response = _generate(stack, _learner(), "Rivers")
    finally:
        progress.process.start()
        eventually(lambda: _ready(progress), timeout=60)
        eventually(progress.sidecar.placement_connected, timeout=60)

    assert response.status_code == 201, response.text
    assert response.json()["personalized"] is False
    assert response.json()["personalization"] == "unavailable"
    metrics = httpx.get(f"{stack.app('course-agent').url}/metrics", timeout=10).text
    assert 'lesson_personalization_total{outcome="unavailable"}' in metrics


def test_user_progress_frozen_still_gives_a_lesson_without_personalisation(stack: Stack) -> None:
    progress = stack.app("user-progress")
    # Frozen, not dead: connections are accepted and never answered (the slow case).
    os.kill(progress.process.pid, signal.SIGSTOP)
    try:
        response = _generate(stack, _learner(), "Lagoons")
    finally:
        os.kill(progress.process.pid, signal.SIGCONT)

    assert response.status_code == 201, response.text
    assert response.json()["personalization"] == "unavailable"


def test_state_store_down_is_a_clear_503_and_publishes_nothing(
    stack: Stack, read_topic: TopicReader
) -> None:
    learner = _learner()
    with postgres_down(stack):
        lesson = _generate(stack, learner, "Deltas")
        update = post_quiz_update(stack, learner, attempt := uuid.uuid4().hex)
        not_ready = httpx.get(f"{stack.app('course-agent').url}/readyz", timeout=10)

    assert lesson.status_code == 503, lesson.text
    assert lesson.json()["error"]["code"] == "state_store_unavailable"
    assert update.status_code == 503, update.text
    assert update.json()["error"]["code"] == "state_store_unavailable"
    assert not_ready.status_code == 503
    assert not_ready.json()["checks"]["state_store"] is False
    # Nothing half-written: the refused update is absent, and applying it now counts it once.
    assert learner_status(stack, learner)["average_score"] is None
    assert post_quiz_update(stack, learner, attempt).json()["average_score"] == 70
    assert (
        read_topic(LESSON_GENERATED_TOPIC, lambda e: e.get("data", {}).get("learner_id") == learner)
        == []
    )


def test_kafka_down_then_back_loses_no_event(stack: Stack, read_topic: TopicReader) -> None:
    learner, attempt = _learner(), uuid.uuid4().hex
    with kafka_down(stack):
        lesson = _generate(stack, learner, "Estuaries")
        update = post_quiz_update(stack, learner, attempt, score=64)

    # Acknowledged while the broker was down...
    assert lesson.status_code == 201, lesson.text
    assert update.status_code == 200, update.text
    # ...and both events arrive once it is back (each service's outbox relay).
    lesson_id = lesson.json()["lesson_id"]
    eventually(
        lambda: read_topic(
            LESSON_GENERATED_TOPIC, lambda e: e.get("data", {}).get("lesson_id") == lesson_id
        ),
        90,
    )
    eventually(
        lambda: read_topic(
            PROGRESS_UPDATED_TOPIC, lambda e: e.get("data", {}).get("attempt_id") == attempt
        ),
        90,
    )
    # User Progress consumed the lesson event too.
    eventually(lambda: learner_status(stack, learner)["lessons_assigned"] >= 1, 90)


def test_sidecar_down_fails_readiness_and_requests_get_a_clear_503(stack: Stack) -> None:
    progress = stack.app("user-progress")
    assert progress.sidecar.process is not None
    progress.sidecar.process.stop()
    try:
        ready = httpx.get(f"{progress.url}/readyz", timeout=10)
        status = httpx.get(
            f"{progress.url}/status",
            params={"learner_id": _learner()},
            timeout=10,
            headers=stack.auth_headers(),
        )
    finally:
        progress.sidecar.start()
        eventually(progress.sidecar.placement_connected, timeout=60)

    assert ready.status_code == 503
    assert ready.json()["checks"]["dapr_sidecar"] is False
    assert status.status_code == 503
    assert status.json()["error"]["code"] == "dapr_sidecar_unavailable"


# -- the fault suite ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """One request of a burst: what it asked, and what came back how fast."""

    name: str
    method: str
    url: str
    body: dict[str, Any] | None = None
    params: dict[str, str] | None = None
    headers: dict[str, str] | None = None  # the bearer token


@dataclass(frozen=True)
class Answer:
    call: Call
    status: int
    code: str | None
    seconds: float
    server_seconds: float
    body: dict[str, Any]


async def _answer(client: httpx.AsyncClient, call: Call) -> Answer:
    started = time.monotonic()
    response = await client.request(
        call.method, call.url, json=call.body, params=call.params, headers=call.headers
    )
    seconds = time.monotonic() - started
    body = response.json()
    code = body.get("error", {}).get("code") if isinstance(body, dict) else None
    server_ms = float(response.headers["server-timing"].split("dur=")[1])
    return Answer(call, response.status_code, code, seconds, server_ms / 1000, body)


def _send(calls: Sequence[Call], in_flight: int) -> list[Answer]:
    async def all_of_them() -> list[Answer]:
        limits = httpx.Limits(max_connections=in_flight)
        async with httpx.AsyncClient(timeout=60, limits=limits) as client:
            return list(await asyncio.gather(*(_answer(client, c) for c in calls)))

    return asyncio.run(all_of_them())


def _send_while_claimed(
    call: Call, sql: psycopg.Connection[Any], llm_stub: LlmStub
) -> tuple[Answer, Answer]:
    """``call`` twice: the second once the first holds its lesson's claim (seen with SQL), so
    the second must wait for the first in the lesson's actor."""
    assert live_generation_claims(sql) == 0

    async def both() -> tuple[Answer, Answer]:
        async with httpx.AsyncClient(timeout=60) as client:
            first = asyncio.ensure_future(_answer(client, call))
            await asyncio.to_thread(eventually, lambda: live_generation_claims(sql) == 1, 10, 0.05)
            second = await _answer(client, call)
            return await first, second

    llm_stub.mode(delay_seconds=2.0)
    try:
        return asyncio.run(both())
    finally:
        llm_stub.reset()


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _all_ready(stack: Stack) -> bool:
    return all(_ready(instance) for instance in stack.instances)


def _seconds_until(check: Any, limit: float = RECOVERY_LIMIT) -> float:
    started = time.monotonic()
    eventually(check, timeout=limit, interval=0.2)
    return time.monotonic() - started


def _record(
    fault: str,
    answers: Sequence[Answer],
    *,
    events_expected: int = 0,
    events: Sequence[dict[str, Any]] = (),
    recovery: float = 0.0,
) -> None:
    statuses = Counter(f"{a.status} {a.code}" if a.code else str(a.status) for a in answers)
    latencies = [a.seconds * 1000 for a in answers]
    FAULT_ROWS.append(
        FaultRow(
            fault=fault,
            sent=len(answers),
            statuses=dict(statuses),
            p50_ms=statistics.median(latencies),
            p99_ms=_percentile(latencies, 0.99),
            server_p99_ms=_percentile([a.server_seconds * 1000 for a in answers], 0.99),
            events_expected=events_expected,
            events_seen=len({e["id"] for e in events}),
            copies=len(events),
            recovery_seconds=recovery,
        )
    )


def _applied_attempts(pg: psycopg.Connection[Any], learner: str) -> set[str]:
    """The attempt ids the learner's stored progress holds, read straight from PostgreSQL."""
    attempt_ids: set[str] = stored_progress(pg, learner).applied_attempt_ids
    return attempt_ids


def _progress_events(read_topic: TopicReader, learner: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = read_topic(
        PROGRESS_UPDATED_TOPIC,
        lambda e: e.get("data", {}).get("projection", {}).get("learner_id") == learner,
    )
    return found


def _every_copy(read: Callable[[], list[dict[str, Any]]], distinct: int) -> list[dict[str, Any]]:
    """Poll ``read`` (a topic reader) until it shows ``distinct`` event ids; every copy seen."""

    def complete() -> list[dict[str, Any]] | None:
        found = read()
        return found if len({e["id"] for e in found}) >= distinct else None

    copies: list[dict[str, Any]] = eventually(complete, timeout=90)
    return copies


def _update_calls(stack: Stack, learner: str, count: int) -> list[Call]:
    url = f"{stack.app('user-progress').url}/update-progress"
    token = stack.auth_headers(learner)
    return [
        Call("update", "POST", url, quiz_update_body(learner, uuid.uuid4().hex), headers=token)
        for _ in range(count)
    ]


def _generate_calls(stack: Stack, learner: str, count: int, replica: int = 0) -> list[Call]:
    url = f"{stack.app('course-agent', replica).url}/generate-lesson"
    return [
        Call(
            "generate",
            "POST",
            url,
            {"learner_id": learner, "topic": f"Fault {uuid.uuid4().hex[:8]}"},
            headers=stack.auth_headers(learner),
        )
        for _ in range(count)
    ]


def _reads(stack: Stack, learner: str) -> list[Call]:
    return [
        Call(
            "status",
            "GET",
            f"{stack.app('user-progress').url}/status",
            params={"learner_id": learner},
            headers=stack.auth_headers(learner),
        ),
        Call(
            "lessons",
            "GET",
            f"{stack.app('course-agent').url}/lessons",
            params={"learner_id": learner},
            headers=stack.auth_headers(learner),
        ),
    ]


def _within_deadline(answers: Sequence[Answer]) -> list[tuple[str, int, str | None, float]]:
    """The answers that came later than their deadline (should be none)."""
    return [
        (a.call.name, a.status, a.code, round(a.server_seconds, 2))
        for a in answers
        if a.server_seconds
        > (GENERATE_DEADLINE if a.call.name == "generate" else PROGRESS_DEADLINE) + SERVER_SLACK
    ]


@pytest.fixture
def sql(stack: Stack) -> Iterator[psycopg.Connection[Any]]:
    """A connection of this test's own (earlier fault tests restart PostgreSQL)."""
    with psycopg.connect(stack.pg_connection, autocommit=True) as connection:
        yield connection


def _process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (PostgreSQL's backends, checkpointer, walwriter, ...)."""
    tree = [pid]
    for task in Path(f"/proc/{pid}/task").iterdir():
        children = (task / "children").read_text().split()
        for child in children:
            tree.extend(_process_tree(int(child)))
    return tree


@contextmanager
def _frozen(pid: int) -> Iterator[None]:
    """SIGSTOP a process and every process under it, SIGCONT them all afterwards."""
    frozen = _process_tree(pid)
    assert frozen
    for each in frozen:
        os.kill(each, signal.SIGSTOP)
    try:
        yield
    finally:
        for each in frozen:
            os.kill(each, signal.SIGCONT)


def test_fault_200_updates_in_flight_for_one_learner_lose_no_event(
    stack: Stack, sql: psycopg.Connection[Any], read_topic: TopicReader
) -> None:
    learner = _learner()
    answers = _send(_update_calls(stack, learner, 200), in_flight=200)

    applied = _applied_attempts(sql, learner)
    by_attempt = {a.call.body["attempt_id"]: a for a in answers if a.call.body}
    ok = {attempt for attempt, a in by_attempt.items() if a.status == 200}
    refused = {
        attempt
        for attempt, a in by_attempt.items()
        if (a.status, a.code) in {(429, "too_many_pending_updates"), (503, "learner_busy")}
    }
    assert ok | refused == set(by_attempt), Counter((a.status, a.code) for a in answers)
    assert ok, "no update got through"
    # What was acknowledged is stored; what was refused is not; nothing else happened.
    assert applied == ok
    assert learner_status(stack, learner)["total_time_seconds"] == len(ok)
    # Every applied update has its event, once per distinct id (copies are allowed, ids exact).
    expected = {f"progress-{learner}-{attempt}" for attempt in applied}
    events = _every_copy(lambda: _progress_events(read_topic, learner), len(expected))
    _record(
        "200 updates in flight, one learner", answers, events_expected=len(expected), events=events
    )
    assert {e["id"] for e in events} == expected
    assert _within_deadline(answers) == []


def test_fault_kafka_frozen_during_20_generations_slows_nothing_and_loses_nothing(
    stack: Stack, read_topic: TopicReader
) -> None:
    assert stack.kafka is not None
    assert stack.kafka.process is not None
    learner, updating = _learner(), _learner()
    calls = _generate_calls(stack, learner, 20) + _update_calls(stack, updating, 5)
    with _frozen(stack.kafka.process.pid):
        answers = _send(calls, in_flight=4)
    recovery = _seconds_until(lambda: _all_ready(stack))

    assert Counter(a.status for a in answers) == {201: 20, 200: 5}, [a.body for a in answers]
    assert _within_deadline(answers) == []
    lesson_ids = {a.body["lesson_id"] for a in answers if a.call.name == "generate"}
    lessons = _every_copy(
        lambda: read_topic(
            LESSON_GENERATED_TOPIC, lambda e: e.get("data", {}).get("learner_id") == learner
        ),
        20,
    )
    assert {e["data"]["lesson_id"] for e in lessons} == lesson_ids
    progress = _every_copy(lambda: _progress_events(read_topic, updating), 5)
    # User Progress counted each lesson once, whatever the copies.
    eventually(lambda: learner_status(stack, learner)["lessons_assigned"] == 20, timeout=60)
    _record(
        "Kafka frozen (SIGSTOP) during 20 generations + 5 updates",
        answers,
        events_expected=25,
        events=[*lessons, *progress],
        recovery=recovery,
    )


def test_fault_postgres_frozen_is_a_named_503_within_the_deadline_then_recovers(
    stack: Stack, sql: psycopg.Connection[Any], read_topic: TopicReader
) -> None:
    assert stack.postgres is not None
    assert stack.postgres.process is not None
    learner = _learner()
    updates = _update_calls(stack, learner, 4)
    calls = _generate_calls(stack, learner, 2) + updates + _reads(stack, learner)
    with _frozen(stack.postgres.process.pid):
        answers = _send(calls, in_flight=8)
    recovery = _seconds_until(lambda: _all_ready(stack))

    assert {(a.status, a.code) for a in answers} == {(503, "state_store_unavailable")}, [
        (a.call.name, a.status, a.body) for a in answers
    ]
    assert _within_deadline(answers) == []
    # The refused updates were not applied; a retry with the same attempt id applies each once.
    assert _applied_attempts(sql, learner) == set()
    retried = _send(updates + updates, in_flight=8)
    assert {a.status for a in retried} == {200}
    assert learner_status(stack, learner)["total_time_seconds"] == 4
    events = _every_copy(lambda: _progress_events(read_topic, learner), 4)
    _record(
        "PostgreSQL frozen (every process SIGSTOPped)",
        answers,
        events_expected=4,
        events=events,
        recovery=recovery,
    )


def test_fault_placement_killed_is_a_fast_named_503_where_actors_are_needed(
    stack: Stack, sql: psycopg.Connection[Any], llm_stub: LlmStub
) -> None:
    """Without placement no actor is reachable: progress updates, and a generation that must wait
    for another request's, answer a fast named 503. An uncontended generation needs no actor."""
    assert stack.placement is not None
    assert stack.placement.process is not None
    assert stack.placement.network is not None
    relay = stack.placement.network.process
    namespace = network_namespace(stack.placement.process.pid)
    learner = _learner()
    os.kill(stack.placement.process.pid, signal.SIGKILL)
    try:
        instances = [i for i in stack.instances if i.sidecar.process is not None]
        eventually(lambda: not any(i.sidecar.placement_connected() for i in instances), timeout=20)
        answers = _send(
            _update_calls(stack, learner, 4) + _generate_calls(stack, learner, 2), in_flight=6
        )
        holder, waiter = _send_while_claimed(_generate_calls(stack, learner, 1)[0], sql, llm_stub)
    finally:
        stack.placement.start()
    recovery = _seconds_until(
        lambda: _all_ready(stack)
        and post_quiz_update(stack, learner, uuid.uuid4().hex).status_code == 200
    )

    outcomes = Counter((a.call.name, a.status, a.code) for a in answers)
    assert outcomes == {
        ("update", 503, "actor_placement_unavailable"): 4,
        ("generate", 201, None): 2,
    }, [(a.call.name, a.status, a.body) for a in answers]
    assert (holder.status, waiter.status, waiter.code) == (201, 503, "actor_placement_unavailable")
    assert _within_deadline([*answers, holder, waiter]) == []
    assert live_generation_claims(sql) == 0  # the holder's commit released its claim
    # Started again in the namespace it had, held by the same relay: daprd's address stands.
    assert stack.placement.network.process is relay
    assert relay is not None
    assert relay.running()
    assert network_namespace(stack.placement.process.pid) == namespace
    _record("placement SIGKILLed, then restarted", [*answers, holder, waiter], recovery=recovery)


def _cache_pointers_of(sql: psycopg.Connection[Any], learner: str) -> int:
    """The lessons stored for ``learner``: their cache pointers, in the state table."""
    row = sql.execute(
        "SELECT count(*) FROM state WHERE key LIKE 'course-agent||lesson-cache-%%'"
        " AND convert_from(value, 'UTF8')::jsonb -> 'lesson' ->> 'learner_id' = %s",
        (learner,),
    ).fetchone()
    return int(row[0]) if row else 0


def test_fault_course_agent_killed_holding_a_claim_frees_the_lesson_within_the_lease(
    stack: Stack, sql: psycopg.Connection[Any], llm_stub: LlmStub
) -> None:
    """The replica generating a lesson is SIGKILLed while the LLM works. Its claim is left in
    the state table; it lapses at the end of its lease, and the same request on the other
    replica, which waits for it, then generates the lesson: one lesson, no refusal."""
    learner = _learner()
    holder_replica = stack.app("course-agent", 0)
    (holder_call,) = _generate_calls(stack, learner, 1, replica=0)
    (retry,) = _generate_calls(stack, learner, 1, replica=1)
    retry = dataclasses.replace(retry, body=holder_call.body)
    assert live_generation_claims(sql) == 0

    llm_stub.mode("hang")
    with ThreadPoolExecutor(max_workers=1) as pool:
        holder = pool.submit(
            httpx.post,
            holder_call.url,
            json=holder_call.body,
            headers=holder_call.headers,
            timeout=30,
        )
        eventually(lambda: live_generation_claims(sql) == 1, timeout=10, interval=0.05)
        os.kill(holder_replica.process.pid, signal.SIGKILL)
        killed = time.monotonic()
        with pytest.raises(httpx.TransportError):
            holder.result(timeout=30)
    left_behind = live_generation_claims(sql)
    llm_stub.reset()  # answering at once again; its count starts from 0
    holder_replica.process.start()
    eventually(lambda: _ready(holder_replica), timeout=60)

    (answer,) = _send([retry], in_flight=1)
    freed_after = time.monotonic() - killed

    assert left_behind == 1  # the killed holder's claim outlived it...
    assert answer.status == 201, answer.body  # ...until its lease ended: then it was taken over
    assert answer.server_seconds <= LEASE_SECONDS + 3  # waiting no longer than one lease
    assert llm_stub.calls() == 1
    assert live_generation_claims(sql) == 0
    assert _cache_pointers_of(sql, learner) == 1
    _record(
        "Course Agent replica SIGKILLed holding a lesson's claim", [answer], recovery=freed_after
    )


def test_fault_user_progress_sidecar_killed_then_every_replica_personalises_again(
    stack: Stack,
) -> None:
    progress = stack.app("user-progress")
    assert progress.sidecar.process is not None
    learner = _learner()
    history = {**quiz_update_body(learner, uuid.uuid4().hex, score=40), "topic": "Fractions"}
    url = f"{progress.url}/update-progress"
    assert (
        httpx.post(url, json=history, timeout=10, headers=stack.auth_headers()).status_code == 200
    )  # a weak topic

    os.kill(progress.sidecar.process.pid, signal.SIGKILL)
    try:
        eventually(
            lambda: not progress.sidecar.process or not progress.sidecar.process.running(), 10
        )
        replicas = [i for i in stack.instances if i.spec.app_id == "course-agent"]
        calls = [
            *_update_calls(stack, learner, 2),
            *_reads(stack, learner)[:1],
            *(
                c
                for r in range(len(replicas))
                for c in _generate_calls(stack, learner, 2, replica=r)
            ),
        ]
        answers = _send(calls, in_flight=6)
    finally:
        progress.sidecar.start()
    restarted = time.monotonic()

    progress_answers = [a for a in answers if a.call.name != "generate"]
    assert {(a.status, a.code) for a in progress_answers} == {(503, "dapr_sidecar_unavailable")}
    lessons = [a for a in answers if a.call.name == "generate"]
    assert {(a.status, a.body["personalization"]) for a in lessons} == {(201, "unavailable")}
    assert _within_deadline(answers) == []

    def personalised(replica: int) -> bool:
        url = f"{stack.app('course-agent', replica).url}/generate-lesson"
        body = {"learner_id": learner, "topic": f"Back {uuid.uuid4().hex[:8]}"}
        answer: dict[str, Any] = httpx.post(
            url, json=body, timeout=30, headers=stack.auth_headers()
        ).json()
        return answer.get("personalization") == "applied"

    for replica in range(len(replicas)):
        eventually(lambda r=replica: personalised(r), timeout=RECOVERY_LIMIT, interval=0.5)
    recovery = time.monotonic() - restarted
    assert _all_ready(stack)
    _record("User Progress's daprd SIGKILLed, then restarted", answers, recovery=recovery)
