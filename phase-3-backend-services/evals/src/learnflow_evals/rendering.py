"""Each case's prompt, rendered exactly as the Course Agent renders it."""

from dataclasses import dataclass
from pathlib import Path

from course_agent.domain.prompt import RenderedPrompt, build_lesson_prompt
from course_agent.domain.prompt_catalog import PromptCatalog
from course_agent.llm.parameters import GenerationParameters
from course_agent.llm.recording import recording_key
from course_agent.prompt_files import load_prompt_catalog
from course_agent.tokenizer import TokenCounter

from learnflow_evals.cases import MODEL, PROMPTS_DIR, TOKEN_BUDGET, EvalCase


@dataclass(frozen=True)
class Renderer:
    catalog: PromptCatalog
    counter: TokenCounter
    parameters: GenerationParameters

    @classmethod
    def create(cls, prompts_dir: Path = PROMPTS_DIR) -> "Renderer":
        return cls(load_prompt_catalog(prompts_dir), TokenCounter(MODEL), GenerationParameters())

    def render(self, case: EvalCase) -> RenderedPrompt:
        return build_lesson_prompt(
            self.catalog.active("lesson"),
            case.request,
            case.progress,
            count_tokens=self.counter.count,
            token_budget=TOKEN_BUDGET,
        )

    def key(self, prompt: RenderedPrompt) -> str:
        """The recording key of ``prompt``: what the service's replay mode looks up."""
        return recording_key(MODEL, prompt.messages, self.parameters)
