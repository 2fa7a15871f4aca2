"""Backpressure per learner: a bounded number of updates in flight, the rest refused at once.

A learner's updates run one at a time in its actor, so a burst beyond what the actor can apply
within the deadline would only wait and then fail. Refusing it up front (429 + Retry-After,
nothing applied) keeps every answer fast and honest. The bound is per process (per replica).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from learnflow_service_kit.errors import ServiceError


class PerLearnerAdmission:
    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._in_flight: dict[str, int] = {}

    @asynccontextmanager
    async def admit(self, learner_id: str) -> AsyncIterator[None]:
        if self._in_flight.get(learner_id, 0) >= self._limit:
            raise ServiceError(
                429,
                "too_many_pending_updates",
                f"learner_id: {self._limit} updates already pending for this learner; "
                "nothing was applied, retry later",
                headers={"Retry-After": "1"},
            )
        self._in_flight[learner_id] = self._in_flight.get(learner_id, 0) + 1
        try:
            yield
        finally:
            self._in_flight[learner_id] -= 1
            if not self._in_flight[learner_id]:
                del self._in_flight[learner_id]
