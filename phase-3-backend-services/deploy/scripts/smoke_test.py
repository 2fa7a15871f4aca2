"""End-to-end smoke test inside the cluster, through Dapr service invocation.

The deploy steps (lib/deploy-steps.sh) pipe this file into the course-agent container
(stdlib only):
``kubectl exec -i POD -c course-agent -- python - < smoke_test.py``.
It asks Course Agent for a lesson for a brand-new learner (replay mode answers it from a
recording), then waits until User Progress has consumed the lesson-generated event and counts
the lesson in that learner's status, and Course Agent lists it among the learner's lessons.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

# The eval case "fractions-beginner" (evals/cases.yaml), a new learner with a recording, so
# replay mode can answer it; a test keeps the two the same.
LESSON_REQUEST = {"topic": "Adding fractions", "level": "beginner"}
WAIT_SECONDS = 90.0


def invoke(app_id: str, method: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    """Calls ``method`` of ``app_id`` through the local sidecar; returns status and JSON body."""
    port = os.environ.get("DAPR_HTTP_PORT", "3500")
    # daprd wants its API token (the container has it); the app at the other end sees the call
    # arrive through its own sidecar, as an internal caller that needs no learner token.
    token = os.environ.get("DAPR_API_TOKEN")
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1.0/invoke/{app_id}/method/{method}",
        data=None if body is None else json.dumps(body).encode(),
        headers={
            "Content-Type": "application/json",
            **({"dapr-api-token": token} if token else {}),
        },
        method="GET" if body is None else "POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as reply:  # noqa: S310 - loopback http
            return reply.status, json.load(reply)
    except urllib.error.HTTPError as failure:
        return failure.code, failure.read().decode(errors="replace")


def wait_for(description: str, check: Callable[[], str | None], deadline: float) -> str | None:
    """Polls ``check`` (returns a problem or None) until it passes or the deadline; last problem."""
    while True:
        problem = check()
        if problem is None or time.monotonic() >= deadline:
            return None if problem is None else f"{description}: {problem}"
        time.sleep(2)


def main() -> int:
    learner_id = f"smoke-{int(time.time())}"
    query = urllib.parse.urlencode({"learner_id": learner_id})
    status, lesson = invoke(
        "course-agent", "generate-lesson", {**LESSON_REQUEST, "learner_id": learner_id}
    )
    if status not in (200, 201) or not isinstance(lesson, dict) or "lesson_id" not in lesson:
        print(f"POST /generate-lesson answered {status}: {lesson}", file=sys.stderr)
        return 1
    lesson_id = lesson["lesson_id"]
    print(f"generated lesson {lesson_id} for {learner_id} (status {status})")

    def counted_in_status() -> str | None:
        code, learner = invoke("user-progress", f"status?{query}")
        if code != 200 or not isinstance(learner, dict):
            return f"GET /status answered {code}: {learner}"
        assigned = learner.get("lessons_assigned", 0)
        return None if assigned >= 1 else f"lessons_assigned is {assigned}"

    def listed_in_lessons() -> str | None:
        code, page = invoke("course-agent", f"lessons?{query}")
        if code != 200 or not isinstance(page, dict):
            return f"GET /lessons answered {code}: {page}"
        ids = [item.get("lesson_id") for item in page.get("items", [])]
        return None if lesson_id in ids else f"{lesson_id} not among {ids}"

    deadline = time.monotonic() + float(os.environ.get("SMOKE_WAIT_SECONDS", WAIT_SECONDS))
    problems = [
        problem
        for problem in (
            wait_for("user-progress status", counted_in_status, deadline),
            wait_for("course-agent lessons", listed_in_lessons, deadline),
        )
        if problem
    ]
    if problems:
        print("; ".join(problems), file=sys.stderr)
        return 1
    print(f"user-progress counts lesson {lesson_id} for {learner_id}; course-agent lists it")
    return 0


if __name__ == "__main__":
    sys.exit(main())
