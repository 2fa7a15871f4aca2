"""The printed table and the JSON form of the benchmark's results."""

from __future__ import annotations

import dataclasses

import pytest
from learnflow_stack.bench.config import BenchConfig
from learnflow_stack.bench.cost import ScenarioCost
from learnflow_stack.bench.drain import DrainResult
from learnflow_stack.bench.events import EventLagResult
from learnflow_stack.bench.floors import (
    BULK_GET,
    FRAMEWORK,
    INVOKE,
    STATE_GET,
    TRANSACTION,
)
from learnflow_stack.bench.load import ScenarioResult
from learnflow_stack.bench.outbox_drain import (
    OutboxDrainResult,
    busiest_pass,
    learners_out_of_order,
)
from learnflow_stack.bench.report import BenchReport, render
from learnflow_stack.bench.requests import applied_count
from learnflow_stack.bench.scenarios import Figures
from learnflow_stack.bench.stats import LatencySummary
from learnflow_stack.bench.usage import ProcessUsage

# -- the printed report ----------------------------------------------------------------------


def _scenario(
    name: str,
    p50: float,
    *,
    cut_short: bool = False,
    floor: str | None = None,
    cost: ScenarioCost | None = None,
    concurrency: int = 4,
) -> ScenarioResult:
    latency = LatencySummary(count=40, p50=p50, p95=p50 * 1.5, p99=p50 * 2, mean=p50, maximum=1.0)
    return ScenarioResult(
        name=name,
        concurrency=concurrency,
        planned=50,
        errors=0,
        latency=latency,
        requests_per_second=12.5,
        cut_short=cut_short,
        floor=floor,
        cost=cost,
    )


_HIT_COST = ScenarioCost(
    requests=40,
    round_trips={"course-agent": 2.0, "user-progress": 1.0},
    deliveries={"course-agent": 0.0, "user-progress": 1.0},
    cpu_ms={"course-agent": 6.25, "postgres": 0.0},
    stolen_ms=0.75,
)


_IDLE = ScenarioCost(
    requests=5,  # seconds
    round_trips={"course-agent": 0.4, "user-progress": 0.0},
    deliveries={"course-agent": 0.0, "user-progress": 0.0},
    cpu_ms={"kafka": 36.0, "course-agent": 2.0, "postgres": 0.0},
    stolen_ms=4.0,
)


def _report() -> BenchReport:
    figures = Figures(
        idle=_IDLE,
        floors=[_scenario("state get", 0.002), _scenario("actor call", 0.005)],
        stub_direct=_scenario("stub direct", 0.200),
        first_misses=_scenario("first misses", 0.550, floor="stub direct"),
        cache_miss=_scenario("cache miss", 0.260, cut_short=True, floor="stub direct"),
        cache_hit=_scenario("cache hit", 0.010, floor="state get", cost=_HIT_COST),
        cache_hit_wide=_scenario("cache hit at 8", 0.020, floor="state get", concurrency=8),
        cache_hit_busy_learner=_scenario(
            "cache hit, busy learner", 0.022, floor="state get", concurrency=8
        ),
        lesson_list=dataclasses.replace(
            _scenario("lesson list", 0.020), note="the list shows 19 of the 20 lessons"
        ),
        events_settled_seconds=0.5,
        progress_hot=_scenario("hot learner", 0.030),
        progress_many=_scenario("many learners", 0.015),
        status=_scenario("status", 0.0075, floor="actor call"),
        progress_long_history=_scenario("long history updates", 0.025),
        status_long_history=_scenario("long history status", 0.008, floor="state get"),
        long_history_scores=3000,
        drain=DrainResult(
            events=2000,
            learners=400,
            produce_seconds=0.4,
            applied=2000,
            first_applied_seconds=0.1,
            half_applied_seconds=2.0,
            all_applied_seconds=4.0,
        ),
        outbox_drain=OutboxDrainResult(
            events=2000,
            learners=400,
            in_slots=1010,
            stage_seconds=1.2,
            seen=2000,
            first_seen_seconds=3.5,
            all_seen_seconds=7.5,
            publish_span_seconds=4.0,
            busiest_pass=(1500, 2.5),
            learners_out_of_order=0,
        ),
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
        stolen_cpu_seconds=12.0,
        figures=figures,
        processes=[
            ProcessUsage("postgres", 10, 28.5, 3, 60.0, 4.0),
            ProcessUsage("course-agent", 11, 180.0, 0, 0.0, 30.0),
        ],
    )


