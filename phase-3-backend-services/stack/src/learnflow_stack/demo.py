"""`learnflow-stack demo`: the whole loop against a running stack, with no API key.

generate a lesson → its event reaches User Progress → progress updates → status shows a weak
topic → the next lesson is personalised by it. The lessons come from recorded answers
(evals/recordings: the "fractions-beginner" and "demo-next-lesson-personalised" cases).
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from learnflow_stack.dev_auth import DevSigningKey
from learnflow_stack.paths import runs_root

FIRST_LESSON = {"topic": "Adding fractions", "level": "beginner"}
NEXT_LESSON = {"topic": "Equivalent fractions"}
# A learner who struggles: these scores make "Adding fractions" a weak topic.
PROGRESS = [("started", None), ("quiz", 45), ("exercise", 40), ("completed", None)]


class DemoFailed(RuntimeError):
    pass


@dataclass
class DemoReport:
    learner_id: str
    first_lesson: dict[str, Any] = field(default_factory=dict)
    event_lag_seconds: float = 0.0
    status: dict[str, Any] = field(default_factory=dict)
    next_lesson: dict[str, Any] = field(default_factory=dict)


def _expect(response: httpx.Response, *statuses: int) -> dict[str, Any]:
    if response.status_code not in statuses:
        raise DemoFailed(
            f"{response.request.method} {response.request.url.path} answered "
            f"{response.status_code}: {response.text}"
        )
    body: dict[str, Any] = response.json()
    return body


def _generate(
    http: httpx.Client, url: str, learner: str, request: dict[str, str]
) -> dict[str, Any]:
    return _expect(
        http.post(f"{url}/generate-lesson", json={"learner_id": learner, **request}), 200, 201
    )


def _wait_until_assigned(
    http: httpx.Client, url: str, learner: str
) -> tuple[dict[str, Any], float]:
    """Poll GET /status until the lesson event has arrived; returns (status, seconds waited)."""
    started = time.monotonic()
    while True:
        status = _expect(http.get(f"{url}/status", params={"learner_id": learner}), 200)
        waited = time.monotonic() - started
        if status["lessons_assigned"] >= 1:
            return status, waited
        if waited > 60:
            raise DemoFailed("the lesson-generated event did not reach User Progress in 60 s")
        time.sleep(0.2)


def _work_through(
    http: httpx.Client, url: str, learner: str, lesson_id: str, say: Callable[[str], None]
) -> dict[str, Any]:
    """Send PROGRESS for the lesson, a minute apart, ending ten minutes ago; returns the status."""
    at = datetime.now(UTC) - timedelta(minutes=10)
    status: dict[str, Any] = {}
    for step, (kind, score) in enumerate(PROGRESS):
        update: dict[str, Any] = {
            "learner_id": learner,
            "lesson_id": lesson_id,
            "attempt_id": f"{learner}-{step}",
            "kind": kind,
            "time_spent_seconds": 120,
            "occurred_at": (at + timedelta(minutes=step)).isoformat(),
        }
        if score is not None:
            update["score"] = score
        status = _expect(http.post(f"{url}/update-progress", json=update), 200)
        say(
            f"   -> {kind}{f' score {score}' if score is not None else ''}: "
            f"average {status['average_score']}, completed {status['lessons_completed']}"
        )
    return status


def walk(
    course_agent_url: str,
    user_progress_url: str,
    signing_key: DevSigningKey,
    say: Callable[[str], None] = print,
) -> DemoReport:
    report = DemoReport(learner_id=f"demo-{uuid.uuid4().hex[:8]}")
    learner = report.learner_id
    # The learner's own token, as the web frontend would send it.
    authorization = {"Authorization": f"Bearer {signing_key.token(learner)}"}
    with httpx.Client(timeout=60, headers=authorization) as http:
        say(f"1. POST /generate-lesson for a new learner {learner}: {FIRST_LESSON}")
        lesson = report.first_lesson = _generate(http, course_agent_url, learner, FIRST_LESSON)
        say(
            f'   -> {lesson["lesson_id"]} "{lesson["content"]["title"]}" '
            f"(model {lesson['model']}, {lesson['prompt_tokens']}+{lesson['completion_tokens']} "
            f"tokens, personalised: {lesson['personalized']}, {lesson['personalization']})"
        )

        say("2. lesson-generated travels through Kafka to User Progress")
        status, report.event_lag_seconds = _wait_until_assigned(http, user_progress_url, learner)
        say(
            f"   -> visible in GET /status after {report.event_lag_seconds:.2f} s "
            f"(lessons assigned: {status['lessons_assigned']})"
        )

        say("3. POST /update-progress: the learner works through the lesson")
        status = report.status = _work_through(
            http, user_progress_url, learner, lesson["lesson_id"], say
        )

        say("4. GET /status")
        say(
            f"   -> weak topics {status['weak_topics']}, strengths {status['strengths']}, "
            f"completion {status['completion_rate']:.0%}, streak {status['streak_days']} day(s), "
            f"suggested level {status['projection']['suggested_level']}"
        )

        say(f"5. POST /generate-lesson for the next topic: {NEXT_LESSON}")
        following = report.next_lesson = _generate(http, course_agent_url, learner, NEXT_LESSON)
        say(
            f'   -> {following["lesson_id"]} "{following["content"]["title"]}" '
            f"(level {following['level']}, personalised: {following['personalized']})"
        )
        say(f"   -> the prompt carried: {json.dumps(following['personalised_with'])}")
    return report


def run_against_running_stack() -> int:
    manifest_path = runs_root() / "latest.json"
    try:
        manifest = json.loads(Path(manifest_path).read_text())
        apps = manifest["apps"]
        agent, progress = apps["course-agent"]["url"], apps["user-progress"]["url"]
        signing_key = DevSigningKey.load(Path(manifest["signing_key"]))
    except (FileNotFoundError, KeyError, json.JSONDecodeError):
        print(
            f"no running stack found ({manifest_path}); start one with `make run`", file=sys.stderr
        )
        return 1
    try:
        walk(agent, progress, signing_key)
    except (DemoFailed, httpx.HTTPError) as failure:
        print(f"demo failed: {failure}", file=sys.stderr)
        return 1
    print("demo complete: generate → event → progress → status → personalised next lesson")
    return 0
