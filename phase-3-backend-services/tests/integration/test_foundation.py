"""The local stack is real: state lands in PostgreSQL, messages cross Kafka, sidecars find each
other by sqlite name resolution and register their actors with placement."""

from __future__ import annotations

import ipaddress
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import psycopg
from learnflow_contracts.names import LESSON_GENERATED_TOPIC
from learnflow_stack.ports import listening_sockets, sockets_of
from learnflow_stack.private_network import interfaces, network_namespace, routes
from learnflow_stack.stack import Stack

from .conftest import TopicReader, eventually, state_row


def test_state_saved_through_daprd_is_a_postgres_row(
    stack: Stack, pg: psycopg.Connection[Any]
) -> None:
    agent = stack.app("course-agent")
    key, value = f"probe-{uuid.uuid4().hex}", {"written_by": "test", "n": 42}

    saved = httpx.post(
        f"{agent.sidecar.http_url}/v1.0/state/statestore",
        json=[{"key": key, "value": value}],
        headers=agent.sidecar.api_headers,
        timeout=10,
    )

    assert saved.status_code == 204
    assert state_row(pg, f"course-agent||{key}") == value


def test_message_published_by_one_sidecar_reaches_the_other_app_and_kafka(
    stack: Stack, read_topic: TopicReader
) -> None:
    agent, progress = stack.app("course-agent"), stack.app("user-progress")
    learner, lesson_id = f"learner-{uuid.uuid4().hex[:8]}", f"lesson-{uuid.uuid4().hex}"
    event = {
        "schema_version": 1,
        "lesson_id": lesson_id,
        "learner_id": learner,
        "topic": "Kafka",
        "level": "beginner",
        "title": "Kafka basics",
        "objectives": [{"id": "O1", "text": "Explain a topic"}],
        "personalized": False,
        "prompt_id": "lesson",
        "prompt_version": "v1",
        "model": "test",
        "created_at": datetime.now(UTC).isoformat(),
    }

    published = httpx.post(
        f"{agent.sidecar.http_url}/v1.0/publish/pubsub/{LESSON_GENERATED_TOPIC}",
        json=event,
        headers=agent.sidecar.api_headers,
        timeout=10,
    )

    assert published.status_code == 204
    status = eventually(
        lambda: (
            s := httpx.get(
                f"{progress.url}/status",
                params={"learner_id": learner},
                timeout=10,
                headers=stack.auth_headers(),
            ).json()
        )["lessons_assigned"]
        == 1
        and s
    )
    assert status["learner_id"] == learner
    on_topic = eventually(
        lambda: read_topic(
            LESSON_GENERATED_TOPIC, lambda e: e.get("data", {}).get("lesson_id") == lesson_id
        )
    )
    assert on_topic[0]["data"]["learner_id"] == learner
    assert on_topic[0]["source"] == "course-agent"


def test_service_invocation_between_sidecars_uses_sqlite_name_resolution(stack: Stack) -> None:
    agent = stack.app("course-agent")

    answer = httpx.get(
        f"{agent.sidecar.http_url}/v1.0/invoke/user-progress/method/healthz",
        headers=agent.sidecar.api_headers,
        timeout=10,
    )

    assert answer.status_code == 200
    assert answer.json() == {"status": "ok"}
    # The shared sqlite file is where the sidecars registered themselves.
    assert (stack.run_dir / "nameresolution.db").stat().st_size > 0


def test_both_sidecars_register_their_actor_types_with_placement(stack: Stack) -> None:
    expected = {"course-agent": "LessonGenerationActor", "user-progress": "LearnerProgressActor"}
    for app_id, actor_type in expected.items():
        metadata = stack.app(app_id).sidecar.metadata()
        assert metadata["actorRuntime"]["placement"] == "placement: connected"
        assert metadata["actorRuntime"]["hostReady"] is True
        assert actor_type in [a["type"] for a in metadata["actorRuntime"]["activeActors"]]

    assert stack.placement is not None
    table = stack.placement.table()
    hosted: dict[str, set[str]] = {}
    for host in table["tables"]["default"]["hosts"]:
        hosted.setdefault(host["id"], set()).update(host["entities"])
    for app_id, actor_type in expected.items():
        assert actor_type in hosted[app_id]


