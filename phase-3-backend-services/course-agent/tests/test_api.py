"""The HTTP surface of the Course Agent without a sidecar: bad input is a clear 422 naming
the field, before any dependency is touched; /healthz answers; /readyz says the sidecar is away."""

from __future__ import annotations

import pytest
from course_agent.main import create_app
from course_agent.settings import Settings
from fastapi.testclient import TestClient


@pytest.fixture(scope="module")
def client() -> TestClient:
    # A port nothing listens on: any call that reached the sidecar would fail loudly.
    return TestClient(create_app(Settings(dapr_http_port=9, AUTH_DISABLED=True)))


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"topic": "Cats"}, "body.learner_id"),
        ({"learner_id": "ada"}, "body.topic"),
        ({"learner_id": "ada", "topic": "Cats\u0000"}, "body.topic"),
        ({"learner_id": "ada", "topic": "   "}, "body.topic"),
        ({"learner_id": "ada", "topic": "Cats", "goal": "g" * 501}, "body.goal"),
        ({"learner_id": "ada", "topic": "Cats", "locale": "english please"}, "body.locale"),
        ({"learner_id": "ada", "topic": "Cats", "level": "guru"}, "body.level"),
    ],
)
def test_bad_lesson_requests_name_the_field(
    client: TestClient, body: dict[str, str], field: str
) -> None:
    response = client.post("/generate-lesson", json=body)

    assert response.status_code == 422
    assert field in [f["field"] for f in response.json()["error"]["fields"]]


def test_bad_list_queries_name_the_field(client: TestClient) -> None:
    cases: list[tuple[dict[str, str | int], str]] = [
        ({}, "query.learner_id"),
        ({"learner_id": "ada", "limit": 0}, "query.limit"),
        ({"learner_id": "ada", "limit": 1000}, "query.limit"),
    ]
    for params, field in cases:
        response = client.get("/lessons", params=params)
        assert response.status_code == 422
        assert field in [f["field"] for f in response.json()["error"]["fields"]]


def test_a_bad_idempotency_key_is_a_422(client: TestClient) -> None:
    response = client.post(
        "/generate-lesson",
        json={"learner_id": "ada", "topic": "Cats"},
        headers={"Idempotency-Key": "x" * 201},
    )
    assert response.status_code == 422
    assert "header.Idempotency-Key" in [f["field"] for f in response.json()["error"]["fields"]]


def test_health_and_readiness_without_a_sidecar(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"] == {"dapr_sidecar": False, "state_store": False}


def test_a_request_that_needs_the_sidecar_gets_a_clear_503(client: TestClient) -> None:
    response = client.get("/lessons", params={"learner_id": "ada"})
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "dapr_sidecar_unavailable"


def test_a_domain_error_is_a_clear_json_error() -> None:
    # Progress is unreachable (no sidecar), so the lesson would be unpersonalised; even so the
    # prompt cannot fit a budget this small: PromptOverBudget, a CourseAgentError, is a 422.
    tight = TestClient(
        create_app(Settings(dapr_http_port=9, prompt_token_budget=200, AUTH_DISABLED=True))
    )

    response = tight.post("/generate-lesson", json={"learner_id": "ada", "topic": "Cats"})

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "prompt_over_budget"
    assert "too long for budget" in response.json()["error"]["message"]


def test_the_openapi_tells_a_client_how_to_retry_a_generation(client: TestClient) -> None:
    operation = client.get("/openapi.json").json()["paths"]["/generate-lesson"]["post"]

    assert {"200", "201", "401", "403", "413", "422", "429", "502", "503", "504"} <= set(
        operation["responses"]
    )
    assert "same `Idempotency-Key`" in operation["description"]


def test_the_sidecars_routes_are_not_in_the_public_openapi(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]

    assert "/generate-lesson" in paths
    assert [p for p in paths if p.startswith(("/actors", "/dapr", "/events"))] == []
