"""User Progress's learner actors on the real daprd: one called by no one for the configured idle
time is deactivated (what it cached is freed), and the next call reads the learner's progress
again, whole: a redelivered update is still a duplicate."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest
from learnflow_stack import services
from learnflow_stack.stack import Stack

from .conftest import eventually, learner_status, post_quiz_update

IDLE_SECONDS = 2
LEARNER_ACTOR = "LearnerProgressActor"


@pytest.fixture(scope="module")
def idle_stack() -> Iterator[Stack]:
    env = {"USER_PROGRESS_ACTOR_IDLE_TIMEOUT_SECONDS": str(IDLE_SECONDS)}
    with Stack([services.user_progress(env)]) as running:
        yield running


def _active_learner_actors(stack: Stack) -> int:
    """How many learner actors daprd has active, from its metadata API."""
    sidecar = stack.app("user-progress").sidecar
    metadata = httpx.get(
        f"{sidecar.http_url}/v1.0/metadata", headers=sidecar.api_headers, timeout=10
    ).json()
    active = (metadata.get("actorRuntime") or {}).get("activeActors") or []
    # A type whose actors are all gone stays listed, its count left out (protobuf's zero).
    return sum(entry.get("count", 0) for entry in active if entry["type"] == LEARNER_ACTOR)


def test_an_idle_learner_actor_is_deactivated_and_reads_its_progress_again(
    idle_stack: Stack,
) -> None:
    learner = f"idle-{uuid.uuid4().hex[:8]}"
    assert post_quiz_update(idle_stack, learner, "attempt-1").status_code == 200
    assert _active_learner_actors(idle_stack) == 1

    # Deactivated within the timeout plus one scan (half the timeout), with room for a slow run.
    eventually(lambda: _active_learner_actors(idle_stack) == 0, timeout=5 * IDLE_SECONDS + 5)

    # a redelivery: still known
    assert post_quiz_update(idle_stack, learner, "attempt-1").status_code == 200
    assert post_quiz_update(idle_stack, learner, "attempt-2").status_code == 200
    status = learner_status(idle_stack, learner)
    assert status["total_time_seconds"] == 2  # two updates applied, the redelivery not
    assert _active_learner_actors(idle_stack) == 1