def test_everything_listens_on_loopback_only(stack: Stack) -> None:
    listening = set()
    for process in stack.processes():
        listening |= listening_sockets(process.pid)

    off_loopback = {
        (address, port)
        for address, port in listening
        if not ipaddress.ip_address(address).is_loopback
    }
    assert len(listening) > 10
    assert off_loopback == set()


def test_no_stack_process_holds_a_socket_to_anything_but_loopback(stack: Stack) -> None:
    agent = stack.app("course-agent")
    # A state write opens daprd's PostgreSQL connections; the Kafka consumer of User
    # Progress's subscription and the sidecars' placement and scheduler streams are always open.
    saved = httpx.post(
        f"{agent.sidecar.http_url}/v1.0/state/statestore",
        json=[{"key": f"probe-{uuid.uuid4().hex}", "value": 1}],
        headers=agent.sidecar.api_headers,
        timeout=10,
    )
    assert saved.status_code == 204

    entries = [entry for process in stack.processes() for entry in sockets_of(process.pid)]

    def local_only(address: str) -> bool:
        ip = ipaddress.ip_address(address)
        return ip.is_loopback or ip.is_unspecified

    connected = [entry for entry in entries if entry.remote[1] != 0]
    assert len(connected) > 10
    assert [
        entry
        for entry in entries
        if not (local_only(entry.local[0]) and local_only(entry.remote[0]))
    ] == []


def test_placement_and_scheduler_bind_every_interface_only_of_a_namespace_of_their_own(
    stack: Stack,
) -> None:
    for service in (stack.placement, stack.scheduler):
        assert service is not None
        assert service.process is not None
        pid = service.process.pid
        assert network_namespace(pid) != network_namespace("self")
        assert interfaces(pid) == ["lo"]
        assert routes(pid) == []
        assert listening_sockets(pid) == set()  # nothing of theirs in the host's namespace
        inside = listening_sockets(pid, namespace_of=pid)
        # Dapr 1.18.2 binds healthz on every interface whatever the flag says. When a Dapr
        # upgrade stops that, this fails: then the namespace (private_network) can go.
        assert ("::", service.healthz_port) in inside or ("0.0.0.0", service.healthz_port) in (
            inside
        ), inside
        # The host reaches them through the relay only, on loopback.
        assert httpx.get(f"http://127.0.0.1:{service.healthz_port}/healthz").status_code == 200


def test_only_a_caller_with_the_api_token_reaches_daprd(stack: Stack) -> None:
    """daprd runs with a per-run DAPR_API_TOKEN: the apps send it; anyone else gets 401."""
    sidecar = stack.app("user-progress").sidecar
    url = f"{sidecar.http_url}/v1.0/state/statestore/any-key"

    assert httpx.get(url, timeout=10).status_code == 401
    assert httpx.get(url, headers={"dapr-api-token": "guess"}, timeout=10).status_code == 401
    assert httpx.get(url, headers=sidecar.api_headers, timeout=10).status_code in (200, 204)
    assert httpx.get(f"{sidecar.http_url}/v1.0/healthz", timeout=10).status_code == 204


def test_public_routes_want_the_learners_own_token(stack: Stack) -> None:
    agent, progress = stack.app("course-agent"), stack.app("user-progress")
    learner = f"learner-{uuid.uuid4().hex[:8]}"
    lesson = {"learner_id": learner, "topic": "Tides"}

    anonymous = httpx.post(f"{agent.url}/generate-lesson", json=lesson, timeout=30)
    someone_else = httpx.get(
        f"{progress.url}/status",
        params={"learner_id": learner},
        headers=stack.auth_headers("bob"),
        timeout=10,
    )
    own = httpx.post(
        f"{agent.url}/generate-lesson", json=lesson, headers=stack.auth_headers(learner), timeout=30
    )

    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    assert someone_else.status_code == 403
    assert own.status_code == 201, own.text
    # The progress lookup behind it went through the sidecars without the learner's token.
    assert own.json()["personalization"] == "no_history"
    for app in (agent, progress):
        paths = httpx.get(f"{app.url}/openapi.json", timeout=10).json()["paths"]
        assert [p for p in paths if p.startswith(("/actors", "/dapr", "/events"))] == []
