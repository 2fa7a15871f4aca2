"""User Progress on the real stack: actor state in PostgreSQL, events from and to Kafka."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import psycopg
from learnflow_contracts.names import (
    LESSON_GENERATED_DEADLETTER_TOPIC,
    LESSON_GENERATED_TOPIC,
    PROGRESS_UPDATED_TOPIC,
)
from learnflow_stack.stack import Stack
from user_progress.domain import learner_status as learner_status_of
from user_progress.domain import progress_projection
from user_progress.learner_document import StoredStatus

from .conftest import (
    TopicReader,
    eventually,
    learner_status,
    put_on_kafka,
    state_row,
    stored_progress,
)


def _learner() -> str:
    return f"learner-{uuid.uuid4().hex[:10]}"


def _update(learner: str, **fields: Any) -> dict[str, Any]:
    return {
        "learner_id": learner,
        "lesson_id": "lesson-1",
        "attempt_id": uuid.uuid4().hex,
        "kind": "quiz",
        "score": 80,
        "time_spent_seconds": 60,
        "occurred_at": datetime.now(UTC).isoformat(),
        **fields,
    }


def _lesson_event(learner: str, lesson_id: str, topic: str = "Fractions") -> dict[str, Any]:
    return {
        "schema_version": 1,
        "lesson_id": lesson_id,
        "learner_id": learner,
        "topic": topic,
        "level": "beginner",
        "title": f"{topic} basics",
        "objectives": [{"id": "O1", "text": f"Use {topic}"}],
        "personalized": False,
        "prompt_id": "lesson",
        "prompt_version": "v1",
        "model": "test",
        "created_at": datetime.now(UTC).isoformat(),
    }


def _produce(stack: Stack, topic: str, key: str, data: Any) -> str:
    """Put a CloudEvent straight onto Kafka with an independent producer (not through Dapr)."""
    event_id = uuid.uuid4().hex
    cloud_event = {
        "specversion": "1.0",
        "id": event_id,
        "source": "integration-test",
        "type": "com.dapr.event.sent",
        "datacontenttype": "application/json",
        "data": data,
    }
    put_on_kafka(stack, topic, key, cloud_event)
    return event_id


def _send_update(stack: Stack, update: dict[str, Any]) -> httpx.Response:
    return httpx.post(
        f"{stack.app('user-progress').url}/update-progress",
        json=update,
        timeout=10,
        headers=stack.auth_headers(),
    )


def test_an_update_is_a_state_row_in_postgres(stack: Stack, pg: psycopg.Connection[Any]) -> None:
    learner = _learner()
    update = _update(learner, score=72)

    response = _send_update(stack, update)

    assert response.status_code == 200, response.text
    assert response.json()["average_score"] == 72
    # Plain keys the outbox's transaction can include hold the progress: a document, and the
    # shards its lessons and attempt ids are spread over.
    stored = state_row(pg, f"user-progress||learner-progress-{learner}")
    assert set(stored) == {"progress", "shards"}
    assert stored["progress"]["applied_attempt_ids"] == []
    assert stored_progress(pg, learner).applied_attempt_ids == {update["attempt_id"]}
    # Beside it, written in the same transaction: the projection every lesson request reads,
    # and the status GET /status reads.
    stored_projection = state_row(pg, f"user-progress||learner-projection-{learner}")
    assert stored_projection["rules"] == 1
    assert stored_projection["projection"]["learner_id"] == learner
    assert stored_projection["projection"]["has_history"] is True
    assert stored_projection["projection"]["average_score"] == 72
    stored_status = state_row(pg, f"user-progress||learner-status-{learner}")
    assert stored_status["status"] == response.json()


def test_ids_and_topics_that_look_like_dates_or_durations_reach_the_actor_as_sent(
    stack: Stack, pg: psycopg.Connection[Any]
) -> None:
    # The Dapr SDK's default JSON decoder turned these into datetimes and timedeltas (an id
    # like this one failed every actor call); the actors decode plain JSON.
    learner = _learner()
    update = _update(learner, attempt_id=f"2025-05-10-quiz-{uuid.uuid4().hex[:6]}", topic="10m")
    url = f"{stack.app('user-progress').url}/update-progress"

    first = httpx.post(url, json=update, timeout=10, headers=stack.auth_headers())
    again = httpx.post(url, json=update, timeout=10, headers=stack.auth_headers())

    assert first.status_code == 200, first.text
    assert again.json() == first.json()
    assert stored_progress(pg, learner).applied_attempt_ids == {update["attempt_id"]}
    assert "10m" in first.text


def test_a_retried_attempt_is_applied_once(stack: Stack) -> None:
    learner = _learner()
    update = _update(learner, score=40)
    url = f"{stack.app('user-progress').url}/update-progress"

    first = httpx.post(url, json=update, timeout=10, headers=stack.auth_headers()).json()
    second = httpx.post(url, json=update, timeout=10, headers=stack.auth_headers()).json()

    assert first == second
    assert second["average_score"] == 40
    assert second["lessons_started"] == 1


def test_an_event_put_on_kafka_shows_in_status_and_a_redelivery_counts_once(stack: Stack) -> None:
    learner = _learner()
    event = _lesson_event(learner, f"lesson-{uuid.uuid4().hex}")

    _produce(stack, LESSON_GENERATED_TOPIC, learner, event)
    _produce(
        stack, LESSON_GENERATED_TOPIC, learner, event
    )  # redelivery: same lesson, new CloudEvent id
    # Same key, same partition: once this later lesson shows, both copies were consumed.
    _produce(
        stack,
        LESSON_GENERATED_TOPIC,
        learner,
        _lesson_event(learner, f"lesson-{uuid.uuid4().hex}", "Decimals"),
    )

    status = eventually(
        lambda: (s := learner_status(stack, learner))["lessons_assigned"] >= 2 and s
    )
    assert status["lessons_assigned"] == 2


def test_a_malformed_event_is_dead_lettered_and_does_not_block(
    stack: Stack, read_topic: TopicReader
) -> None:
    learner = _learner()
    poison_id = _produce(stack, LESSON_GENERATED_TOPIC, learner, {"lesson_id": "x", "oops": True})
    _produce(
        stack, LESSON_GENERATED_TOPIC, learner, _lesson_event(learner, f"lesson-{uuid.uuid4().hex}")
    )

    dead = eventually(
        lambda: read_topic(LESSON_GENERATED_DEADLETTER_TOPIC, lambda e: e.get("id") == poison_id),
        60,
    )
    assert dead[0]["data"] == {"lesson_id": "x", "oops": True}
    assert eventually(lambda: learner_status(stack, learner)["lessons_assigned"] == 1)


def test_200_concurrent_updates_for_one_learner_are_all_counted_exactly(
    stack: Stack, pg: psycopg.Connection[Any]
) -> None:
    """A client that honours 429/503 + Retry-After gets every update in, each counted once."""
    learner = _learner()
    url = f"{stack.app('user-progress').url}/update-progress"
    updates = [
        _update(
            learner, lesson_id=f"lesson-{i % 10}", score=50 + (i % 2) * 10, time_spent_seconds=1
        )
        for i in range(200)
    ]

    async def send(client: httpx.AsyncClient, update: dict[str, Any]) -> int:
        for _ in range(60):
            response = await client.post(url, json=update, headers=stack.auth_headers())
            if response.status_code not in (429, 503):
                return response.status_code
            await asyncio.sleep(float(response.headers["retry-after"]))
        return response.status_code

    async def send_all() -> list[int]:
        async with httpx.AsyncClient(
            timeout=60, limits=httpx.Limits(max_connections=50), headers=stack.auth_headers()
        ) as client:
            return list(await asyncio.gather(*(send(client, u) for u in updates)))

    assert asyncio.run(send_all()) == [200] * 200
    status = learner_status(stack, learner)
    assert status["lessons_started"] == 10
    assert status["total_time_seconds"] == 200
    assert status["average_score"] == 55.0
    # What is stored beside the document is the document's, not an earlier state's.
    stored_projection = state_row(pg, f"user-progress||learner-projection-{learner}")
    stored_status = state_row(pg, f"user-progress||learner-status-{learner}")
    progress = stored_progress(pg, learner)
    assert len(progress.applied_attempt_ids) == 200
    assert stored_projection["projection"] == progress_projection(progress).model_dump(mode="json")
    now = datetime.now(UTC)
    assert StoredStatus.model_validate(stored_status).as_of(now) == learner_status_of(progress, now)


def test_each_applied_update_publishes_progress_updated(
    stack: Stack, read_topic: TopicReader
) -> None:
    learner = _learner()
    update = _update(learner, score=55)

    answer = _send_update(stack, update)
    assert answer.status_code == 200, answer.text

    events = eventually(
        lambda: read_topic(
            PROGRESS_UPDATED_TOPIC,
            lambda e: e.get("data", {}).get("attempt_id") == update["attempt_id"],
        )
    )
    assert events[0]["data"]["projection"]["learner_id"] == learner
    assert events[0]["data"]["score"] == 55
    # The projection of the state this update produced: the one its answer shows.
    assert events[0]["data"]["projection"] == answer.json()["projection"]


def test_bad_input_is_a_422_naming_the_field(stack: Stack) -> None:
    base = stack.app("user-progress").url
    learner = _learner()

    out_of_range = httpx.post(
        f"{base}/update-progress",
        json=_update(learner, score=101),
        timeout=10,
        headers=stack.auth_headers(),
    )
    unknown_kind = httpx.post(
        f"{base}/update-progress",
        json=_update(learner, kind="teleported"),
        timeout=10,
        headers=stack.auth_headers(),
    )
    missing_learner = httpx.get(f"{base}/status", timeout=10, headers=stack.auth_headers())
    malformed_learner = httpx.get(
        f"{base}/status", params={"learner_id": "../etc"}, timeout=10, headers=stack.auth_headers()
    )

    for response, field in [
        (out_of_range, "body.score"),
        (unknown_kind, "body.kind"),
        (missing_learner, "query.learner_id"),
        (malformed_learner, "query.learner_id"),
    ]:
        assert response.status_code == 422
        assert field in [f["field"] for f in response.json()["error"]["fields"]]


def test_a_learner_with_no_records_has_a_well_defined_status(stack: Stack) -> None:
    status = learner_status(stack, _learner())

    assert status["lessons_assigned"] == 0
    assert status["completion_rate"] == 0.0
    assert status["average_score"] is None
    assert status["projection"]["has_history"] is False


def test_progress_before_its_lesson_event_is_reconciled_once(stack: Stack) -> None:
    learner, lesson_id = _learner(), f"lesson-{uuid.uuid4().hex}"
    early = _update(learner, lesson_id=lesson_id, kind="quiz", score=30, topic="optics, I think")

    # The frontend is faster than Kafka: the score arrives before the lesson exists here.
    response = httpx.post(
        f"{stack.app('user-progress').url}/update-progress",
        json=early,
        timeout=10,
        headers=stack.auth_headers(),
    )
    assert response.status_code == 200, response.text
    _produce(stack, LESSON_GENERATED_TOPIC, learner, _lesson_event(learner, lesson_id, "Optics"))
    _produce(stack, LESSON_GENERATED_TOPIC, learner, _lesson_event(learner, lesson_id, "Optics"))

    # The event's topic replaces the provisional one the update carried.
    status = eventually(
        lambda: (s := learner_status(stack, learner))["weak_topics"] == ["Optics"] and s
    )
    assert status["lessons_assigned"] == 1
    assert status["average_score"] == 30
    assert status["weak_topics"] == ["Optics"]
    assert [(t["topic"], t["score_count"]) for t in status["topics"]] == [("Optics", 1)]


def test_an_event_that_keeps_failing_is_retried_then_dead_lettered_without_blocking(
    stack: Stack, pg: psycopg.Connection[Any], read_topic: TopicReader
) -> None:
    broken, behind = _learner(), _learner()
    # A learner whose stored progress cannot be read: every delivery for them fails (RETRY).
    pg.execute(
        "INSERT INTO state (key, value) VALUES (%s, %s)",
        (f"user-progress||learner-progress-{broken}", b'{"not": "progress"}'),
    )
    stuck_id = _produce(
        stack, LESSON_GENERATED_TOPIC, broken, _lesson_event(broken, f"lesson-{uuid.uuid4().hex}")
    )
    # Same key, so same partition: this event waits behind the failing one.
    _produce(
        stack, LESSON_GENERATED_TOPIC, broken, _lesson_event(behind, f"lesson-{uuid.uuid4().hex}")
    )

    dead = eventually(
        lambda: read_topic(LESSON_GENERATED_DEADLETTER_TOPIC, lambda e: e.get("id") == stuck_id),
        120,
    )
    assert dead[0]["data"]["learner_id"] == broken
    assert eventually(lambda: learner_status(stack, behind)["lessons_assigned"] == 1, 60)
    metrics = httpx.get(f"{stack.app('user-progress').url}/metrics", timeout=10).text
    assert 'lesson_events_total{outcome="retried"}' in metrics


def test_only_the_sidecar_reaches_the_dapr_routes(stack: Stack) -> None:
    """daprd and the app share a per-run token: calls straight to the app port without it are
    refused, while everything that goes through the sidecar (this whole suite) works."""
    base = stack.app("user-progress").url
    learner = _learner()
    forged = httpx.put(
        f"{base}/actors/LearnerProgressActor/{learner}/method/ApplyUpdate", json={}, timeout=10
    )
    assert forged.status_code == 401
    assert forged.json()["error"]["code"] == "dapr_app_token_invalid"
    assert httpx.get(f"{base}/dapr/subscribe", timeout=10).status_code == 401
    public = httpx.get(
        f"{base}/status", params={"learner_id": learner}, timeout=10, headers=stack.auth_headers()
    )
    assert public.status_code == 200
