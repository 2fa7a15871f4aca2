import copy
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from course_agent.domain.generation_request import GenerateLessonRequest
from course_agent.domain.lesson import LessonDraft
from course_agent.domain.prompt import RenderedPrompt, build_lesson_prompt
from course_agent.domain.prompt_catalog import PromptCatalog
from course_agent.lesson_record import LessonRecord
from course_agent.lesson_store import new_lesson_id
from course_agent.prompt_files import load_prompt_catalog
from course_agent.settings import Settings
from course_agent.tokenizer import TokenCounter
from learnflow_contracts.progress import ProgressProjectionV1, RecentScore

# The service's defaults: the snapshots and recordings are rendered with them.
PROMPTS_DIR: Path = Settings.model_fields["prompts_dir"].default
MODEL: str = Settings.model_fields["llm_model"].default
TOKEN_BUDGET: int = Settings.model_fields["prompt_token_budget"].default

_VALID_LESSON: dict[str, Any] = {
    "title": "Adding fractions",
    "summary": "How to add fractions with like and unlike denominators.",
    "objectives": [
        {"id": "O1", "text": "Add fractions with the same denominator."},
        {"id": "O2", "text": "Add fractions with different denominators."},
    ],
    "prior_knowledge": ["What a fraction is."],
    "key_points": ["Only numerators add when denominators match."],
    "misconceptions": [
        {"misconception": "Add the denominators too.", "correction": "Show 1/2 + 1/2 = 1."}
    ],
    "sections": [
        {
            "heading": "Same denominators",
            "body_markdown": "1/5 + 2/5 = 3/5.",
            "objective_ids": ["O1"],
            "minutes": 10,
        },
        {
            "heading": "Different denominators",
            "body_markdown": "Find a common denominator first.",
            "objective_ids": ["O2"],
            "minutes": 15,
        },
    ],
    "exercises": [
        {"prompt": "Add 1/3 and 1/6.", "objective_ids": ["O2"], "solution": "2/6 + 1/6 = 1/2."}
    ],
    "quiz": [
        {
            "question": "What is 1/4 + 2/4?",
            "options": ["3/4", "3/8", "1/2"],
            "answer_index": 0,
            "objective_ids": ["O1"],
            "explanation": "The denominators match, so add the numerators.",
        }
    ],
}


@pytest.fixture
def valid_lesson() -> dict[str, Any]:
    """A lesson that passes every rule; each test gets its own copy to break."""
    return copy.deepcopy(_VALID_LESSON)


@pytest.fixture(scope="session")
def catalog() -> PromptCatalog:
    return load_prompt_catalog(PROMPTS_DIR)


@pytest.fixture(scope="session")
def counter() -> TokenCounter:
    return TokenCounter(MODEL)


@pytest.fixture
def request_() -> GenerateLessonRequest:
    return GenerateLessonRequest(
        learner_id="learner-1", topic="Adding fractions", goal="Pass my exam"
    )


def _projection(
    *,
    weak: tuple[str, ...] = ("decimals", "percentages", "ratio", "negative numbers"),
    strong: tuple[str, ...] = ("addition", "times tables"),
    scores: tuple[tuple[str, int], ...] = (("decimals", 41), ("addition", 92), ("ratio", 55)),
    at: datetime = datetime(2025, 3, 1, 12, 0, tzinfo=UTC),
    lessons_completed: int = 7,
) -> ProgressProjectionV1:
    """A learner with history; ``scores`` are newest first, an hour apart."""
    return ProgressProjectionV1(
        learner_id="learner-1",
        has_history=True,
        weak_topics=weak,
        strong_topics=strong,
        recent_scores=tuple(
            RecentScore(topic=topic, score=score, at=at - timedelta(hours=i))
            for i, (topic, score) in enumerate(scores)
        ),
        lessons_completed=lessons_completed,
        average_score=62.5,
    )


@pytest.fixture
def make_projection() -> Callable[..., ProgressProjectionV1]:
    return _projection


@pytest.fixture
def render(catalog: PromptCatalog, counter: TokenCounter) -> Callable[..., RenderedPrompt]:
    """Render the active lesson prompt; keyword ``budget`` defaults to the service default."""

    def _render(
        request: GenerateLessonRequest,
        projection: ProgressProjectionV1 | None = None,
        budget: int = TOKEN_BUDGET,
    ) -> RenderedPrompt:
        return build_lesson_prompt(
            catalog.active("lesson"),
            request,
            projection,
            count_tokens=counter.count,
            token_budget=budget,
        )

    return _render


@pytest.fixture
def record(
    valid_lesson: dict[str, Any],
    render: Callable[..., RenderedPrompt],
    request_: GenerateLessonRequest,
    make_projection: Callable[..., ProgressProjectionV1],
) -> LessonRecord:
    prompt = render(request_, make_projection())
    return LessonRecord(
        lesson_id=new_lesson_id(),
        learner_id=request_.learner_id,
        topic=request_.topic,
        level=prompt.level,
        goal=request_.goal,
        locale=request_.locale,
        content=LessonDraft.model_validate(valid_lesson),
        prompt_id=prompt.prompt_id,
        prompt_version=prompt.prompt_version,
        model="gpt-4o-mini-2024-07-18",
        prompt_tokens=prompt.prompt_tokens,
        completion_tokens=500,
        personalised=prompt.personalised,
        personalisation_outcome="applied",
        personalisation=prompt.personalisation,
        trimmed=prompt.trimmed,
        created_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    )
