"""How the benchmark talks to the stack: the request bodies it sends, and Target, the running
stack as the load generator reaches it (with the calls several scenarios share)."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import yaml
from learnflow_contracts.events import LessonGeneratedV1, LessonObjective
from learnflow_contracts.levels import Level

from learnflow_stack.bench.config import BenchConfig
from learnflow_stack.bench.cost import CostMeter
from learnflow_stack.bench.load import expect
from learnflow_stack.paths import PHASE_DIR
from learnflow_stack.stack import AppInstance

_APPLIED = 'lesson_events_total{outcome="applied"}'


def applied_count(metrics_text: str) -> int:
    """User Progress's count of lesson-generated events applied, from its /metrics text."""
    for line in metrics_text.splitlines():
        if line.startswith(_APPLIED):
            return round(float(line.rsplit(" ", 1)[1]))
    return 0


def active_system_prompt() -> str:
    """The active lesson system prompt's text, so the direct stub call carries what the
    Course Agent sends (it is static text, read as is, never rendered)."""
    prompts = PHASE_DIR / "prompts"
    manifest = yaml.safe_load((prompts / "manifest.yaml").read_text())
    lesson = manifest["prompts"]["lesson"]
    system_file: str = lesson["versions"][lesson["active"]]["system"]
    return (prompts / system_file).read_text()


def stub_chat_request(system_prompt: str, topic: str) -> dict[str, Any]:
    """A chat-completions body shaped like the Course Agent's: system + user message with the
    topic tag, strict JSON-schema output, its temperature and token cap. The schema is a
    stand-in; the stub does not read it."""
    return {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": system_prompt},
            {
                "role": "user",
                "content": "Write a lesson on the topic below.\n\n"
                f"<learner_topic>{topic}</learner_topic>\n\nLevel: beginner\nLocale: en",
            },
        ],
        "response_format": {
            "type": "json_schema",
            "json_schema": {
                "name": "LessonDraft",
                "strict": True,
                "schema": {"type": "object", "additionalProperties": False},
            },
        },
        "temperature": 0.2,
        "max_tokens": 4096,
    }


def generate_body(learner_id: str, topic: str) -> dict[str, str]:
    return {"learner_id": learner_id, "topic": topic, "level": Level.BEGINNER.value}


def quiz_update(learner_id: str, lesson_id: str, attempt_id: str, score: int) -> dict[str, Any]:
    return {
        "learner_id": learner_id,
        "lesson_id": lesson_id,
        "attempt_id": attempt_id,
        "kind": "quiz",
        "score": score,
        "time_spent_seconds": 30,
        "occurred_at": datetime.now(UTC).isoformat(),
    }


def lesson_generated_event(lesson_id: str, learner_id: str) -> dict[str, Any]:
    event = LessonGeneratedV1(
        lesson_id=lesson_id,
        learner_id=learner_id,
        topic="Event lag",
        level=Level.BEGINNER,
        title="How fast events travel",
        objectives=(LessonObjective(id="O1", text="Measure the lag of one event."),),
        personalized=False,
        prompt_id="lesson",
        prompt_version="bench",
        model="bench",
        created_at=datetime.now(UTC),
    )
    return event.model_dump(mode="json")


class Target:
    """The stack under test: one HTTP client, the two apps, the LLM stub, the options and the
    meter of what each scenario costs."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        agent: AppInstance,
        progress: AppInstance,
        stub_url: str,
        config: BenchConfig,
        meter: CostMeter,
    ) -> None:
        self.client = client
        self.meter = meter
        self.agent = agent
        self.progress = progress
        self.stub_url = stub_url
        self.config = config
        # Ids are unique per run, so a shared PostgreSQL (LEARNFLOW_PG_CONNECTION) stays valid.
        self.tag = uuid.uuid4().hex[:8]

    def id_for(self, kind: str, index: int | str) -> str:
        return f"bench-{self.tag}-{kind}-{index}"

    def deadline(self) -> float:
        """The end of a scenario starting now: the wall-clock cap from here."""
        return time.perf_counter() + self.config.max_seconds_per_scenario

    async def generate(self, learner_id: str, topic: str, status: int) -> dict[str, Any]:
        response = await self.client.post(
            f"{self.agent.url}/generate-lesson", json=generate_body(learner_id, topic)
        )
        answer: dict[str, Any] = expect(response, status).json()
        return answer

    async def lesson_events_applied(self) -> int:
        return applied_count((await self.client.get(f"{self.progress.url}/metrics")).text)

    async def status_of(self, learner_id: str) -> dict[str, Any]:
        """The learner's ``GET /status`` answer."""
        response = await self.client.get(
            f"{self.progress.url}/status", params={"learner_id": learner_id}
        )
        status: dict[str, Any] = expect(response, 200).json()
        return status

    async def lessons_assigned(self, learner_id: str) -> int:
        assigned: int = (await self.status_of(learner_id))["lessons_assigned"]
        return assigned

    async def record_quiz(
        self, learner_id: str, lesson_id: str, attempt_id: str, score: int
    ) -> None:
        body = quiz_update(learner_id, lesson_id, attempt_id, score)
        expect(await self.client.post(f"{self.progress.url}/update-progress", json=body), 200)
