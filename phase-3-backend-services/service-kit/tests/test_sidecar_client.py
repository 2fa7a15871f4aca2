"""The sidecar client maps daprd's HTTP answers to precise errors (daprd mocked with respx)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import pytest
import respx
from learnflow_service_kit.sidecar_client import (
    EtagMismatch,
    PlacementUnavailable,
    PublishFailed,
    SharedProbe,
    SidecarClient,
    SidecarUnavailable,
    StateStoreUnavailable,
    Upsert,
)
from learnflow_service_kit.sidecar_http import HttpxSidecar

SIDECAR = "http://127.0.0.1:3500"


@pytest.fixture
async def dapr() -> AsyncIterator[SidecarClient]:
    async with httpx.AsyncClient(base_url=SIDECAR) as http:
        yield SidecarClient(lambda: HttpxSidecar(http), store="statestore", pubsub="pubsub")


@respx.mock
async def test_a_missing_key_is_none_and_a_found_one_carries_its_etag(dapr: SidecarClient) -> None:
    respx.get(f"{SIDECAR}/v1.0/state/statestore/missing").respond(204)
    respx.get(f"{SIDECAR}/v1.0/state/statestore/found").respond(
        200, json={"a": 1}, headers={"etag": "7"}
    )

    assert await dapr.get_state("missing") is None
    found = await dapr.get_state("found")
    assert found is not None
    assert (found.value, found.etag) == ({"a": 1}, "7")


@respx.mock
async def test_transaction_sends_etags_and_ttls_and_maps_a_lost_race(dapr: SidecarClient) -> None:
    route = respx.post(f"{SIDECAR}/v1.0/state/statestore/transaction").mock(
        side_effect=[httpx.Response(204), httpx.Response(409, text="possible etag mismatch")]
    )
    operations = [Upsert("k", {"v": 1}, etag="3"), Upsert("c", {"v": 2}, ttl_seconds=60)]

    await dapr.transact(operations)
    with pytest.raises(EtagMismatch):
        await dapr.transact(operations)

    sent = route.calls[0].request.read()
    assert b'"etag":"3"' in sent
    assert b'"concurrency":"first-write"' in sent
    assert b'"ttlInSeconds":"60"' in sent


@respx.mock
async def test_a_failing_store_and_an_absent_sidecar_are_told_apart(dapr: SidecarClient) -> None:
    respx.get(f"{SIDECAR}/v1.0/state/statestore/k").respond(
        500, json={"errorCode": "ERR_STATE_GET"}
    )
    respx.get(f"{SIDECAR}/v1.0/state/statestore/gone").mock(
        side_effect=httpx.ConnectError("refused")
    )

    respx.get(f"{SIDECAR}/v1.0/state/statestore/readiness-probe").respond(500)

    with pytest.raises(StateStoreUnavailable):
        await dapr.get_state("k")
    with pytest.raises(SidecarUnavailable):
        await dapr.get_state("gone")
    assert await dapr.state_store_reachable() is False


@respx.mock
async def test_publish_sets_the_cloudevent_id_and_accepts_204(dapr: SidecarClient) -> None:
    route = respx.post(f"{SIDECAR}/v1.0/publish/pubsub/topic").mock(
        side_effect=[httpx.Response(204), httpx.Response(500, text="broker down")]
    )

    await dapr.publish("topic", {"x": 1}, event_id="lesson-1")
    with pytest.raises(PublishFailed):
        await dapr.publish("topic", {"x": 1}, event_id="lesson-1")

    assert route.calls[0].request.url.params["metadata.cloudevent.id"] == "lesson-1"


async def test_a_pool_that_hands_out_no_connection_is_replaced_and_liveness_tells() -> None:
    pools: list[int] = []

    def stuck(request: httpx.Request) -> httpx.Response:
        raise httpx.PoolTimeout("no connection available")

    def connect() -> HttpxSidecar:
        pools.append(len(pools))
        return HttpxSidecar.scripted(stuck)

    dapr = SidecarClient(connect, store="statestore", pubsub="pubsub")
    assert len(pools) == 2  # the main pool and the probes' own
    for _ in range(3):
        with pytest.raises(SidecarUnavailable, match="PoolTimeout"):
            await dapr.get_state("k")

    assert len(pools) == 3  # replaced after three in a row
    assert dapr.wedged() is False  # not yet: the new pool gets its chance first
    await dapr.aclose()


async def test_liveness_fails_after_30_s_without_a_connection_and_recovers_with_one() -> None:
    now = [1000.0]
    stuck = [True]

    def sidecar(request: httpx.Request) -> httpx.Response:
        if stuck[0]:
            raise httpx.PoolTimeout("no connection available")
        return httpx.Response(204)

    def connect() -> HttpxSidecar:
        return HttpxSidecar.scripted(sidecar)

    dapr = SidecarClient(connect, store="statestore", pubsub="pubsub", clock=lambda: now[0])
    for seconds in (0.0, 10.0, 20.5, 30.5):  # rebuilt pools fail the same
        now[0] = 1000.0 + seconds
        with pytest.raises(SidecarUnavailable):
            await dapr.get_state("k")
        assert dapr.wedged() is (seconds > 30)

    stuck[0] = False
    assert await dapr.get_state("k") is None  # a connection again: alive
    assert dapr.wedged() is False
    await dapr.aclose()


@respx.mock
async def test_an_actor_call_fails_fast_when_the_sidecar_loses_placement(
    dapr: SidecarClient,
) -> None:
    async def held(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(30)  # daprd holds actor calls while placement is gone
        return httpx.Response(200, json={})

    respx.post(f"{SIDECAR}/v1.0/actors/A/x/method/M").mock(side_effect=held)
    respx.get(f"{SIDECAR}/v1.0/metadata").respond(
        200, json={"actorRuntime": {"placement": "placement: disconnected"}}
    )
    started = time.monotonic()

    with pytest.raises(PlacementUnavailable):
        await dapr.invoke_actor("A", "x", "M", {}, timeout=20)

    assert time.monotonic() - started < 3


@respx.mock
async def test_the_failing_part_is_named_from_probes() -> None:
    dapr = SidecarClient(
        lambda: HttpxSidecar(httpx.AsyncClient(base_url=SIDECAR)),
        "statestore",
        "pubsub",
        probe_shared_seconds=0,
    )
    health = respx.get(f"{SIDECAR}/v1.0/healthz")
    metadata = respx.get(f"{SIDECAR}/v1.0/metadata")
    store = respx.get(f"{SIDECAR}/v1.0/state/statestore/readiness-probe")
    connected = {"actorRuntime": {"placement": "placement: connected"}}

    health.respond(204)
    metadata.respond(200, json=connected)
    store.respond(500)
    assert await dapr.failing_part() == "state_store"

    metadata.respond(200, json={"actorRuntime": {"placement": "placement: disconnected"}})
    assert await dapr.failing_part() == "actor_placement"

    health.mock(side_effect=httpx.ConnectError("refused"))
    assert await dapr.failing_part() == "dapr_sidecar"

    health.mock(side_effect=None)
    health.respond(204)
    metadata.respond(200, json=connected)
    store.respond(204)
    assert await dapr.failing_part() == "unknown"


async def test_concurrent_callers_share_one_probe_until_it_is_stale() -> None:
    calls = 0

    async def probe() -> int:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        return calls

    shared = SharedProbe(probe, max_age=0.05)
    assert await asyncio.gather(*(shared.get() for _ in range(10))) == [1] * 10
    assert await shared.get() == 1  # fresh enough
    await asyncio.sleep(0.06)
    assert await shared.get() == 2
