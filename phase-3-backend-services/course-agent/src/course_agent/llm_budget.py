"""A per-learner limit on lessons that reach the LLM (cache misses), per clock hour, shared by
every replica: the count lives in the Dapr state store under the learner's key for the hour and
is raised with an ETag check (in the transaction that claims the generation), so two replicas
never both spend the last unit."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import ClassVar

from learnflow_service_kit.sidecar_client import StateEntry, Upsert
from prometheus_client import Counter

from course_agent.domain.errors import RetryLater

REFUSED = Counter("lesson_llm_budget_refusals_total", "Generations refused by the LLM budget")


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
    key: str  # the learner's counter for this clock hour
    seconds_left: int


class LlmBudget:
    def __init__(self, per_hour: int) -> None:
        self._per_hour = per_hour

    def current(self, learner_id: str) -> BudgetWindow:
        window, seconds_left = budget_window(datetime.now(UTC))
        return BudgetWindow(budget_key(learner_id, window), seconds_left)

    def spending(self, budget: BudgetWindow, spent: StateEntry | None) -> Upsert:
        """The write that counts one more LLM generation in ``budget``, whose counter was read as
        ``spent`` (under its ETag: a concurrent spend makes the transaction a lost race), or
        LlmBudgetExceeded."""
        count = int(spent.value["spent"]) if spent else 0
        if count >= self._per_hour:
            REFUSED.inc()
            raise LlmBudgetExceeded(
                f"learner_id: {self._per_hour} new lessons an hour at most; "
                "lessons already generated are still served",
                budget.seconds_left,
            )
        return Upsert(
            budget.key,
            {"spent": count + 1},
            etag=spent.etag if spent else None,
            new_only=spent is None,
            ttl_seconds=budget.seconds_left + 60,
        )
