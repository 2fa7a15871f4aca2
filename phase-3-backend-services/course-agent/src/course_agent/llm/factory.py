"""Builds the lesson generator the settings ask for."""

from pathlib import Path

import openai

from course_agent.llm.errors import LlmConfigurationError
from course_agent.llm.openai_lessons import OpenAiLessonGenerator
from course_agent.llm.parameters import GenerationParameters
from course_agent.llm.port import LessonGenerator, LlmProvider
from course_agent.llm.replay import RecordingLessonGenerator, ReplayLessonGenerator


def build_lesson_generator(
    provider: LlmProvider,
    *,
    model: str,
    recordings_dir: Path,
    base_url: str | None = None,
    api_key: str | None = None,
    timeout_seconds: float = 30.0,
    max_retries: int = 2,
    parameters: GenerationParameters | None = None,
) -> LessonGenerator:
    """``openai``: live model. ``replay``: recorded answers only, no network.
    ``record``: live model, and every answer is written to ``recordings_dir``.

    Raises ``LlmConfigurationError`` when the settings cannot work.
    """
    if provider == "replay":
        if not recordings_dir.is_dir():
            raise LlmConfigurationError(
                f"replay mode needs a recordings directory; {recordings_dir} does not exist"
            )
        return ReplayLessonGenerator(recordings_dir, model, parameters)
    if not api_key:
        raise LlmConfigurationError(
            f"LLM provider {provider!r} needs an API key "
            "(COURSE_AGENT_LLM_API_KEY or OPENAI_API_KEY)"
        )
    client = openai.AsyncOpenAI(
        api_key=api_key, base_url=base_url, timeout=timeout_seconds, max_retries=max_retries
    )
    live = OpenAiLessonGenerator(client, model, parameters)
    if provider == "record":
        return RecordingLessonGenerator(live, recordings_dir)
    return live
