"""`make bench` on a stack of its own, in a small run: it completes without errors, its way of
counting sidecar calls (daprd's own counters) counts one direct call as one, and a backlog is
consumed in bulk. Timings and per-scenario call counts are figures, printed, not asserted: in a
small run the work earlier scenarios leave behind (events still being consumed, published
events leaving the outbox) lands in the later ones' windows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from learnflow_stack.bench.main import main as bench


@pytest.fixture(scope="module")
def figures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    results = tmp_path_factory.mktemp("bench") / "bench.json"
    # One scored update per lesson of the long history: its seeding runs, and must succeed.
    arguments = ["--requests", "0.1", "--scored-history", "1", "--json", str(results)]
    assert bench(arguments) == 0
    found: dict[str, Any] = json.loads(Path(results).read_text())["figures"]
    return found


def test_each_raw_floor_is_one_call_to_a_sidecar(figures: dict[str, Any]) -> None:
    """The counting method itself: one direct daprd call is counted once, the bare app none.
    Each app's outbox relay (one bulk read of its slots and shards every 2 s) may run during a
    floor, at most twice in so short a window; a second call per request would still show."""
    for floor in figures["floors"]:
        total = sum(floor["cost"]["round_trips"].values())
        expected = 0.0 if floor["name"].startswith("FastAPI app alone") else 1.0
        relay_passes = 2 * 2 / floor["cost"]["requests"]
        assert expected <= total <= expected + relay_passes + 0.01, floor["name"]


def test_at_rest_the_apps_call_their_sidecars_only_for_the_outbox_relay(
    figures: dict[str, Any],
) -> None:
    """With no request in flight, each app's one background call is its relay's bulk read
    every 2 s (it was a read per shard: 4 calls a second)."""
    idle = figures["idle"]
    assert idle["requests"] == 5  # seconds
    assert idle["round_trips"]["course-agent"] <= 0.6
    assert idle["round_trips"]["user-progress"] <= 0.6


def test_the_long_history_was_scored_before_it_was_measured(figures: dict[str, Any]) -> None:
    """With --scored-history 1, each of its 1,000 lessons got a scored update first: User
    Progress held that many scores (read back through GET /status) when it was measured."""
    assert figures["long_history_scores"] == 1000
    assert figures["progress_long_history"]["errors"] == 0


def test_a_backlog_put_on_kafka_is_applied_in_bulk(figures: dict[str, Any]) -> None:
    drain = figures["drain"]
    assert drain["applied"] == drain["events"]
    # Bulk delivery: far fewer deliveries than events (the rest are the learners' actor turns).
    assert drain["cost"]["deliveries"]["user-progress"] < 1.5


def test_an_outbox_backlog_reaches_kafka_each_learner_in_order(figures: dict[str, Any]) -> None:
    """Read by a Kafka consumer of the bench's own: every staged event, none out of order."""
    backlog = figures["outbox_drain"]
    assert backlog["events"] > 0
    assert backlog["seen"] == backlog["events"]
    assert backlog["learners_out_of_order"] == 0
    assert backlog["busiest_pass"][0] > 0
