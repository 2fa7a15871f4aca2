"""The LLM stub other suites rely on: valid lessons through the real adapter, and its faults."""

import asyncio
from collections.abc import AsyncIterator, Callable

import httpx
import openai
import pytest
from course_agent.domain.generation_request import GenerateLessonRequest
from course_agent.domain.prompt import RenderedPrompt
from course_agent.llm.errors import LlmInvalidOutput, LlmUnavailable
from course_agent.llm.openai_lessons import OpenAiLessonGenerator
from fastapi import FastAPI
from learnflow_stack.llm_stub import create_stub_app

Render = Callable[..., RenderedPrompt]
STUB = "http://stub.test"


@pytest.fixture
def app() -> FastAPI:
    return create_stub_app(delay_seconds=0)


@pytest.fixture
async def http(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=STUB) as client:
        yield client


@pytest.fixture
def generator(http: httpx.AsyncClient) -> OpenAiLessonGenerator:
    client = openai.AsyncOpenAI(
        base_url=f"{STUB}/v1", api_key="stub", max_retries=0, http_client=http
    )
    return OpenAiLessonGenerator(client, "gpt-4o-mini")


@pytest.fixture
def prompt(render: Render) -> RenderedPrompt:
    return render(GenerateLessonRequest(learner_id="learner-1", topic="Photosynthesis <basics>"))


async def _calls(http: httpx.AsyncClient) -> int:
    count: int = (await http.get("/stub/calls")).json()["calls"]
    return count


async def _set_mode(http: httpx.AsyncClient, mode: str) -> None:
    (await http.post("/stub/mode", json={"mode": mode})).raise_for_status()


async def test_stub_lesson_passes_the_real_adapter_and_uses_the_topic(
    generator: OpenAiLessonGenerator, http: httpx.AsyncClient, prompt: RenderedPrompt
) -> None:
    lesson = await generator.generate(prompt)

    assert lesson.draft.title == "An introduction to Photosynthesis <basics>"
    assert not lesson.reasked
    assert lesson.prompt_tokens > 0
    assert lesson.completion_tokens > 0
    assert await _calls(http) == 1


async def test_json_object_only_mode_exercises_the_fallback(
    generator: OpenAiLessonGenerator, http: httpx.AsyncClient, prompt: RenderedPrompt
) -> None:
    await _set_mode(http, "json_object_only")

    lesson = await generator.generate(prompt)

    assert lesson.draft.objectives
    assert await _calls(http) == 2


async def test_invalid_mode_fails_after_one_repair(
    generator: OpenAiLessonGenerator, http: httpx.AsyncClient, prompt: RenderedPrompt
) -> None:
    await _set_mode(http, "invalid")

    with pytest.raises(LlmInvalidOutput, match="answer_index"):
        await generator.generate(prompt)

    assert await _calls(http) == 2


@pytest.mark.parametrize(("mode", "retry_after"), [("rate_limit", 1), ("server_error", 5)])
async def test_fault_modes_are_unavailable(
    generator: OpenAiLessonGenerator,
    http: httpx.AsyncClient,
    prompt: RenderedPrompt,
    mode: str,
    retry_after: float,
) -> None:
    await _set_mode(http, mode)

    with pytest.raises(LlmUnavailable) as caught:
        await generator.generate(prompt)

    assert caught.value.retry_after_seconds == retry_after


async def test_hang_holds_requests_until_reset(
    generator: OpenAiLessonGenerator, http: httpx.AsyncClient, prompt: RenderedPrompt
) -> None:
    await _set_mode(http, "hang")
    pending = asyncio.create_task(generator.generate(prompt))
    await asyncio.sleep(0.2)
    assert not pending.done()

    await http.post("/stub/reset")

    lesson = await asyncio.wait_for(pending, timeout=5)
    assert lesson.draft.title.startswith("An introduction to")
    assert await _calls(http) == 0  # reset counts from zero again


async def test_delay_can_be_changed_at_run_time(http: httpx.AsyncClient) -> None:
    changed = await http.post("/stub/mode", json={"delay_seconds": 0.3})

    assert changed.json() == {"mode": "ok", "delay_seconds": 0.3}
    started = asyncio.get_running_loop().time()
    await http.post("/v1/chat/completions", json={"model": "m", "messages": []})
    assert asyncio.get_running_loop().time() - started >= 0.3


async def test_unknown_modes_are_refused(http: httpx.AsyncClient) -> None:
    assert (await http.post("/stub/mode", json={"mode": "chaos"})).status_code == 422
