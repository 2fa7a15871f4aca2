"""HTTP routes: thin, they validate and hand over to the lesson service and store."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from learnflow_contracts.identifiers import Identifier
from learnflow_service_kit.end_user_auth import AUTH_ERRORS, AuthenticatedCaller
from learnflow_service_kit.errors import ERROR_RESPONSE, ServiceError

from course_agent.domain.generation_request import GenerateLessonRequest
from course_agent.lesson_public import LessonPage, LessonPublic, LessonResponse
from course_agent.lesson_service import LessonService
from course_agent.lesson_store import LessonStore

router = APIRouter(tags=["lessons"])


# Async providers: FastAPI runs a plain ``def`` dependency in its threadpool, a thread hop
# per request (~5% of the app's CPU in the profile).
async def lesson_service(request: Request) -> LessonService:
    service: LessonService = request.app.state.lesson_service
    return service


async def lesson_store(request: Request) -> LessonStore:
    store: LessonStore = request.app.state.lesson_store
    return store


Service = Annotated[LessonService, Depends(lesson_service)]
Store = Annotated[LessonStore, Depends(lesson_store)]
IdempotencyKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", min_length=1, max_length=200, pattern=r"^[\x21-\x7e]+$"),
]


@router.post(
    "/generate-lesson",
    response_model=LessonResponse,
    status_code=201,
    description=(
        "Answers within the LLM's time plus 5 s. A 503 naming a part (`state_store_unavailable`, "
        "`actor_placement_unavailable`, `dapr_sidecar_unavailable`, `llm_unavailable`, ...) or a "
        "504 may come after the lesson was stored: retry with the **same `Idempotency-Key`** "
        "(and body) to get that lesson instead of a new one. A stored lesson's "
        "`lesson-generated` event is always published, even if Kafka is down at the time."
    ),
    responses={
        **AUTH_ERRORS,
        200: {"model": LessonResponse, "description": "Served from the cache"},
        400: ERROR_RESPONSE,  # a body that is not JSON at all
        413: ERROR_RESPONSE,
        429: ERROR_RESPONSE,
        502: ERROR_RESPONSE,
        503: ERROR_RESPONSE,
        504: ERROR_RESPONSE,
    },
)
async def generate_lesson(
    body: GenerateLessonRequest,
    response: Response,
    service: Service,
    caller: AuthenticatedCaller,
    idempotency_key: IdempotencyKey = None,
) -> LessonResponse:
    caller.require_access_to(body.learner_id)
    result = await service.generate(body, idempotency_key)
    response.status_code = 201 if result.created else 200
    return LessonResponse.of_generation(result.record, from_cache=not result.created)


@router.get("/lessons", response_model=LessonPage, responses={**AUTH_ERRORS, 503: ERROR_RESPONSE})
async def list_lessons(
    store: Store,
    caller: AuthenticatedCaller,
    learner_id: Annotated[Identifier, Query()],
    topic: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> LessonPage:
    caller.require_access_to(learner_id)
    records, next_cursor = await store.page(learner_id, topic, cursor, limit)
    return LessonPage(items=[LessonPublic.of(r) for r in records], next_cursor=next_cursor)


@router.get(
    "/lessons/{lesson_id}",
    response_model=LessonPublic,
    responses={**AUTH_ERRORS, 404: ERROR_RESPONSE, 503: ERROR_RESPONSE},
)
async def get_lesson(
    store: Store, caller: AuthenticatedCaller, lesson_id: Annotated[Identifier, Path()]
) -> LessonPublic:
    record = await store.get(lesson_id)
    if record is None:
        raise ServiceError(404, "lesson_not_found", f"lesson_id: no lesson {lesson_id!r}")
    caller.require_access_to(record.learner_id)
    return LessonPublic.of(record)
