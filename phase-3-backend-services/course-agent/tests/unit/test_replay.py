import json
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import respx
from course_agent.domain.generation_request import GenerateLessonRequest
from course_agent.domain.prompt import RenderedPrompt
from course_agent.llm.errors import LlmConfigurationError, LlmInvalidOutput, RecordingMissing
from course_agent.llm.factory import build_lesson_generator
from course_agent.llm.openai_lessons import OpenAiLessonGenerator
from course_agent.llm.parameters import GenerationParameters
from course_agent.llm.recording import (
    AuthoredSource,
    RecordedRequest,
    RecordedResponse,
    RecordedUsage,
    Recording,
    load_recording,
    recording_key,
    save_recording,
)
from course_agent.llm.replay import RecordingLessonGenerator, ReplayLessonGenerator

BASE_URL = "http://llm.test/v1"
MODEL = "gpt-4o-mini"
Render = Callable[..., RenderedPrompt]


@pytest.fixture
def prompt(render: Render, request_: GenerateLessonRequest) -> RenderedPrompt:
    return render(request_)


@pytest.fixture
def completions(valid_lesson: dict[str, Any]) -> Iterator[respx.Route]:
    answer = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": json.dumps(valid_lesson)},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 120, "completion_tokens": 80, "total_tokens": 200},
    }
    with respx.mock(base_url=BASE_URL) as router:
        yield router.post("/chat/completions").mock(return_value=httpx.Response(200, json=answer))


@pytest.fixture
async def recorder(tmp_path: Path) -> AsyncIterator[RecordingLessonGenerator]:
    client = openai.AsyncOpenAI(base_url=BASE_URL, api_key="test-key", max_retries=0)
    generator = RecordingLessonGenerator(OpenAiLessonGenerator(client, MODEL), tmp_path)
    yield generator
    await generator.aclose()


def _authored(prompt: RenderedPrompt, lesson: dict[str, Any], model: str = MODEL) -> Recording:
    parameters = GenerationParameters()
    return Recording(
        key=recording_key(model, prompt.messages, parameters),
        request=RecordedRequest(
            model=model, messages=prompt.messages, parameters=parameters.as_dict()
        ),
        response=RecordedResponse(
            lesson=lesson,
            model=model,
            usage=RecordedUsage(prompt_tokens=prompt.prompt_tokens, completion_tokens=500),
            reasked=False,
        ),
        source=AuthoredSource(by="tests", note="hand-written"),
    )


async def test_record_then_replay_gives_the_same_lesson_without_calling_the_model(
    tmp_path: Path,
    recorder: RecordingLessonGenerator,
    completions: respx.Route,
    prompt: RenderedPrompt,
) -> None:
    recorded = await recorder.generate(prompt)

    replayed = await ReplayLessonGenerator(tmp_path, MODEL).generate(prompt)

    assert completions.call_count == 1
    assert replayed == recorded


async def test_a_recording_says_where_it_came_from_and_what_was_asked(
    tmp_path: Path,
    recorder: RecordingLessonGenerator,
    completions: respx.Route,
    prompt: RenderedPrompt,
) -> None:
    await recorder.generate(prompt)

    (path,) = tmp_path.glob("*.json")
    saved = json.loads(path.read_text())

    assert (
        path.stem == saved["key"] == recording_key(MODEL, prompt.messages, GenerationParameters())
    )
    assert saved["source"]["kind"] == "live"
    assert saved["source"]["model"] == "gpt-4o-mini-2024-07-18"
    assert saved["source"]["recorded_at"]
    assert saved["source"]["endpoint"] == BASE_URL + "/"
    assert saved["request"] == {
        "model": MODEL,
        "messages": [m.model_dump() for m in prompt.messages],
        "parameters": {"temperature": 0.2, "max_tokens": 4096},
    }
    assert saved["response"]["usage"] == {"prompt_tokens": 120, "completion_tokens": 80}


async def test_a_miss_names_the_key(tmp_path: Path, prompt: RenderedPrompt) -> None:
    with pytest.raises(RecordingMissing) as caught:
        await ReplayLessonGenerator(tmp_path, MODEL).generate(prompt)

    expected = recording_key(MODEL, prompt.messages, GenerationParameters())
    assert caught.value.key == expected
    assert expected in str(caught.value)
    assert caught.value.http_status == 503


async def test_a_miss_says_replay_mode_and_the_ways_forward(
    tmp_path: Path, prompt: RenderedPrompt
) -> None:
    with pytest.raises(RecordingMissing) as caught:
        await ReplayLessonGenerator(tmp_path, MODEL).generate(prompt)

    message = str(caught.value)
    assert "replay mode" in message
    assert "no answer is recorded for this request" in message
    assert "`make recordings` lists the recorded requests" in message
    assert "set OPENAI_API_KEY" in message


async def test_another_model_or_parameters_do_not_match_a_recording(
    tmp_path: Path, prompt: RenderedPrompt, valid_lesson: dict[str, Any]
) -> None:
    save_recording(tmp_path, _authored(prompt, valid_lesson))

    with pytest.raises(RecordingMissing):
        await ReplayLessonGenerator(tmp_path, "gpt-4.1").generate(prompt)
    with pytest.raises(RecordingMissing):
        await ReplayLessonGenerator(
            tmp_path, MODEL, GenerationParameters(temperature=1.0)
        ).generate(prompt)


async def test_authored_recordings_replay_and_keep_their_source(
    tmp_path: Path, prompt: RenderedPrompt, valid_lesson: dict[str, Any]
) -> None:
    recording = _authored(prompt, valid_lesson)
    save_recording(tmp_path, recording)

    lesson = await ReplayLessonGenerator(tmp_path, MODEL).generate(prompt)

    assert lesson.draft.model_dump() == valid_lesson
    assert lesson.completion_tokens == 500
    loaded = load_recording(tmp_path, recording.key)
    assert loaded is not None
    assert loaded.source == AuthoredSource(by="tests", note="hand-written")


async def test_a_recording_of_an_invalid_lesson_is_invalid_output(
    tmp_path: Path, prompt: RenderedPrompt, valid_lesson: dict[str, Any]
) -> None:
    valid_lesson["quiz"][0]["answer_index"] = 8
    save_recording(tmp_path, _authored(prompt, valid_lesson))

    with pytest.raises(LlmInvalidOutput, match="answer_index"):
        await ReplayLessonGenerator(tmp_path, MODEL).generate(prompt)


async def test_factory_builds_each_provider(tmp_path: Path) -> None:
    replay = build_lesson_generator("replay", model=MODEL, recordings_dir=tmp_path)
    live = build_lesson_generator("openai", model=MODEL, recordings_dir=tmp_path, api_key="k")
    record = build_lesson_generator(
        "record", model=MODEL, recordings_dir=tmp_path, api_key="k", base_url=BASE_URL
    )

    assert isinstance(replay, ReplayLessonGenerator)
    assert isinstance(live, OpenAiLessonGenerator)
    assert isinstance(record, RecordingLessonGenerator)
    for generator in (replay, live, record):
        await generator.aclose()


@pytest.mark.parametrize("provider", ["openai", "record"])
def test_live_providers_need_an_api_key(tmp_path: Path, provider: Any) -> None:
    with pytest.raises(LlmConfigurationError, match="needs an API key"):
        build_lesson_generator(provider, model=MODEL, recordings_dir=tmp_path, api_key=None)


def test_replay_needs_an_existing_recordings_dir(tmp_path: Path) -> None:
    with pytest.raises(LlmConfigurationError, match="does not exist"):
        build_lesson_generator("replay", model=MODEL, recordings_dir=tmp_path / "missing")
