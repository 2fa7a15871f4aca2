"""The benchmark's arithmetic and bookkeeping: percentiles, throughput, differences, the
load driver's counting (warm-up excluded, cap respected) and the /proc parsing for memory."""

from __future__ import annotations

import dataclasses
import random
import statistics
import time

import pytest
from learnflow_stack.bench import (
    BenchConfig,
    BenchReport,
    EventLagResult,
    Figures,
    ProcessUsage,
    ScenarioResult,
    UnexpectedAnswer,
    cpu_ticks,
    descendants,
    drive,
    measure,
    parent_pid,
    render,
    status_kib,
)
from learnflow_stack.bench_stats import (
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


# -- the load driver -------------------------------------------------------------------------


async def test_drive_calls_every_index_once_and_counts_failures_apart() -> None:
    called: list[int] = []

    async def call(index: int) -> None:
        called.append(index)
        if index % 3 == 0:
            raise UnexpectedAnswer(f"request {index} refused")

    run = await drive(call, range(10, 22), concurrency=4, deadline=time.perf_counter() + 60)

    assert sorted(called) == list(range(10, 22))
    assert len(run.latencies) == 8
    assert len(run.errors) == 4
    assert run.errors[0].startswith("UnexpectedAnswer: request")
    assert run.attempted == 12


async def test_drive_starts_nothing_after_the_deadline() -> None:
    called: list[int] = []

    async def call(index: int) -> None:
        called.append(index)

    run = await drive(call, range(100), concurrency=4, deadline=time.perf_counter() - 1)

    assert called == []
    assert run.attempted == 0


async def test_measure_leaves_warm_up_calls_out_of_the_figures() -> None:
    called: list[int] = []

    async def call(index: int) -> None:
        called.append(index)

    result = await measure(
        "probe", call, requests=20, concurrency=3, deadline=time.perf_counter() + 60
    )

    assert sorted(called) == list(range(26))  # 2 x concurrency warm-up calls first
    assert result.completed == 20
    assert result.errors == 0
    assert not result.cut_short
    assert result.requests_per_second > 0


async def test_measure_marks_a_scenario_the_cap_cut_short() -> None:
    async def call(_: int) -> None:
        return None

    result = await measure(
        "capped", call, requests=5, concurrency=2, deadline=time.perf_counter() - 1
    )

    assert result.cut_short
    assert result.latency is None
    assert result.requests_per_second == 0.0


# -- /proc parsing for memory and CPU -----------------------------------------------------------

_STATUS = "Name:\tdaprd\nVmPeak:\t 1500000 kB\nVmHWM:\t   148736 kB\nVmRSS:\t  120000 kB\n"


def test_status_kib_reads_the_named_field() -> None:
    assert status_kib(_STATUS, "VmHWM") == 148736
    assert status_kib(_STATUS, "VmRSS") == 120000
    assert status_kib("Name:\tkthreadd\n", "VmHWM") is None  # kernel threads have none


def test_parent_pid_survives_spaces_and_parentheses_in_the_command_name() -> None:
    assert parent_pid("4242 (postgres) S 4000 4242 4242 0 -1") == 4000
    assert parent_pid("77 (odd (name) x) R 12 77 77 0 -1") == 12


def test_cpu_ticks_adds_user_and_system_time_and_optionally_reaped_children() -> None:
    # Fields from 3 on: state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
    # utime stime cutime cstime ...
    stat = "9 (uvicorn app) S 1 9 9 0 -1 4194560 100 0 0 0 250 50 7 3 20 0 4"

    assert cpu_ticks(stat, reaped_children=False) == 300
    assert cpu_ticks(stat, reaped_children=True) == 310


def test_descendants_walks_the_whole_subtree_only() -> None:
    parents = {2: 1, 3: 2, 4: 2, 5: 4, 9: 8}

    assert sorted(descendants(2, parents)) == [3, 4, 5]
    assert descendants(5, parents) == []


# -- the printed report ----------------------------------------------------------------------


def _scenario(name: str, p50: float, *, cut_short: bool = False) -> ScenarioResult:
    latency = LatencySummary(count=40, p50=p50, p95=p50 * 1.5, p99=p50 * 2, mean=p50, maximum=1.0)
    return ScenarioResult(
        name=name,
        concurrency=4,
        planned=50,
        errors=0,
        latency=latency,
        requests_per_second=12.5,
        cut_short=cut_short,
    )


def _report() -> BenchReport:
    figures = Figures(
        stub_direct=_scenario("stub direct", 0.200),
        cache_miss=_scenario("cache miss", 0.260, cut_short=True),
        state_read=_scenario("state read", 0.002),
        cache_hit=_scenario("cache hit", 0.010),
        lesson_list=dataclasses.replace(
            _scenario("lesson list", 0.020), note="the list shows 19 of the 20 lessons"
        ),
        events_settled_seconds=0.5,
        progress_hot=_scenario("hot learner", 0.030),
        progress_many=_scenario("many learners", 0.015),
        event_lag=EventLagResult(
            lone_published=5,
            lone=LatencySummary(count=5, p50=0.05, p95=0.06, p99=0.06, mean=0.05, maximum=0.061),
            lone_mean_poll_seconds=0.02,
            burst_published=50,
            burst_visible=50,
            burst_lag=LatencySummary(count=50, p50=0.4, p95=0.9, p99=1.0, mean=0.5, maximum=1.01),
            burst_events_per_second=42.0,
            burst_mean_poll_round_seconds=0.1,
            publish_errors=0,
            poll_errors=0,
        ),
    )
    return BenchReport(
        config=BenchConfig(
            llm_delay_seconds=0.2,
            scale=1.0,
            concurrency=4,
            progress_concurrency=8,
            max_seconds_per_scenario=20.0,
            json_path=None,
        ),
        cpus=2,
        load_average_at_start=(0.5, 0.4, 0.3),
        stack_start_seconds=20.0,
        total_seconds=120.0,
        client_cpu_seconds=10.0,
        figures=figures,
        processes=[
            ProcessUsage("postgres", 10, 28.5, 3, 60.0, 4.0),
            ProcessUsage("course-agent", 11, 180.0, 0, 0.0, 30.0),
        ],
    )


def test_report_prints_each_scenario_its_overheads_the_lag_and_the_processes() -> None:
    text = render(_report())
    rows = {line.split("  ")[0]: line for line in text.splitlines()}

    assert rows["stub direct"].split()[-4:] == ["200.0", "300.0", "400.0", "12.5"]
    assert "40*" in rows["cache miss"].split()  # capped: marked
    assert "40" in rows["cache hit"].split()
    overhead = next(line for line in text.splitlines() if "service overhead" in line)
    assert overhead.split()[-3:] == ["+60.0", "+90.0", "+120.0"]
    assert "consumed at 42.0 events/s" in text
    assert "lag p50 400 ms, p95 900 ms, p99 1000 ms, max 1010 ms" in text
    assert "NOTE on lesson list: the list shows 19 of the 20 lessons" in text
    assert "3, 60.0 MiB" in next(line for line in text.splitlines() if "postgres" in line)


def test_report_as_json_holds_the_overheads_in_seconds() -> None:
    document = _report().as_json()

    assert document["service_overhead"] == pytest.approx({"p50": 0.06, "p95": 0.09, "p99": 0.12})
    assert document["figures"]["cache_miss"]["cut_short"] is True
    assert document["config"]["json_path"] is None
