"""The outbox over a scripted daprd that behaves like Dapr's (ETags, atomic transactions)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import pytest
from learnflow_service_kit.outbox import (
    RELAY_GRACE_SECONDS,
    Outbox,
    OutboxEvent,
    outbox_shard_key,
)
from learnflow_service_kit.scripted_daprd import ScriptedDaprd
from learnflow_service_kit.sidecar_client import StateEntry, Upsert


def _pending(daprd: ScriptedDaprd) -> int:
    """Events waiting in the outbox shards, as stored."""
    shards = [value for key, (value, _) in daprd.state.items() if key.startswith("outbox-shard-")]
    return sum(len(shard["events"]) for shard in shards)


@pytest.fixture
def sidecar() -> ScriptedDaprd:
    return ScriptedDaprd()


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
def outbox(sidecar: ScriptedDaprd, clock: Clock) -> Outbox:
    return Outbox(sidecar.client(), clock=clock)


EVENT = OutboxEvent("lesson-1", "lesson-generated", {"lesson_id": "lesson-1"})


def _write_lesson(found: Mapping[str, StateEntry]) -> list[Upsert]:
    return [Upsert("lesson-lesson-1", {"title": "t"})]


async def test_data_and_event_are_committed_together_then_published(
    outbox: Outbox, sidecar: ScriptedDaprd
) -> None:
    await outbox.commit_with([], _write_lesson, EVENT)
    assert sidecar.state["lesson-lesson-1"][0] == {"title": "t"}
    assert _pending(sidecar) == 1

    assert await outbox.publish_now(EVENT) is True

    assert sidecar.published == [("lesson-generated", {"lesson_id": "lesson-1"}, "lesson-1")]
    await outbox.drain()
    assert _pending(sidecar) == 0


async def test_a_lost_race_is_retried_with_fresh_reads(
    outbox: Outbox, sidecar: ScriptedDaprd
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
    outbox: Outbox, sidecar: ScriptedDaprd, clock: Clock
) -> None:
    sidecar.broker_up = False
    await outbox.commit_with([], _write_lesson, EVENT)

    assert await outbox.publish_now(EVENT) is False
    clock.past_the_relay_grace()
    assert await outbox.relay_once() == 0
    assert _pending(sidecar) == 1

    sidecar.broker_up = True
    assert await outbox.relay_once() == 1
    assert _pending(sidecar) == 0
    assert [event_id for _, _, event_id in sidecar.published] == ["lesson-1"]


async def test_staging_the_same_event_twice_keeps_one_copy(
    outbox: Outbox, sidecar: ScriptedDaprd
) -> None:
    await outbox.commit_with([], _write_lesson, EVENT)
    await outbox.commit_with([], _write_lesson, EVENT)

    assert _pending(sidecar) == 1


async def test_a_rival_creating_the_shard_first_is_not_overwritten(
    outbox: Outbox, sidecar: ScriptedDaprd
) -> None:
    rival = OutboxEvent("lesson-2", "lesson-generated", {"lesson_id": "lesson-2"})
    # Between our read of the (absent) shard and our commit, another replica creates it.
    sidecar.rival_write = (outbox_shard_key(EVENT.event_id), {"events": [rival.as_json()]})

    await outbox.commit_with([], _write_lesson, EVENT)

    shard = sidecar.state[outbox_shard_key(EVENT.event_id)][0]
    assert [e["event_id"] for e in shard["events"]] == [rival.event_id, EVENT.event_id]


async def test_after_a_failed_publish_new_events_wait_for_the_backoff_not_the_broker(
    outbox: Outbox, sidecar: ScriptedDaprd, clock: Clock
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
    assert _pending(sidecar) == 0


async def test_a_relay_pass_stops_at_the_first_failed_publish(
    outbox: Outbox, sidecar: ScriptedDaprd, clock: Clock
) -> None:
    for n in range(5):
        event = OutboxEvent(f"lesson-{n}", "lesson-generated", {"lesson_id": f"lesson-{n}"})
        await outbox.commit_with([], _write_lesson, event)
    sidecar.broker_up = False
    clock.past_the_relay_grace()
    attempts_before = sidecar.publish_attempts

    assert await outbox.relay_once() == 0

    assert sidecar.publish_attempts - attempts_before == 1
    assert _pending(sidecar) == 5


async def test_the_relay_publishes_with_the_stored_partition_key(
    outbox: Outbox, sidecar: ScriptedDaprd, clock: Clock
) -> None:
    keyed = OutboxEvent("lesson-9", "lesson-generated", {"lesson_id": "lesson-9"}, "ada")
    await outbox.commit_with([], _write_lesson, keyed)
    clock.past_the_relay_grace()

    assert await outbox.relay_once() == 1

    assert sidecar.keys == ["ada"]


async def test_build_gets_the_keys_it_reads_with_their_etags(
    outbox: Outbox, sidecar: ScriptedDaprd
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
    outbox: Outbox, sidecar: ScriptedDaprd
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

    assert _pending(sidecar) == 0
    shards = {outbox_shard_key(e.event_id) for e in events}
    assert sidecar.transactions - staged == len(shards) < len(events)
    assert sidecar.reads - read == 1  # every shard of the batch in one bulk GET


async def test_a_relay_pass_reads_every_shard_in_one_call(
    outbox: Outbox, sidecar: ScriptedDaprd, clock: Clock
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

    assert _pending(sidecar) == 0
    assert sidecar.reads - read == 1
    shards = {outbox_shard_key(e.event_id) for e in events}
    assert sidecar.transactions - staged == len(shards)


async def test_a_relay_that_loses_the_race_to_unstage_reads_the_shard_again(
    outbox: Outbox, sidecar: ScriptedDaprd, clock: Clock
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
    outbox: Outbox, sidecar: ScriptedDaprd, clock: Clock
) -> None:
    await outbox.commit_with([], _write_lesson, EVENT)
    assert await outbox.publish_now(EVENT) is True
    clock.past_the_relay_grace()

    assert await outbox.relay_once() == 0  # before the batch ran: still staged, skipped
    await outbox.drain()

    assert [event_id for _, _, event_id in sidecar.published] == ["lesson-1"]
    assert _pending(sidecar) == 0


def _events_in_one_shard(count: int) -> list[OutboxEvent]:
    ids = (f"lesson-{n}" for n in range(10_000))
    shard = outbox_shard_key("lesson-0")
    same = [i for i in ids if outbox_shard_key(i) == shard][:count]
    return [OutboxEvent(i, "lesson-generated", {"lesson_id": i}) for i in same]


async def test_the_next_staging_in_a_shard_unstages_what_was_published_for_free(
    outbox: Outbox, sidecar: ScriptedDaprd
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
    outbox: Outbox, sidecar: ScriptedDaprd, clock: Clock
) -> None:
    """Another replica's relay must not race the stager's own publish (a duplicate each time)."""
    await outbox.commit_with([], _write_lesson, EVENT)  # staged; its stager is publishing it

    clock.now += RELAY_GRACE_SECONDS - 0.5
    assert await outbox.relay_once() == 0
    assert sidecar.published == []

    clock.now += 0.5  # its stager never unstaged it (crashed): now the relay's
    assert await outbox.relay_once() == 1
    assert _pending(sidecar) == 0
