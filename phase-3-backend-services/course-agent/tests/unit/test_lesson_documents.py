"""The documents around a lesson: the stored record (its JSON names are those of lessons
already in PostgreSQL), the public model mapped from it, and the generation actor's protocol."""

from collections.abc import Callable

import pytest
from course_agent.domain.errors import CourseAgentError
from course_agent.domain.generation_request import GenerateLessonRequest
from course_agent.domain.prompt import RenderedPrompt
from course_agent.generation_protocol import (
    GENERATE_ANSWER,
    GenerateJob,
    GenerationFailed,
    LessonGenerated,
)
from course_agent.lesson_public import LessonPublic, LessonResponse
from course_agent.lesson_record import LessonRecord
from course_agent.lesson_store import lesson_key, new_lesson_id
from course_agent.llm.errors import LlmUnavailable
from course_agent.llm_budget import LlmBudgetExceeded
from learnflow_contracts.progress import ProgressProjectionV1
from learnflow_service_kit.errors import ServiceError

STORED_NAMES = {
    "lesson_id",
    "learner_id",
    "topic",
    "level",
    "goal",
    "locale",
    "content",
    "prompt_id",
    "prompt_version",
    "model",
    "prompt_tokens",
    "completion_tokens",
    "personalized",
    "personalization",
    "personalised_with",
    "trimmed",
    "created_at",
}


def test_the_stored_document_keeps_the_names_of_lessons_already_stored(
    record: LessonRecord,
) -> None:
    stored = record.model_dump(mode="json")

    assert set(stored) == STORED_NAMES
    assert stored["personalized"] is True
    assert stored["personalization"] == "applied"
    assert stored["personalised_with"]["weak_topics"]
    assert LessonRecord.model_validate(stored) == record


def test_the_public_lesson_has_the_same_json_as_the_stored_one(record: LessonRecord) -> None:
    stored = record.model_dump(mode="json")

    assert LessonPublic.of(record).model_dump(mode="json") == stored
    response = LessonResponse.of_generation(record, from_cache=True)
    assert response.model_dump(mode="json") == {**stored, "from_cache": True}


def test_new_lesson_ids_are_namespaced_once_by_their_key() -> None:
    lesson_id = new_lesson_id()

    assert not lesson_id.startswith("lesson-")
    assert lesson_key(lesson_id) == f"lesson-{lesson_id}"
    # A lesson stored before keeps its id, and its key is still computed the same way.
    assert lesson_key("lesson-0a1b") == "lesson-lesson-0a1b"


def test_a_job_crosses_the_actor_boundary_unchanged(
    render: Callable[..., RenderedPrompt],
    request_: GenerateLessonRequest,
    make_projection: Callable[..., ProgressProjectionV1],
) -> None:
    job = GenerateJob(
        prompt=render(request_, make_projection()),
        request=request_,
        personalisation_outcome="applied",
    )

    assert GenerateJob.model_validate(job.model_dump(mode="json")) == job


def test_a_lesson_answer_crosses_the_actor_boundary_unchanged(record: LessonRecord) -> None:
    answer = LessonGenerated(lesson=record, created=True)

    document = GENERATE_ANSWER.dump_python(answer, mode="json")

    assert document["kind"] == "lesson"
    assert GENERATE_ANSWER.validate_python(document) == answer


@pytest.mark.parametrize(
    ("error", "status", "code", "headers"),
    [
        (LlmUnavailable("rate limited", 2.5), 503, "llm_unavailable", {"Retry-After": "3"}),
        (LlmBudgetExceeded("too many", 120), 429, "llm_budget_exceeded", {"Retry-After": "120"}),
        (CourseAgentError("boom"), 500, "internal_error", {}),
    ],
)
def test_a_failure_answer_becomes_the_same_http_error(
    error: CourseAgentError, status: int, code: str, headers: dict[str, str]
) -> None:
    document = GENERATE_ANSWER.dump_python(GenerationFailed.of(error), mode="json")
    answer = GENERATE_ANSWER.validate_python(document)

    assert isinstance(answer, GenerationFailed)
    raised = answer.as_error()
    assert isinstance(raised, ServiceError)
    assert (raised.http_status, raised.code, str(raised), raised.headers()) == (
        status,
        code,
        str(error),
        headers,
    )


def test_an_answer_of_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="kind"):
        GENERATE_ANSWER.validate_python({"kind": "maybe", "created": True})
