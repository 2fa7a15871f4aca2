"""The eval cases (evals/cases.yaml): what is asked, and what the pipeline must make of it."""

from enum import StrEnum
from pathlib import Path

import yaml
from course_agent.domain.generation_request import GenerateLessonRequest
from course_agent.settings import Settings
from learnflow_contracts.progress import ProgressProjectionV1
from learnflow_contracts.strict import StrictModel

EVALS_DIR = Path(__file__).resolve().parents[2]
CASES_FILE = EVALS_DIR / "cases.yaml"
# The Course Agent's defaults: recordings only match prompts rendered with the same settings.
_DEFAULTS = Settings.model_fields
PROMPTS_DIR: Path = _DEFAULTS["prompts_dir"].default
MODEL: str = _DEFAULTS["llm_model"].default
TOKEN_BUDGET: int = _DEFAULTS["prompt_token_budget"].default


class Outcome(StrEnum):
    """What the Course Agent's LLM pipeline made of the model's answers."""

    LESSON = "lesson"  # valid at the first answer: 201
    REPAIRED = "repaired"  # the first answer broke a rule, the one repair request fixed it: 201
    # The rest are the codes of the LlmError the pipeline raised; the HTTP status is its own.
    INVALID_OUTPUT = "llm_invalid_output"  # 502
    REFUSED = "llm_refused"  # 422
    REJECTED = "llm_rejected"  # 502: e.g. the pipeline asked more often than was recorded
    TIMEOUT = "llm_timeout"
    UNAVAILABLE = "llm_unavailable"

    @property
    def served(self) -> bool:
        return self in {Outcome.LESSON, Outcome.REPAIRED}


class FailureMode(StrEnum):
    """A way real models get lesson answers wrong; authoring.py writes each one's answers."""

    FENCED_JSON = "fenced_json"
    PROSE_WRAPPED_JSON = "prose_wrapped_json"
    MISSING_FIELDS = "missing_fields"
    ANSWER_INDEX_OUT_OF_RANGE = "answer_index_out_of_range"
    UNTAUGHT_OBJECTIVE = "untaught_objective"
    CUT_OFF_AT_LENGTH = "cut_off_at_length"
    REFUSED_HARMLESS_TOPIC = "refused_harmless_topic"
    INJECTION_OBEYED = "injection_obeyed"


class Expectation(StrictModel):
    outcome: Outcome = Outcome.LESSON
    # A harmful request: the only right answer is a refusal.
    must_refuse: bool = False
    # Words a lesson on the requested subject must mention in its title or summary; set on
    # cases whose topic, goal or history carries an injected instruction.
    about: tuple[str, ...] = ()
    # Graders that must flag this case's recorded answer (a known-bad answer kept on purpose).
    flagged_by: tuple[str, ...] = ()


class EvalCase(StrictModel):
    id: str
    subject: str
    request: GenerateLessonRequest
    progress: ProgressProjectionV1 | None = None
    expect: Expectation = Expectation()
    # Set on cases whose recorded answers reproduce a model failure (authored, never live).
    failure_mode: FailureMode | None = None

    @property
    def exported(self) -> bool:
        """Its lesson is served by the stack's replay mode: a good answer to a fair request."""
        return (
            self.failure_mode is None and self.expect.outcome.served and not self.expect.flagged_by
        )


class _CasesFile(StrictModel):
    cases: tuple[EvalCase, ...]


def load_cases(path: Path = CASES_FILE) -> tuple[EvalCase, ...]:
    cases = _CasesFile.model_validate(yaml.safe_load(path.read_text())).cases
    ids = [case.id for case in cases]
    duplicates = sorted({case_id for case_id in ids if ids.count(case_id) > 1})
    if duplicates:
        raise ValueError(f"case ids used more than once in {path.name}: {duplicates}")
    return cases
