"""One trace per lesson, end to end, in a real Jaeger: a stack with tracing on (Jaeger all-in-one
from scripts/build-jaeger.sh), one POST /generate-lesson carrying a traceparent, and the query
API's trace holding the Course Agent, its daprd, the progress lookup in User Progress, the LLM
call, the state transaction, the publish, and User Progress consuming the event; and a request
that waits for another's lesson, traced through the lesson's actor turn."""

from __future__ import annotations

import asyncio
import os
import secrets
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import yaml
from learnflow_stack import services
from learnflow_stack.dapr import render_resources
from learnflow_stack.ports import listening_sockets
from learnflow_stack.stack import Stack

from .conftest import LlmStub, eventually, live_generation_claims, stub_llm_env

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def traced_stack(llm_stub: LlmStub) -> Iterator[Stack]:
    agent_env = stub_llm_env(llm_stub, timeout_seconds=5)
    with Stack(
        [services.user_progress(), services.course_agent(agent_env)], tracing=True
    ) as running:
        yield running


@dataclass(frozen=True)
class Span:
    id: str
    parent: str | None  # CHILD_OF reference
    follows: tuple[str, ...]  # FOLLOWS_FROM references (links)
    service: str
    in_app: bool  # the app's own span (Python SDK) rather than its daprd's
    name: str
    tags: dict[str, Any]


def _spans(found: dict[str, Any], trace_id: str) -> list[Span]:
    processes = found["processes"]
    spans = []
    for raw in found["spans"]:
        assert raw["traceID"] == trace_id
        process = processes[raw["processID"]]
        refs = raw.get("references") or []
        parents = [r["spanID"] for r in refs if r["refType"] == "CHILD_OF"]
        sdk = {t["key"]: t["value"] for t in process.get("tags") or []}
        spans.append(
            Span(
                id=raw["spanID"],
                parent=parents[0] if parents else None,
                follows=tuple(r["spanID"] for r in refs if r["refType"] == "FOLLOWS_FROM"),
                service=process["serviceName"],
                in_app=sdk.get("telemetry.sdk.language") == "python",
                name=raw["operationName"],
                tags={t["key"]: t["value"] for t in raw.get("tags") or []},
            )
        )
    return spans


EXPECTED = [  # (service, in the app (else its daprd), span name)
    ("course-agent", True, "POST /generate-lesson"),
    ("course-agent", True, "dapr invoke user-progress/status"),
    ("course-agent", False, "CallLocal/user-progress/status/projection"),
    ("user-progress", False, "CallLocal/user-progress/status/projection"),
    ("user-progress", True, "GET /status/projection"),
    ("course-agent", True, "chat gpt-4o-mini"),
    ("course-agent", True, "dapr state transaction statestore"),
    ("course-agent", False, "/v1.0/state/statestore/transaction"),
    ("course-agent", True, "dapr publish lesson-generated"),
    ("course-agent", False, "/v1.0/publish/pubsub/lesson-generated"),
    ("user-progress", False, "pubsub/lesson-generated"),
    ("user-progress", True, "POST /events/lesson-generated"),
    ("user-progress", True, "process lesson-generated"),
    ("user-progress", True, "dapr actor LearnerProgressActor method RecordLessons"),
    ("user-progress", False, "CallActor/LearnerProgressActor/RecordLessons"),
]


WAITED_IN_ACTOR = [
    ("course-agent", True, "POST /generate-lesson"),
    ("course-agent", True, "dapr actor LessonGenerationActor method Generate"),
    ("course-agent", False, "CallActor/LessonGenerationActor/Generate"),
    ("course-agent", True, "PUT /actors/{actor_type_name}/{actor_id}/method/{method_name}"),
]


