"""The outbox over a scripted daprd that behaves like Dapr's (ETags, atomic transactions)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence

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
    """Events waiting in the outbox's slots and shards, as stored."""
    shards = [value for key, (value, _) in daprd.state.items() if key.startswith("outbox-shard-")]
    return sum(len(shard["events"]) for shard in shards) + len(_slots(daprd))


def _slots(daprd: ScriptedDaprd) -> dict[str, str]:
    """Taken slots, and the id of the event in each."""
    return {
        key: value["event_id"]
        for key, (value, _) in daprd.state.items()
        if key.startswith("outbox-slot-")
    }


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


@pytest.fixture
def shard_outbox(sidecar: ScriptedDaprd, clock: Clock) -> Outbox:
    """An outbox without slots: every event goes to a shard, as when the slots are full."""
    return Outbox(sidecar.client(), clock=clock, slots=0)


EVENT = OutboxEvent("lesson-1", "lesson-generated", {"lesson_id": "lesson-1"})


def _write_lesson(found: Mapping[str, StateEntry]) -> list[Upsert]:
    return [Upsert("lesson-lesson-1", {"title": "t"})]


async def test_data_and_event_are_committed_together_then_published(
    outbox: Outbox, sidecar: ScriptedDaprd
) -> None:
    staged = await outbox.commit_with([], _write_lesson, EVENT)
    assert sidecar.state["lesson-lesson-1"][0] == {"title": "t"}
    assert _pending(sidecar) == 1

    assert await outbox.publish_now(staged) is True

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
    assert list(_slots(sidecar).values()) == ["lesson-1"]


async def test_with_the_broker_down_the_event_waits_for_the_relay(
    outbox: Outbox, sidecar: ScriptedDaprd, clock: Clock
) -> None:
    sidecar.broker_up = False
    staged = await outbox.commit_with([], _write_lesson, EVENT)

    assert await outbox.publish_now(staged) is False
    clock.past_the_relay_grace()
    assert await outbox.relay_once() == 0
    assert _pending(sidecar) == 1

    sidecar.broker_up = True
    assert await outbox.relay_once() == 1
    assert _pending(sidecar) == 0
    assert [event_id for _, _, event_id in sidecar.published] == ["lesson-1"]


async def test_staging_the_same_event_twice_in_a_shard_keeps_one_copy(
    shard_outbox: Outbox, sidecar: ScriptedDaprd
) -> None:
    await shard_outbox.commit_with([], _write_lesson, EVENT)
    await shard_outbox.commit_with([], _write_lesson, EVENT)

    assert _pending(sidecar) == 1


async def test_a_rival_creating_the_shard_first_is_not_overwritten(
    shard_outbox: Outbox, sidecar: ScriptedDaprd
) -> None:
    rival = OutboxEvent("lesson-2", "lesson-generated", {"lesson_id": "lesson-2"})
    # Between our read of the (absent) shard and our commit, another replica creates it.
    sidecar.rival_write = (outbox_shard_key(EVENT.event_id), {"events": [rival.as_json()]})

    await shard_outbox.commit_with([], _write_lesson, EVENT)

    shard = sidecar.state[outbox_shard_key(EVENT.event_id)][0]
    assert [e["event_id"] for e in shard["events"]] == [rival.event_id, EVENT.event_id]


async def test_after_a_failed_publish_new_events_wait_for_the_backoff_not_the_broker(
    outbox: Outbox, sidecar: ScriptedDaprd, clock: Clock
) -> None:
    sidecar.broker_up = False
    second = OutboxEvent("lesson-2", "lesson-generated", {"lesson_id": "lesson-2"})
    staged = await outbox.commit_with([], _write_lesson, EVENT)
    second_staged = await outbox.commit_with([], _write_lesson, second)

    assert await outbox.publish_now(staged) is False
    sidecar.broker_up = True
    outbox.publish_soon(second_staged)  # within the backoff: not even tried
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


