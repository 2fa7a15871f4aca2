"""The outbox over a fake state store that behaves like Dapr's (ETags, atomic transactions)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any

import httpx
import pytest
from learnflow_service_kit.outbox import (
    RELAY_GRACE_SECONDS,
    Outbox,
    OutboxEvent,
    outbox_shard_key,
)
from learnflow_service_kit.sidecar_client import SidecarClient, StateEntry, Upsert
from learnflow_service_kit.sidecar_http import HttpxSidecar


class FakeSidecar:
    """Just enough of daprd's state and publish API, as an httpx transport."""

    def __init__(self) -> None:
        self.state: dict[str, tuple[Any, int]] = {}
        self.published: list[tuple[str, dict[str, Any], str]] = []
        self.broker_up = True
        self.publish_attempts = 0
        self.keys: list[str | None] = []
        self.lose_next_race = False
        self.rival_write: tuple[str, Any] | None = None
        self.transactions = 0
        self.reads = 0  # GETs and bulk GETs

    def pending(self) -> int:
        """Events waiting in the outbox shards, as stored."""
        shards = [
            value for key, (value, _) in self.state.items() if key.startswith("outbox-shard-")
        ]
        return sum(len(shard["events"]) for shard in shards)

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.method == "GET" and path.startswith("/v1.0/state/statestore/"):
            self.reads += 1
            key = path.rsplit("/", 1)[1]
            if key not in self.state:
                return httpx.Response(204)
            value, etag = self.state[key]
            return httpx.Response(200, json=value, headers={"etag": str(etag)})
        if path == "/v1.0/state/statestore/bulk":
            self.reads += 1
            keys = json.loads(request.content)["keys"]
            return httpx.Response(
                200,
                json=[
                    {"key": k, "data": self.state[k][0], "etag": str(self.state[k][1])}
                    if k in self.state
                    else {"key": k}
                    for k in keys
                ],
            )
        if path == "/v1.0/state/statestore/transaction":
            operations = json.loads(request.content)["operations"]
            self.transactions += 1
            if self.rival_write:
                key, value = self.rival_write
                self.state[key] = (value, self.state.get(key, (None, 0))[1] + 1)
                self.rival_write = None
            if self.lose_next_race:
                self.lose_next_race = False
                return httpx.Response(409, text="possible etag mismatch")
            for op in operations:
                req = op["request"]
                first_write = req.get("options", {}).get("concurrency") == "first-write"
                if first_write and "etag" not in req and req["key"] in self.state:
                    return httpx.Response(500, text="failed: no item was updated")
                if "etag" in req and str(self.state.get(req["key"], (None, -1))[1]) != req["etag"]:
                    return httpx.Response(409, text="possible etag mismatch")
            for op in operations:
                req = op["request"]
                self.state[req["key"]] = (
                    req["value"],
                    self.state.get(req["key"], (None, 0))[1] + 1,
                )
            return httpx.Response(204)
        if path.startswith("/v1.0/publish/pubsub/"):
            self.publish_attempts += 1
            if not self.broker_up:
                return httpx.Response(500, text="kafka down")
            topic = path.rsplit("/", 1)[1]
            self.published.append(
                (topic, json.loads(request.content), request.url.params["metadata.cloudevent.id"])
            )
            self.keys.append(request.url.params.get("metadata.partitionKey"))
            return httpx.Response(204)
        return httpx.Response(404)


@pytest.fixture
def sidecar() -> FakeSidecar:
    return FakeSidecar()


