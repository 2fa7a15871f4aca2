from datetime import UTC, datetime

import pytest
from course_agent.llm_budget import LlmBudget, LlmBudgetExceeded, budget_key, budget_window
from learnflow_service_kit.sidecar_client import StateEntry, Upsert


def test_the_budget_window_is_the_clock_hour_and_says_how_long_is_left() -> None:
    assert budget_window(datetime(2026, 12, 3, 13, 59, 59, 500_000, tzinfo=UTC)) == (
        "2026120313",
        1,
    )
    assert budget_window(datetime(2026, 12, 3, 14, 0, 0, tzinfo=UTC)) == ("2026120314", 3600)
    assert budget_window(datetime(2026, 12, 3, 14, 30, 0, tzinfo=UTC)) == ("2026120314", 1800)
    assert budget_key("ada", "2026120314") == "llm-budget-ada-2026120314"


# -- spending: the write that counts one more generation, under the counter's ETag --------------


@pytest.fixture
def budget() -> LlmBudget:
    return LlmBudget(per_hour=3)


def test_the_first_lesson_of_the_hour_creates_the_counter(budget: LlmBudget) -> None:
    window = budget.current("ada")

    spending = budget.spending(window, None)

    assert spending == Upsert(
        window.key, {"spent": 1}, new_only=True, ttl_seconds=window.seconds_left + 60
    )


def test_a_later_lesson_raises_the_counter_read_under_its_etag(budget: LlmBudget) -> None:
    window = budget.current("ada")

    spending = budget.spending(window, StateEntry({"spent": 2}, "5"))

    assert (spending.value, spending.etag, spending.new_only) == ({"spent": 3}, "5", False)


def test_a_spent_budget_is_refused_until_the_hour_ends(budget: LlmBudget) -> None:
    window = budget.current("ada")

    with pytest.raises(LlmBudgetExceeded) as refused:
        budget.spending(window, StateEntry({"spent": 3}, "6"))

    assert 1 <= refused.value.retry_after_seconds <= 3600
    assert refused.value.headers()["Retry-After"] == str(max(1, window.seconds_left))
