"""Each failure mode's authored answers, through the Course Agent's own pipeline."""

from collections.abc import Callable
from typing import Any

import pytest
from learnflow_evals.authoring import authored_transcript
from learnflow_evals.cases import EvalCase, FailureMode, Outcome
from learnflow_evals.pipeline import PipelineResult, ReplayTransport, replay_client, run_pipeline
from learnflow_evals.rendering import Renderer

Lesson = Callable[[str], dict[str, Any]]


async def _replay(
    case: EvalCase, renderer: Renderer, entry: dict[str, Any]
) -> tuple[PipelineResult, ReplayTransport]:
    prompt = renderer.render(case)
    transcript = authored_transcript(case, prompt, renderer.key(prompt), entry)
    client, transport = replay_client(transcript.answers)
    return await run_pipeline(client, prompt), transport


def _with_mode(case: EvalCase, mode: FailureMode) -> EvalCase:
    return case.model_copy(update={"failure_mode": mode})


@pytest.mark.parametrize(
    ("mode", "outcome", "status", "calls"),
    [
        (FailureMode.FENCED_JSON, Outcome.REPAIRED, 201, 2),
        (FailureMode.PROSE_WRAPPED_JSON, Outcome.REPAIRED, 201, 2),
        (FailureMode.MISSING_FIELDS, Outcome.REPAIRED, 201, 2),
        (FailureMode.UNTAUGHT_OBJECTIVE, Outcome.REPAIRED, 201, 2),
        (FailureMode.ANSWER_INDEX_OUT_OF_RANGE, Outcome.INVALID_OUTPUT, 502, 2),
        (FailureMode.CUT_OFF_AT_LENGTH, Outcome.INVALID_OUTPUT, 502, 1),
        (FailureMode.INJECTION_OBEYED, Outcome.LESSON, 201, 1),
    ],
)
async def test_each_failure_mode_reaches_its_designed_outcome(
    cases: dict[str, EvalCase],
    renderer: Renderer,
    lesson_of: Lesson,
    mode: FailureMode,
    outcome: Outcome,
    status: int,
    calls: int,
) -> None:
    case = _with_mode(cases["fractions-beginner"], mode)

    result, transport = await _replay(case, renderer, {"lesson": lesson_of("fractions-beginner")})

    assert (result.outcome, result.http_status) == (outcome, status)
    assert len(transport.requests) == calls
    assert transport.requests[0]["messages"] == [
        m.model_dump() for m in renderer.render(case).messages
    ]


async def test_a_repair_request_quotes_the_bad_answer_and_names_the_problem(
    cases: dict[str, EvalCase], renderer: Renderer, lesson_of: Lesson
) -> None:
    case = _with_mode(cases["fractions-beginner"], FailureMode.UNTAUGHT_OBJECTIVE)

    result, transport = await _replay(case, renderer, {"lesson": lesson_of("fractions-beginner")})

    first_answer, repair = transport.requests[1]["messages"][-2:]
    assert first_answer["role"] == "assistant"
    assert '"O3"' in first_answer["content"]
    assert "objective 'O3' is not taught by any section" in repair["content"]
    assert result.lesson is not None
    assert result.lesson.reasked
    # Tokens of both calls are billed.
    assert result.lesson.prompt_tokens > renderer.render(case).prompt_tokens


async def test_an_index_out_of_range_twice_is_502_naming_the_problem(
    cases: dict[str, EvalCase], renderer: Renderer, lesson_of: Lesson
) -> None:
    case = _with_mode(cases["fractions-beginner"], FailureMode.ANSWER_INDEX_OUT_OF_RANGE)

    result, _ = await _replay(case, renderer, {"lesson": lesson_of("fractions-beginner")})

    assert result.outcome is Outcome.INVALID_OUTPUT
    assert "quiz[0].answer_index is 3" in result.detail


async def test_a_refusal_is_422(cases: dict[str, EvalCase], renderer: Renderer) -> None:
    case = _with_mode(cases["fm-refused-harmless-topic"], FailureMode.REFUSED_HARMLESS_TOPIC)

    result, transport = await _replay(case, renderer, {"refusal": "I can't help with that."})

    assert (result.outcome, result.http_status) == (Outcome.REFUSED, 422)
    assert "I can't help with that." in result.detail
    assert len(transport.requests) == 1


async def test_a_pipeline_that_asks_more_often_than_recorded_is_not_answered(
    renderer: Renderer, cases: dict[str, EvalCase], lesson_of: Lesson
) -> None:
    case = _with_mode(cases["fractions-beginner"], FailureMode.FENCED_JSON)
    prompt = renderer.render(case)
    full = authored_transcript(case, prompt, renderer.key(prompt), {"lesson": lesson_of(case.id)})
    client, _ = replay_client(full.answers[:1])  # the repair answer is missing

    result = await run_pipeline(client, prompt)

    assert result.outcome is Outcome.REJECTED
