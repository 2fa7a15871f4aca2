"""Course Agent on the real stack, with a local OpenAI-compatible stub as the LLM."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import psycopg
from course_agent.llm_budget import budget_key, budget_window
from learnflow_contracts.names import LESSON_GENERATED_TOPIC, PROGRESS_UPDATED_TOPIC
from learnflow_stack.stack import Stack

from .conftest import (
    LLM_LESSONS_PER_HOUR,
    LlmStub,
    RecordReader,
    TopicReader,
    eventually,
    state_row,
)


def _learner() -> str:
    return f"learner-{uuid.uuid4().hex[:10]}"


def _send(
    stack: Stack, body: dict[str, Any], replica: int = 0, headers: dict[str, str] | None = None
) -> httpx.Response:
    return httpx.post(
        f"{stack.app('course-agent', replica).url}/generate-lesson",
        json=body,
        headers={**stack.auth_headers(), **(headers or {})},
        timeout=60,
    )


def _generate(
    stack: Stack, replica: int = 0, headers: dict[str, str] | None = None, **body: str
) -> httpx.Response:
    return _send(stack, body, replica, headers)


def test_a_generated_lesson_is_stored_in_postgres_and_announced_on_kafka(
    stack: Stack, pg: psycopg.Connection[Any], read_topic: TopicReader
) -> None:
    learner = _learner()

    response = _generate(stack, learner_id=learner, topic="Photosynthesis", level="beginner")

    assert response.status_code == 201, response.text
    lesson = response.json()
    assert lesson["from_cache"] is False
    assert lesson["personalized"] is False
    assert lesson["personalization"] == "no_history"
    assert lesson["prompt_tokens"] > 0
    assert lesson["completion_tokens"] > 0
    stored = state_row(pg, f"course-agent||lesson-{lesson['lesson_id']}")
    assert stored["content"]["title"] == lesson["content"]["title"]
    events = eventually(
        lambda: read_topic(
            LESSON_GENERATED_TOPIC,
            lambda e: e.get("data", {}).get("lesson_id") == lesson["lesson_id"],
        )
    )
    assert events[0]["id"] == lesson["lesson_id"]
    assert events[0]["data"]["learner_id"] == learner
    # The generation ran on whichever replica hosts the actor for this cache key.
    metrics = "".join(
        httpx.get(f"{stack.app('course-agent', n).url}/metrics", timeout=10).text for n in (0, 1)
    )
    assert "lesson_llm_tokens_total{" in metrics
    assert "lesson_llm_seconds_count" in metrics


def test_a_repeat_is_a_cache_hit_without_an_llm_call(stack: Stack, llm_stub: LlmStub) -> None:
    body = {"learner_id": _learner(), "topic": "Volcanoes", "level": "intermediate"}
    first = _send(stack, body)
    calls = llm_stub.calls()

    again = _send(stack, {**body, "topic": "  volcanoes "}, replica=1)

    assert again.status_code == 200
    assert again.json()["from_cache"] is True
    assert again.json()["lesson_id"] == first.json()["lesson_id"]
    assert llm_stub.calls() == calls


def test_concurrent_identical_requests_on_two_replicas_make_one_llm_call(
    stack: Stack, llm_stub: LlmStub
) -> None:
    llm_stub.mode(delay_seconds=1.0)
    body = {"learner_id": _learner(), "topic": "Plate tectonics", "level": "advanced"}
    calls = llm_stub.calls()

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=60, headers=stack.auth_headers()) as client:
            return await asyncio.gather(
                *(
                    client.post(
                        f"{stack.app('course-agent', i % 2).url}/generate-lesson",
                        json=body,
                        headers=stack.auth_headers(),
                    )
                    for i in range(10)
                )
            )

    responses = asyncio.run(burst())

    assert llm_stub.calls() - calls == 1
    assert sorted(r.status_code for r in responses) == [200] * 9 + [201]
    assert len({r.json()["lesson_id"] for r in responses}) == 1


def test_lessons_are_listed_newest_first_with_topic_filter_and_cursor(stack: Stack) -> None:
    learner = _learner()
    created = [
        _generate(stack, learner_id=learner, topic=t, level="beginner").json()["lesson_id"]
        for t in ("Atoms", "Cells", "Atoms for engineers", "Comets")
    ]
    url = f"{stack.app('course-agent').url}/lessons"

    first = httpx.get(
        url, params={"learner_id": learner, "limit": 3}, timeout=10, headers=stack.auth_headers()
    ).json()
    rest = httpx.get(
        url,
        params={"learner_id": learner, "limit": 3, "cursor": first["next_cursor"]},
        timeout=10,
        headers=stack.auth_headers(),
    ).json()
    comets = httpx.get(
        url,
        params={"learner_id": learner, "topic": "COMETS"},
        timeout=10,
        headers=stack.auth_headers(),
    ).json()

    assert [i["lesson_id"] for i in first["items"]] == created[::-1][:3]
    assert [i["lesson_id"] for i in rest["items"]] == [created[0]]
    assert rest["next_cursor"] is None
    assert [i["lesson_id"] for i in comets["items"]] == [created[3]]


def test_one_lesson_by_id_and_a_clear_404(stack: Stack) -> None:
    lesson = _generate(stack, learner_id=_learner(), topic="Tides").json()
    url = f"{stack.app('course-agent').url}/lessons"

    found = httpx.get(f"{url}/{lesson['lesson_id']}", headers=stack.auth_headers(), timeout=10)
    missing = httpx.get(f"{url}/lesson-does-not-exist", headers=stack.auth_headers(), timeout=10)

    assert found.json()["lesson_id"] == lesson["lesson_id"]
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "lesson_not_found"


def test_idempotency_key_replays_the_same_lesson_and_refuses_another_body(
    stack: Stack, llm_stub: LlmStub
) -> None:
    learner = _learner()
    key = {"Idempotency-Key": uuid.uuid4().hex}
    first = _generate(stack, headers=key, learner_id=learner, topic="Glaciers")
    calls = llm_stub.calls()

    replay = _generate(stack, replica=1, headers=key, learner_id=learner, topic="Glaciers")
    other = _generate(stack, headers=key, learner_id=learner, topic="Deserts")

    assert replay.status_code == first.status_code == 201
    assert replay.json()["lesson_id"] == first.json()["lesson_id"]
    assert other.status_code == 422
    assert other.json()["error"]["code"] == "idempotency_key_reused"
    assert llm_stub.calls() == calls


def test_bad_input_is_a_422_naming_the_field(stack: Stack) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"learner_id": _learner(), "topic": "Cats\x07"}, "body.topic"),
        ({"learner_id": _learner(), "topic": "x" * 201}, "body.topic"),
        ({"learner_id": _learner(), "topic": "Cats", "level": "expert"}, "body.level"),
        ({"learner_id": "no spaces allowed", "topic": "Cats"}, "body.learner_id"),
        ({"learner_id": _learner(), "topic": "Cats", "surprise": 1}, "body.surprise"),
    ]
    for body, field in cases:
        response = _send(stack, body)
        assert response.status_code == 422, body
        assert field in [f["field"] for f in response.json()["error"]["fields"]], response.text


def test_llm_failures_map_to_clear_statuses(stack: Stack, llm_stub: LlmStub) -> None:
    expectations = [
        ("rate_limit", 503, "llm_unavailable"),
        ("server_error", 503, "llm_unavailable"),
        ("invalid", 502, "llm_invalid_output"),
        ("hang", 504, "llm_timeout"),
    ]
    for mode, status, code in expectations:
        llm_stub.mode(mode)
        response = _generate(stack, learner_id=_learner(), topic=f"Failure mode {mode}")
        assert response.status_code == status, (mode, response.text)
        assert response.json()["error"]["code"] == code
        if status == 503:
            assert int(response.headers["Retry-After"]) > 0
    llm_stub.reset()


def test_concurrent_lessons_for_a_new_learner_are_all_listed(stack: Stack) -> None:
    learner = _learner()
    topics = [f"Concurrent topic {n}" for n in range(8)]

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=60, headers=stack.auth_headers()) as client:
            return await asyncio.gather(
                *(
                    client.post(
                        f"{stack.app('course-agent', n % 2).url}/generate-lesson",
                        json={"learner_id": learner, "topic": topic},
                        headers=stack.auth_headers(),
                    )
                    for n, topic in enumerate(topics)
                )
            )

    created = {r.json()["lesson_id"] for r in asyncio.run(burst()) if r.status_code == 201}
    listed = httpx.get(
        f"{stack.app('course-agent').url}/lessons",
        params={"learner_id": learner, "limit": 20},
        timeout=10,
        headers=stack.auth_headers(),
    ).json()

    assert len(created) == len(topics)
    assert {item["lesson_id"] for item in listed["items"]} == created


def test_a_learners_events_carry_the_learner_as_kafka_key_so_they_stay_in_order(
    stack: Stack, read_records: RecordReader
) -> None:
    learner = _learner()
    lesson_ids = {
        _generate(stack, learner_id=learner, topic=f"Ordering {n}").json()["lesson_id"]
        for n in range(3)
    }
    update = {
        "learner_id": learner,
        "lesson_id": sorted(lesson_ids)[0],
        "attempt_id": uuid.uuid4().hex,
        "kind": "started",
        "occurred_at": "2026-12-03T10:00:00Z",
    }
    progress_url = f"{stack.app('user-progress').url}/update-progress"
    assert (
        httpx.post(progress_url, json=update, timeout=10, headers=stack.auth_headers()).status_code
        == 200
    )

    def learners_records(topic: str, count: int) -> list[Any]:
        def mine(event: dict[str, Any]) -> bool:
            data = event.get("data", {})
            return learner in (data.get("learner_id"), data.get("projection", {}).get("learner_id"))

        found = read_records(topic, mine)
        return found if len({r.event["id"] for r in found}) >= count else []

    lessons = eventually(lambda: learners_records(LESSON_GENERATED_TOPIC, 3), timeout=30)
    progress = eventually(lambda: learners_records(PROGRESS_UPDATED_TOPIC, 1), timeout=30)
    for records in (lessons, progress):
        assert {r.key for r in records} == {learner}
        assert len({r.partition for r in records}) == 1


def test_a_learner_gets_a_limited_number_of_new_lessons_an_hour_across_replicas(
    stack: Stack, pg: psycopg.Connection[Any], llm_stub: LlmStub
) -> None:
    for _ in range(2):  # a second go only if the clock hour turned during the first
        window, _ = budget_window(datetime.now(UTC))
        learner = _learner()
        made = [
            _generate(stack, replica=n % 2, learner_id=learner, topic=f"Budget {n}").status_code
            for n in range(LLM_LESSONS_PER_HOUR)
        ]
        calls_before = llm_stub.calls()
        refused = _generate(stack, replica=1, learner_id=learner, topic="One too many")
        cached = _generate(stack, replica=0, learner_id=learner, topic="Budget 0")
        if budget_window(datetime.now(UTC))[0] == window:
            break

    assert made == [201] * LLM_LESSONS_PER_HOUR
    assert refused.status_code == 429, refused.text
    assert refused.json()["error"]["code"] == "llm_budget_exceeded"
    assert 1 <= int(refused.headers["retry-after"]) <= 3600
    assert llm_stub.calls() == calls_before  # refused before the LLM was called
    assert cached.status_code == 200  # what was generated is still served
    spent = state_row(pg, f"course-agent||{budget_key(learner, window)}")
    assert spent == {"spent": LLM_LESSONS_PER_HOUR}
