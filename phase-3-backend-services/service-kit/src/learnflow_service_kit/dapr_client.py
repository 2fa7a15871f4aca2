"""The Dapr sidecar's HTTP API (state, pub/sub, service invocation, metadata) as a small client.

We talk HTTP to daprd with httpx rather than through the SDK's gRPC client so every call has
an explicit timeout and a precise status mapping; the SDK is used for what it is needed for:
hosting actors.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx


class SidecarUnavailable(RuntimeError):
    """daprd did not answer (down, or too slow)."""


class StateStoreUnavailable(RuntimeError):
    """daprd answered but the state store behind it failed."""


class EtagMismatch(RuntimeError):
    """An optimistic-concurrency write lost the race; re-read and retry."""


class PublishFailed(RuntimeError):
    """The pub/sub broker did not take the message."""


class InvocationFailed(RuntimeError):
    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ActorCallFailed(RuntimeError):
    """The actor method raised, or daprd could not place or reach the actor."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"actor call failed: {status} {body[:500]}")
        self.status = status
        self.body = body


@dataclass(frozen=True)
class StateEntry:
    value: Any
    etag: str | None


@dataclass(frozen=True)
class Upsert:
    """A write; with ``etag`` it only replaces that version, with ``new_only`` it only creates."""

    key: str
    value: Any
    etag: str | None = None
    new_only: bool = False
    ttl_seconds: int | None = None

    def as_operation(self) -> dict[str, Any]:
        request: dict[str, Any] = {"key": self.key, "value": self.value}
        if self.etag is not None:
            request["etag"] = self.etag
        if self.etag is not None or self.new_only:
            # first-write without an ETag: the store refuses if the key already exists.
            request["options"] = {"concurrency": "first-write"}
        if self.ttl_seconds is not None:
            request["metadata"] = {"ttlInSeconds": str(self.ttl_seconds)}
        return {"operation": "upsert", "request": request}


@dataclass(frozen=True)
class Delete:
    key: str
    etag: str | None = None

    def as_operation(self) -> dict[str, Any]:
        request: dict[str, Any] = {"key": self.key}
        if self.etag is not None:
            request["etag"] = self.etag
            request["options"] = {"concurrency": "first-write"}
        return {"operation": "delete", "request": request}


def _is_etag_failure(response: httpx.Response) -> bool:
    if response.status_code == 409:
        return True
    text = response.text.lower()
    # Postgres v2 says "no item was updated" when a new_only key already exists.
    return ("etag" in text and "mismatch" in text) or "no item was updated" in text


class DaprClient:
    def __init__(self, http: httpx.AsyncClient, store: str, pubsub: str) -> None:
        self._http = http
        self.store = store
        self.pubsub = pubsub

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return await self._http.request(method, path, **kwargs)
        except (httpx.TransportError, httpx.TimeoutException) as error:
            raise SidecarUnavailable(f"Dapr sidecar unreachable: {type(error).__name__}") from error

    # -- state -----------------------------------------------------------------------------

    async def get_state(self, key: str) -> StateEntry | None:
        response = await self._request("GET", f"/v1.0/state/{self.store}/{key}")
        if response.status_code == 204:
            return None
        if response.status_code != 200:
            raise StateStoreUnavailable(f"state get failed: {response.status_code} {response.text}")
        return StateEntry(response.json(), response.headers.get("etag"))

    async def get_bulk_state(self, keys: Sequence[str]) -> dict[str, StateEntry]:
        if not keys:
            return {}
        response = await self._request(
            "POST", f"/v1.0/state/{self.store}/bulk", json={"keys": list(keys), "parallelism": 8}
        )
        if response.status_code != 200:
            raise StateStoreUnavailable(f"bulk get failed: {response.status_code} {response.text}")
        found: dict[str, StateEntry] = {}
        for item in response.json():
            if item.get("error"):
                raise StateStoreUnavailable(f"bulk get failed for {item['key']}: {item['error']}")
            if "data" in item:
                found[item["key"]] = StateEntry(item["data"], item.get("etag"))
        return found

    async def transact(self, operations: Sequence[Upsert | Delete]) -> None:
        """Apply all operations atomically, or none (raises EtagMismatch on a lost race)."""
        response = await self._request(
            "POST",
            f"/v1.0/state/{self.store}/transaction",
            json={"operations": [op.as_operation() for op in operations]},
        )
        if response.status_code in (200, 204):
            return
        if _is_etag_failure(response):
            raise EtagMismatch(response.text)
        raise StateStoreUnavailable(
            f"state transaction failed: {response.status_code} {response.text}"
        )

    # -- pub/sub ---------------------------------------------------------------------------

    async def publish(self, topic: str, data: Mapping[str, Any], event_id: str) -> None:
        """Publish ``data`` as a CloudEvent whose id is ``event_id`` (consumers dedupe on it)."""
        response = await self._request(
            "POST",
            f"/v1.0/publish/{self.pubsub}/{topic}",
            json=dict(data),
            params={"metadata.cloudevent.id": event_id},
        )
        if response.status_code not in (200, 204):
            raise PublishFailed(
                f"publish to {topic} failed: {response.status_code} {response.text}"
            )

    # -- invocation and sidecar ------------------------------------------------------------

    async def invoke(
        self,
        app_id: str,
        method: str,
        *,
        params: Mapping[str, str],
        timeout: float,  # noqa: ASYNC109 - per-call httpx timeout
    ) -> httpx.Response:
        try:
            response = await self._http.get(
                f"/v1.0/invoke/{app_id}/method/{method}", params=dict(params), timeout=timeout
            )
        except (httpx.TransportError, httpx.TimeoutException) as error:
            raise InvocationFailed(f"invoking {app_id}/{method}: {type(error).__name__}") from error
        if response.status_code >= 500:
            raise InvocationFailed(
                f"{app_id}/{method} answered {response.status_code}", response.status_code
            )
        return response

    async def invoke_actor(
        self,
        actor_type: str,
        actor_id: str,
        method: str,
        data: Any,
        *,
        timeout: float,  # noqa: ASYNC109 - per-call httpx timeout
    ) -> Any:
        """Call an actor method; an actor runs one call at a time, on whichever replica hosts it."""
        try:
            response = await self._http.post(
                f"/v1.0/actors/{actor_type}/{actor_id}/method/{method}", json=data, timeout=timeout
            )
        except (httpx.TransportError, httpx.TimeoutException) as error:
            raise SidecarUnavailable(
                f"actor {actor_type} unreachable: {type(error).__name__}"
            ) from error
        if response.status_code != 200:
            raise ActorCallFailed(response.status_code, response.text)
        return response.json() if response.content else None

    async def sidecar_healthy(self) -> bool:
        try:
            response = await self._http.get("/v1.0/healthz", timeout=1.0)
        except (httpx.TransportError, httpx.TimeoutException):
            return False
        return response.status_code == 204

    async def state_store_reachable(self) -> bool:
        try:
            await self.get_state("readiness-probe")
        except (SidecarUnavailable, StateStoreUnavailable):
            return False
        return True
