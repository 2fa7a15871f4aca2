"""One real stack for the integration suite: PostgreSQL, Kafka, placement, scheduler,
User Progress and two Course Agent replicas, each with its daprd. The LLM is the only double:
a local OpenAI-compatible stub that counts the calls it gets."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import psycopg
import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from learnflow_stack import services
from learnflow_stack.llm_stub import start_stub_process
from learnflow_stack.process import ManagedProcess
from learnflow_stack.stack import Stack
from user_progress.domain import LearnerProgress, empty_progress
from user_progress.learner_document import (
    SHARDS,
    StoredLearner,
    StoredShards,
    assembled,
    learner_shard_key,
)

# Test stacks keep their runs apart from the one `make run` started (and its latest.json).
os.environ["LEARNFLOW_RUNS_DIR"] = "/tmp/learnflow-test-runs"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in str(item.path):
            item.add_marker(pytest.mark.integration)
    # Fault tests stop and restart pieces of the shared stack: run them after everything else.
    items.sort(key=lambda item: item.path.name == "test_faults.py")


@dataclass
class LlmStub:
    url: str
    process: ManagedProcess

    def calls(self) -> int:
        count: int = httpx.get(f"{self.url}/stub/calls", timeout=5).json()["calls"]
        return count

    def reset(self) -> None:
        httpx.post(f"{self.url}/stub/reset", timeout=5).raise_for_status()

    def mode(self, mode: str | None = None, delay_seconds: float | None = None) -> None:
        body = {
            k: v for k, v in {"mode": mode, "delay_seconds": delay_seconds}.items() if v is not None
        }
        httpx.post(f"{self.url}/stub/mode", json=body, timeout=5).raise_for_status()


@pytest.fixture(scope="session")
def llm_stub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlmStub]:
    url, process = start_stub_process(0.0, tmp_path_factory.mktemp("llm-stub") / "llm-stub.log")
    stub = LlmStub(url, process)
    yield stub
    process.stop()


# Small enough for a test to spend it; no other test makes this many lessons for one learner.
LLM_LESSONS_PER_HOUR = 25


def stub_llm_env(llm_stub: LlmStub, timeout_seconds: int) -> dict[str, str]:
    """The Course Agent's settings for the LLM stub: the openai provider, no retries."""
    return {
        "COURSE_AGENT_LLM_PROVIDER": "openai",
        "COURSE_AGENT_LLM_BASE_URL": f"{llm_stub.url}/v1",
        "COURSE_AGENT_LLM_API_KEY": "stub-key",  # the stub ignores it; not a secret
        "COURSE_AGENT_LLM_TIMEOUT_SECONDS": str(timeout_seconds),
        "COURSE_AGENT_LLM_MAX_RETRIES": "0",
    }


@pytest.fixture(scope="session")
def stack(llm_stub: LlmStub) -> Iterator[Stack]:
    agent_env = {
        **stub_llm_env(llm_stub, timeout_seconds=3),
        "COURSE_AGENT_OUTBOX_RELAY_SECONDS": "1",
        "COURSE_AGENT_LLM_LESSONS_PER_LEARNER_PER_HOUR": str(LLM_LESSONS_PER_HOUR),
    }
    progress_env = {"USER_PROGRESS_OUTBOX_RELAY_SECONDS": "1"}
    with Stack(
        [services.user_progress(progress_env), services.course_agent(agent_env, replicas=2)]
    ) as running:
        yield running


