"""One case through the Course Agent's own LLM pipeline, over recorded or live HTTP.

The pipeline is ``OpenAiLessonGenerator``: structured output, validation, one repair request,
refusal and cut-off handling. Only its HTTP transport changes: a replay of a transcript, or
the real endpoint with every answer captured.
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import openai
from course_agent.domain.prompt import RenderedPrompt
from course_agent.llm.errors import LlmError
from course_agent.llm.openai_lessons import OpenAiLessonGenerator
from course_agent.llm.port import GeneratedLesson

from learnflow_evals.cases import MODEL, Outcome

REPLAY_BASE_URL = "http://recorded.invalid/v1"
_EXHAUSTED = (
    "transcript exhausted: the pipeline asked the model more often than the recording answers"
)


@dataclass(frozen=True)
class PipelineResult:
    outcome: Outcome
    http_status: int  # what POST /generate-lesson answers
    lesson: GeneratedLesson | None
    detail: str


class ReplayTransport(httpx.AsyncBaseTransport):
    """Answers each chat-completion request with the next recorded answer, and no network."""

    def __init__(self, answers: Sequence[dict[str, Any]]) -> None:
        self._answers = tuple(answers)
        self.requests: list[dict[str, Any]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(json.loads(request.content))
        if len(self.requests) > len(self._answers):
            error = {"message": _EXHAUSTED, "type": "invalid_request_error", "code": None}
            return httpx.Response(400, json={"error": error})
        return httpx.Response(200, json=self._answers[len(self.requests) - 1])


@dataclass
class CapturingTransport(httpx.AsyncBaseTransport):
    """Passes requests to ``inner`` and keeps every successful chat-completion body."""

    inner: httpx.AsyncBaseTransport
    answers: list[dict[str, Any]] = field(default_factory=list)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if response.status_code == 200 and request.url.path.endswith("/chat/completions"):
            body = await response.aread()  # the client reads the same cached content later
            self.answers.append(json.loads(body))
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


def replay_client(answers: Sequence[dict[str, Any]]) -> tuple[openai.AsyncOpenAI, ReplayTransport]:
    transport = ReplayTransport(answers)
    client = openai.AsyncOpenAI(
        api_key="replay",
        base_url=REPLAY_BASE_URL,
        max_retries=0,
        http_client=httpx.AsyncClient(transport=transport),
    )
    return client, transport


async def run_pipeline(client: openai.AsyncOpenAI, prompt: RenderedPrompt) -> PipelineResult:
    """What the Course Agent makes of ``prompt`` with this client; closes the client."""
    generator = OpenAiLessonGenerator(client, MODEL)
    try:
        lesson = await generator.generate(prompt)
    except LlmError as error:
        return PipelineResult(Outcome(error.code), error.http_status, None, str(error))
    finally:
        await generator.aclose()
    outcome = Outcome.REPAIRED if lesson.reasked else Outcome.LESSON
    tokens = f"{lesson.prompt_tokens}+{lesson.completion_tokens} tokens"
    return PipelineResult(outcome, 201, lesson, tokens)
