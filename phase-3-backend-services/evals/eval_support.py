"""What the eval scripts share: the cases, and rendering each case exactly as the service does."""

from dataclasses import dataclass
from pathlib import Path

import yaml
from course_agent.domain.generation_request import GenerateLessonRequest
from course_agent.domain.prompt import RenderedPrompt, build_lesson_prompt
from course_agent.domain.prompt_catalog import PromptCatalog
from course_agent.domain.token_budget import TokenCounter
from learnflow_contracts.progress import ProgressProjectionV1
from pydantic import BaseModel, ConfigDict

EVALS_DIR = Path(__file__).resolve().parent
PROMPTS_DIR = EVALS_DIR.parent / "prompts"
RECORDINGS_DIR = EVALS_DIR / "recordings"
CASES_FILE = EVALS_DIR / "cases.yaml"
AUTHORED_LESSONS_FILE = EVALS_DIR / "authored_lessons.yaml"
# The Course Agent's defaults: recordings only match prompts rendered with the same settings.
MODEL = "gpt-4o-mini"
TOKEN_BUDGET = 3000


class EvalCase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    request: GenerateLessonRequest
    progress: ProgressProjectionV1 | None = None


class _CasesFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    cases: tuple[EvalCase, ...]


def load_cases() -> tuple[EvalCase, ...]:
    return _CasesFile.model_validate(yaml.safe_load(CASES_FILE.read_text())).cases


@dataclass(frozen=True)
class Renderer:
    catalog: PromptCatalog
    counter: TokenCounter

    @classmethod
    def create(cls) -> "Renderer":
        return cls(PromptCatalog.load(PROMPTS_DIR), TokenCounter(MODEL))

    def render(self, case: EvalCase) -> RenderedPrompt:
        return build_lesson_prompt(
            self.catalog.active("lesson"),
            case.request,
            case.progress,
            counter=self.counter,
            token_budget=TOKEN_BUDGET,
        )