@pytest.fixture(autouse=True)
def _stub_back_to_normal(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "llm_stub" in request.fixturenames:
        request.getfixturevalue("llm_stub").reset()


@pytest.fixture(scope="session")
def pg(stack: Stack) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(stack.pg_connection, autocommit=True) as connection:
        yield connection


def state_row(pg: psycopg.Connection[Any], key: str) -> Any:
    """The stored value of a Dapr state key, read straight from PostgreSQL (not through Dapr)."""
    row = pg.execute("SELECT value FROM state WHERE key = %s", (key,)).fetchone()
    return json.loads(bytes(row[0])) if row else None  # v2 keeps values as JSON bytes (bytea)


def stored_progress(pg: psycopg.Connection[Any], learner: str) -> LearnerProgress:
    """A learner's progress as User Progress stored it, document and shards, read straight from
    PostgreSQL (not through Dapr) and put together by the service's own ``assembled``."""
    document = state_row(pg, f"user-progress||learner-progress-{learner}")
    if document is None:
        return empty_progress(learner)
    keys = {f"user-progress||{learner_shard_key(learner, shard)}": shard for shard in range(SHARDS)}
    rows = pg.execute("SELECT key, value FROM state WHERE key = ANY(%s)", (list(keys),))
    shards = StoredShards.read({keys[key]: json.loads(bytes(value)) for key, value in rows})
    return assembled(StoredLearner.model_validate(document), shards)


def live_generation_claims(pg: psycopg.Connection[Any]) -> int:
    """Lessons some request is generating now: their claims, in the state table."""
    row = pg.execute(
        "SELECT count(*) FROM state WHERE key LIKE 'course-agent||lesson-claim-%'"
        " AND (expires_at IS NULL OR expires_at > now())"
    ).fetchone()
    return int(row[0]) if row else 0


def quiz_update_body(learner: str, attempt: str, score: int = 70) -> dict[str, Any]:
    """A quiz attempt on ``lesson-1`` of ``learner``, now."""
    return {
        "learner_id": learner,
        "lesson_id": "lesson-1",
        "attempt_id": attempt,
        "kind": "quiz",
        "score": score,
        "time_spent_seconds": 1,  # so total_time_seconds counts the applied updates
        "occurred_at": datetime.now(UTC).isoformat(),
    }


def post_quiz_update(stack: Stack, learner: str, attempt: str, score: int = 70) -> httpx.Response:
    """POST /update-progress of ``quiz_update_body`` (a teacher's token)."""
    return httpx.post(
        f"{stack.app('user-progress').url}/update-progress",
        json=quiz_update_body(learner, attempt, score),
        timeout=60,
        headers=stack.auth_headers(),
    )


def learner_status(stack: Stack, learner: str) -> dict[str, Any]:
    """GET /status of ``learner`` from User Progress (a teacher's token); asserts a 200."""
    response = httpx.get(
        f"{stack.app('user-progress').url}/status",
        params={"learner_id": learner},
        timeout=30,
        headers=stack.auth_headers(),
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def put_on_kafka(stack: Stack, topic: str, key: str, cloud_event: dict[str, Any]) -> None:
    """Produce a CloudEvent straight onto Kafka with an independent producer (not through Dapr)."""
    producer = Producer({"bootstrap.servers": stack.kafka_bootstrap})
    producer.produce(
        topic,
        key=key,
        value=json.dumps(cloud_event).encode(),
        headers={"content-type": "application/cloudevents+json"},
    )
    assert producer.flush(10) == 0


TopicReader = Callable[[str, Callable[[dict[str, Any]], bool]], list[dict[str, Any]]]


_NO_LEADER = {KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE}


def _watermarks(consumer: Consumer, partition: TopicPartition) -> tuple[int, int]:
    """Low and high offsets; retries while the partition has no leader yet (just after a broker
    restart), so a reader never mistakes a broker in recovery for an empty topic."""
    deadline = time.monotonic() + 30
    while True:
        try:
            low, high = consumer.get_watermark_offsets(partition, timeout=10)
            return int(low), int(high)
        except KafkaException as failure:
            if failure.args[0].code() not in _NO_LEADER or time.monotonic() > deadline:
                raise
            time.sleep(0.5)


@dataclass(frozen=True)
class KafkaRecord:
    key: str | None
    partition: int
    event: dict[str, Any]  # the value: a Dapr CloudEvent


RecordReader = Callable[[str, Callable[[dict[str, Any]], bool]], list[KafkaRecord]]


@pytest.fixture(scope="session")
def read_records(stack: Stack) -> RecordReader:
    """Everything now on a Kafka topic whose CloudEvent ``matches``, read by an independent
    Kafka client, with each message's key and partition. A topic not there yet reads as empty."""

    def read(topic: str, matches: Callable[[dict[str, Any]], bool]) -> list[KafkaRecord]:
        consumer = Consumer(
            {
                "bootstrap.servers": stack.kafka_bootstrap,
                "group.id": f"test-reader-{uuid.uuid4().hex}",
                "enable.auto.commit": False,
            }
        )
        try:
            metadata = consumer.list_topics(topic, timeout=10).topics.get(topic)
            if metadata is None or metadata.error is not None:
                return []
            ends = {}
            for partition in metadata.partitions:
                low, high = _watermarks(consumer, TopicPartition(topic, partition))
                if high > low:
                    ends[partition] = high
            consumer.assign([TopicPartition(topic, p, 0) for p in ends])
            found: list[KafkaRecord] = []
            deadline = time.monotonic() + 30
            while ends and time.monotonic() < deadline:
                message = consumer.poll(0.5)
                if message is None or message.error():
                    continue
                event = json.loads(message.value())
                if matches(event):
                    key = message.key()
                    found.append(
                        KafkaRecord(key.decode() if key else None, message.partition(), event)
                    )
                if message.offset() + 1 >= ends.get(message.partition(), 0):
                    ends.pop(message.partition(), None)
            return found
        finally:
            consumer.close()

    return read


@pytest.fixture(scope="session")
def read_topic(read_records: RecordReader) -> TopicReader:
    """The CloudEvents now on a Kafka topic that ``matches`` (see ``read_records``)."""

    def read(topic: str, matches: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
        return [record.event for record in read_records(topic, matches)]

    return read


def eventually(check: Callable[[], Any], timeout: float = 20.0, interval: float = 0.25) -> Any:
    """Poll until ``check`` returns something truthy; fail with its last value otherwise.

    A connection error counts as "not yet" (a restarted piece is not listening yet).
    """
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except httpx.TransportError as error:
            last = error
        else:
            if last:
                return last
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s; last value: {last!r}")


@dataclass
class FaultRow:
    fault: str
    sent: int
    statuses: dict[str, int]
    p50_ms: float
    p99_ms: float
    server_p99_ms: float
    events_expected: int
    events_seen: int
    copies: int
    recovery_seconds: float


FAULT_ROWS: list[FaultRow] = []


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """The fault suite's table (also in <runs dir>/fault-report.md): what each fault cost."""
    if not FAULT_ROWS:
        return
    lines = [
        "| fault | sent | answers | p50 ms | p99 ms | server p99 ms "
        "| events expected / seen (distinct) | copies on topic | recovered in s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in FAULT_ROWS:
        answers = ", ".join(f"{k}: {v}" for k, v in sorted(row.statuses.items()))
        lines.append(
            f"| {row.fault} | {row.sent} | {answers} | {row.p50_ms:.0f} | {row.p99_ms:.0f} "
            f"| {row.server_p99_ms:.0f} | {row.events_expected} / {row.events_seen} | {row.copies} "
            f"| {row.recovery_seconds:.1f} |"
        )
    report = "\n".join(lines)
    runs = os.environ["LEARNFLOW_RUNS_DIR"]
    os.makedirs(runs, exist_ok=True)
    with open(os.path.join(runs, "fault-report.md"), "w") as out:
        out.write(report + "\n")
    terminalreporter.write_sep("=", "fault suite")
    terminalreporter.write_line(report)