def _wait_for_trace(
    stack: Stack, trace_id: str, expected: list[tuple[str, bool, str]] = EXPECTED
) -> list[Span]:
    """The trace once every expected span is in Jaeger (spans arrive in batches, 0.5 s apart)."""
    assert stack.jaeger is not None
    deadline = time.monotonic() + 30
    spans: list[Span] = []
    while time.monotonic() < deadline:
        found = stack.jaeger.trace(trace_id)
        spans = _spans(found, trace_id) if found else []
        have = {(s.service, s.in_app, s.name) for s in spans}
        if all(span in have for span in expected):
            return spans
        time.sleep(0.5)
    seen = sorted({(s.service, s.in_app, s.name) for s in spans})
    missing = [e for e in expected if e not in seen]
    raise AssertionError(f"trace {trace_id} lacks {missing}; it has {seen}")


def test_one_lesson_is_one_trace_across_both_apps_sidecars_and_kafka(traced_stack: Stack) -> None:
    trace_id, caller_span = secrets.token_hex(16), secrets.token_hex(8)
    learner = f"traced-{uuid.uuid4().hex[:8]}"
    response = httpx.post(
        f"{traced_stack.app('course-agent').url}/generate-lesson",
        json={"learner_id": learner, "topic": "Adding fractions", "level": "beginner"},
        headers={
            **traced_stack.auth_headers(learner),
            "traceparent": f"00-{trace_id}-{caller_span}-01",
        },
        timeout=30,
    )
    assert response.status_code == 201, response.text
    # What an operator pastes into Jaeger, on the answer itself.
    assert response.headers["x-trace-id"] == trace_id
    assert response.headers["traceresponse"].startswith(f"00-{trace_id}-")
    lesson = response.json()

    spans = _wait_for_trace(traced_stack, trace_id)
    by_id = {s.id: s for s in spans}

    def one(service: str, in_app: bool, name: str) -> Span:
        matches = [s for s in spans if (s.service, s.in_app, s.name) == (service, in_app, name)]
        assert len(matches) >= 1, (service, in_app, name)
        return matches[0]

    def parent_of(span: Span) -> Span:
        assert span.parent in by_id, f"{span.name}: parent {span.parent} not in the trace"
        return by_id[span.parent]

    # The incoming traceparent is honoured: the request's span is the caller's child.
    root = one("course-agent", True, "POST /generate-lesson")
    assert root.parent == caller_span

    # The progress lookup: app -> its daprd -> User Progress's daprd -> User Progress.
    lookup = one("user-progress", True, "GET /status/projection")
    hops = [parent_of(lookup)]
    hops.append(parent_of(hops[-1]))
    hops.append(parent_of(hops[-1]))
    assert [(h.service, h.in_app, h.name) for h in hops] == [
        ("user-progress", False, "CallLocal/user-progress/status/projection"),
        ("course-agent", False, "CallLocal/user-progress/status/projection"),
        ("course-agent", True, "dapr invoke user-progress/status"),
    ]
    assert parent_of(hops[-1]) == root

    # An uncontended generation runs in the request: the LLM call, the state transaction and
    # the publish are the request's.
    llm = one("course-agent", True, "chat gpt-4o-mini")
    assert parent_of(llm) == root
    assert llm.tags["gen_ai.request.model"] == "gpt-4o-mini"
    assert llm.tags["gen_ai.usage.input_tokens"] == lesson["prompt_tokens"]
    assert llm.tags["gen_ai.usage.output_tokens"] == lesson["completion_tokens"]
    assert not any("fraction" in str(value).lower() for value in llm.tags.values())

    transaction = one("course-agent", False, "/v1.0/state/statestore/transaction")
    assert parent_of(transaction).name == "dapr state transaction statestore"
    assert parent_of(parent_of(transaction)) == root

    publish = one("course-agent", False, "/v1.0/publish/pubsub/lesson-generated")
    assert parent_of(publish).name == "dapr publish lesson-generated"
    assert parent_of(parent_of(publish)) == root

    # Through Kafka: the CloudEvent's traceparent makes User Progress's consumption a child of
    # the publish, and the actor call that applies the lesson joins it.
    consumed = one("user-progress", True, "process lesson-generated")
    assert consumed.tags["span.kind"] == "consumer"
    assert consumed.tags["messaging.destination.name"] == "lesson-generated"
    assert consumed.tags["learnflow.delivery.status"] == "SUCCESS"
    assert parent_of(consumed) == publish
    delivery = one("user-progress", True, "POST /events/lesson-generated")
    assert consumed.follows == (delivery.id,)  # linked to the delivery that brought it
    record = one("user-progress", True, "dapr actor LearnerProgressActor method RecordLessons")
    assert parent_of(record) == consumed
    assert parent_of(
        one("user-progress", False, "CallActor/LearnerProgressActor/RecordLessons")
    ) == (record)


