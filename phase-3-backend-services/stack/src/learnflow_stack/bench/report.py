"""The benchmark's results: BenchReport, the table printed at the end and its JSON form."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

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
from learnflow_stack.bench.outbox_drain import OutboxDrainResult
from learnflow_stack.bench.scenarios import LONG_HISTORY, Figures
from learnflow_stack.bench.stats import PercentileDifference, difference
from learnflow_stack.bench.usage import ProcessUsage

# What a cache hit cannot skip: the app's own handling, the progress lookup (service invocation
# into User Progress, which reads the learner's document) and the one bulk read of the cache
# pointer with what a miss would need (the claim, the index head, the budget).
CACHE_HIT_CHAIN = (FRAMEWORK, INVOKE, STATE_GET, BULK_GET)
# What a cache miss adds to the LLM call and cannot skip: the hit's chain, then the transaction
# that spends the budget and claims the generation, and the lesson's transaction.
CACHE_MISS_CHAIN = (*CACHE_HIT_CHAIN, TRANSACTION, TRANSACTION)


@dataclass(frozen=True)
class BenchReport:
    config: BenchConfig
    cpus: int
    load_average_at_start: tuple[float, float, float]
    stack_start_seconds: float
    total_seconds: float
    client_cpu_seconds: float  # this process: the load generator shares the CPUs too
    stolen_cpu_seconds: float  # the machine's steal time over the run (``usage.stolen_ticks``)
    figures: Figures
    processes: list[ProcessUsage]

    @property
    def service_overhead(self) -> PercentileDifference | None:
        return _difference(self.figures.cache_miss, self.figures.stub_direct)

    @property
    def cache_hit_overhead(self) -> PercentileDifference | None:
        floor = self.figures.floor_of(self.figures.cache_hit)
        return None if floor is None else _difference(self.figures.cache_hit, floor)

    @property
    def cache_hit_chain_p50(self) -> float | None:
        return self._chain_p50(CACHE_HIT_CHAIN, self.figures.cache_hit.concurrency)

    @property
    def cache_hit_wide_chain_p50(self) -> float | None:
        return self._chain_p50(CACHE_HIT_CHAIN, self.figures.cache_hit_wide.concurrency)

    @property
    def cache_miss_chain_p50(self) -> float | None:
        return self._chain_p50(CACHE_MISS_CHAIN, self.figures.cache_miss.concurrency)

    def _chain_p50(self, chain: tuple[str, ...], concurrency: int) -> float | None:
        """The sum of the p50s of ``chain``'s floors at ``concurrency``; None if one is missing."""
        p50s = [
            floor.latency.p50
            for name in chain
            for floor in self.figures.floors
            if floor.name == name and floor.concurrency == concurrency and floor.latency
        ]
        return sum(p50s) if len(p50s) == len(chain) else None

    @property
    def stolen_share(self) -> float:
        """The steal time over the CPU time the machine had in the run."""
        available = self.cpus * self.total_seconds
        return self.stolen_cpu_seconds / available if available > 0 else 0.0

    @property
    def failed_requests(self) -> int:
        lag = self.figures.event_lag
        measured = [*self.figures.floors, *self.figures.scenarios()]
        scenario_errors = sum(s.errors for s in measured)
        drain = self.figures.drain
        scenario_errors += drain.events - drain.applied + self.figures.outbox_drain.errors
        return scenario_errors + lag.publish_errors + lag.poll_errors

    def as_json(self) -> dict[str, Any]:
        document = dataclasses.asdict(self)
        document["config"]["json_path"] = self.config.json_path and str(self.config.json_path)
        document["service_overhead"] = _as_dict(self.service_overhead)
        document["cache_hit_overhead"] = _as_dict(self.cache_hit_overhead)
        document["cache_hit_chain_p50"] = self.cache_hit_chain_p50
        document["cache_hit_wide_chain_p50"] = self.cache_hit_wide_chain_p50
        document["cache_miss_chain_p50"] = self.cache_miss_chain_p50
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


def _ratio(result: ScenarioResult, floor: ScenarioResult | None) -> str:
    if floor is None or result.latency is None or floor.latency is None:
        return f"{'-':>8}"
    return f"{result.latency.p50 / floor.latency.p50:>7.1f}x"


def _round_trips(result: ScenarioResult) -> str:
    return f"{result.cost.total_round_trips:>6.1f}" if result.cost else f"{'-':>6}"


def _scenario_row(result: ScenarioResult, floor: ScenarioResult | None = None) -> str:
    count = f"{result.completed}{'*' if result.cut_short else ''}"
    latency = result.latency
    figures = (
        f"{_ms(latency.p50)}{_ms(latency.p95)}{_ms(latency.p99)}"
        if latency
        else f"{'-':>9}{'-':>9}{'-':>9}"
    )
    return (
        f"{result.name:<44}{result.concurrency:>5}{count:>6}{result.errors:>5}"
        f"{figures}{result.requests_per_second:>9.1f}{_ratio(result, floor)}{_round_trips(result)}"
    )


