"""The soak's verdict on memory: growth after warming up, above both a share and a floor."""

from __future__ import annotations

from learnflow_stack.soak import Soak


def _soak(*samples: tuple[float, dict[str, float]]) -> Soak:
    return Soak(samples=list(samples))


def test_growth_is_measured_from_the_first_warm_sample_to_the_last() -> None:
    soak = _soak(
        (0.0, {"app": 50.0, "daprd": 100.0}),  # start-up: not compared
        (60.0, {"app": 100.0, "daprd": 130.0}),
        (300.0, {"app": 150.0, "daprd": 140.0}),
    )

    assert soak.grown(max_percent=10) == {"app": (100.0, 150.0)}


def test_small_or_proportionally_small_growth_passes() -> None:
    soak = _soak(
        (60.0, {"small": 10.0, "big": 1000.0}),
        (300.0, {"small": 25.0, "big": 1050.0}),  # +15 MiB (under 20); +5% (under 10%)
    )

    assert soak.grown(max_percent=10) == {}


def test_a_run_shorter_than_the_warm_up_compares_its_last_sample_with_itself() -> None:
    soak = _soak((0.0, {"app": 50.0}), (30.0, {"app": 90.0}))

    assert soak.grown(max_percent=10) == {}