def test_a_request_that_waits_for_anothers_lesson_is_traced_through_the_actor_turn(
    traced_stack: Stack, llm_stub: LlmStub
) -> None:
    learner = f"traced-{uuid.uuid4().hex[:8]}"
    body = {"learner_id": learner, "topic": "Waiting for fractions", "level": "beginner"}
    trace_id, caller_span = secrets.token_hex(16), secrets.token_hex(8)

    async def holder_then_waiter() -> tuple[httpx.Response, httpx.Response]:
        url = f"{traced_stack.app('course-agent').url}/generate-lesson"
        async with httpx.AsyncClient(timeout=30) as client:
            holder = asyncio.ensure_future(
                client.post(url, json=body, headers=traced_stack.auth_headers(learner))
            )
            with psycopg.connect(traced_stack.pg_connection, autocommit=True) as pg:
                await asyncio.to_thread(eventually, lambda: live_generation_claims(pg) == 1, 10)
            waiter = await client.post(
                url,
                json=body,
                headers={
                    **traced_stack.auth_headers(learner),
                    "traceparent": f"00-{trace_id}-{caller_span}-01",
                },
            )
            return await holder, waiter

    calls = llm_stub.calls()
    llm_stub.mode(delay_seconds=2.0)
    try:
        holder, waiter = asyncio.run(holder_then_waiter())
        llm_calls = llm_stub.calls() - calls
    finally:
        llm_stub.reset()  # (which zeroes its count)

    assert (holder.status_code, waiter.status_code) == (201, 200), waiter.text
    assert waiter.json()["lesson_id"] == holder.json()["lesson_id"]
    spans = _wait_for_trace(traced_stack, trace_id, WAITED_IN_ACTOR)
    chain = {(s.service, s.in_app, s.name): s for s in spans}
    root, call, daprd_hop, turn = (chain[expected] for expected in WAITED_IN_ACTOR)
    assert root.parent == caller_span
    # request -> the app's actor call -> its daprd -> the actor turn, back in the app.
    assert [call.parent, daprd_hop.parent, turn.parent] == [root.id, call.id, daprd_hop.id]
    assert llm_calls == 1  # the waiter made none


def test_jaeger_listens_on_its_loopback_ports_only(traced_stack: Stack) -> None:
    jaeger = traced_stack.jaeger
    assert jaeger is not None
    assert jaeger.process is not None
    ports = {
        jaeger.otlp_grpc_port,
        jaeger.otlp_http_port,
        jaeger.collector_grpc_port,
        jaeger.collector_http_port,
        jaeger.query_http_port,
        jaeger.query_grpc_port,
        jaeger.admin_port,
    }
    assert listening_sockets(jaeger.process.pid) == {("127.0.0.1", port) for port in ports}
    # No UDP either (Jaeger v1's agent ports): no socket of Jaeger's is in the UDP tables.
    sockets = {
        os.readlink(fd)[8:-1]
        for fd in Path(f"/proc/{jaeger.process.pid}/fd").iterdir()
        if os.readlink(fd).startswith("socket:[")
    }
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            assert line.split()[9] not in sockets, line


def test_tracing_is_off_unless_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The other tests' stacks (and bench, soak) run without Jaeger: sampling 0, no endpoint."""
    monkeypatch.delenv("LEARNFLOW_TRACING", raising=False)
    assert Stack([]).tracing is False
    _, config_path = render_resources(tmp_path, "127.0.0.1:9092")
    tracing = yaml.safe_load(config_path.read_text())["spec"]["tracing"]
    assert tracing["samplingRate"] == "0"
    assert tracing["otel"]["endpointAddress"] == ""
