"""What the outbox's slots and the generation claims rely on from the real daprd and PostgreSQL,
checked through the same sidecar client the services use and read back with SQL: a first-write
insert of a taken key, and an ETag-checked delete of a key rewritten since, each fail their
whole transaction as a lost race (``EtagMismatch``, which makes the outbox pick another slot or
read again), writing nothing; a first-write insert of a key whose TTL has passed takes it (a
lapsed claim); a delete without an ETag of a key that is gone is no error (the commit that
releases a claim). The error texts are daprd's, so a Dapr upgrade that changes them fails
here."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest
from learnflow_service_kit.sidecar_client import Delete, EtagMismatch, SidecarClient, Upsert
from learnflow_stack.stack import Stack

from .conftest import state_row


@pytest.fixture
async def sidecar(stack: Stack) -> AsyncIterator[SidecarClient]:
    client = stack.app("course-agent").sidecar.client()
    yield client
    await client.aclose()


def _keys() -> tuple[str, str]:
    probe = uuid.uuid4().hex
    return f"contract-slot-{probe}", f"contract-other-{probe}"


async def test_a_first_write_insert_of_a_taken_key_is_a_lost_race_that_writes_nothing(
    sidecar: SidecarClient, pg: psycopg.Connection[Any]
) -> None:
    slot, other = _keys()
    await sidecar.transact([Upsert(slot, {"event_id": "first"}, new_only=True)])

    with pytest.raises(EtagMismatch):
        await sidecar.transact(
            [Upsert(other, {"n": 1}), Upsert(slot, {"event_id": "second"}, new_only=True)]
        )

    assert state_row(pg, f"course-agent||{slot}") == {"event_id": "first"}
    assert state_row(pg, f"course-agent||{other}") is None


async def test_a_delete_under_an_old_etag_is_a_lost_race_that_removes_nothing(
    sidecar: SidecarClient, pg: psycopg.Connection[Any]
) -> None:
    slot, other = _keys()
    await sidecar.transact([Upsert(slot, {"event_id": "published"}), Upsert(other, {"n": 1})])
    read = await sidecar.get_bulk_state([slot, other])
    # Meanwhile the slot was emptied and refilled by another replica.
    await sidecar.transact([Upsert(slot, {"event_id": "newer"})])

    with pytest.raises(EtagMismatch):
        await sidecar.transact(
            [Delete(other, read[other].etag or ""), Delete(slot, read[slot].etag or "")]
        )

    assert state_row(pg, f"course-agent||{slot}") == {"event_id": "newer"}
    assert state_row(pg, f"course-agent||{other}") == {"n": 1}
    current = await sidecar.get_bulk_state([slot, other])
    await sidecar.transact([Delete(key, entry.etag or "") for key, entry in current.items()])
    assert state_row(pg, f"course-agent||{slot}") is None  # under the current ETags: removed


async def test_a_first_write_insert_of_a_key_past_its_ttl_takes_it(
    sidecar: SidecarClient, pg: psycopg.Connection[Any]
) -> None:
    claim, _ = _keys()
    await sidecar.transact([Upsert(claim, {"holder": "gone"}, new_only=True, ttl_seconds=1)])
    with pytest.raises(EtagMismatch):  # while it lives, it is taken
        await sidecar.transact([Upsert(claim, {"holder": "early"}, new_only=True)])

    await asyncio.sleep(1.5)
    assert await sidecar.get_state(claim) is None  # past its TTL: no longer read,
    assert state_row(pg, f"course-agent||{claim}") == {"holder": "gone"}  # though still there
    await sidecar.transact([Upsert(claim, {"holder": "next"}, new_only=True, ttl_seconds=60)])

    assert state_row(pg, f"course-agent||{claim}") == {"holder": "next"}


async def test_a_delete_without_an_etag_removes_what_is_there_and_ignores_what_is_not(
    sidecar: SidecarClient, pg: psycopg.Connection[Any]
) -> None:
    claim, other = _keys()
    await sidecar.transact([Upsert(claim, {"holder": "h"})])

    await sidecar.transact([Upsert(other, {"n": 1}), Delete(claim), Delete(f"{claim}-never")])

    assert state_row(pg, f"course-agent||{claim}") is None
    assert state_row(pg, f"course-agent||{other}") == {"n": 1}
