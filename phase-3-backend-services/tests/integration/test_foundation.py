"""The local stack is real: state lands in PostgreSQL, messages cross Kafka, sidecars find each
other by sqlite name resolution and register their actors with placement."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import psycopg
from learnflow_contracts.names import LESSON_GENERATED_TOPIC
from learnflow_stack.stack import Stack

from .conftest import TopicReader, eventually, state_row


def test_state_saved_through_daprd_is_a_postgres_row(
    stack: Stack, pg: psycopg.Connection[Any]
) -> None:
    agent = stack.app("course-agent")
    key, value = f"probe-{uuid.uuid4().hex}", {"written_by": "test", "n": 42}

    saved = httpx.post(
        f"{agent.sidecar.http_url}/v1.0/state/statestore",
        json=[{"key": key, "value": value}],
        timeout=10,
    )

    assert saved.status_code == 204
    assert state_row(pg, f"course-agent||{key}") == value


def test_message_published_by_one_sidecar_reaches_the_other_app_and_kafka(
    stack: Stack, read_topic: TopicReader
) -> None:
    agent, progress = stack.app("course-agent"), stack.app("user-progress")
    learner, lesson_id = f"learner-{uuid.uuid4().hex[:8]}", f"lesson-{uuid.uuid4().hex}"
    event = {
        "schema_version": 1,
        "lesson_id": lesson_id,
        "learner_id": learner,
        "topic": "Kafka",
        "level": "beginner",
        "title": "Kafka basics",
        "objectives": [{"id": "O1", "text": "Explain a topic"}],
        "personalized": False,
        "prompt_id": "lesson",
        "prompt_version": "v1",
        "model": "test",
        "created_at": datetime.now(UTC).isoformat(),
    }

    published = httpx.post(
        f"{agent.sidecar.http_url}/v1.0/publish/pubsub/{LESSON_GENERATED_TOPIC}",
        json=event,
        timeout=10,
    )

    assert published.status_code == 204
    status = eventually(
        lambda: (
            s := httpx.get(
                f"{progress.url}/status", params={"learner_id": learner}, timeout=10
            ).json()
        )["lessons_assigned"]
        == 1
        and s
    )
    assert status["learner_id"] == learner
    on_topic = eventually(
        lambda: read_topic(
            LESSON_GENERATED_TOPIC, lambda e: e.get("data", {}).get("lesson_id") == lesson_id
        )
    )
    assert on_topic[0]["data"]["learner_id"] == learner
    assert on_topic[0]["source"] == "course-agent"


def test_service_invocation_between_sidecars_uses_sqlite_name_resolution(stack: Stack) -> None:
    agent = stack.app("course-agent")

    answer = httpx.get(
        f"{agent.sidecar.http_url}/v1.0/invoke/user-progress/method/healthz", timeout=10
    )

    assert answer.status_code == 200
    assert answer.json() == {"status": "ok"}
    # The shared sqlite file is where the sidecars registered themselves.
    assert (stack.run_dir / "nameresolution.db").stat().st_size > 0


def test_both_sidecars_register_their_actor_types_with_placement(stack: Stack) -> None:
    expected = {"course-agent": "LessonGenerationActor", "user-progress": "LearnerProgressActor"}
    for app_id, actor_type in expected.items():
        metadata = stack.app(app_id).sidecar.metadata()
        assert metadata["actorRuntime"]["placement"] == "placement: connected"
        assert metadata["actorRuntime"]["hostReady"] is True
        assert actor_type in [a["type"] for a in metadata["actorRuntime"]["activeActors"]]

    assert stack.placement is not None
    table = stack.placement.table()
    hosted: dict[str, set[str]] = {}
    for host in table["tables"]["default"]["hosts"]:
        hosted.setdefault(host["id"], set()).update(host["entities"])
    for app_id, actor_type in expected.items():
        assert actor_type in hosted[app_id]
