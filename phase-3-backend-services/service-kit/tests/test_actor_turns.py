"""One turn per actor id in the app, even when the caller gives up; late work is refused."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from learnflow_service_kit.actor_turns import ActorTurns, deadline_after, expired


async def test_turns_of_one_actor_never_overlap_and_other_actors_run_alongside() -> None:
    turns = ActorTurns()
    running: dict[str, int] = {"a": 0, "b": 0}
    most: dict[str, int] = {"a": 0, "b": 0, "both": 0}

    async def turn(actor_id: str) -> None:
        running[actor_id] += 1
        most[actor_id] = max(most[actor_id], running[actor_id])
        most["both"] = max(most["both"], running["a"] + running["b"])
        await asyncio.sleep(0.01)
        running[actor_id] -= 1

    def turn_of(actor_id: str) -> Callable[[], Awaitable[None]]:
        return lambda: turn(actor_id)

    await asyncio.gather(*(turns.run(actor_id, turn_of(actor_id)) for actor_id in "ab" * 5))

    # one turn at a time per actor, and a's and b's turns overlapped
    assert most == {"a": 1, "b": 1, "both": 2}


async def test_a_cancelled_caller_does_not_stop_its_turn_halfway() -> None:
    turns = ActorTurns()
    steps: list[str] = []

    async def turn() -> None:
        steps.append("saved")
        await asyncio.sleep(0.05)
        steps.append("published")

    caller = asyncio.ensure_future(turns.run("learner", turn))
    await asyncio.sleep(0.01)
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    # The next turn starts only after the cancelled one finished its work.
    await turns.run("learner", lambda: asyncio.sleep(0))
    assert steps == ["saved", "published"]


def test_a_deadline_in_the_past_has_expired_and_none_never_does() -> None:
    assert expired(deadline_after(-1.0))
    assert not expired(deadline_after(5.0))
    assert not expired(None)