def test_report_prints_each_scenario_its_overheads_the_lag_and_the_processes() -> None:
    text = render(_report())
    rows: dict[str, str] = {}
    for line in text.splitlines():  # a scenario's first line: its row in the main table
        rows.setdefault(line.split("  ")[0], line)

    assert rows["stub direct"].split()[-6:] == ["200.0", "300.0", "400.0", "12.5", "-", "-"]
    assert rows["first misses"].split()[-2] == "2.8x"  # the first generations, over the stub
    assert "40*" in rows["cache miss"].split()  # capped: marked
    assert rows["cache miss"].split()[-2] == "1.3x"  # over the stub
    assert rows["cache hit"].split()[-3:] == ["12.5", "5.0x", "3.0"]  # req/s, /floor, rt
    assert rows["status"].split()[-2:] == ["1.5x", "-"]  # not metered: no round trips
    assert rows["long history status"].split()[-2:] == ["4.0x", "-"]  # over a state GET
    assert "long history updates" in rows
    hit_overhead = next(line for line in text.splitlines() if "one state GET" in line)
    assert hit_overhead.split()[-3:] == ["+8.0", "+12.0", "+16.0"]
    overhead = next(line for line in text.splitlines() if "service overhead" in line)
    assert overhead.split()[-3:] == ["+60.0", "+90.0", "+120.0"]
    assert "consumed at 42.0 events/s" in text
    assert "lag p50 400 ms, p95 900 ms, p99 1000 ms, max 1010 ms" in text
    assert "NOTE on lesson list: the list shows 19 of the 20 lessons" in text
    assert "3, 60.0 MiB" in next(line for line in text.splitlines() if "postgres" in line)
    assert "all at 4.00 s -> 500 events/s" in text
    assert "all at 7.50 s after staging" in text
    assert "first to last 4.00 s" in text  # the outbox's backlog
    assert "busiest pass: 1500 events in 2.50 s -> 600 events/s" in text
    assert "out of order: 0" in text


def test_report_says_how_the_long_history_was_scored_only_when_it_was() -> None:
    report = _report()
    assert "scored updates per lesson" not in render(report)

    scored = dataclasses.replace(
        report, config=dataclasses.replace(report.config, scored_history_attempts=3)
    )
    assert (
        "learner with 1000 lessons: 3 scored updates per lesson made first; "
        "User Progress held 3000 scores"
    ) in render(scored)


def test_report_prints_the_cost_per_request_of_metered_scenarios() -> None:
    lines = render(_report()).splitlines()
    calls_header = lines.index(next(line for line in lines if line.startswith("Cost per request")))
    cpu_header = lines.index(next(line for line in lines if line.startswith("CPU ms per request")))

    calls = [line for line in lines[calls_header:cpu_header] if line.startswith("cache hit")]
    assert [line.split()[-4:] for line in calls] == [["2.00", "0.00", "1.00", "1.00"]]
    # idle processes left out; the machine's steal time last
    assert lines[cpu_header + 2].split() == ["conc", "course-agent", "stolen"]
    hit = next(line for line in lines[cpu_header:] if line.startswith("cache hit"))
    assert hit.split()[-2:] == ["6.25", "0.75"]


def test_report_gives_the_steal_time_of_the_run_and_at_rest() -> None:
    text = render(_report())  # 2 CPUs for 120 s, 12 s stolen

    assert "CPU stolen by the hypervisor during the run: 12.0 s (5% of the CPUs' time" in text
    assert "stolen by the hypervisor: 4.0" in next(
        line for line in text.splitlines() if line.startswith("  CPU ms: kafka")
    )


def test_report_prints_what_the_stack_costs_at_rest() -> None:
    lines = render(_report()).splitlines()
    title = lines.index("At rest (5 s before the first request), per second:")

    assert lines[title + 1].split(", ")[:2] == [
        "  calls: course-agent->daprd 0.4",
        "daprd->course-agent 0.0",
    ]
    assert lines[title + 2] == (  # busiest first
        "  CPU ms: kafka 36.0, course-agent 2.0; stolen by the hypervisor: 4.0"
    )


def _with_floors(report: BenchReport, floors: list[ScenarioResult]) -> BenchReport:
    figures = dataclasses.replace(report.figures, floors=[*report.figures.floors, *floors])
    return dataclasses.replace(report, figures=figures)


def test_report_compares_a_cache_hit_with_the_floors_it_cannot_skip() -> None:
    report = _report()
    chain = [
        _scenario(FRAMEWORK, 0.001),
        _scenario(INVOKE, 0.004),
        _scenario(STATE_GET, 0.002),
        _scenario(BULK_GET, 0.003),
    ]
    report = _with_floors(report, chain)

    # User Progress reads the learner (a GET), then the agent its cache pointer (a bulk GET).
    assert report.cache_hit_chain_p50 == pytest.approx(0.010)
    line = next(line for line in render(report).splitlines() if "cache hit over" in line)
    assert line.endswith(": 10.0 ms, 1.0x")  # the hit's p50 is 10 ms