def _events(count: int) -> list[OutboxEvent]:
    return [
        OutboxEvent(f"lesson-{n}", "lesson-generated", {"lesson_id": f"lesson-{n}"})
        for n in range(count)
    ]


async def test_events_published_together_leave_their_slots_in_one_read_and_one_write(
    outbox: Outbox, sidecar: ScriptedDaprd
) -> None:
    events = _events(20)
    staged = [await outbox.commit_with([], _write_lesson, e) for e in events]
    assert len(_slots(sidecar)) == 20
    writes, reads = sidecar.transactions, sidecar.reads

    assert all(await asyncio.gather(*(outbox.publish_now(s) for s in staged)))
    await outbox.drain()

    assert _pending(sidecar) == 0
    assert sidecar.transactions - writes == 1
    assert sidecar.reads - reads == 1


async def test_events_published_together_leave_their_shards_in_one_write_per_shard(
    shard_outbox: Outbox, sidecar: ScriptedDaprd
) -> None:
    events = _events(20)
    staged = [await shard_outbox.commit_with([], _write_lesson, e) for e in events]
    writes, reads = sidecar.transactions, sidecar.reads

    assert all(await asyncio.gather(*(shard_outbox.publish_now(s) for s in staged)))
    await shard_outbox.drain()

    assert _pending(sidecar) == 0
    shards = {outbox_shard_key(e.event_id) for e in events}
    assert sidecar.transactions - writes == len(shards) < len(events)
    assert sidecar.reads - reads == 1  # every shard of the batch in one bulk GET


async def test_a_relay_pass_reads_every_slot_and_shard_in_one_call(
    outbox: Outbox, sidecar: ScriptedDaprd, clock: Clock
) -> None:
    events = _events(20)
    for event in events[:10]:
        await outbox.commit_with([], _write_lesson, event)  # staged, left to the relay
    sharded = Outbox(sidecar.client(), clock=clock, slots=0)  # another replica, slots full
    for event in events[10:]:
        await sharded.commit_with([], _write_lesson, event)
    clock.past_the_relay_grace()
    writes, reads = sidecar.transactions, sidecar.reads

    assert await outbox.relay_once() == len(events)

    assert _pending(sidecar) == 0
    assert sidecar.reads - reads == 1
    shards = {outbox_shard_key(e.event_id) for e in events[10:]}
    assert sidecar.transactions - writes == 1 + len(shards)  # the slots in one write


def _picking(*slots: str) -> Callable[[Sequence[str]], str]:
    """A slot picker that tries ``slots`` in this order."""
    picks = iter(slots)
    return lambda _: next(picks)


async def test_the_relay_publishes_the_oldest_first_wherever_it_waits(
    sidecar: ScriptedDaprd, clock: Clock
) -> None:
    outbox = Outbox(sidecar.client(), clock=clock, pick=_picking("outbox-slot-7", "outbox-slot-2"))
    first, second, third = _events(3)
    await outbox.commit_with([], _write_lesson, first)
    clock.now += 1
    await outbox.commit_with([], _write_lesson, second)
    clock.now += 1
    await Outbox(sidecar.client(), clock=clock, slots=0).commit_with([], _write_lesson, third)
    clock.past_the_relay_grace()

    assert await outbox.relay_once() == 3

    assert [event_id for _, _, event_id in sidecar.published] == [
        "lesson-0",
        "lesson-1",
        "lesson-2",
    ]


async def test_a_taken_slot_sends_the_event_to_another_slot_and_the_rival_stays(
    sidecar: ScriptedDaprd,
) -> None:
    picks = _picking("outbox-slot-3", "outbox-slot-3", "outbox-slot-5")
    outbox = Outbox(sidecar.client(), pick=picks)
    rival = {**OutboxEvent("rival", "lesson-generated", {}).as_json(), "staged_at": 0.0}
    sidecar.put("outbox-slot-3", rival)  # staged by another replica, unknown to us

    staged = await outbox.commit_with([], _write_lesson, EVENT)

    assert staged.key == "outbox-slot-5"
    assert _slots(sidecar) == {"outbox-slot-3": "rival", "outbox-slot-5": "lesson-1"}
    assert sidecar.transactions == 2  # one lost to the rival; the known-taken slot not tried


