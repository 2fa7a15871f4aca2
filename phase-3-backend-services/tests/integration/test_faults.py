"""Faults on the real stack: a dependency goes down, the services answer clearly, and nothing
acknowledged is lost. Each test restores what it stopped (these run last)."""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
from learnflow_contracts.names import LESSON_GENERATED_TOPIC, PROGRESS_UPDATED_TOPIC
from learnflow_stack.stack import AppInstance, Stack

from .conftest import TopicReader, eventually


def _learner() -> str:
    return f"learner-{uuid.uuid4().hex[:10]}"


def _generate(stack: Stack, learner: str, topic: str) -> httpx.Response:
    return httpx.post(
        f"{stack.app('course-agent').url}/generate-lesson",
        json={"learner_id": learner, "topic": topic},
        timeout=60,
    )


def _update(stack: Stack, learner: str, attempt: str, score: int = 70) -> httpx.Response:
    body = {
        "learner_id": learner,
        "lesson_id": "lesson-1",
        "attempt_id": attempt,
        "kind": "quiz",
        "score": score,
        "occurred_at": datetime.now(UTC).isoformat(),
    }
    return httpx.post(f"{stack.app('user-progress').url}/update-progress", json=body, timeout=60)


def _status(stack: Stack, learner: str) -> dict[str, Any]:
    response = httpx.get(
        f"{stack.app('user-progress').url}/status", params={"learner_id": learner}, timeout=30
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


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
        update = _update(stack, learner, attempt := uuid.uuid4().hex)
        not_ready = httpx.get(f"{stack.app('course-agent').url}/readyz", timeout=10)

    assert lesson.status_code == 503, lesson.text
    assert lesson.json()["error"]["code"] == "state_store_unavailable"
    assert update.status_code == 503, update.text
    assert update.json()["error"]["code"] == "progress_store_unavailable"
    assert not_ready.status_code == 503
    assert not_ready.json()["checks"]["state_store"] is False
    # Nothing half-written: the refused update is absent, and applying it now counts it once.
    assert _status(stack, learner)["average_score"] is None
    assert _update(stack, learner, attempt).json()["average_score"] == 70
    assert (
        read_topic(LESSON_GENERATED_TOPIC, lambda e: e.get("data", {}).get("learner_id") == learner)
        == []
    )


def test_kafka_down_then_back_loses_no_event(stack: Stack, read_topic: TopicReader) -> None:
    learner, attempt = _learner(), uuid.uuid4().hex
    with kafka_down(stack):
        lesson = _generate(stack, learner, "Estuaries")
        update = _update(stack, learner, attempt, score=64)

    # Acknowledged while the broker was down...
    assert lesson.status_code == 201, lesson.text
    assert update.status_code == 200, update.text
    # ...and both events arrive once it is back (outbox relay and actor reminder).
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
    eventually(lambda: _status(stack, learner)["lessons_assigned"] >= 1, 90)


def test_sidecar_down_fails_readiness_and_requests_get_a_clear_503(stack: Stack) -> None:
    progress = stack.app("user-progress")
    assert progress.sidecar.process is not None
    progress.sidecar.process.stop()
    try:
        ready = httpx.get(f"{progress.url}/readyz", timeout=10)
        status = httpx.get(f"{progress.url}/status", params={"learner_id": _learner()}, timeout=10)
    finally:
        progress.sidecar.start()
        eventually(progress.sidecar.placement_connected, timeout=60)

    assert ready.status_code == 503
    assert ready.json()["checks"]["dapr_sidecar"] is False
    assert status.status_code == 503
    assert status.json()["error"]["code"] == "dapr_sidecar_unavailable"