def test_a_cache_hit_at_conc_8_is_compared_with_the_floors_at_conc_8() -> None:
    report = _report()
    chain = [
        _scenario(FRAMEWORK, 0.001),
        _scenario(INVOKE, 0.004),
        _scenario(STATE_GET, 0.002),
        _scenario(BULK_GET, 0.003),
        _scenario(FRAMEWORK, 0.002, concurrency=8),
        _scenario(INVOKE, 0.008, concurrency=8),
        _scenario(STATE_GET, 0.004, concurrency=8),
        _scenario(BULK_GET, 0.006, concurrency=8),
    ]
    report = _with_floors(report, chain)

    assert report.cache_hit_wide_chain_p50 == pytest.approx(0.020)
    lines = [line for line in render(report).splitlines() if "cache hit over" in line]
    assert lines[1].endswith(": 20.0 ms, 1.0x")  # the hit at 8 takes 20 ms


def test_report_compares_a_cache_miss_overhead_with_the_floors_it_cannot_skip() -> None:
    report = _report()
    chain = [
        _scenario(FRAMEWORK, 0.001),
        _scenario(INVOKE, 0.004),
        _scenario(STATE_GET, 0.002),
        _scenario(BULK_GET, 0.003),
        _scenario(TRANSACTION, 0.005),
    ]
    report = _with_floors(report, chain)

    # The hit's chain (10 ms), the claim's transaction and the lesson's: 20 ms.
    assert report.cache_miss_chain_p50 == pytest.approx(0.020)
    line = next(line for line in render(report).splitlines() if "overhead over the" in line)
    assert line.endswith(": 20.0 ms, 3.0x")  # the miss's overhead over the stub is 60 ms


def test_without_every_floor_of_the_chain_there_is_no_comparison() -> None:
    report = _report()  # its floors hold no service invocation

    assert report.cache_hit_chain_p50 is None
    assert report.cache_miss_chain_p50 is None
    assert report.cache_hit_wide_chain_p50 is None
    assert sum(line.endswith("(no figures)") for line in render(report).splitlines()) == 3


def test_report_as_json_holds_the_overheads_in_seconds() -> None:
    document = _report().as_json()

    assert document["service_overhead"] == pytest.approx({"p50": 0.06, "p95": 0.09, "p99": 0.12})
    assert document["figures"]["cache_miss"]["cut_short"] is True
    assert document["config"]["json_path"] is None


def test_applied_count_reads_the_applied_series_only() -> None:
    metrics = (
        'lesson_events_total{outcome="duplicate"} 4.0\n'
        'lesson_events_total{outcome="applied"} 1234.0\n'
    )
    assert applied_count(metrics) == 1234
    assert applied_count("") == 0


def test_an_outbox_backlog_not_all_on_kafka_or_out_of_order_fails_the_run() -> None:
    report = _report()
    assert report.failed_requests == 0
    drain = dataclasses.replace(report.figures.outbox_drain, seen=1990, learners_out_of_order=2)
    figures = dataclasses.replace(report.figures, outbox_drain=drain)

    assert dataclasses.replace(report, figures=figures).failed_requests == 12


def test_a_learner_is_out_of_order_when_its_events_arrive_in_another_order() -> None:
    staged = {"ada": ["a1", "a2", "a3"], "bob": ["b1", "b2"], "cy": ["c1"]}
    arrived = [("a1", 0, 10), ("b2", 1, 4), ("a2", 0, 11), ("b1", 1, 5), ("a3", 0, 12)]

    # bob's second event reached the partition first; cy's never came (counted elsewhere).
    assert learners_out_of_order(staged, arrived) == 1
    in_order = [
        ("b1", 1, 4) if e == "b2" else ("b2", 1, 5) if e == "b1" else (e, p, o)
        for e, p, o in arrived
    ]
    assert learners_out_of_order(staged, in_order) == 0


def test_the_busiest_relay_pass_is_the_largest_run_of_events_without_a_pause() -> None:
    first_pass = [10.0 + i * 0.01 for i in range(100)]  # 100 events over 0.99 s
    second_pass = [13.0 + i * 0.002 for i in range(300)]  # 300 over 0.598 s, 2 s later

    events, seconds = busiest_pass([*second_pass, *first_pass])

    assert events == 300
    assert seconds == pytest.approx(0.598)
    assert busiest_pass([]) == (0, 0.0)
