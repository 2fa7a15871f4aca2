"""Replaying lesson-generated-deadletter on the real stack: a dead-lettered lesson reaches User
Progress once replayed, and is counted once however often the replay runs. No LLM traffic: the
dead letter is put straight on Kafka, as Dapr would after giving up on a delivery."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition
from learnflow_contracts.events import LessonGeneratedV1, LessonObjective
from learnflow_contracts.levels import Level
from learnflow_contracts.names import (
    COURSE_AGENT_APP_ID,
    LESSON_GENERATED_DEADLETTER_TOPIC,
    LESSON_GENERATED_TOPIC,
    PUBSUB,
)
from learnflow_stack.dead_letters import replay_dead_letters
from learnflow_stack.stack import Stack

from .conftest import TopicReader, eventually, learner_status, put_on_kafka


def _learner() -> str:
    return f"dead-letter-{uuid.uuid4().hex[:10]}"


def _cloud_event(learner: str) -> dict[str, Any]:
    """A lesson-generated CloudEvent shaped like the ones Dapr publishes (and dead-letters)."""
    lesson = LessonGeneratedV1(
        lesson_id=f"lesson-{uuid.uuid4().hex}",
        learner_id=learner,
        topic="Adding fractions",
        level=Level.BEGINNER,
        title="Adding fractions with unlike denominators",
        objectives=(LessonObjective(id="O1", text="Add two fractions with unlike denominators"),),
        personalized=False,
        prompt_id="lesson",
        prompt_version="v1",
        model="test",
        created_at=datetime.now(UTC),
    )
    traceparent = f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01"
    return {
        "specversion": "1.0",
        "id": uuid.uuid4().hex,
        "source": COURSE_AGENT_APP_ID,
        "type": "com.dapr.event.sent",
        "datacontenttype": "application/json",
        "data": lesson.model_dump(mode="json"),
        "topic": LESSON_GENERATED_TOPIC,
        "pubsubname": PUBSUB,
        "time": datetime.now(UTC).isoformat(),
        "traceid": traceparent,
        "traceparent": traceparent,
        "tracestate": "",
    }


def _dead_letter(stack: Stack, learner: str) -> dict[str, Any]:
    """Put a valid lesson event on the dead-letter topic with an independent producer."""
    event = _cloud_event(learner)
    put_on_kafka(stack, LESSON_GENERATED_DEADLETTER_TOPIC, learner, event)
    return event


def _skip_what_is_there(stack: Stack, group: str) -> None:
    """Commit ``group`` at the dead-letter topic's current end, so that a replay by this group
    sees only what this test dead-letters (other tests dead-letter malformed events on purpose,
    and those would come straight back)."""
    consumer = Consumer(
        {
            "bootstrap.servers": stack.kafka_bootstrap,
            "group.id": group,
            "enable.auto.commit": False,
        }
    )
    try:
        topic = consumer.list_topics(LESSON_GENERATED_DEADLETTER_TOPIC, timeout=10).topics.get(
            LESSON_GENERATED_DEADLETTER_TOPIC
        )
        if topic is None or topic.error is not None:
            return
        ends = [
            TopicPartition(
                LESSON_GENERATED_DEADLETTER_TOPIC,
                p,
                consumer.get_watermark_offsets(
                    TopicPartition(LESSON_GENERATED_DEADLETTER_TOPIC, p), timeout=10
                )[1],
            )
            for p in topic.partitions
        ]
        committed = consumer.commit(offsets=ends, asynchronous=False)
        assert all(tp.error is None for tp in committed)
    finally:
        consumer.close()


def _lessons_assigned(stack: Stack, learner: str) -> int:
    assigned: int = learner_status(stack, learner)["lessons_assigned"]
    return assigned


def _stays(stack: Stack, learner: str, expected: int, seconds: float = 3.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert _lessons_assigned(stack, learner) == expected
        time.sleep(0.5)


def test_a_dead_lettered_lesson_is_counted_once_replayed_and_only_once(
    stack: Stack, read_topic: TopicReader
) -> None:
    group = f"test-dead-letter-replay-{uuid.uuid4().hex[:8]}"
    _skip_what_is_there(stack, group)
    learner = _learner()
    event = _dead_letter(stack, learner)

    # Nothing consumes the dead-letter topic: User Progress has not seen the lesson.
    _stays(stack, learner, 0)

    replayed = replay_dead_letters(stack.kafka_bootstrap, group=group)

    assert replayed >= 1
    copies = read_topic(LESSON_GENERATED_TOPIC, lambda e: e.get("id") == event["id"])
    assert copies == [event]  # the CloudEvent travels unchanged
    assert eventually(lambda: _lessons_assigned(stack, learner) == 1, 60)

    assert replay_dead_letters(stack.kafka_bootstrap, group=group) == 0
    _stays(stack, learner, 1)


def _cli(*args: str, runs_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "learnflow_stack.cli", "replay-dead-letters", *args],
        env={**os.environ, "LEARNFLOW_RUNS_DIR": str(runs_dir)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_command_finds_the_running_stack_and_replays(stack: Stack, tmp_path: Path) -> None:
    # The command looks for the running stack as `demo` does: latest.json in the runs directory
    # names the run, whose stack.json has the Kafka bootstrap. Point it at this session's stack.
    (tmp_path / "latest.json").write_text((stack.run_dir / "stack.json").read_text())
    learner = _learner()
    _dead_letter(stack, learner)

    done = _cli(runs_dir=tmp_path)

    assert done.returncode == 0, done.stderr
    replayed = int(done.stdout.split("replayed ")[1].split()[0])
    assert replayed >= 1, done.stdout
    assert eventually(lambda: _lessons_assigned(stack, learner) == 1, 60)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--brokers", "192.0.2.10:9092"], "loopback broker only"),
        ([], "no running stack found"),
    ],
)
def test_the_command_refuses_a_remote_broker_and_a_missing_stack(
    tmp_path: Path, args: list[str], says: str
) -> None:
    done = _cli(*args, runs_dir=tmp_path)

    assert done.returncode == 1
    assert says in done.stderr
