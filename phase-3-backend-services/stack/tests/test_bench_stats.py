"""The benchmark's arithmetic: percentiles, summaries, throughput, differences, scaled counts."""

from __future__ import annotations

import random
import statistics

import pytest
from learnflow_stack.bench.stats import (
    LatencySummary,
    difference,
    percentile,
    scaled_count,
    summarize,
    throughput,
)

# -- percentile ------------------------------------------------------------------------------


def test_percentile_interpolates_between_ranks() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == pytest.approx(2.5)
    assert percentile([10.0, 20.0], 0.25) == pytest.approx(12.5)
    assert percentile([float(i) for i in range(1, 101)], 0.99) == pytest.approx(99.01)


@pytest.mark.parametrize("size", [2, 3, 7, 100, 1001])
def test_percentile_matches_statistics_quantiles_inclusive(size: int) -> None:
    samples = [random.Random(size).expovariate(5.0) for _ in range(size)]
    cut_points = statistics.quantiles(samples, n=100, method="inclusive")

    for number, expected in enumerate(cut_points, start=1):
        assert percentile(samples, number / 100) == pytest.approx(expected)


def test_percentile_ignores_input_order_and_stays_in_the_observed_range() -> None:
    samples = [0.5, 0.1, 0.9, 0.3]

    assert percentile(samples, 0.0) == 0.1
    assert percentile(samples, 1.0) == 0.9
    assert percentile(samples, 0.5) == percentile(sorted(samples), 0.5)
    assert samples == [0.5, 0.1, 0.9, 0.3]  # not sorted in place


def test_a_single_sample_is_every_percentile() -> None:
    assert [percentile([0.042], q) for q in (0.0, 0.5, 0.99, 1.0)] == [0.042] * 4


def test_percentile_refuses_no_samples_and_fractions_outside_zero_to_one() -> None:
    with pytest.raises(ValueError, match="no samples"):
        percentile([], 0.5)
    with pytest.raises(ValueError, match="fraction"):
        percentile([1.0], 1.5)
    with pytest.raises(ValueError, match="fraction"):
        percentile([1.0], -0.01)


# -- summaries, throughput, differences -----------------------------------------------------


def test_summarize_reports_percentiles_mean_and_maximum() -> None:
    latencies = [float(i) / 1000 for i in range(1, 101)]  # 1..100 ms

    summary = summarize(latencies)

    assert summary is not None
    assert summary.count == 100
    assert summary.p50 == pytest.approx(0.0505)
    assert summary.p95 == pytest.approx(0.09505)
    assert summary.p99 == pytest.approx(0.09901)
    assert summary.mean == pytest.approx(0.0505)
    assert summary.maximum == pytest.approx(0.1)


def test_nothing_measured_summarizes_to_none() -> None:
    assert summarize([]) is None


def test_throughput_is_completed_per_wall_second() -> None:
    assert throughput(100, 4.0) == pytest.approx(25.0)
    assert throughput(0, 0.0) == 0.0


def test_throughput_refuses_impossible_inputs() -> None:
    with pytest.raises(ValueError, match="cannot complete"):
        throughput(5, 0.0)
    with pytest.raises(ValueError, match="negative"):
        throughput(-1, 1.0)


def test_difference_subtracts_the_baseline_at_each_percentile() -> None:
    measured = LatencySummary(count=10, p50=0.25, p95=0.40, p99=0.50, mean=0.3, maximum=0.6)
    baseline = LatencySummary(count=10, p50=0.20, p95=0.21, p99=0.30, mean=0.2, maximum=0.3)

    overhead = difference(measured, baseline)

    assert (overhead.p50, overhead.p95, overhead.p99) == pytest.approx((0.05, 0.19, 0.20))


def test_scaled_count_rounds_and_never_drops_below_the_minimum() -> None:
    assert scaled_count(100, 1.0) == 100
    assert scaled_count(100, 0.25) == 25
    assert scaled_count(50, 0.001) == 1
    assert scaled_count(50, 0.001, minimum=4) == 4
    with pytest.raises(ValueError, match="positive"):
        scaled_count(100, 0.0)