def _difference_row(label: str, value: PercentileDifference | None) -> str:
    if value is None:
        return f"{label:<60}{'(no figures)':>27}"
    return f"{label:<60}{value.p50 * 1000:>+9.1f}{value.p95 * 1000:>+9.1f}{value.p99 * 1000:>+9.1f}"


def _hit_chain_row(hit: ScenarioResult, chain_p50: float | None) -> str:
    return _chain_row(
        "  cache hit over the floors it cannot skip (app + invocation + state GET + bulk GET)",
        hit.latency.p50 if hit.latency else None,
        chain_p50,
    )


def _chain_row(label: str, measured_p50: float | None, chain_p50: float | None) -> str:
    if chain_p50 is None or measured_p50 is None:
        return f"{label}: (no figures)"
    return f"{label}: {chain_p50 * 1000:.1f} ms, {measured_p50 / chain_p50:.1f}x"


_HEADER = (
    f"{'':<44}{'conc':>5}{'n':>6}{'err':>5}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'req/s':>9}"
    f"{'/floor':>8}{'rt':>6}"
)
_RULE = "-" * len(_HEADER)


def render(report: BenchReport) -> str:
    config, figures = report.config, report.figures
    load = " / ".join(f"{x:.2f}" for x in report.load_average_at_start)

    def row(result: ScenarioResult) -> str:
        return _scenario_row(result, figures.floor_of(result))

    lines = [
        "LearnFlow benchmark",
        f"  LLM stub delay {config.llm_delay_seconds:.3f} s, request scale "
        f"{config.scale:g}, cap {config.max_seconds_per_scenario:g} s per scenario",
        *(
            [
                f"  {LONG_HISTORY}: {config.scored_history_attempts} scored updates per lesson "
                f"made first; User Progress held {figures.long_history_scores} scores"
            ]
            if config.scored_history_attempts
            else []
        ),
        f"  {report.cpus} CPUs, load average at start {load}; "
        f"this client used {report.client_cpu_seconds:.1f} CPU s",
        f"  CPU stolen by the hypervisor during the run: {report.stolen_cpu_seconds:.1f} s "
        f"({report.stolen_share:.0%} of the CPUs' time; the run's noise, by scenario below)",
        f"  stack + stub ready in {report.stack_start_seconds:.1f} s, "
        f"whole run {report.total_seconds:.1f} s",
        "",
        "Floors: the raw pieces called directly, at each concurrency the scenarios use",
        _HEADER,
        _RULE,
        *(_scenario_row(floor) for floor in figures.floors),
        "",
        "Scenarios",
        _HEADER,
        _RULE,
        _scenario_row(figures.stub_direct),
        row(figures.first_misses),
        row(figures.cache_miss),
        _difference_row("  service overhead: cache miss - direct stub", report.service_overhead),
        _chain_row(
            "  overhead over the floors it cannot skip (the hit's, two transactions)",
            report.service_overhead.p50 if report.service_overhead else None,
            report.cache_miss_chain_p50,
        ),
        row(figures.cache_hit),
        _difference_row("  cache hit - one state GET", report.cache_hit_overhead),
        _hit_chain_row(figures.cache_hit, report.cache_hit_chain_p50),
        row(figures.cache_hit_wide),
        _hit_chain_row(figures.cache_hit_wide, report.cache_hit_wide_chain_p50),
        row(figures.cache_hit_busy_learner),
        row(figures.lesson_list),
        row(figures.progress_hot),
        row(figures.progress_many),
        row(figures.status),
        row(figures.progress_long_history),
        row(figures.status_long_history),
        _RULE,
        "n: measured requests (warm-up of 2 x conc excluded); * the cap ended it early.",
        "Percentiles: linear interpolation between ranks (numpy's default); "
        "req/s: successes / wall time.",
        "/floor: p50 over the p50 of the scenario's floor at the same concurrency "
        "(cache miss: the stub; cache hit: state GET;",
        "  GET /lessons: bulk GET; updates: the actor call; status: state GET). "
        "rt: the apps' calls to their daprd per request,",
        "  counted by daprd (dapr_http_server_request_count).",
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
    lines += [
        "",
        *_cost_lines([*figures.floors, *figures.scenarios()]),
        "",
        *_idle_lines(figures.idle),
        "",
        *_event_lag_lines(figures.event_lag),
        *_drain_lines(figures.drain),
        *_outbox_drain_lines(figures.outbox_drain),
        "",
        *_usage_lines(report.processes),
    ]
    return "\n".join(lines)


def _cost_lines(results: list[ScenarioResult]) -> list[str]:
    """Per request: each app's calls to its daprd and daprd's calls into it, and the CPU ms of
    every process that spent any."""
    metered = [r for r in results if r.cost is not None]
    if not metered:
        return ["Cost per request: not metered"]
    apps = sorted({app for r in metered if r.cost for app in r.cost.round_trips})
    busy = sorted({name for r in metered if r.cost for name, ms in r.cost.cpu_ms.items() if ms})
    width = max(len(name) for name in [*busy, *apps, "calls"]) + 2
    header = f"{'':<44}{'conc':>5}" + "".join(
        f"{'->' + app:>{width}}{app + '->':>{width}}" for app in apps
    )
    lines = [
        "Cost per request: calls app->daprd (->app) and daprd->app (app->), counted by daprd",
        header,
    ]
    for result in metered:
        assert result.cost is not None
        cost = result.cost
        calls = "".join(
            f"{cost.round_trips.get(app, 0):>{width}.2f}{cost.deliveries.get(app, 0):>{width}.2f}"
            for app in apps
        )
        lines.append(f"{result.name:<44}{result.concurrency:>5}{calls}")
    lines += [
        "",
        "CPU ms per request of each process (the load generator not included), and the CPU ms",
        "per request the hypervisor took from the machine meanwhile (stolen: 0 on a quiet host)",
    ]
    lines.append(f"{'':<44}{'conc':>5}" + "".join(f"{name:>{width}}" for name in [*busy, "stolen"]))
    for result in metered:
        assert result.cost is not None
        cpu = result.cost.cpu_ms
        lines.append(
            f"{result.name:<44}{result.concurrency:>5}"
            + "".join(f"{cpu.get(name, 0.0):>{width}.2f}" for name in busy)
            + f"{result.cost.stolen_ms:>{width}.2f}"
        )
    return lines


def _idle_lines(idle: ScenarioCost | None) -> list[str]:
    if idle is None:
        return ["At rest: not metered"]
    calls = ", ".join(
        f"{app}->daprd {idle.round_trips[app]:.1f}, daprd->{app} {idle.deliveries[app]:.1f}"
        for app in sorted(idle.round_trips)
    )
    busy = sorted((name for name, ms in idle.cpu_ms.items() if ms), key=idle.cpu_ms.__getitem__)
    cpu = ", ".join(f"{name} {idle.cpu_ms[name]:.1f}" for name in reversed(busy))
    return [
        f"At rest ({idle.requests} s before the first request), per second:",
        f"  calls: {calls}",
        f"  CPU ms: {cpu or 'none'}; stolen by the hypervisor: {idle.stolen_ms:.1f}",
    ]


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


def _at(seconds: float | None) -> str:
    return "never" if seconds is None else f"{seconds:.2f} s"


def _cpu_ms(cost: ScenarioCost) -> str:
    return ", ".join(f"{name} {ms:.2f}" for name, ms in cost.cpu_ms.items() if ms)


def _drain_lines(drain: DrainResult) -> list[str]:
    lines = [
        f"Backlog drain: {drain.events} lesson-generated events ({drain.learners} learners) put "
        f"straight on Kafka in {drain.produce_seconds:.2f} s",
        f"  applied {drain.applied}: first at {_at(drain.first_applied_seconds)}, half at "
        f"{_at(drain.half_applied_seconds)}, all at {_at(drain.all_applied_seconds)} "
        f"-> {drain.events_per_second:.0f} events/s",
    ]
    if drain.cost:
        lines.append(
            f"  per event: {drain.cost.deliveries.get('user-progress', 0):.2f} deliveries to "
            f"user-progress, {drain.cost.round_trips.get('user-progress', 0):.2f} of its calls "
            f"to daprd; CPU ms {_cpu_ms(drain.cost)}"
        )
    if drain.first_error:
        lines.append(f"  first error: {drain.first_error}")
    return lines


def _outbox_drain_lines(drain: OutboxDrainResult) -> list[str]:
    span = "?" if drain.publish_span_seconds is None else f"{drain.publish_span_seconds:.2f} s"
    pass_events, pass_seconds = drain.busiest_pass
    lines = [
        f"Outbox backlog: {drain.events} progress-updated events ({drain.learners} learners) "
        f"staged in User Progress's outbox in {drain.stage_seconds:.2f} s "
        f"({drain.in_slots} in slots, the rest in shards), as while Kafka is down",
        f"  on Kafka {drain.seen}: first at {_at(drain.first_seen_seconds)}, all at "
        f"{_at(drain.all_seen_seconds)} after staging (the relay leaves events 3 s to their "
        f"stager, and passes every 2 s); first to last {span}",
        f"  the relay's busiest pass: {pass_events} events in {pass_seconds:.2f} s "
        f"-> {drain.events_per_second:.0f} events/s",
        f"  learners whose events arrived out of order: {drain.learners_out_of_order}",
    ]
    if drain.cost:
        lines.append(
            f"  per event: {drain.cost.round_trips.get('user-progress', 0):.2f} of User "
            f"Progress's calls to daprd; CPU ms {_cpu_ms(drain.cost)}"
        )
    if drain.first_error:
        lines.append(f"  first error: {drain.first_error}")
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
