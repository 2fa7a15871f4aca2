import json
import math
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import openai
import pytest
import respx
from course_agent.domain.generation_request import GenerateLessonRequest
from course_agent.domain.prompt import RenderedPrompt
from course_agent.llm.errors import (
    LlmInvalidOutput,
    LlmRefused,
    LlmRejected,
    LlmTimeout,
    LlmUnavailable,
)
from course_agent.llm.openai_lessons import OpenAiLessonGenerator

BASE_URL = "http://llm.test/v1"
Render = Callable[..., RenderedPrompt]


def completion(
    content: str | None,
    *,
    refusal: str | None = None,
    finish_reason: str = "stop",
    usage: tuple[int, int] = (100, 50),
) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": refusal},
                "finish_reason": finish_reason,
            }
        ],
        "usage": {
            "prompt_tokens": usage[0],
            "completion_tokens": usage[1],
            "total_tokens": sum(usage),
        },
    }


def ok(content: str | None, **kwargs: Any) -> httpx.Response:
    return httpx.Response(200, json=completion(content, **kwargs))


def api_error(
    status: int, message: str, param: str | None = None, code: str | None = None
) -> httpx.Response:
    body = {
        "error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}
    }
    return httpx.Response(status, json=body)


def sent(route: respx.Route, call: int) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(route.calls[call].request.content)
    return body


@pytest.fixture
def api() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=BASE_URL, assert_all_called=False) as router:
        yield router


@pytest.fixture
def completions(api: respx.MockRouter) -> respx.Route:
    return api.post("/chat/completions")


@pytest.fixture
async def generator() -> AsyncIterator[OpenAiLessonGenerator]:
    client = openai.AsyncOpenAI(base_url=BASE_URL, api_key="test-key", max_retries=0, timeout=5)
    adapter = OpenAiLessonGenerator(client, "gpt-4o-mini", default_retry_after_seconds=9)
    yield adapter
    await adapter.aclose()


@pytest.fixture
def prompt(render: Render, request_: GenerateLessonRequest) -> RenderedPrompt:
    return render(request_)


async def test_valid_answer_becomes_a_lesson(
    generator: OpenAiLessonGenerator,
    completions: respx.Route,
    prompt: RenderedPrompt,
    valid_lesson: dict[str, Any],
) -> None:
    completions.mock(return_value=ok(json.dumps(valid_lesson)))

    lesson = await generator.generate(prompt)

    assert lesson.draft.model_dump() == valid_lesson
    assert (lesson.model, lesson.prompt_tokens, lesson.completion_tokens) == (
        "gpt-4o-mini-2024-07-18",
        100,
        50,
    )
    assert not lesson.reasked
    request = sent(completions, 0)
    assert request["model"] == "gpt-4o-mini"
    assert request["messages"] == [m.model_dump() for m in prompt.messages]
    assert request["response_format"]["type"] == "json_schema"
    assert request["response_format"]["json_schema"]["strict"] is True
    assert request["temperature"] == 0.2
    assert request["max_tokens"] == 4096


@pytest.mark.parametrize(
    ("break_lesson", "problem"),
    [
        (lambda lesson: lesson.pop("quiz"), "quiz: Field required"),
        (lambda lesson: lesson["quiz"][0].update(answer_index=9), "quiz[0].answer_index is 9"),
    ],
    ids=["schema-invalid", "rule-invalid"],
)
async def test_invalid_answer_is_repaired_once(
    generator: OpenAiLessonGenerator,
    completions: respx.Route,
    prompt: RenderedPrompt,
    valid_lesson: dict[str, Any],
    break_lesson: Callable[[dict[str, Any]], object],
    problem: str,
) -> None:
    broken = json.loads(json.dumps(valid_lesson))
    break_lesson(broken)
    completions.mock(
        side_effect=[ok(json.dumps(broken)), ok(json.dumps(valid_lesson), usage=(300, 60))]
    )

    lesson = await generator.generate(prompt)

    assert lesson.reasked
    assert lesson.draft.model_dump() == valid_lesson
    assert (lesson.prompt_tokens, lesson.completion_tokens) == (400, 110)
    assert completions.call_count == 2
    *original, assistant, repair = sent(completions, 1)["messages"]
    assert original == [m.model_dump() for m in prompt.messages]
    assert assistant == {"role": "assistant", "content": json.dumps(broken)}
    assert repair["role"] == "user"
    assert f"- {problem}" in repair["content"]


async def test_invalid_twice_is_an_invalid_output_error(
    generator: OpenAiLessonGenerator, completions: respx.Route, prompt: RenderedPrompt
) -> None:
    completions.mock(
        side_effect=[ok("not json"), ok('{"title": "half a lesson"}'), ok("never asked")]
    )

    with pytest.raises(LlmInvalidOutput) as caught:
        await generator.generate(prompt)

    assert completions.call_count == 2
    assert caught.value.http_status == 502
    assert "summary: Field required" in caught.value.problems


async def test_refusal_is_refused(
    generator: OpenAiLessonGenerator, completions: respx.Route, prompt: RenderedPrompt
) -> None:
    completions.mock(return_value=ok(None, refusal="I can't help with that."))

    with pytest.raises(LlmRefused, match="I can't help with that") as caught:
        await generator.generate(prompt)

    assert caught.value.http_status == 422
    assert completions.call_count == 1


async def test_content_filter_is_refused(
    generator: OpenAiLessonGenerator, completions: respx.Route, prompt: RenderedPrompt
) -> None:
    completions.mock(return_value=ok(None, finish_reason="content_filter"))

    with pytest.raises(LlmRefused):
        await generator.generate(prompt)


