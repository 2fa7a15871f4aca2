import re
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from course_agent.domain.cache_key import lesson_cache_key
from course_agent.domain.generation_request import GenerateLessonRequest
from course_agent.domain.prompt import RenderedPrompt
from learnflow_contracts.levels import Level
from learnflow_contracts.progress import ProgressProjectionV1

Render = Callable[..., RenderedPrompt]
MakeProjection = Callable[..., ProgressProjectionV1]
MODEL = "gpt-4o-mini"


def _key(
    render: Render,
    request: GenerateLessonRequest,
    projection: ProgressProjectionV1 | None,
    budget: int = 3000,
    model: str = MODEL,
) -> str:
    return lesson_cache_key(request, render(request, projection, budget), model)


def _request(**changes: object) -> GenerateLessonRequest:
    fields = {"learner_id": "learner-1", "topic": "Adding fractions", "goal": "Pass my exam"}
    return GenerateLessonRequest.model_validate({**fields, **changes})


def test_key_is_a_stable_sha256(render: Render, make_projection: MakeProjection) -> None:
    first = _key(render, _request(), make_projection())

    assert first == _key(render, _request(), make_projection())
    assert re.fullmatch(r"[0-9a-f]{64}", first)


def test_progress_details_that_are_not_rendered_do_not_change_the_key(
    render: Render, make_projection: MakeProjection
) -> None:
    before = _key(render, _request(), make_projection())
    later = make_projection(at=datetime(2027, 5, 5, tzinfo=UTC), lessons_completed=40)

    assert _key(render, _request(), later.model_copy(update={"average_score": 99.0})) == before


def test_topic_case_and_spacing_do_not_change_the_key(render: Render) -> None:
    assert _key(render, _request(topic=" ADDING   Fractions"), None) == _key(
        render, _request(), None
    )


@pytest.mark.parametrize(
    "changes",
    [
        {"learner_id": "learner-2"},
        {"topic": "Subtracting fractions"},
        {"level": Level.ADVANCED},
        {"goal": None},
        {"locale": "fr"},
    ],
)
def test_each_request_field_changes_the_key(render: Render, changes: dict[str, object]) -> None:
    assert _key(render, _request(**changes), None) != _key(render, _request(), None)


def test_rendered_progress_changes_the_key(render: Render, make_projection: MakeProjection) -> None:
    base = _key(render, _request(), make_projection())

    assert _key(render, _request(), make_projection(weak=("geometry",))) != base
    assert _key(render, _request(), make_projection(scores=(("decimals", 42),))) != base
    assert _key(render, _request(), None) != base


def test_model_and_prompt_version_change_the_key(render: Render) -> None:
    prompt = render(_request(), None)
    base = lesson_cache_key(_request(), prompt, MODEL)

    assert lesson_cache_key(_request(), prompt, "gpt-4.1-mini") != base
    newer = prompt.model_copy(update={"prompt_version": "v2"})
    assert lesson_cache_key(_request(), newer, MODEL) != base


def test_progress_trimmed_away_for_budget_does_not_change_the_key(
    render: Render, make_projection: MakeProjection
) -> None:
    oldest_scored_40 = make_projection(scores=(("decimals", 41), ("ratio", 40)))
    oldest_scored_90 = make_projection(scores=(("decimals", 41), ("ratio", 90)))
    budget = render(_request(), oldest_scored_40).prompt_tokens - 1

    trimmed_40 = render(_request(), oldest_scored_40, budget)
    assert trimmed_40.trimmed == ("recent_score:ratio",)
    assert _key(render, _request(), oldest_scored_40, budget) == _key(
        render, _request(), oldest_scored_90, budget
    )