async def test_with_every_slot_taken_the_event_waits_in_a_shard(
    sidecar: ScriptedDaprd, clock: Clock
) -> None:
    outbox = Outbox(sidecar.client(), clock=clock, slots=1)
    first, second = _events(2)
    await outbox.commit_with([], _write_lesson, first)

    staged = await outbox.commit_with([], _write_lesson, second)

    assert staged.key == outbox_shard_key(second.event_id)
    assert _slots(sidecar) == {"outbox-slot-0": first.event_id}
    assert _pending(sidecar) == 2


async def test_the_relay_tells_the_stager_which_slots_other_replicas_took(
    sidecar: ScriptedDaprd, clock: Clock
) -> None:
    picks = _picking("outbox-slot-0", "outbox-slot-1")
    outbox = Outbox(sidecar.client(), clock=clock, slots=2, pick=picks)
    rival = {**OutboxEvent("rival", "lesson-generated", {}).as_json(), "staged_at": clock.now}
    sidecar.put("outbox-slot-0", rival)
    assert await outbox.relay_once() == 0  # young: left to its stager, but now known taken

    staged = await outbox.commit_with([], _write_lesson, EVENT)

    assert staged.key == "outbox-slot-1"
    assert sidecar.transactions == 1  # never tried the rival's slot


async def test_a_slot_refilled_since_the_relay_read_it_is_not_emptied(
    outbox: Outbox, sidecar: ScriptedDaprd, clock: Clock
) -> None:
    staged = await outbox.commit_with([], _write_lesson, EVENT)
    clock.past_the_relay_grace()
    newer = {**OutboxEvent("lesson-2", "lesson-generated", {}).as_json(), "staged_at": clock.now}
    # After our relay read the slot, another replica published and unstaged its event, and a
    # new event took the slot.
    sidecar.rival_write = (staged.key, newer)

    assert await outbox.relay_once() == 1

    assert _slots(sidecar) == {staged.key: "lesson-2"}
    assert [event_id for _, _, event_id in sidecar.published] == ["lesson-1"]


async def test_a_relay_that_loses_the_race_to_unstage_reads_the_shard_again(
    shard_outbox: Outbox, sidecar: ScriptedDaprd, clock: Clock
) -> None:
    await shard_outbox.commit_with([], _write_lesson, EVENT)
    clock.past_the_relay_grace()
    staged_meanwhile = OutboxEvent("lesson-2", "lesson-generated", {"lesson_id": "lesson-2"})
    shard_key = outbox_shard_key(EVENT.event_id)
    shard = sidecar.state[shard_key][0]
    # Another replica stages an event in the shard after the relay read it.
    sidecar.rival_write = (
        shard_key,
        {"events": [*shard["events"], {**staged_meanwhile.as_json(), "staged_at": clock.now}]},
    )

    assert await shard_outbox.relay_once() == 1

    assert [e["event_id"] for e in sidecar.state[shard_key][0]["events"]] == ["lesson-2"]
    assert [event_id for _, _, event_id in sidecar.published] == ["lesson-1"]


async def test_the_relay_does_not_republish_what_is_waiting_to_be_unstaged(
    outbox: Outbox, sidecar: ScriptedDaprd, clock: Clock
) -> None:
    staged = await outbox.commit_with([], _write_lesson, EVENT)
    assert await outbox.publish_now(staged) is True
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
    shard_outbox: Outbox, sidecar: ScriptedDaprd
) -> None:
    first, second = _events_in_one_shard(2)
    staged = await shard_outbox.commit_with([], _write_lesson, first)
    assert await shard_outbox.publish_now(staged) is True

    await shard_outbox.commit_with([], _write_lesson, second)
    shard = sidecar.state[outbox_shard_key(first.event_id)][0]
    assert [e["event_id"] for e in shard["events"]] == [second.event_id]

    await shard_outbox.drain()
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
