"""The benchmark's results: BenchReport, the table printed at the end and its JSON form."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from learnflow_stack.bench_config import BenchConfig
from learnflow_stack.bench_events import EventLagResult
from learnflow_stack.bench_load import ScenarioResult
from learnflow_stack.bench_scenarios import Figures
from learnflow_stack.bench_stats import PercentileDifference, difference
from learnflow_stack.bench_usage import ProcessUsage


@dataclass(frozen=True)
class BenchReport:
    config: BenchConfig
    cpus: int
    load_average_at_start: tuple[float, float, float]
    stack_start_seconds: float
    total_seconds: float
    client_cpu_seconds: float  # this process: the load generator shares the CPUs too
    figures: Figures
    processes: list[ProcessUsage]

    @property
    def service_overhead(self) -> PercentileDifference | None:
        return _difference(self.figures.cache_miss, self.figures.stub_direct)

    @property
    def cache_hit_overhead(self) -> PercentileDifference | None:
        return _difference(self.figures.cache_hit, self.figures.state_read)

    @property
    def failed_requests(self) -> int:
        lag = self.figures.event_lag
        scenario_errors = sum(s.errors for s in self.figures.scenarios())
        return scenario_errors + lag.publish_errors + lag.poll_errors

    def as_json(self) -> dict[str, Any]:
        document = dataclasses.asdict(self)
        document["config"]["json_path"] = self.config.json_path and str(self.config.json_path)
        document["service_overhead"] = _as_dict(self.service_overhead)
        document["cache_hit_overhead"] = _as_dict(self.cache_hit_overhead)
        document["units"] = {
            "latency": "seconds",
            "memory": "MiB",
            "cpu": "seconds",
            "throughput": "per second",
        }
        return document


def _difference(measured: ScenarioResult, baseline: ScenarioResult) -> PercentileDifference | None:
    if measured.latency is None or baseline.latency is None:
        return None
    return difference(measured.latency, baseline.latency)


def _as_dict(value: PercentileDifference | None) -> dict[str, float] | None:
    return None if value is None else dataclasses.asdict(value)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:9.1f}"


def _scenario_row(result: ScenarioResult) -> str:
    count = f"{result.completed}{'*' if result.cut_short else ''}"
    latency = result.latency
    figures = (
        f"{_ms(latency.p50)}{_ms(latency.p95)}{_ms(latency.p99)}"
        if latency
        else f"{'-':>9}{'-':>9}{'-':>9}"
    )
    return (
        f"{result.name:<44}{result.concurrency:>5}{count:>6}{result.errors:>5}"
        f"{figures}{result.requests_per_second:>9.1f}"
    )


def _difference_row(label: str, value: PercentileDifference | None) -> str:
    if value is None:
        return f"{label:<60}{'(no figures)':>27}"
    return f"{label:<60}{value.p50 * 1000:>+9.1f}{value.p95 * 1000:>+9.1f}{value.p99 * 1000:>+9.1f}"


def render(report: BenchReport) -> str:
    config, figures = report.config, report.figures
    load = " / ".join(f"{x:.2f}" for x in report.load_average_at_start)
    lines = [
        "LearnFlow benchmark",
        f"  LLM stub delay {config.llm_delay_seconds:.3f} s, request scale "
        f"{config.scale:g}, cap {config.max_seconds_per_scenario:g} s per scenario",
        f"  {report.cpus} CPUs, load average at start {load}; "
        f"this client used {report.client_cpu_seconds:.1f} CPU s",
        f"  stack + stub ready in {report.stack_start_seconds:.1f} s, "
        f"whole run {report.total_seconds:.1f} s",
        "",
        f"{'scenario':<44}{'conc':>5}{'n':>6}{'err':>5}"
        f"{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'req/s':>9}",
        "-" * 96,
        _scenario_row(figures.stub_direct),
        _scenario_row(figures.cache_miss),
        _difference_row("  service overhead: cache miss - direct stub", report.service_overhead),
        _scenario_row(figures.state_read),
        _scenario_row(figures.cache_hit),
        _difference_row("  cache hit - one state GET", report.cache_hit_overhead),
        _scenario_row(figures.lesson_list),
        _scenario_row(figures.progress_hot),
        _scenario_row(figures.progress_many),
        "-" * 96,
        "n: measured requests (warm-up of 2 x conc excluded); * the cap ended it early.",
        "Percentiles: linear interpolation between ranks (numpy's default); "
        "req/s: successes / wall time.",
    ]
    settled = figures.events_settled_seconds
    lines.append(
        "User Progress had consumed every lesson event of the generation scenarios "
        + (f"{settled:.1f} s after GET /lessons ended." if settled is not None else "NOT IN TIME.")
    )
    for scenario in figures.scenarios():
        if scenario.first_error:
            lines.append(f"  first error of {scenario.name}: {scenario.first_error}")
        if scenario.note:
            lines.append(f"  NOTE on {scenario.name}: {scenario.note}")
    lines += ["", *_event_lag_lines(figures.event_lag), "", *_usage_lines(report.processes)]
    return "\n".join(lines)


def _event_lag_lines(lag: EventLagResult) -> list[str]:
    lines = [
        "Event lag: lesson-generated published via course-agent's daprd -> GET /status shows it"
    ]
    if lone := lag.lone:
        lines.append(
            f"  one at a time ({lone.count} of {lag.lone_published} seen): "
            f"p50 {lone.p50 * 1000:.0f} ms, max {lone.maximum * 1000:.0f} ms; "
            f"resolution ~{_rounded_ms(lag.lone_mean_poll_seconds)} (one GET /status)"
        )
    lines.append(
        f"  burst of {lag.burst_published} published at once: {lag.burst_visible} became visible"
    )
    if burst := lag.burst_lag:
        lines.append(
            f"    lag p50 {burst.p50 * 1000:.0f} ms, p95 {burst.p95 * 1000:.0f} ms, "
            f"p99 {burst.p99 * 1000:.0f} ms, max {burst.maximum * 1000:.0f} ms; "
            f"consumed at {lag.burst_events_per_second:.1f} events/s;\n"
            f"    resolution ~{_rounded_ms(lag.burst_mean_poll_round_seconds)} (one poll round)"
        )
    lines.append(f"  {lag.publish_errors} publish errors, {lag.poll_errors} poll errors")
    if lag.first_error:
        lines.append(f"  first error: {lag.first_error}")
    return lines


def _rounded_ms(seconds: float | None) -> str:
    return "?" if seconds is None else f"{seconds * 1000:.0f} ms"


def _usage_lines(usage: list[ProcessUsage]) -> list[str]:
    lines = [
        "Peak memory (VmHWM) and CPU time of each process at the end of the run",
        f"  {'process':<22}{'pid':>8}{'peak MiB':>10}{'CPU s':>8}"
        "   living children: count, sum of their peaks",
    ]
    for process in usage:
        peak = f"{process.peak_mib:10.1f}" if process.peak_mib is not None else f"{'ended':>10}"
        children = (
            f"   {process.children}, {process.children_peak_mib:.1f} MiB"
            if process.children
            else ""
        )
        lines.append(
            f"  {process.name:<22}{process.pid:>8}{peak}{process.cpu_seconds:>8.1f}{children}"
        )
    peaks = sum(p.peak_mib or 0.0 for p in usage)
    cpu = sum(p.cpu_seconds for p in usage)
    lines.append(f"  {'sum':<22}{'':>8}{peaks:10.1f}{cpu:>8.1f}   (children's peaks not included)")
    lines.append("  CPU s: user + system since the process started, its children included.")
    return lines
