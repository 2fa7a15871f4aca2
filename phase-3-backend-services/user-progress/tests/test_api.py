"""The HTTP surface with the progress gateway swapped for an in-memory one (no Dapr needed):
routes validate, map failures to clear statuses, and tell Dapr SUCCESS / RETRY / DROP."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from learnflow_contracts.events import LessonGeneratedV1
from learnflow_contracts.names import LESSON_GENERATED_TOPIC, USER_PROGRESS_APP_ID
from learnflow_contracts.progress import ProgressProjectionV1
from learnflow_service_kit.errors import ServiceError
from user_progress import delivery_routes, progress_routes
from user_progress.domain import (
    LearnerStatus,
    ProgressUpdateRequest,
    apply_lesson_generated,
    apply_update,
    empty_progress,
    learner_status,
    progress_projection,
)
from user_progress.main import create_app
from user_progress.settings import Settings
from user_progress.wiring import Adapters


class InMemoryProgress:
    def __init__(self) -> None:
        self.learners: dict[str, Any] = {}
        self.down = False
        self.failing_learners: set[str] = set()
        self.batches: list[tuple[str, list[str]]] = []

    def _state(self, learner_id: str) -> Any:
        if self.down:
            raise ServiceError(503, "state_store_unavailable", "down")
        return self.learners.get(learner_id) or empty_progress(learner_id)

    async def record_progress(self, update: ProgressUpdateRequest) -> LearnerStatus:
        self.learners[update.learner_id] = apply_update(
            self._state(update.learner_id), update
        ).state
        return learner_status(self.learners[update.learner_id], datetime.now(UTC))

    async def record_lessons(self, learner_id: str, events: Sequence[LessonGeneratedV1]) -> int:
        if learner_id in self.failing_learners:
            raise ServiceError(503, "state_store_unavailable", "down")
        self.batches.append((learner_id, [e.lesson_id for e in events]))
        applied = 0
        for event in events:
            result = apply_lesson_generated(self._state(learner_id), event)
            self.learners[learner_id] = result.state
            applied += result.applied
        return applied

    async def status(self, learner_id: str) -> LearnerStatus:
        return learner_status(self._state(learner_id), datetime.now(UTC))

    async def projection(self, learner_id: str) -> ProgressProjectionV1:
        return progress_projection(self._state(learner_id))


@pytest.fixture
def progress() -> InMemoryProgress:
    return InMemoryProgress()


@pytest.fixture
def client(progress: InMemoryProgress) -> TestClient:
    return TestClient(
        create_app(Settings(AUTH_DISABLED=True), adapters=Adapters(progress=progress))
    )


def _lesson_event(**overrides: Any) -> dict[str, Any]:
    data = {
        "schema_version": 1,
        "lesson_id": "lesson-1",
        "learner_id": "ada",
        "topic": "Fractions",
        "level": "beginner",
        "title": "Fractions",
        "objectives": [{"id": "O1", "text": "Add"}],
        "personalized": False,
        "prompt_id": "lesson",
        "prompt_version": "v1",
        "model": "m",
        "created_at": "2026-11-27T10:00:00Z",
        **overrides,
    }
    return {"specversion": "1.0", "id": "ce-1", "type": "com.dapr.event.sent", "data": data}


def _delivery(*events: Any) -> dict[str, Any]:
    """A bulk delivery as daprd sends it: one entry per event, each with its entry id."""
    return {
        "id": "delivery-1",
        "topic": "lesson-generated",
        "pubsubname": "pubsub",
        "entries": [
            {"entryId": f"e{n}", "event": event, "contentType": "application/cloudevents+json"}
            for n, event in enumerate(events)
        ],
    }


def _statuses(answer: Any) -> list[str]:
    return [s["status"] for s in answer.json()["statuses"]]


COMPONENTS = Path(__file__).parents[2] / "components"


def _declared_route() -> str:
    """The route of the Subscription of User Progress to lesson-generated in components/."""
    (route,) = [
        doc["spec"]["routes"]["default"]
        for path in sorted(COMPONENTS.glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc
        and doc.get("kind") == "Subscription"
        and doc["spec"]["topic"] == LESSON_GENERATED_TOPIC
        and USER_PROGRESS_APP_ID in doc.get("scopes", [])
    ]
    return str(route)


def test_the_subscription_route_is_the_one_the_subscription_declares(
    progress: InMemoryProgress,
) -> None:
    declared = _declared_route()
    app = create_app(Settings(AUTH_DISABLED=True), adapters=Adapters(progress=progress))

    assert declared == delivery_routes.LESSON_GENERATED_ROUTE
    served = {
        (route.path, method)
        for route in app.routes
        if isinstance(route, APIRoute)
        for method in route.methods
    }
    assert (declared, "POST") in served


def test_each_router_is_tagged_and_the_public_paths_are_the_specs() -> None:
    for router in (progress_routes.router, delivery_routes.router):
        assert router.tags
        assert router.prefix == ""
    public = {route.path for route in progress_routes.router.routes if isinstance(route, APIRoute)}
    assert public == {"/update-progress", "/status", "/status/projection"}


def test_update_then_status(client: TestClient) -> None:
    update = {
        "learner_id": "ada",
        "lesson_id": "lesson-1",
        "attempt_id": "a1",
        "kind": "quiz",
        "score": 90,
        "occurred_at": datetime.now(UTC).isoformat(),
    }

    assert client.post("/update-progress", json=update).json()["average_score"] == 90
    assert client.get("/status", params={"learner_id": "ada"}).json()["lessons_started"] == 1


def test_a_valid_event_is_acked_and_a_redelivery_is_acked_without_change(
    client: TestClient, progress: InMemoryProgress
) -> None:
    answer = client.post("/events/lesson-generated", json=_delivery(_lesson_event()))
    assert answer.json() == {"statuses": [{"entryId": "e0", "status": "SUCCESS"}]}
    again = client.post("/events/lesson-generated", json=_delivery(_lesson_event()))
    assert _statuses(again) == ["SUCCESS"]
    assert client.get("/status", params={"learner_id": "ada"}).json()["lessons_assigned"] == 1


def test_a_learners_events_are_applied_in_one_batch_in_their_order(
    client: TestClient, progress: InMemoryProgress
) -> None:
    delivery = _delivery(
        _lesson_event(lesson_id="lesson-1"),
        _lesson_event(lesson_id="lesson-2", learner_id="bo"),
        _lesson_event(lesson_id="lesson-3"),
    )

    assert _statuses(client.post("/events/lesson-generated", json=delivery)) == ["SUCCESS"] * 3

    assert sorted(progress.batches) == [("ada", ["lesson-1", "lesson-3"]), ("bo", ["lesson-2"])]


@pytest.mark.parametrize(
    "cloud_event",
    [
        _lesson_event(level="wizard"),
        _lesson_event(learner_id="bad id"),
        {"data": None},
        [1, 2],
        "text",
    ],
    ids=["bad-level", "bad-learner", "no-data", "a-list", "a-string"],
)
def test_a_malformed_event_is_dropped_to_the_dead_letter_topic_alone(
    client: TestClient, progress: InMemoryProgress, cloud_event: Any
) -> None:
    delivery = _delivery(cloud_event, _lesson_event())

    answer = client.post("/events/lesson-generated", json=delivery)

    assert _statuses(answer) == ["DROP", "SUCCESS"]
    assert progress.batches == [("ada", ["lesson-1"])]


def test_a_store_outage_asks_dapr_to_redeliver_that_learners_events_only(
    client: TestClient, progress: InMemoryProgress
) -> None:
    progress.failing_learners = {"bo"}
    delivery = _delivery(_lesson_event(learner_id="bo"), _lesson_event())

    assert _statuses(client.post("/events/lesson-generated", json=delivery)) == [
        "RETRY",
        "SUCCESS",
    ]


@pytest.mark.parametrize(
    "body", [_lesson_event(), {"entries": "x"}, [1]], ids=["single", "bad", "list"]
)
def test_a_body_that_is_not_a_bulk_delivery_is_a_400(client: TestClient, body: Any) -> None:
    answer = client.post("/events/lesson-generated", json=body)

    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "malformed_delivery"


def test_a_store_outage_is_a_503_for_callers(
    client: TestClient, progress: InMemoryProgress
) -> None:
    progress.down = True
    response = client.get("/status", params={"learner_id": "ada"})
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "state_store_unavailable"


def test_malformed_json_is_a_422_not_a_500(client: TestClient) -> None:
    response = client.post(
        "/update-progress", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_failed"


def test_only_the_sidecar_token_opens_the_dapr_routes(progress: InMemoryProgress) -> None:
    app = create_app(
        Settings(APP_API_TOKEN="sidecar-token", AUTH_DISABLED=True),
        adapters=Adapters(progress=progress),
    )
    client = TestClient(app)
    forged = client.post("/events/lesson-generated", json=_delivery(_lesson_event()))
    assert forged.status_code == 401
    assert forged.json()["error"]["code"] == "dapr_app_token_invalid"
    wrong = {"dapr-api-token": "guess"}
    assert client.get("/dapr/subscribe", headers=wrong).status_code == 401
    assert client.get("/dapr/config").status_code == 401
    actor_call = "/actors/LearnerProgressActor/ada/method/ApplyUpdate"
    assert client.put(actor_call, json={}).status_code == 401
    assert client.get("/status", params={"learner_id": "ada"}).json()["lessons_assigned"] == 0

    sidecar = {"dapr-api-token": "sidecar-token"}
    accepted = client.post(
        "/events/lesson-generated", json=_delivery(_lesson_event()), headers=sidecar
    )
    assert _statuses(accepted) == ["SUCCESS"]
    assert client.get("/status", params={"learner_id": "ada"}).json()["lessons_assigned"] == 1


def test_every_answer_says_how_long_the_service_took_and_is_counted(client: TestClient) -> None:
    response = client.get("/status", params={"learner_id": "ada"})
    refused = client.get("/status", params={"learner_id": "not ok!"})

    for answer in (response, refused):
        name, duration = answer.headers["server-timing"].split(";dur=")
        assert name == "app"
        assert 0 < float(duration) < 5000
    metrics = client.get("/metrics").text
    assert 'http_requests_total{method="GET",route="/status",status="200"}' in metrics
    assert 'http_requests_total{method="GET",route="/status",status="422"}' in metrics


def test_the_openapi_tells_a_client_when_and_how_to_retry(client: TestClient) -> None:
    operation = client.get("/openapi.json").json()["paths"]["/update-progress"]["post"]

    assert {"200", "401", "403", "413", "422", "429", "503", "504"} <= set(operation["responses"])
    assert "same `attempt_id`" in operation["description"]
    # Every error status is documented with the error envelope the service really sends.
    for status in ("401", "413", "422", "503"):
        schema = operation["responses"][status]["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/ErrorBody"}


def test_the_sidecars_routes_are_not_in_the_public_openapi(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]

    assert "/update-progress" in paths
    assert [p for p in paths if p.startswith(("/actors", "/dapr", "/events"))] == []


def test_a_body_over_the_limit_is_a_413_before_any_handler_reads_it(client: TestClient) -> None:
    huge = b'{"learner_id": "' + b"a" * 70_000 + b'"}'

    declared = client.post("/update-progress", content=huge)
    chunked = client.post("/update-progress", content=iter([huge[:40_000], huge[40_000:]]))

    for response in (declared, chunked):
        assert response.status_code == 413
        assert response.json()["error"]["code"] == "request_too_large"
    # A body under the limit still reaches validation.
    assert client.post("/update-progress", content=b"{}").status_code == 422


def test_an_unexpected_error_is_a_generic_500_with_a_request_id_and_no_detail(
    progress: InMemoryProgress,
) -> None:
    async def broken(learner_id: str) -> LearnerStatus:
        raise RuntimeError("password=hunter2 in a stack frame")

    progress.status = broken  # type: ignore[method-assign]
    client = TestClient(
        create_app(Settings(AUTH_DISABLED=True), adapters=Adapters(progress=progress)),
        raise_server_exceptions=False,
    )

    response = client.get("/status", params={"learner_id": "ada"})

    assert response.status_code == 500
    error = response.json()["error"]
    assert error["code"] == "internal_error"
    assert len(error["request_id"]) == 16
    assert "hunter2" not in response.text
    assert "RuntimeError" not in response.text


def test_a_failing_actor_call_answers_the_sidecar_without_exception_text(
    progress: InMemoryProgress,
) -> None:
    client = TestClient(
        create_app(Settings(AUTH_DISABLED=True), adapters=Adapters(progress=progress))
    )

    unknown_type = client.put("/actors/NoSuchActor/ada/method/ApplyUpdate", json={})
    bad_payload = client.put(
        "/actors/LearnerProgressActor/ada/method/ApplyUpdate", content=b"not json"
    )

    for response in (unknown_type, bad_payload):
        assert response.status_code == 500
        assert response.json()["error"]["code"] == "internal_error"
        assert "request_id" in response.json()["error"]
        for leak in ("registered", "Error(", "Traceback", "pydantic"):
            assert leak not in response.text
