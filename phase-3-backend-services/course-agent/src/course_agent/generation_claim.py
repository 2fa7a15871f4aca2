"""Who generates a lesson: a claim, ``lesson-claim-<cache key>``.

The claim is created first-write in the transaction that spends the learner's LLM budget, so of
N identical cache misses on any number of replicas, one takes it and calls the LLM. The others
see the claim and wait for the lesson (``LessonService``).

The claim is a lease. Its holder renews it while the LLM works, so a holder that dies frees the
lesson within ``LEASE_SECONDS``: the state store lets a first-write take an expired key. The
commit that stores the lesson deletes the claim, and a failed generation deletes it too.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import structlog
from learnflow_service_kit.sidecar_client import (
    Delete,
    EtagMismatch,
    SidecarClient,
    SidecarUnavailable,
    StateStoreUnavailable,
    Upsert,
)

log = structlog.get_logger()

LEASE_SECONDS = 15
RENEW_EVERY_SECONDS = 5.0


def generation_claim_key(cache_key: str) -> str:
    return f"lesson-claim-{cache_key}"


@dataclass(frozen=True)
class Claim:
    cache_key: str
    holder: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def key(self) -> str:
        return generation_claim_key(self.cache_key)

    def taking(self) -> Upsert:
        return Upsert(self.key, {"holder": self.holder}, new_only=True, ttl_seconds=LEASE_SECONDS)

    def releasing(self) -> Delete:
        """For the commit that stores the lesson. Without an ETag, which would cost a read: if
        the claim lapsed and another request took it, the lesson it waits for is stored now."""
        return Delete(self.key)


class GenerationClaims:
    def __init__(self, dapr: SidecarClient, renew_every_seconds: float = RENEW_EVERY_SECONDS):
        self._dapr = dapr
        self._renew_every = renew_every_seconds

    async def take(self, claim: Claim, spending: Upsert) -> None:
        """Take ``claim`` and write ``spending`` (the learner's budget) in one transaction;
        EtagMismatch if either lost a race: the claim is held, or the budget moved."""
        await self._dapr.transact([spending, claim.taking()])

    @contextlib.asynccontextmanager
    async def renewed(self, claim: Claim) -> AsyncIterator[None]:
        """Keeps ``claim`` from lapsing while the block runs."""
        renewing = asyncio.ensure_future(self._renew_while_held(claim))
        try:
            yield
        finally:
            renewing.cancel()
            # Its cancellation comes back as a result, and ours, if it comes now, still raises.
            await asyncio.gather(renewing, return_exceptions=True)

    async def _renew_while_held(self, claim: Claim) -> None:
        while True:
            await asyncio.sleep(self._renew_every)
            try:
                current = await self._dapr.get_state(claim.key)
                if current is None or current.value.get("holder") != claim.holder:
                    log.warning("generation claim lapsed", claim=claim.key)
                    return
                renewed = Upsert(
                    claim.key, current.value, etag=current.etag, ttl_seconds=LEASE_SECONDS
                )
                await self._dapr.transact([renewed])
            except (EtagMismatch, StateStoreUnavailable, SidecarUnavailable) as error:
                log.warning("generation claim not renewed", claim=claim.key, error=str(error))

    async def release(self, claim: Claim) -> None:
        """After a failed generation, best effort: a claim left behind lapses by itself. Only
        our own: if ours lapsed, another request may hold the claim now."""
        try:
            current = await self._dapr.get_state(claim.key)
            if current is not None and current.value.get("holder") == claim.holder:
                await self._dapr.transact([Delete(claim.key, current.etag)])
        except (EtagMismatch, StateStoreUnavailable, SidecarUnavailable) as error:
            log.warning("generation claim not released", claim=claim.key, error=str(error))
