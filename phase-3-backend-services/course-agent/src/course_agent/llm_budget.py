"""A per-learner limit on lessons that reach the LLM (cache misses), per clock hour, shared by
every replica: the count lives in the Dapr state store under the learner's key for the hour and
is raised with an ETag check, so two replicas never both spend the last unit."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import ClassVar

from learnflow_service_kit.sidecar_client import (
    EtagMismatch,
    SidecarClient,
    StateEntry,
    StateStoreUnavailable,
    Upsert,
)
from prometheus_client import Counter

from course_agent.domain.errors import RetryLater

REFUSED = Counter("lesson_llm_budget_refusals_total", "Generations refused by the LLM budget")
_CAS_ATTEMPTS = 20


class LlmBudgetExceeded(RetryLater):
    """The learner spent this hour's new lessons; retry when the hour ends."""

    http_status: ClassVar[int] = 429
    code: ClassVar[str] = "llm_budget_exceeded"


def budget_window(now: datetime) -> tuple[str, int]:
    """The clock hour ``now`` falls in (as a key suffix), and whole seconds until it ends."""
    start = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    left = (start + timedelta(hours=1) - now.astimezone(UTC)).total_seconds()
    return start.strftime("%Y%m%d%H"), max(1, int(left) + (left % 1 > 0))


def budget_key(learner_id: str, window: str) -> str:
    return f"llm-budget-{learner_id}-{window}"


@dataclass(frozen=True)
class BudgetWindow:
    learner_id: str
    key: str  # the learner's counter for this clock hour
    seconds_left: int


class LlmBudget:
    def __init__(self, dapr: SidecarClient, per_hour: int) -> None:
        self._dapr = dapr
        self._per_hour = per_hour

    def current(self, learner_id: str) -> BudgetWindow:
        window, seconds_left = budget_window(datetime.now(UTC))
        return BudgetWindow(learner_id, budget_key(learner_id, window), seconds_left)

    async def spend(self, budget: BudgetWindow, spent: StateEntry | None) -> None:
        """Count one LLM generation in ``budget``, whose counter was read as ``spent``, or
        raise LlmBudgetExceeded. A lost race reads the counter again."""
        entry = spent
        for _ in range(_CAS_ATTEMPTS):
            count = int(entry.value["spent"]) if entry else 0
            if count >= self._per_hour:
                REFUSED.inc()
                raise LlmBudgetExceeded(
                    f"learner_id: {self._per_hour} new lessons an hour at most; "
                    "lessons already generated are still served",
                    budget.seconds_left,
                )
            counted = Upsert(
                budget.key,
                {"spent": count + 1},
                etag=entry.etag if entry else None,
                new_only=entry is None,
                ttl_seconds=budget.seconds_left + 60,
            )
            try:
                await self._dapr.transact([counted])
                return
            except EtagMismatch:
                await asyncio.sleep(random.uniform(0, 0.02))
                entry = await self._dapr.get_state(budget.key)
        raise StateStoreUnavailable(f"LLM budget of {budget.learner_id} too contended; retry later")
