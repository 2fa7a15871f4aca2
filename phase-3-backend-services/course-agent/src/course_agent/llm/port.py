"""The port the service depends on to get a lesson from a prompt."""

from typing import Literal, Protocol

from learnflow_contracts.strict import StrictModel

from course_agent.domain.lesson import LessonDraft
from course_agent.domain.prompt import RenderedPrompt

# Which LessonGenerator the service runs (see ``llm.factory.build_lesson_generator``).
LlmProvider = Literal["openai", "replay", "record"]


class GeneratedLesson(StrictModel):
    """A lesson that passed every rule, with what it cost (summed over a repair, if any)."""

    draft: LessonDraft
    model: str  # as reported by the provider, e.g. "gpt-4o-mini-2024-07-18"
    prompt_tokens: int
    completion_tokens: int
    reasked: bool  # the first answer broke a rule and the model was asked once to repair it


class LessonGenerator(Protocol):
    async def generate(self, prompt: RenderedPrompt) -> GeneratedLesson:
        """Raises an ``LlmError`` subclass when no valid lesson can be produced."""
        ...

    async def aclose(self) -> None:
        """Release connections; call once at shutdown."""
        ...
