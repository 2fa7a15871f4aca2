from datetime import UTC, datetime

from course_agent.llm_budget import budget_key, budget_window


def test_the_budget_window_is_the_clock_hour_and_says_how_long_is_left() -> None:
    assert budget_window(datetime(2026, 12, 3, 13, 59, 59, 500_000, tzinfo=UTC)) == (
        "2026120313",
        1,
    )
    assert budget_window(datetime(2026, 12, 3, 14, 0, 0, tzinfo=UTC)) == ("2026120314", 3600)
    assert budget_window(datetime(2026, 12, 3, 14, 30, 0, tzinfo=UTC)) == ("2026120314", 1800)
    assert budget_key("ada", "2026120314") == "llm-budget-ada-2026120314"
