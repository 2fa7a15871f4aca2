"""Both services, replayed LLM answers, the whole loop: generate → event → progress → status →
the next lesson is personalised by the weak topic (what `make demo` shows)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from learnflow_stack import services
from learnflow_stack.demo import walk
from learnflow_stack.stack import Stack


@pytest.fixture(scope="module")
def replay_stack() -> Iterator[Stack]:
    replay = {"COURSE_AGENT_LLM_PROVIDER": "replay"}
    with Stack([services.user_progress(), services.course_agent(replay)]) as running:
        yield running


def test_the_next_lesson_is_personalised_by_the_weak_topic(replay_stack: Stack) -> None:
    lines: list[str] = []

    report = walk(
        replay_stack.app("course-agent").url,
        replay_stack.app("user-progress").url,
        replay_stack.signing_key,
        say=lines.append,
    )

    assert report.first_lesson["personalized"] is False
    assert report.first_lesson["content"]["title"] == "Adding fractions"
    assert report.status["weak_topics"] == ["Adding fractions"]
    assert report.status["lessons_completed"] == 1
    assert report.next_lesson["personalized"] is True
    assert report.next_lesson["level"] == "beginner"  # suggested by progress, not requested
    assert report.next_lesson["personalised_with"]["weak_topics"] == ["Adding fractions"]
    assert [s["score"] for s in report.next_lesson["personalised_with"]["recent_scores"]] == [
        40,
        45,
    ]
    assert len(lines) >= 10


def test_an_unrecorded_request_is_a_503_that_explains_replay_mode(replay_stack: Stack) -> None:
    response = httpx.post(
        f"{replay_stack.app('course-agent').url}/generate-lesson",
        json={"learner_id": "someone", "topic": "Never recorded"},
        timeout=30,
        headers=replay_stack.auth_headers(),
    )

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "llm_recording_missing"
    message = response.json()["error"]["message"]
    assert "replay mode" in message
    assert re.search(
        r"no answer is recorded for this request \(recording key [0-9a-f]{64}\)", message
    )
    assert "make recordings" in message
    assert "OPENAI_API_KEY" in message
