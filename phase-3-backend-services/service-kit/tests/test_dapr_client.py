"""The sidecar client maps daprd's HTTP answers to precise errors (daprd mocked with respx)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import respx
from learnflow_service_kit.dapr_client import (
    DaprClient,
    EtagMismatch,
    PublishFailed,
    SidecarUnavailable,
    StateStoreUnavailable,
    Upsert,
)

SIDECAR = "http://127.0.0.1:3500"


@pytest.fixture
async def dapr() -> AsyncIterator[DaprClient]:
    async with httpx.AsyncClient(base_url=SIDECAR) as http:
        yield DaprClient(http, store="statestore", pubsub="pubsub")


@respx.mock
async def test_a_missing_key_is_none_and_a_found_one_carries_its_etag(dapr: DaprClient) -> None:
    respx.get(f"{SIDECAR}/v1.0/state/statestore/missing").respond(204)
    respx.get(f"{SIDECAR}/v1.0/state/statestore/found").respond(
        200, json={"a": 1}, headers={"etag": "7"}
    )

    assert await dapr.get_state("missing") is None
    found = await dapr.get_state("found")
    assert found is not None
    assert (found.value, found.etag) == ({"a": 1}, "7")


@respx.mock
async def test_transaction_sends_etags_and_ttls_and_maps_a_lost_race(dapr: DaprClient) -> None:
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
async def test_a_failing_store_and_an_absent_sidecar_are_told_apart(dapr: DaprClient) -> None:
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
async def test_publish_sets_the_cloudevent_id_and_accepts_204(dapr: DaprClient) -> None:
    route = respx.post(f"{SIDECAR}/v1.0/publish/pubsub/topic").mock(
        side_effect=[httpx.Response(204), httpx.Response(500, text="broker down")]
    )

    await dapr.publish("topic", {"x": 1}, event_id="lesson-1")
    with pytest.raises(PublishFailed):
        await dapr.publish("topic", {"x": 1}, event_id="lesson-1")

    assert route.calls[0].request.url.params["metadata.cloudevent.id"] == "lesson-1"