class Clock:
    """Wall-clock time the test moves by hand (the relay's grace period is measured on it)."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now

    def past_the_relay_grace(self) -> None:
        self.now += RELAY_GRACE_SECONDS


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def outbox(sidecar: FakeSidecar, clock: Clock) -> Outbox:
    def connect() -> HttpxSidecar:
        return HttpxSidecar.scripted(sidecar.handle)

    return Outbox(SidecarClient(connect, store="statestore", pubsub="pubsub"), clock=clock)


EVENT = OutboxEvent("lesson-1", "lesson-generated", {"lesson_id": "lesson-1"})


def _write_lesson(found: Mapping[str, StateEntry]) -> list[Upsert]:
    return [Upsert("lesson-lesson-1", {"title": "t"})]


async def test_data_and_event_are_committed_together_then_published(
    outbox: Outbox, sidecar: FakeSidecar
) -> None:
    await outbox.commit_with([], _write_lesson, EVENT)
    assert sidecar.state["lesson-lesson-1"][0] == {"title": "t"}
    assert sidecar.pending() == 1

    assert await outbox.publish_now(EVENT) is True

    assert sidecar.published == [("lesson-generated", {"lesson_id": "lesson-1"}, "lesson-1")]
    await outbox.drain()
    assert sidecar.pending() == 0


async def test_a_lost_race_is_retried_with_fresh_reads(
    outbox: Outbox, sidecar: FakeSidecar
) -> None:
    builds = 0

    def build(found: Mapping[str, StateEntry]) -> list[Upsert]:
        nonlocal builds
        builds += 1
        return _write_lesson(found)

    sidecar.lose_next_race = True
    await outbox.commit_with([], build, EVENT)

    assert builds == 2
    assert sidecar.state[outbox_shard_key("lesson-1")][0]["events"][0]["event_id"] == "lesson-1"


async def test_with_the_broker_down_the_event_waits_for_the_relay(
    outbox: Outbox, sidecar: FakeSidecar, clock: Clock
) -> None:
    sidecar.broker_up = False
    await outbox.commit_with([], _write_lesson, EVENT)

    assert await outbox.publish_now(EVENT) is False
    clock.past_the_relay_grace()
    assert await outbox.relay_once() == 0
    assert sidecar.pending() == 1

    sidecar.broker_up = True
    assert await outbox.relay_once() == 1
    assert sidecar.pending() == 0
    assert [event_id for _, _, event_id in sidecar.published] == ["lesson-1"]


async def test_staging_the_same_event_twice_keeps_one_copy(
    outbox: Outbox, sidecar: FakeSidecar
) -> None:
    await outbox.commit_with([], _write_lesson, EVENT)
    await outbox.commit_with([], _write_lesson, EVENT)

    assert sidecar.pending() == 1


async def test_a_rival_creating_the_shard_first_is_not_overwritten(
    outbox: Outbox, sidecar: FakeSidecar
) -> None:
    rival = OutboxEvent("lesson-2", "lesson-generated", {"lesson_id": "lesson-2"})
    # Between our read of the (absent) shard and our commit, another replica creates it.
    sidecar.rival_write = (outbox_shard_key(EVENT.event_id), {"events": [rival.as_json()]})

    await outbox.commit_with([], _write_lesson, EVENT)

    shard = sidecar.state[outbox_shard_key(EVENT.event_id)][0]
    assert [e["event_id"] for e in shard["events"]] == [rival.event_id, EVENT.event_id]


async def test_after_a_failed_publish_new_events_wait_for_the_backoff_not_the_broker(
    outbox: Outbox, sidecar: FakeSidecar, clock: Clock
) -> None:
    sidecar.broker_up = False
    second = OutboxEvent("lesson-2", "lesson-generated", {"lesson_id": "lesson-2"})
    await outbox.commit_with([], _write_lesson, EVENT)
    await outbox.commit_with([], _write_lesson, second)

    assert await outbox.publish_now(EVENT) is False
    sidecar.broker_up = True
    outbox.publish_soon(second)  # within the backoff: not even tried
    await outbox.drain()
    assert sidecar.published == []
    assert outbox.backoff_seconds() > 0

    clock.past_the_relay_grace()
    assert await outbox.relay_once() == 2  # the relay publishes both once it runs
    assert sidecar.pending() == 0


async def test_a_relay_pass_stops_at_the_first_failed_publish(
    outbox: Outbox, sidecar: FakeSidecar, clock: Clock
) -> None:
    for n in range(5):
        event = OutboxEvent(f"lesson-{n}", "lesson-generated", {"lesson_id": f"lesson-{n}"})
        await outbox.commit_with([], _write_lesson, event)
    sidecar.broker_up = False
    clock.past_the_relay_grace()
    attempts_before = sidecar.publish_attempts

    assert await outbox.relay_once() == 0

    assert sidecar.publish_attempts - attempts_before == 1
    assert sidecar.pending() == 5


async def test_the_relay_publishes_with_the_stored_partition_key(
    outbox: Outbox, sidecar: FakeSidecar, clock: Clock
) -> None:
    keyed = OutboxEvent("lesson-9", "lesson-generated", {"lesson_id": "lesson-9"}, "ada")
    await outbox.commit_with([], _write_lesson, keyed)
    clock.past_the_relay_grace()

    assert await outbox.relay_once() == 1

    assert sidecar.keys == ["ada"]


async def test_build_gets_the_keys_it_reads_with_their_etags(
    outbox: Outbox, sidecar: FakeSidecar
) -> None:
    sidecar.state["index"] = ({"lessons": ["a"]}, 7)
    seen: list[Mapping[str, StateEntry]] = []

    def build(found: Mapping[str, StateEntry]) -> list[Upsert]:
        seen.append(found)
        return [Upsert("index", {"lessons": ["b", "a"]}, etag=found["index"].etag)]

    await outbox.commit_with(["index", "absent"], build, EVENT)

    assert seen[0]["index"] == StateEntry({"lessons": ["a"]}, "7")
    assert "absent" not in seen[0]
    assert sidecar.state["index"][0] == {"lessons": ["b", "a"]}


async def test_events_published_together_are_unstaged_in_one_write_per_shard(
    outbox: Outbox, sidecar: FakeSidecar
) -> None:
    events = [
        OutboxEvent(f"lesson-{n}", "lesson-generated", {"lesson_id": f"lesson-{n}"})
        for n in range(20)
    ]
    for event in events:
        await outbox.commit_with([], _write_lesson, event)
    staged, read = sidecar.transactions, sidecar.reads

    assert all(await asyncio.gather(*(outbox.publish_now(e) for e in events)))
    await outbox.drain()

    assert sidecar.pending() == 0
    shards = {outbox_shard_key(e.event_id) for e in events}
    assert sidecar.transactions - staged == len(shards) < len(events)
    assert sidecar.reads - read == 1  # every shard of the batch in one bulk GET


async def test_a_relay_pass_reads_every_shard_in_one_call(
    outbox: Outbox, sidecar: FakeSidecar, clock: Clock
) -> None:
    events = [
        OutboxEvent(f"lesson-{n}", "lesson-generated", {"lesson_id": f"lesson-{n}"})
        for n in range(20)
    ]
    for event in events:
        await outbox.commit_with([], _write_lesson, event)  # staged, left to the relay
    clock.past_the_relay_grace()
    staged, read = sidecar.transactions, sidecar.reads

    assert await outbox.relay_once() == len(events)

    assert sidecar.pending() == 0
    assert sidecar.reads - read == 1
    shards = {outbox_shard_key(e.event_id) for e in events}
    assert sidecar.transactions - staged == len(shards)


async def test_a_relay_that_loses_the_race_to_unstage_reads_the_shard_again(
    outbox: Outbox, sidecar: FakeSidecar, clock: Clock
) -> None:
    await outbox.commit_with([], _write_lesson, EVENT)
    clock.past_the_relay_grace()
    staged_meanwhile = OutboxEvent("lesson-2", "lesson-generated", {"lesson_id": "lesson-2"})
    shard_key = outbox_shard_key(EVENT.event_id)
    shard = sidecar.state[shard_key][0]
    # Another replica stages an event in the shard after the relay read it.
    sidecar.rival_write = (
        shard_key,
        {"events": [*shard["events"], {**staged_meanwhile.as_json(), "staged_at": clock.now}]},
    )

    assert await outbox.relay_once() == 1

    assert [e["event_id"] for e in sidecar.state[shard_key][0]["events"]] == ["lesson-2"]
    assert [event_id for _, _, event_id in sidecar.published] == ["lesson-1"]


async def test_the_relay_does_not_republish_what_is_waiting_to_be_unstaged(
    outbox: Outbox, sidecar: FakeSidecar, clock: Clock
) -> None:
    await outbox.commit_with([], _write_lesson, EVENT)
    assert await outbox.publish_now(EVENT) is True
    clock.past_the_relay_grace()

    assert await outbox.relay_once() == 0  # before the batch ran: still staged, skipped
    await outbox.drain()

    assert [event_id for _, _, event_id in sidecar.published] == ["lesson-1"]
    assert sidecar.pending() == 0


def _events_in_one_shard(count: int) -> list[OutboxEvent]:
    ids = (f"lesson-{n}" for n in range(10_000))
    shard = outbox_shard_key("lesson-0")
    same = [i for i in ids if outbox_shard_key(i) == shard][:count]
    return [OutboxEvent(i, "lesson-generated", {"lesson_id": i}) for i in same]


async def test_the_next_staging_in_a_shard_unstages_what_was_published_for_free(
    outbox: Outbox, sidecar: FakeSidecar
) -> None:
    first, second = _events_in_one_shard(2)
    await outbox.commit_with([], _write_lesson, first)
    assert await outbox.publish_now(first) is True

    await outbox.commit_with([], _write_lesson, second)
    shard = sidecar.state[outbox_shard_key(first.event_id)][0]
    assert [e["event_id"] for e in shard["events"]] == [second.event_id]

    await outbox.drain()
    assert sidecar.transactions == 2  # the two stagings; no write of its own to unstage


async def test_the_relay_leaves_a_young_event_to_whoever_staged_it(
    outbox: Outbox, sidecar: FakeSidecar, clock: Clock
) -> None:
    """Another replica's relay must not race the stager's own publish (a duplicate each time)."""
    await outbox.commit_with([], _write_lesson, EVENT)  # staged; its stager is publishing it

    clock.now += RELAY_GRACE_SECONDS - 0.5
    assert await outbox.relay_once() == 0
    assert sidecar.published == []

    clock.now += 0.5  # its stager never unstaged it (crashed): now the relay's
    assert await outbox.relay_once() == 1
    assert sidecar.pending() == 0
