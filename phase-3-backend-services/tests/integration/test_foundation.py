"""The local stack is real: state lands in PostgreSQL, messages cross Kafka, sidecars find each
other by sqlite name resolution and register their actors with placement."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
from learnflow_contracts.names import LESSON_GENERATED_TOPIC
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


def _listening_sockets(pid: int) -> set[tuple[str, int]]:
    """(address, port) of every TCP socket ``pid`` listens on, from /proc (IPv4 and IPv6)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    found = set()
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state != "0A" or inode not in inodes:  # 0A = LISTEN
                continue
            address_hex, port_hex = local.split(":")
            raw = bytes.fromhex(address_hex)
            # /proc prints each 32-bit word in host (little-endian) order.
            words = b"".join(raw[i : i + 4][::-1] for i in range(0, width // 2, 4))
            address = ipaddress.ip_address(words)
            if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
                address = address.ipv4_mapped
            found.add((str(address), int(port_hex, 16)))
    return found


def test_the_socket_reader_sees_wildcard_and_loopback_listeners() -> None:
    with contextlib.ExitStack() as sockets:
        anywhere = sockets.enter_context(socket.create_server(("0.0.0.0", 0)))
        local = sockets.enter_context(socket.create_server(("127.0.0.1", 0)))
        expected = {("0.0.0.0", anywhere.getsockname()[1]), ("127.0.0.1", local.getsockname()[1])}
        found = _listening_sockets(os.getpid())

    assert expected <= found


def test_everything_listens_on_loopback_only(stack: Stack) -> None:
    assert stack.placement is not None
    assert stack.scheduler is not None
    # Dapr 1.18.2 ignores --healthz-listen-address for placement and scheduler (their healthz
    # server binds ":port"); these two are the only known exceptions, and nothing calls them
    # except from 127.0.0.1.
    known_wildcards = {
        ("0.0.0.0", stack.placement.healthz_port),
        ("::", stack.placement.healthz_port),
        ("0.0.0.0", stack.scheduler.healthz_port),
        ("::", stack.scheduler.healthz_port),
    }
    listening = set()
    for process in stack.processes():
        listening |= _listening_sockets(process.pid)

    off_loopback = {
        (address, port)
        for address, port in listening
        if not ipaddress.ip_address(address).is_loopback
    }
    assert len(listening) > 10
    assert off_loopback <= known_wildcards, off_loopback - known_wildcards


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
