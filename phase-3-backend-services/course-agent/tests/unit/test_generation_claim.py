"""The generation claim as a lease, over daprd's state API (scripted here): renewed under its
ETag while its holder works, never renewed or released once another request holds it."""

import asyncio

import pytest
from course_agent.generation_claim import LEASE_SECONDS, Claim, GenerationClaims
from learnflow_service_kit.scripted_daprd import ScriptedDaprd
from learnflow_service_kit.sidecar_client import EtagMismatch, Upsert


def test_a_claim_is_taken_first_write_with_a_lease_and_released_by_the_commit_unread() -> None:
    claim = Claim("k1")
    taking = claim.taking().as_operation()["request"]

    assert taking["key"] == "lesson-claim-k1"
    assert taking["options"] == {"concurrency": "first-write"}
    assert "etag" not in taking
    assert taking["metadata"] == {"ttlInSeconds": str(LEASE_SECONDS)}
    assert claim.releasing().as_operation() == {
        "operation": "delete",
        "request": {"key": "lesson-claim-k1"},
    }
    assert Claim("k1").holder != claim.holder


async def test_a_held_claim_is_renewed_under_its_etag_while_its_holder_works() -> None:
    daprd = ScriptedDaprd()
    claim = Claim("k1")
    daprd.put(claim.key, {"holder": claim.holder})
    first_version = daprd.state[claim.key][1]
    claims = GenerationClaims(daprd.client(), renew_every_seconds=0.02)

    async with claims.renewed(claim):
        await asyncio.sleep(0.15)
    renewals = daprd.transactions
    await asyncio.sleep(0.1)

    assert renewals >= 3
    assert daprd.transactions == renewals  # renewing stops with the block
    assert daprd.state[claim.key][0] == {"holder": claim.holder}
    assert daprd.state[claim.key][1] > first_version


async def test_a_claim_another_request_took_over_is_neither_renewed_nor_released() -> None:
    daprd = ScriptedDaprd()
    claim = Claim("k1")
    daprd.put(claim.key, {"holder": "the request that took it over"})
    claims = GenerationClaims(daprd.client(), renew_every_seconds=0.02)

    async with claims.renewed(claim):
        await asyncio.sleep(0.1)
    await claims.release(claim)

    assert daprd.transactions == 0
    assert daprd.state[claim.key][0] == {"holder": "the request that took it over"}

    daprd.put(claim.key, {"holder": claim.holder})
    await claims.release(claim)
    assert claim.key not in daprd.state


async def test_a_claim_is_taken_with_the_budget_spent_or_not_at_all() -> None:
    daprd = ScriptedDaprd()
    claims = GenerationClaims(daprd.client())
    first, second = Claim("k1"), Claim("k1")

    await claims.take(first, Upsert("budget", {"spent": 1}, new_only=True))
    with pytest.raises(EtagMismatch):  # the claim is held: the budget is not spent again
        await claims.take(
            second, Upsert("budget", {"spent": 2}, etag=str(daprd.state["budget"][1]))
        )

    assert daprd.state[first.key][0] == {"holder": first.holder}
    assert daprd.state["budget"][0] == {"spent": 1}