async def test_truncated_answer_is_invalid_output(
    generator: OpenAiLessonGenerator, completions: respx.Route, prompt: RenderedPrompt
) -> None:
    completions.mock(return_value=ok('{"title": "cut', finish_reason="length"))

    with pytest.raises(LlmInvalidOutput, match="output token limit"):
        await generator.generate(prompt)


async def test_timeout_is_a_504(
    generator: OpenAiLessonGenerator, completions: respx.Route, prompt: RenderedPrompt
) -> None:
    completions.mock(side_effect=httpx.ReadTimeout("slow"))

    with pytest.raises(LlmTimeout) as caught:
        await generator.generate(prompt)

    assert caught.value.http_status == 504


def _in_30_seconds() -> str:
    return format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)


@pytest.mark.parametrize(
    ("header", "value", "seconds"),
    [
        ("Retry-After", lambda: "7", (7.0, 7.0)),
        ("retry-after-ms", lambda: "2500", (2.5, 2.5)),
        # Made when the test runs (not at collection, which can be minutes earlier in a long
        # session); a second or two may pass before the header is read.
        ("Retry-After", _in_30_seconds, (25.0, 30.0)),
    ],
    ids=["seconds", "milliseconds", "http-date"],
)
async def test_rate_limit_is_unavailable_with_the_providers_retry_after(
    generator: OpenAiLessonGenerator,
    completions: respx.Route,
    prompt: RenderedPrompt,
    header: str,
    value: Callable[[], str],
    seconds: tuple[float, float],
) -> None:
    limited = api_error(429, "Rate limit reached")
    limited.headers[header] = value()
    completions.mock(return_value=limited)

    with pytest.raises(LlmUnavailable) as caught:
        await generator.generate(prompt)

    low, high = seconds
    assert low <= caught.value.retry_after_seconds <= high
    assert caught.value.http_status == 503
    assert caught.value.headers() == {
        "Retry-After": str(math.ceil(caught.value.retry_after_seconds))
    }


@pytest.mark.parametrize(
    "failure",
    [api_error(500, "boom"), api_error(503, "overloaded"), httpx.ConnectError("refused")],
    ids=["500", "503", "connect"],
)
async def test_provider_trouble_is_unavailable_with_default_retry_after(
    generator: OpenAiLessonGenerator,
    completions: respx.Route,
    prompt: RenderedPrompt,
    failure: httpx.Response | Exception,
) -> None:
    completions.mock(side_effect=[failure])

    with pytest.raises(LlmUnavailable) as caught:
        await generator.generate(prompt)

    assert caught.value.retry_after_seconds == 9


@pytest.mark.parametrize("status", [401, 404])
async def test_rejected_requests_are_a_bad_gateway(
    generator: OpenAiLessonGenerator, completions: respx.Route, prompt: RenderedPrompt, status: int
) -> None:
    completions.mock(return_value=api_error(status, "nope"))

    with pytest.raises(LlmRejected) as caught:
        await generator.generate(prompt)

    assert caught.value.http_status == 502


async def test_falls_back_to_json_object_when_json_schema_is_unsupported(
    generator: OpenAiLessonGenerator,
    completions: respx.Route,
    prompt: RenderedPrompt,
    valid_lesson: dict[str, Any],
) -> None:
    completions.mock(
        side_effect=[
            api_error(400, "response_format json_schema is not supported", param="response_format"),
            ok(json.dumps(valid_lesson)),
            ok(json.dumps(valid_lesson)),
        ]
    )

    lesson = await generator.generate(prompt)
    await generator.generate(prompt)

    assert lesson.draft.model_dump() == valid_lesson
    assert completions.call_count == 3  # the rejection is remembered: no second json_schema try
    for call in (1, 2):
        request = sent(completions, call)
        assert request["response_format"] == {"type": "json_object"}
        system, user = request["messages"]
        assert system["content"].startswith(prompt.messages[0].content)
        assert '"answer_index"' in system["content"]  # the schema is described in words instead
        assert user == prompt.messages[1].model_dump()


async def test_other_bad_requests_do_not_trigger_the_fallback(
    generator: OpenAiLessonGenerator, completions: respx.Route, prompt: RenderedPrompt
) -> None:
    completions.mock(
        return_value=api_error(400, "temperature must be at most 2", param="temperature")
    )

    with pytest.raises(LlmRejected):
        await generator.generate(prompt)

    assert completions.call_count == 1


async def test_provider_content_filter_rejection_is_refused(
    generator: OpenAiLessonGenerator, completions: respx.Route, prompt: RenderedPrompt
) -> None:
    completions.mock(return_value=api_error(400, "filtered", code="content_filter"))

    with pytest.raises(LlmRefused):
        await generator.generate(prompt)


@pytest.mark.parametrize(
    ("finish_reason", "error"),
    [("content_filter", LlmRefused), ("length", LlmInvalidOutput)],
)
async def test_json_object_mode_checks_finish_reasons_too(
    generator: OpenAiLessonGenerator,
    completions: respx.Route,
    prompt: RenderedPrompt,
    finish_reason: str,
    error: type[Exception],
) -> None:
    completions.mock(
        side_effect=[
            api_error(400, "json_schema is not supported"),
            ok('{"title": "cut', finish_reason=finish_reason),
        ]
    )

    with pytest.raises(error):
        await generator.generate(prompt)
