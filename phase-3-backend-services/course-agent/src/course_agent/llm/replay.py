"""Generators backed by recordings: replay answers from files, or record live answers to them."""

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from course_agent.domain.lesson import InvalidLesson, parse_lesson
from course_agent.domain.prompt import RenderedPrompt
from course_agent.llm.errors import LlmInvalidOutput, RecordingMissing
from course_agent.llm.openai_lessons import OpenAiLessonGenerator
from course_agent.llm.parameters import GenerationParameters
from course_agent.llm.port import GeneratedLesson
from course_agent.llm.recording import (
    LiveSource,
    RecordedRequest,
    RecordedResponse,
    RecordedUsage,
    Recording,
    load_recording,
    recording_key,
    save_recording,
)


class ReplayLessonGenerator:
    """Answers only prompts it has a recording for; any other prompt is ``RecordingMissing``."""

    def __init__(
        self, recordings_dir: Path, model: str, parameters: GenerationParameters | None = None
    ) -> None:
        self._recordings_dir = recordings_dir
        self._model = model
        self._parameters = parameters or GenerationParameters()

    async def aclose(self) -> None:
        """Nothing to release."""

    async def generate(self, prompt: RenderedPrompt) -> GeneratedLesson:
        key = recording_key(self._model, prompt.messages, self._parameters)
        recording = await asyncio.to_thread(load_recording, self._recordings_dir, key)
        if recording is None:
            raise RecordingMissing(key)
        try:
            draft = parse_lesson(recording.response.lesson)
        except InvalidLesson as invalid:
            problems = "; ".join(invalid.problems[:5])
            raise LlmInvalidOutput(
                f"recording {key} holds an invalid lesson: {problems}", invalid.problems
            ) from invalid
        return GeneratedLesson(
            draft=draft,
            model=recording.response.model,
            prompt_tokens=recording.response.usage.prompt_tokens,
            completion_tokens=recording.response.usage.completion_tokens,
            reasked=recording.response.reasked,
        )


class RecordingLessonGenerator:
    """Asks the live model and keeps every valid answer as a recording for later replay."""

    def __init__(self, inner: OpenAiLessonGenerator, recordings_dir: Path) -> None:
        self._inner = inner
        self._recordings_dir = recordings_dir

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def generate(self, prompt: RenderedPrompt) -> GeneratedLesson:
        lesson = await self._inner.generate(prompt)
        parameters = self._inner.parameters
        recording = Recording(
            key=recording_key(self._inner.model, prompt.messages, parameters),
            request=RecordedRequest(
                model=self._inner.model,
                messages=prompt.messages,
                parameters=parameters.as_dict(),
            ),
            response=RecordedResponse(
                lesson=lesson.draft.model_dump(mode="json"),
                model=lesson.model,
                usage=RecordedUsage(
                    prompt_tokens=lesson.prompt_tokens,
                    completion_tokens=lesson.completion_tokens,
                ),
                reasked=lesson.reasked,
            ),
            source=LiveSource(
                model=lesson.model, recorded_at=datetime.now(UTC), endpoint=self._inner.endpoint
            ),
        )
        await asyncio.to_thread(save_recording, self._recordings_dir, recording)
        return lesson
