"""The Dapr sidecar's HTTP API (state, pub/sub, service invocation, metadata) as a small client.

We talk HTTP to daprd (``sidecar_http``) rather than through the SDK's gRPC client so every
call has an explicit timeout and a precise status mapping; the SDK is used for what it is
needed for: hosting actors.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

import structlog

from learnflow_service_kit.sidecar_http import (
    NoFreeConnection,
    SidecarHttp,
    SidecarResponse,
    SidecarTransportError,
)

log = structlog.get_logger()

# A publish that daprd has not confirmed by then is left to the outbox relay:
# a frozen broker must not hold a request (or an actor turn) for long.
PUBLISH_TIMEOUT_SECONDS = 1.5
# How often a long actor call checks that the sidecar still has its placement connection:
# without it daprd holds actor calls until the caller's timeout (measured: 10-18 s).
PLACEMENT_CHECK_SECONDS = 1.0
# Consecutive "no free connection" failures after which the connection pool is replaced, and
# how long such a streak may last before the app declares itself not alive (see ``wedged``).
_POOL_REBUILD_AFTER = 3
_WEDGED_AFTER_SECONDS = 30.0
_PROBE_TIMEOUT_SECONDS = 0.8

FailingPart = Literal["dapr_sidecar", "actor_placement", "state_store", "unknown"]


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


class PlacementUnavailable(RuntimeError):
    """The sidecar lost its placement connection, so no actor can be reached."""


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
    """A removal; with ``etag``, of that version only (a key rewritten since stays). Without
    it, whatever is there, if anything: a missing key is no error."""

    key: str
    etag: str | None = None

    def as_operation(self) -> dict[str, Any]:
        request: dict[str, Any] = {"key": self.key}
        if self.etag is not None:
            request |= {"etag": self.etag, "options": {"concurrency": "first-write"}}
        return {"operation": "delete", "request": request}


StateOperation = Upsert | Delete


def _is_etag_failure(response: SidecarResponse) -> bool:
    if response.status_code == 409:
        return True
    text = response.text.lower()
    # Postgres v2 says "no item was updated" when a new_only key already exists.
    return ("etag" in text and "mismatch" in text) or "no item was updated" in text


HttpFactory = Callable[[], SidecarHttp]
T = TypeVar("T")


class SharedProbe(Generic[T]):
    """Runs ``probe`` at most once per ``max_age`` seconds; concurrent callers share its answer."""

    def __init__(self, probe: Callable[[], Awaitable[T]], max_age: float) -> None:
        self._probe = probe
        self._max_age = max_age
        self._running: asyncio.Task[T] | None = None
        self._started = 0.0

    async def get(self) -> T:
        stale = time.monotonic() - self._started >= self._max_age
        if self._running is None or (self._running.done() and stale):
            self._started = time.monotonic()
            self._running = asyncio.ensure_future(self._probe())
        return await asyncio.shield(self._running)


class SidecarClient:
    """``connect`` makes the connection pool; it is called again to replace a pool that has
    stopped handing out connections (the app then recovers by itself instead of answering 503
    until restarted). Health probes use a pool of their own, so readiness tells the truth about
    daprd even when the main pool is exhausted."""

    def __init__(
        self,
        connect: HttpFactory,
        store: str,
        pubsub: str,
        *,
        probe_shared_seconds: float = PLACEMENT_CHECK_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._connect = connect
        self._clock = clock
        self._http = connect()
        self._probe = connect()
        self.store = store
        self.pubsub = pubsub
        self._pool_failures = 0
        self._pool_failing_since: float | None = None
        self._retired: set[asyncio.Task[None]] = set()
        # Under a storm of slow or failing calls, one probe at a time answers them all.
        self._recent_placement = SharedProbe(self.placement_connected, probe_shared_seconds)
        self._recent_failing_part = SharedProbe(self._diagnose, probe_shared_seconds)

    async def aclose(self) -> None:
        await self._http.aclose()
        await self._probe.aclose()

    async def _request(self, method: str, path: str, **kwargs: Any) -> SidecarResponse:
        try:
            response = await self._http.request(method, path, **kwargs)
        except NoFreeConnection as error:
            self._pool_exhausted()
            raise SidecarUnavailable(f"Dapr sidecar: no free connection ({error})") from error
        except SidecarTransportError as error:
            raise SidecarUnavailable(f"Dapr sidecar unreachable: {error}") from error
        self._pool_failures = 0
        self._pool_failing_since = None
        return response

    def _pool_exhausted(self) -> None:
        self._pool_failures += 1
        if self._pool_failing_since is None:
            self._pool_failing_since = self._clock()
        if self._pool_failures % _POOL_REBUILD_AFTER == 0:
            log.warning(
                "replacing the connection pool to the Dapr sidecar", failures=self._pool_failures
            )
            old, self._http = self._http, self._connect()
            # Calls still running on the old pool finish on it; close it once they are done.
            closing = asyncio.ensure_future(_close_later(old))
            self._retired.add(closing)
            closing.add_done_callback(self._retired.discard)

    def wedged(self) -> bool:
        """True when no connection to daprd could be had for a while, pool rebuilds included:
        the process cannot recover by itself (liveness fails, so it is restarted)."""
        since = self._pool_failing_since
        return since is not None and self._clock() - since > _WEDGED_AFTER_SECONDS

    # -- state -----------------------------------------------------------------------------

    async def get_state(
        self,
        key: str,
        timeout: float | None = None,  # noqa: ASYNC109 - a per-call timeout is the point
    ) -> StateEntry | None:
        response = await self._request("GET", f"/v1.0/state/{self.store}/{key}", timeout=timeout)
        if response.status_code == 204:
            return None
        if response.status_code != 200:
            raise StateStoreUnavailable(f"state get failed: {response.status_code} {response.text}")
        return StateEntry(response.json(), response.headers.get("etag"))

    async def get_bulk_state(
        self,
        keys: Sequence[str],
        timeout: float | None = None,  # noqa: ASYNC109 - a per-call timeout is the point
    ) -> dict[str, StateEntry]:
        if not keys:
            return {}
        response = await self._request(
            "POST",
            f"/v1.0/state/{self.store}/bulk",
            json={"keys": list(keys), "parallelism": 8},
            timeout=timeout,
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

    async def transact(self, operations: Sequence[StateOperation]) -> None:
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

    async def publish(
        self, topic: str, data: Mapping[str, Any], event_id: str, partition_key: str | None = None
    ) -> None:
        """Publish ``data`` as a CloudEvent whose id is ``event_id`` (consumers dedupe on it).

        ``partition_key`` becomes the Kafka message key: events with the same key (a learner's)
        land on one partition and are consumed in the order they were published."""
        params = {"metadata.cloudevent.id": event_id}
        if partition_key is not None:
            params["metadata.partitionKey"] = partition_key
        response = await self._request(
            "POST",
            f"/v1.0/publish/{self.pubsub}/{topic}",
            json=dict(data),
            params=params,
            timeout=PUBLISH_TIMEOUT_SECONDS,
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
        timeout: float,  # noqa: ASYNC109 - per-call timeout
    ) -> SidecarResponse:
        try:
            response = await self._request(
                "GET",
                f"/v1.0/invoke/{app_id}/method/{method}",
                params=dict(params),
                timeout=timeout,
            )
        except SidecarUnavailable as error:
            raise InvocationFailed(f"invoking {app_id}/{method}: {error}") from error
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
        timeout: float,  # noqa: ASYNC109 - per-call timeout
    ) -> Any:
        """Call an actor method; an actor runs one call at a time, on whichever replica hosts it.

        Raises PlacementUnavailable as soon as the sidecar reports its placement connection
        lost, rather than waiting out ``timeout``; SidecarUnavailable when daprd does not answer
        in time.
        """
        call = asyncio.ensure_future(
            self._request(
                "POST",
                f"/v1.0/actors/{actor_type}/{actor_id}/method/{method}",
                json=data,
                timeout=timeout,
            )
        )
        while not call.done():
            await asyncio.wait({call}, timeout=PLACEMENT_CHECK_SECONDS)
            if not call.done() and await self._recent_placement.get() is False:
                call.cancel()
                raise PlacementUnavailable(
                    f"actor {actor_type}: the Dapr sidecar has no placement connection"
                )
        response = call.result()
        if response.status_code != 200:
            raise ActorCallFailed(response.status_code, response.text)
        return response.json() if response.content else None

    async def _probe_get(self, path: str) -> SidecarResponse | None:
        try:
            return await self._probe.request("GET", path, timeout=_PROBE_TIMEOUT_SECONDS)
        except SidecarTransportError:
            return None

    async def sidecar_healthy(self) -> bool:
        response = await self._probe_get("/v1.0/healthz")
        return response is not None and response.status_code == 204

    async def state_store_reachable(self) -> bool:
        response = await self._probe_get(f"/v1.0/state/{self.store}/readiness-probe")
        return response is not None and response.status_code in (200, 204)

    async def placement_connected(self) -> bool | None:
        """What daprd says of its placement connection; None when daprd does not answer."""
        response = await self._probe_get("/v1.0/metadata")
        if response is None or response.status_code != 200:
            return None
        runtime = response.json().get("actorRuntime") or {}
        return bool(runtime.get("placement") == "placement: connected")

    async def failing_part(self) -> FailingPart:
        """After a call failed or timed out: which part is to blame (probes run concurrently,
        each bounded, so this adds under a second to an error answer; shared for a second)."""
        return await self._recent_failing_part.get()

    async def _diagnose(self) -> FailingPart:
        healthy, placement, store = await asyncio.gather(
            self.sidecar_healthy(), self.placement_connected(), self.state_store_reachable()
        )
        if not healthy:
            return "dapr_sidecar"
        if placement is False:
            return "actor_placement"
        if not store:
            return "state_store"
        return "unknown"


async def _close_later(http: SidecarHttp, after_seconds: float = 60.0) -> None:
    await asyncio.sleep(after_seconds)
    await http.aclose()
