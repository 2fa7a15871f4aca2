import copy
from collections.abc import Callable
from typing import Any

import pytest
from course_agent.domain.lesson import LessonDraft
from learnflow_evals.authoring import load_authored
from learnflow_evals.cases import EvalCase, Outcome, load_cases
from learnflow_evals.graders import Graded
from learnflow_evals.rendering import Renderer
from learnflow_evals.thresholds import Thresholds, load_thresholds


@pytest.fixture(scope="session")
def renderer() -> Renderer:
    return Renderer.create()


@pytest.fixture(scope="session")
def thresholds() -> Thresholds:
    return load_thresholds()


@pytest.fixture(scope="session")
def cases() -> dict[str, EvalCase]:
    return {case.id: case for case in load_cases()}


@pytest.fixture(scope="session")
def _authored() -> dict[str, dict[str, Any]]:
    return load_authored()


@pytest.fixture
def lesson_of(_authored: dict[str, dict[str, Any]]) -> Callable[[str], dict[str, Any]]:
    """The authored lesson of a case, as a fresh dict each test may break."""
    return lambda case_id: copy.deepcopy(_authored[case_id]["lesson"])


@pytest.fixture
def graded(
    cases: dict[str, EvalCase], renderer: Renderer, lesson_of: Callable[[str], dict[str, Any]]
) -> Callable[..., Graded]:
    """A case graded as if the pipeline served ``lesson`` (default: the case's authored one)."""

    def _graded(
        case_id: str,
        lesson: dict[str, Any] | None = None,
        outcome: Outcome = Outcome.LESSON,
        served: bool = True,
    ) -> Graded:
        case = cases[case_id]
        draft = LessonDraft.model_validate(lesson or lesson_of(case_id)) if served else None
        return Graded(case, renderer.render(case), outcome, draft)

    return _graded
