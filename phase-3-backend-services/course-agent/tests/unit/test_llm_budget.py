import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from course_agent.llm_budget import LlmBudget, LlmBudgetExceeded, budget_key, budget_window
from learnflow_service_kit.sidecar_client import SidecarClient, StateEntry
from learnflow_service_kit.sidecar_http import HttpxSidecar


def test_the_budget_window_is_the_clock_hour_and_says_how_long_is_left() -> None:
    assert budget_window(datetime(2026, 12, 3, 13, 59, 59, 500_000, tzinfo=UTC)) == (
        "2026120313",
        1,
    )
    assert budget_window(datetime(2026, 12, 3, 14, 0, 0, tzinfo=UTC)) == ("2026120314", 3600)
    assert budget_window(datetime(2026, 12, 3, 14, 30, 0, tzinfo=UTC)) == ("2026120314", 1800)
    assert budget_key("ada", "2026120314") == "llm-budget-ada-2026120314"


# -- spending: the counter is raised with an ETag check, over daprd's HTTP API -------------------


class FakeStore:
    """daprd's state API for one budget counter: GET, and transactions that honour ETags."""

    def __init__(self) -> None:
        self.value: dict[str, Any] | None = None
        self.etag = 0
        self.writes: list[dict[str, Any]] = []
        self.rival_spends_first = False

    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            if self.value is None:
                return httpx.Response(204)
            return httpx.Response(200, json=self.value, headers={"etag": str(self.etag)})
        upsert = json.loads(request.content)["operations"][0]["request"]
        if self.rival_spends_first:  # another replica raises the counter between read and write
            self.rival_spends_first = False
            self.value, self.etag = (
                {"spent": (self.value or {"spent": 0})["spent"] + 1},
                self.etag + 1,
            )
        current = str(self.etag) if self.value is not None else None
        if upsert.get("etag") != current:  # a stale ETag, or "first-write" of an existing key
            return httpx.Response(409, text="possible etag mismatch")
        self.writes.append(upsert)
        self.value, self.etag = upsert["value"], self.etag + 1
        return httpx.Response(204)


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


@pytest.fixture
def budget(store: FakeStore) -> LlmBudget:
    def connect() -> HttpxSidecar:
        return HttpxSidecar.scripted(store.handle)

    return LlmBudget(SidecarClient(connect, store="statestore", pubsub="pubsub"), per_hour=3)


async def test_spending_counts_from_what_was_read_with_the_cache_check(
    budget: LlmBudget, store: FakeStore
) -> None:
    window = budget.current("ada")
    await budget.spend(window, None)  # nothing read: the first lesson of the hour
    assert store.writes[-1]["value"] == {"spent": 1}
    assert store.writes[-1]["options"] == {"concurrency": "first-write"}

    await budget.spend(window, StateEntry({"spent": 1}, str(store.etag)))
    assert store.value == {"spent": 2}


async def test_the_last_unit_is_spent_once_and_then_refused_without_a_write(
    budget: LlmBudget, store: FakeStore
) -> None:
    window = budget.current("ada")
    store.value, store.etag = {"spent": 2}, 5
    await budget.spend(window, StateEntry({"spent": 2}, "5"))

    writes = len(store.writes)
    with pytest.raises(LlmBudgetExceeded) as refused:
        await budget.spend(window, StateEntry({"spent": 3}, "6"))
    assert len(store.writes) == writes
    assert 1 <= refused.value.retry_after_seconds <= 3600


async def test_a_lost_race_reads_the_counter_again(budget: LlmBudget, store: FakeStore) -> None:
    window = budget.current("ada")
    store.value, store.etag = {"spent": 1}, 1
    store.rival_spends_first = True

    await budget.spend(window, StateEntry({"spent": 1}, "1"))

    assert store.value == {"spent": 3}  # the rival's unit and ours, none lost
